package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// TestServeWrappedCredential is V12 through the binary: `client issue
// --wrap` prints a wrapping token and no secret; `client unwrap` (token on
// stdin) gets the credential once from the running gateway and the bot
// trades with it; a second unwrap fails, revokes the credential (the bot
// is refused) and raises a critical wrap_token_misuse alert.
func TestServeWrappedCredential(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey, exSecret := "EXKEYwrap0123456789", marker+"wrapsecret0123456789"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	var mu sync.Mutex
	var alerts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		alerts = append(alerts, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	writeFile(t, filepath.Join(c.dir, "hook-key"), "hook-key-0123456789abcdef\n", 0o600)
	addr := freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + addr + `"
plaintext = true

[[venue]]
name = "binance"
upstream = "` + up.URL + `"

[policy.reader]
scopes = ["read"]

[[alerts.webhook]]
url = "` + hook.URL + `/alerts"
key_file = "hook-key"
`)
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	base := "http://" + addr
	waitHealthy(t, base, done)

	out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "reader", "--ttl", "1h", "--wrap", "--wrap-ttl", "5m")
	var token, id string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Wrapping token:"); ok {
			token = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "API key:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(token, "kwwrap_") || id == "" || strings.Contains(out, "Secret:") {
		t.Fatalf("client issue --wrap printed no token, no id, or a secret:\n%s", out)
	}
	js := c.ok(token+"\n", "client", "unwrap", "--gateway", base, "--json")
	var got issuedCredential
	if err := json.Unmarshal([]byte(js), &got); err != nil || got.ID != id || got.SecretText == "" {
		t.Fatalf("client unwrap = %v %s, want the credential %s", err, js, id)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: got.ID, Secret: exchange.Secret(got.SecretText)}
	if code, body := botCall(t, base, cred); code != 200 {
		t.Fatalf("bot call with the unwrapped credential = %d %s, want 200", code, body)
	}
	c.fails("410", token+"\n", "client", "unwrap", "--gateway", base)
	if code, body := botCall(t, base, cred); code != 401 {
		t.Errorf("bot call after a second unwrap = %d %s, want 401 (revoked)", code, body)
	}
	if list := c.ok("", "client", "list"); !strings.Contains(list, id) || !strings.Contains(list, "revoked") {
		t.Errorf("client list after the second unwrap:\n%s", list)
	}
	waitFor(t, "the wrap_token_misuse alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range alerts {
			if strings.Contains(a, "wrap_token_misuse") && strings.Contains(a, "critical") && strings.Contains(a, id) {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, a := range alerts {
		if strings.Contains(a, token) || strings.Contains(a, got.SecretText) {
			t.Errorf("an alert holds the token or the secret")
		}
	}
	mu.Unlock()
}

// waitFor polls cond for up to 10 s (bounded: 200 tries).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
