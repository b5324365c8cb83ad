package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
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
	"github.com/keywarden/keywarden/internal/operator"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeIssueRevoke runs `keywarden serve` against a Binance simulator,
// issues a client credential through the running server's control socket,
// trades with it, revokes it from the CLI and sees the next request refused.
func TestServeIssueRevoke(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := "EXKEY0123456789abcdef"
	exSecret := marker + "0123456789abcdef0123456789"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	var siemMu sync.Mutex
	var siem []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		siemMu.Lock()
		siem = append(siem, r.Header.Get("Authorization")+" "+string(b))
		siemMu.Unlock()
	}))
	defer collector.Close()
	writeFile(t, filepath.Join(c.dir, "siem-token"), "siem-token-1\n", 0o600)
	addr := freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + addr + `"
plaintext = true
audit_http = "` + collector.URL + `"
audit_http_token_file = "siem-token"

[[venue]]
name = "binance"
upstream = "` + up.URL + `"

[policy.trader]
scopes = ["read", "trade"]

[admin]
disabled = true
`)
	f.Close()
	writeFile(t, filepath.Join(c.dir, "admin-pass"), "the first admin's password\n", 0o600)
	seed := totpSeed(t, c.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", filepath.Join(c.dir, "admin-pass")))
	c.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

	ctx, cancel := context.WithCancel(context.Background())
	var serveOut, serveErr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), &serveOut, &serveErr)
	}()
	base := "http://" + addr
	waitHealthy(t, base, done)

	out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil {
		t.Fatalf("client issue output: %v\n%s", err, out)
	}
	if iss.ID == "" || iss.SecretText == "" {
		t.Fatalf("issued credential lacks id or secret: %s", out)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	if code, body := botCall(t, base, cred); code != 200 {
		t.Fatalf("account call = %d %s, want 200", code, body)
	}
	list := c.ok("", "client", "list")
	if !strings.Contains(list, iss.ID) || !strings.Contains(list, "active") || strings.Contains(list, iss.SecretText) {
		t.Errorf("client list:\n%s", list)
	}
	if st := c.ok("", "gateway", "status"); !strings.Contains(st, "gateway: running") || !strings.Contains(st, "binance/main: ") {
		t.Errorf("gateway status:\n%s", st)
	}
	c.ok("", "gateway", "stop")
	if code, body := botCall(t, base, cred); code != 503 {
		t.Errorf("call while stopped = %d %s, want 503", code, body)
	}
	c.ok(operator.Code(seed, time.Now())+"\n", "gateway", "resume", "--operator", "root", "--reason", "test over")
	c.ok("", "client", "revoke", iss.ID)
	if code, body := botCall(t, base, cred); code != 401 {
		t.Fatalf("call after revoke = %d %s, want 401", code, body)
	}
	// Revoking the exchange key in a running gateway stops every client
	// bound to it on the next request.
	out = c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss2 issuedCredential
	if err := json.Unmarshal([]byte(out), &iss2); err != nil {
		t.Fatal(err)
	}
	cred2 := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss2.ID, Secret: exchange.Secret(iss2.SecretText)}
	if code, body := botCall(t, base, cred2); code != 200 {
		t.Fatalf("second client = %d %s, want 200", code, body)
	}
	if out := c.ok("", "key", "revoke", "binance/main", "--reason", "suspected leak"); !strings.Contains(out, "Revoked binance/main") {
		t.Errorf("key revoke: %s", out)
	}
	if code, body := botCall(t, base, cred2); code != 503 {
		t.Fatalf("call after key revoke = %d %s, want 503", code, body)
	}
	signed := 0
	for _, l := range kit.Log() {
		if l.APIKey == exKey && l.Verified {
			signed++
		}
		if strings.Contains(l.RawQuery+string(l.Body), iss.SecretText) {
			t.Error("simulator saw the client secret")
		}
	}
	if signed != 2 {
		t.Errorf("simulator saw %d requests signed with the exchange key, want 2 (one per client before the revocations)", signed)
	}
	// The SIEM collector receives the audit records, with its token.
	deadline := time.Now().Add(20 * time.Second)
	for {
		siemMu.Lock()
		all := strings.Join(siem, "\n")
		siemMu.Unlock()
		if strings.Contains(all, `"outcome"`) {
			if !strings.HasPrefix(all, "Bearer siem-token-1 ") {
				t.Errorf("collector got no bearer token: %.80s", all)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector never received the outcome record; got:\n%s", all)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, serveErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	c.outputs = append(c.outputs, serveOut.String(), serveErr.String())
	if !strings.Contains(serveErr.String(), "gateway listening") {
		t.Errorf("serve log lacks the listening line:\n%s", serveErr.String())
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", controlSocket)); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}

	// The audit trail: one allowed call with its outcome, one refusal.
	if out := c.ok("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
	out = c.ok("", "audit", "search", "--client", iss.ID)
	if !strings.Contains(out, "allow") || !strings.Contains(out, "rule=auth") {
		t.Errorf("audit search lacks the allowed call or the refusal after revoke:\n%s", out)
	}
	pub := strings.TrimSpace(c.ok("", "audit", "public-key"))
	if out := c.ok("", "audit", "verify", "--public-key", pub); !strings.Contains(out, "OK") {
		t.Errorf("audit verify with a pinned key: %s", out)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	if _, _, err := c.run("", "audit", "verify", "--public-key", base64.StdEncoding.EncodeToString(otherPub)); err == nil {
		t.Error("audit verify accepted checkpoints under a key that did not sign them")
	}

	// policy explain on a recorded withdrawal: the scope rule denies.
	reqFile := filepath.Join(c.dir, "withdraw.http")
	writeFile(t, reqFile, "POST /binance/sapi/v1/capital/withdraw/apply?coin=BTC&address=bc1qx&amount=1 HTTP/1.1\nHost: kw\n\n", 0o600)
	out = c.ok("", "policy", "explain", "--client", iss.ID, "--request", reqFile)
	if !strings.Contains(out, "scope") || !strings.Contains(out, "decision: DENY") {
		t.Errorf("policy explain:\n%s", out)
	}
	if out := c.ok("", "policy", "check"); !strings.Contains(out, "1 policies OK: trader") {
		t.Errorf("policy check: %s", out)
	}
}

func waitHealthy(t *testing.T, base string, done chan error) {
	t.Helper()
	for i := 0; i < 300; i++ {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("gateway never became healthy")
}

// botCall signs GET /api/v3/account as a Binance client would.
func botCall(t *testing.T, base string, cred *exchange.Credential) (int, string) {
	t.Helper()
	return botCallWith(t, http.DefaultClient, base, cred)
}

// botCallWith signs GET /api/v3/account with cred, as the demo bot (and any
// Binance client) would, and sends it through hc.
func botCallWith(t *testing.T, hc *http.Client, base string, cred *exchange.Credential) (int, string) {
	t.Helper()
	bot := &demoBot{base: base + "/binance", venue: binance.Spot(mustURL(base)), cred: cred, hc: hc}
	code, body, err := bot.call(context.Background(), "GET", "/api/v3/account", "")
	if err != nil {
		t.Fatal(err)
	}
	return code, string(body)
}
