package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/internal/monitor"
)

func randomAlnum(t *testing.T, n int) string {
	t.Helper()
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for {
		b := make([]byte, n)
		for i := range b {
			v, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
			if err != nil {
				t.Fatal(err)
			}
			b[i] = chars[v.Int64()]
		}
		s := string(b)
		if strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") {
			return s
		}
	}
}

// alertSink is a loopback webhook receiver.
type alertSink struct {
	mu     sync.Mutex
	alerts []monitor.Alert
	bodies []string
}

func (s *alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var a monitor.Alert
	_ = json.Unmarshal(b, &a)
	s.mu.Lock()
	s.alerts = append(s.alerts, a)
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
}

// TestScanLiveKeys: a real vault in a temporary directory holds an exchange
// key and a client credential; a bot configuration leaking both is
// scanned. Both are named as live keys, alerted, revoked with --revoke, and
// no output or alert shows the secrets.
func TestScanLiveKeys(t *testing.T) {
	c := newCLI(t)
	sink := &alertSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	writeFile(t, filepath.Join(c.dir, "hook.key"), "webhook-signing-key-0123456789\n", 0o600)
	cfg, err := os.ReadFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.config, string(cfg)+"\n[alerts]\n[[alerts.webhook]]\nurl = \""+srv.URL+"\"\nkey_file = \"hook.key\"\n\n[policy.trader]\nscopes = [\"read\", \"trade\"]\nsymbols = [\"BTCUSDT\"]\n", 0o600)
	c.ok("", "operator", "init")
	apiKey, secret := randomAlnum(t, 64), randomAlnum(t, 64)
	c.ok("api_key="+apiKey+"\nsecret="+secret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	issued := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h")
	m := regexp.MustCompile(`API key:\s+(kw[A-Za-z0-9]{48})[\s\S]*Secret:\s+([A-Za-z0-9]{64})`).FindStringSubmatch(issued)
	if m == nil {
		t.Fatalf("client issue output = %q", issued)
	}
	clientID, clientSecret := m[1], m[2]

	repo := filepath.Join(c.dir, "bot")
	writeFile0(t, filepath.Join(repo, "exchange.env"), "# the real key, pasted by mistake\nBINANCE_API_SECRET="+secret+"\n")
	writeFile0(t, filepath.Join(repo, "gateway.yaml"), "keywarden:\n  apiKey: "+clientID+"\n  secret: "+clientSecret+"\n")
	writeFile0(t, filepath.Join(repo, "other.env"), "BINANCE_API_SECRET="+randomAlnum(t, 64)+"\n")

	out, errOut, err := c.run("", "scan", repo, "--live", "on")
	var ef errFindings
	if !errors.As(err, &ef) || ef.live != 3 || ef.n != 4 {
		t.Fatalf("scan = %v, want 4 findings of which 3 live\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	for _, want := range []string{
		"this is your live key binance/main (secret)",
		"this is your live client credential binance/" + clientID + " (client id)",
		"this is your live client credential binance/" + clientID + " (client secret)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scan output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "to revoke: keywarden key revoke binance/main") {
		t.Errorf("scan stderr does not offer revocation:\n%s", errOut)
	}
	for _, s := range []string{secret, clientSecret, apiKey} {
		if strings.Contains(out+errOut, s[4:]) {
			t.Errorf("scan output shows a secret")
		}
	}
	sink.mu.Lock()
	alerts, bodies := len(sink.alerts), strings.Join(sink.bodies, "\n")
	rulesOK := alerts > 0
	for _, a := range sink.alerts {
		rulesOK = rulesOK && a.Rule == RuleLeakedLiveKey && a.Severity == monitor.SeverityCritical
	}
	sink.mu.Unlock()
	if alerts != 2 || !rulesOK || !strings.Contains(bodies, "binance/main") {
		t.Errorf("alerts = %d (%s), want one critical leaked_live_key alert per live key", alerts, bodies)
	}
	if strings.Contains(bodies, secret[4:]) || strings.Contains(bodies, clientSecret[4:]) {
		t.Error("an alert shows a secret")
	}

	// JSON output carries the same, redacted.
	out, _, _ = c.run("", "scan", repo, "--live", "on", "--format", "json")
	var rep struct {
		Findings []struct {
			Rule, Redacted string
			Live           *struct{ Owner, Part string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) != 4 {
		t.Fatalf("json report = %v (%s)", err, out)
	}

	// --revoke: the exchange key is disabled and the client revoked.
	_, errOut, _ = c.run("", "scan", repo, "--live", "on", "--revoke")
	if !strings.Contains(errOut, "Revoked binance/main") || !strings.Contains(errOut, "Revoked client credential binance/"+clientID) {
		t.Errorf("scan --revoke stderr:\n%s", errOut)
	}
	cfgv, err := loadConfig(c.config, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	v, db, err := openVault(context.Background(), &cfgv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Key(context.Background(), "binance", "main")
	db.Close()
	if err != nil || info.Disabled.IsZero() || !strings.Contains(info.DisabledReason, "leaked: found by keywarden scan in "+filepath.Join(repo, "exchange.env")) {
		t.Errorf("key after scan --revoke = %+v, %v, want it disabled with the leak as reason", info, err)
	}
	if out := c.ok("", "client", "list"); !strings.Contains(out, "revoked") {
		t.Errorf("client list after revoke = %q", out)
	}
	events := c.ok("", "audit", "search")
	for _, want := range []string{"key.revoke actor=keywarden-scan", `"key":"binance/main"`, "client.revoke actor=keywarden-scan", clientID} {
		if !strings.Contains(events, want) {
			t.Errorf("audit after scan --revoke lacks %q:\n%s", want, events)
		}
	}
	if strings.Contains(events, secret[4:]) || strings.Contains(events, clientSecret[4:]) {
		t.Error("the audit log shows a secret")
	}
	// A revoked exchange key is still recognised when it leaks.
	out, _, _ = c.run("", "scan", repo, "--live", "on")
	if !strings.Contains(out, "this is your live key binance/main (secret)") {
		t.Errorf("scan after revoke:\n%s", out)
	}

	// --live off never opens the vault; auto without a vault is silent.
	out, errOut, err = c.run("", "scan", repo, "--live", "off")
	if !errors.As(err, &ef) || ef.live != 0 || strings.Contains(out, "live") || strings.Contains(errOut, "live-key") {
		t.Errorf("scan --live off = %v\n%s\n%s", err, out, errOut)
	}
}

func writeFile0(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content, 0o644)
}

func TestScanStdinAndFormats(t *testing.T) {
	c := newCLI(t)
	secret := randomAlnum(t, 64)
	out, _, err := c.run("BINANCE_API_SECRET="+secret+"\n", "scan", "-", "--format", "sarif")
	var ef errFindings
	if !errors.As(err, &ef) || ef.n != 1 {
		t.Fatalf("scan - = %v, want one finding", err)
	}
	if !strings.Contains(out, `"version": "2.1.0"`) || !strings.Contains(out, `"ruleId": "binance-api-secret"`) || strings.Contains(out, secret[4:]) {
		t.Errorf("sarif output:\n%s", out)
	}
	if _, _, err := c.run("nothing to see here\n", "scan", "-"); err != nil {
		t.Errorf("scan of a clean stdin = %v, want success", err)
	}
	c.fails("--format", "", "scan", "-", "--format", "xml")
	// A secret pasted as a path is refused without being echoed.
	pasted := randomAlnum(t, 64)
	if _, errOut, err := c.run("", "scan", pasted); err == nil || strings.Contains(err.Error()+errOut, pasted) || !strings.Contains(err.Error(), "looks like a secret") {
		t.Errorf("scan SECRET = %v, want a refusal that does not echo it", err)
	}
	// --live on without a vault is an error, and creates nothing.
	c.fails("no vault", "", "scan", "-", "--live", "on")
	if _, err := os.Stat(filepath.Join(c.dir, "data")); !os.IsNotExist(err) {
		t.Errorf("data directory after scan --live on = %v, want none created", err)
	}
}

func TestScanInstallHook(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	c := newCLI(t)
	repo := filepath.Join(c.dir, "repo")
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	hook := filepath.Join(repo, ".git", "hooks", "pre-commit")
	out := c.ok("", "scan", "install-hook", "--dir", repo)
	if !strings.Contains(out, "Installed") {
		t.Errorf("install-hook output = %q", out)
	}
	b, err := os.ReadFile(hook)
	if err != nil || !strings.Contains(string(b), "scan --staged") || !strings.Contains(string(b), hookMarker) {
		t.Fatalf("hook = %q, %v", b, err)
	}
	if st, _ := os.Stat(hook); st.Mode()&0o111 == 0 {
		t.Error("hook is not executable")
	}
	// Ours is updated in place; a foreign hook is refused unless --force.
	c.ok("", "scan", "install-hook", "--dir", repo)
	writeFile(t, hook, "#!/bin/sh\nrun-linters\n", 0o755)
	c.fails("not written by keywarden", "", "scan", "install-hook", "--dir", repo)
	c.ok("", "scan", "install-hook", "--dir", repo, "--force")
	if b, _ := os.ReadFile(hook + ".keywarden-backup"); !strings.Contains(string(b), "run-linters") {
		t.Errorf("backup = %q, want the foreign hook kept", b)
	}
}
