package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/notify"
)

// hookReceiver collects signed webhook alerts.
type hookReceiver struct {
	mu     sync.Mutex
	alerts []monitor.Alert
	bad    int
	key    []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !notify.Verify(h.key, r.Header.Get(notify.HeaderTimestamp), b, r.Header.Get(notify.HeaderSignature)) {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a monitor.Alert
	if err := json.Unmarshal(b, &a); err != nil {
		h.bad++
		return
	}
	h.alerts = append(h.alerts, a)
}

func (h *hookReceiver) rules() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, a := range h.alerts {
		out = append(out, a.Rule)
	}
	return out
}

// TestPanicAndAlerts runs `keywarden serve` with a signed webhook notifier
// and checks that panic suspends exactly what it selects on the next
// request, that the monitor's alerts reach the webhook, and that
// `keywarden alert test` delivers a signed test alert.
func TestPanicAndAlerts(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := "EXKEY0123456789abcdef"
	exSecret := marker + "0123456789abcdef0123456789"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	hookKey := "whsec-test-0123456789"
	rcv := &hookReceiver{key: []byte(hookKey)}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	writeFile(t, filepath.Join(c.dir, "hook-key"), hookKey+"\n", 0o600)
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

[policy.trader]
scopes = ["read", "trade"]

[alerts]
cooldown = "1m"

[[alerts.webhook]]
url = "` + hook.URL + `/alerts"
key_file = "hook-key"
`)
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

	// alert test works without a running gateway.
	if out := c.ok("", "alert", "test"); !strings.Contains(out, "Webhook: delivered") {
		t.Errorf("alert test output:\n%s", out)
	}
	if got := rcv.rules(); len(got) != 1 || got[0] != monitor.RuleTest {
		t.Fatalf("webhook alerts after alert test = %v, want [test]", got)
	}

	c.fails("no keywarden serve is running", "", "panic", "--all", "--reason", "drill")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	base := "http://" + addr
	waitHealthy(t, base, done)

	issue := func() *exchange.Credential {
		t.Helper()
		out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
		var iss issuedCredential
		if err := json.Unmarshal([]byte(out), &iss); err != nil {
			t.Fatalf("client issue output: %v\n%s", err, out)
		}
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	}
	a, b := issue(), issue()
	for _, cred := range []*exchange.Credential{a, b} {
		if code, body := botCall(t, base, cred); code != 200 {
			t.Fatalf("call before panic = %d %s, want 200", code, body)
		}
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no selector", []string{"panic", "--reason", "x"}, "exactly one of"},
		{"two selectors", []string{"panic", "--all", "--venue", "binance", "--reason", "x"}, "exactly one of"},
		{"no reason", []string{"panic", "--all"}, "--reason is required"},
		{"bad key", []string{"panic", "--key", "main", "--reason", "x"}, "want EXCHANGE/NAME"},
		{"unknown client", []string{"panic", "--client", "nosuchclient", "--reason", "x"}, "nosuchclient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.fails(tt.want, "", tt.args...)
		})
	}

	out := c.ok("", "panic", "--client", a.APIKey, "--reason", "credential leaked in a paste")
	if !strings.Contains(out, "revoked binance/"+a.APIKey) || !strings.Contains(out, "suspension took") {
		t.Errorf("panic --client output:\n%s", out)
	}
	if code, body := botCall(t, base, a); code != 401 {
		t.Errorf("call with the panicked client = %d %s, want 401", code, body)
	}
	if code, body := botCall(t, base, b); code != 200 {
		t.Errorf("call with another client = %d %s, want 200", code, body)
	}

	out = c.ok("", "panic", "--venue", "kraken", "--reason", "no such clients")
	if !strings.Contains(out, "no active credential matched") {
		t.Errorf("panic --venue kraken output:\n%s", out)
	}
	if code, _ := botCall(t, base, b); code != 200 {
		t.Errorf("call after a panic that matched nothing = %d, want 200", code)
	}

	out = c.ok("", "panic", "--key", "binance/main", "--reason", "exchange key suspected")
	if !strings.Contains(out, "revoked binance/"+b.APIKey) || strings.Contains(out, a.APIKey) {
		t.Errorf("panic --key output (want only the still-active client):\n%s", out)
	}
	if code, body := botCall(t, base, b); code != 401 {
		t.Errorf("call after panic --key = %d %s, want 401", code, body)
	}

	// Repeated refusals of a suspended credential look like someone trying
	// a stolen credential: the monitor alerts through the webhook.
	for range 5 {
		botCall(t, base, b)
	}
	waitRule(t, rcv, monitor.RuleAuthFailures)

	cred := issue()
	if code, body := botCall(t, base, cred); code != 200 {
		t.Fatalf("call with a new client = %d %s, want 200", code, body)
	}
	// Bots keep calling while the panic goes out: every request that
	// starts after `keywarden panic --all` returned must be refused.
	type result struct {
		start time.Time
		code  int
	}
	results := make(chan result, 4096)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				results <- result{start, signedCall(base, cred)}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	out = c.ok("", "panic", "--all", "--reason", "drill")
	returned := time.Now()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(results)
	var before, after int
	for r := range results {
		if r.start.Before(returned) {
			before++
			continue
		}
		after++
		if r.code != 503 {
			t.Errorf("request started after panic --all returned = %d, want 503", r.code)
		}
	}
	if after == 0 {
		t.Error("no request started after the panic: the load did not overlap")
	}
	t.Logf("under load (%d requests before, %d after): %s", before, after, strings.TrimSpace(out))
	if !strings.Contains(out, "gateway stopped") || !strings.Contains(out, "suspension took") {
		t.Errorf("panic --all output:\n%s", out)
	}
	for _, cr := range []*exchange.Credential{cred, a} {
		if code, body := botCall(t, base, cr); code != 503 {
			t.Errorf("call after panic --all = %d %s, want 503", code, body)
		}
	}
	if st := c.ok("", "gateway", "status"); !strings.Contains(st, "panic switch") {
		t.Errorf("gateway status after panic --all:\n%s", st)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	audit := c.ok("", "audit", "search")
	// Five panics reached the gateway, the one that failed included.
	if n := strings.Count(audit, " panic actor=control-socket "); n != 5 {
		t.Errorf("audit search shows %d panic events, want 5:\n%s", n, audit)
	}
	if !strings.Contains(audit, `"reason":"drill","revoked":"0","stopped":"true","target":"all"`) {
		t.Errorf("audit lacks the panic --all event:\n%s", audit)
	}
	if rcv.bad != 0 {
		t.Errorf("webhook got %d requests with a bad signature", rcv.bad)
	}
}

func waitRule(t *testing.T, rcv *hookReceiver, rule string) {
	t.Helper()
	for range 400 {
		for _, r := range rcv.rules() {
			if r == rule {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("webhook never received a %s alert; got %v", rule, rcv.rules())
}

// signedCall is botCall for other goroutines: it reports failures as
// status 0 instead of stopping the test.
func signedCall(base string, cred *exchange.Credential) int {
	u, err := url.Parse(base)
	if err != nil {
		return 0
	}
	r := &exchange.Request{Method: "GET", Path: "/api/v3/account", Header: http.Header{}}
	if err := binance.Spot(u).Signer.Sign(r, cred, time.Now()); err != nil {
		return 0
	}
	req, err := http.NewRequest(r.Method, base+"/binance"+r.Path+"?"+r.RawQuery, nil)
	if err != nil {
		return 0
	}
	req.Header = r.Header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
