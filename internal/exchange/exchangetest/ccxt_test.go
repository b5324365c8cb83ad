package exchangetest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestCCXTBotSignsAfterLoadingHTTPClient: bot.js signs every call after
// ccxt's HTTP client is loaded. ccxt loads undici inside its first fetch,
// after signing that request; driven naively, the first call's timestamp is
// older than the module load, which on a loaded machine outlasts a venue's
// recvWindow. A preloaded hook records when undici finished loading; the
// timestamp of every signed call the server receives must not be earlier.
func TestCCXTBotSignsAfterLoadingHTTPClient(t *testing.T) {
	dir := CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s (run: npm ci --prefix %s)", dir, dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
	hook, err := filepath.Abs(filepath.Join("testdata", "undici-loaded.js"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(hook, `"\`) {
		t.Fatalf("NODE_OPTIONS cannot name %q", hook)
	}
	loaded := filepath.Join(t.TempDir(), "undici-loaded")
	t.Setenv("NODE_OPTIONS", `--require "`+hook+`"`)
	t.Setenv("KEYWARDEN_TEST_UNDICI_LOADED", loaded)

	var mu sync.Mutex
	var stamps []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stamps = append(stamps, r.URL.Query().Get("timestamp"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"balances":[]}`))
	}))
	defer srv.Close()

	res := CCXTBot(t, BotJob{
		Exchange:    "binance",
		Credentials: map[string]string{"apiKey": "testkey", "secret": "testsecret"},
		HostMap:     map[string]string{"https://api.binance.com": srv.URL},
		Steps:       []BotStep{{Op: "privateGetAccount"}, {Op: "privateGetAccount"}},
	})
	for i, r := range res {
		if !r.OK {
			t.Fatalf("step %d: %+v", i, r.Error)
		}
	}

	raw, err := os.ReadFile(loaded)
	if err != nil {
		t.Fatalf("the hook never saw undici load (%v): this node's loader bypasses Module._load", err)
	}
	lines := strings.Fields(string(raw))
	if len(lines) != 1 {
		t.Fatalf("undici loaded %d times, want once: %q", len(lines), raw)
	}
	loadedAt, err := strconv.ParseInt(lines[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stamps) != len(res) {
		t.Fatalf("server received %d calls, want %d", len(stamps), len(res))
	}
	for i, s := range stamps {
		ts, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("call %d: timestamp %q: %v", i, s, err)
		}
		if ts < loadedAt {
			t.Errorf("call %d was signed at %d ms, %d ms before ccxt's HTTP client finished loading (%d): its timestamp aged by the module load", i, ts, loadedAt-ts, loadedAt)
		}
	}
}
