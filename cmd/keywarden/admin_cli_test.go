package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/operator"
)

// TestAdminCLI creates the first admin at operator init, runs serve with
// the admin API, logs in from the CLI and uses the panic switch, lifting
// it with a fresh TOTP code.
func TestAdminCLI(t *testing.T) {
	c := newCLI(t)
	adminAddr := freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + freePort(t) + `"
plaintext = true

[admin]
listen = "` + adminAddr + `"

[[venue]]
name = "binance"
`)
	f.Close()
	pwFile := filepath.Join(c.dir, "admin-pass")
	writeFile(t, pwFile, "the first admin's password\n", 0o600)
	out := c.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", pwFile)
	seed := totpSeed(t, out)
	if !strings.Contains(out, "█") || !strings.Contains(out, "▀") {
		t.Errorf("operator init drew no QR code:\n%s", out)
	}
	c.fails("operators exist already", "", "operator", "first-admin", "--name", "again", "--password-file", pwFile)
	caFile := filepath.Join(c.dir, "ca.pem")
	writeFile(t, caFile, c.ok("", "tls", "ca"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	waitHealthy(t, "http://"+strings.TrimPrefix(gatewayAddr(t, c.config), "http://"), done)

	// Codes are single-use per 30-second step: log in with the previous
	// step's code and step up with the current one, away from a boundary.
	for i := 0; i < 30 && time.Now().Unix()%30 > 25; i++ {
		time.Sleep(200 * time.Millisecond)
	}
	now := time.Now()
	c.ok("the first admin's password\n"+operator.Code(seed, now.Add(-30*time.Second))+"\n", "login", "--url", "https://"+adminAddr, "--name", "root", "--ca", caFile)
	if got := c.ok("", "admin", "GET", "/v1/auth/whoami"); !strings.Contains(got, `"name":"root"`) || !strings.Contains(got, `"role":"admin"`) {
		t.Errorf("whoami = %s", got)
	}
	c.ok("", "admin", "POST", "/v1/gateway/stop")
	if got := c.ok("", "admin", "GET", "/v1/gateway"); !strings.Contains(got, `"stopped"`) {
		t.Errorf("gateway status after stop = %s", got)
	}
	c.fails("403", "", "admin", "POST", "/v1/gateway/resume")
	c.ok(operator.Code(seed, now)+"\n", "admin", "POST", "/v1/gateway/resume", "--totp")
	if got := c.ok("", "admin", "GET", "/v1/gateway"); !strings.Contains(got, `"running"`) {
		t.Errorf("gateway status after resume = %s", got)
	}
	if got := c.ok("", "admin", "GET", "/v1/audit?type=event"); !strings.Contains(got, `"admin.gateway.resume"`) || !strings.Contains(got, `"actor":"root"`) {
		t.Errorf("audit lacks the resume event: %s", got)
	}

	// Policy edits: creating one needs a fresh code, narrowing it does not.
	policyFile := filepath.Join(c.dir, "ops.toml")
	writeFile(t, policyFile, "[policy.ops]\nscopes = [\"read\", \"trade\"]\nmax_order_qty = 1\n", 0o600)
	out = c.ok(operator.Code(seed, now.Add(30*time.Second))+"\n", "admin", "policy", "apply", "ops", "--file", policyFile)
	if !strings.Contains(out, "+max_order_qty = 1.0") || !strings.Contains(out, "Policy ops applied") {
		t.Errorf("admin policy apply (create) = %q", out)
	}
	writeFile(t, policyFile, "[policy.ops]\nscopes = [\"read\", \"trade\"]\nmax_order_qty = 0.5\n", 0o600)
	out = c.ok("", "admin", "policy", "apply", "ops", "--file", policyFile)
	if !strings.Contains(out, "-max_order_qty = 1.0") || !strings.Contains(out, "Policy ops applied") {
		t.Errorf("admin policy apply (narrow) = %q", out)
	}
	// A new operator through the API, enrolled with a QR code; then the
	// admin renews its own recovery codes.
	opPass := filepath.Join(c.dir, "op-pass")
	writeFile(t, opPass, "the auditor's password\n", 0o600)
	out = c.ok("", "admin", "operator", "create", "alice", "--role", "auditor", "--password-file", opPass)
	if !strings.Contains(out, "█") || !strings.Contains(out, "otpauth://totp/keywarden:alice") {
		t.Errorf("admin operator create = %q, want a QR code and the key URI", out)
	}
	c.fails("operator alice already exists", "", "admin", "operator", "create", "alice", "--role", "auditor", "--password-file", opPass)
	// The policy edit's code stepped the session up: no code is asked.
	out = c.ok("", "admin", "operator", "recovery-codes")
	if n := len(regexp.MustCompile(`(?m)^  [a-z2-7]{8}-[a-z2-7]{8}$`).FindAllString(out, -1)); n != 10 {
		t.Errorf("admin operator recovery-codes printed %d codes:\n%s", n, out)
	}
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve: %v\n%s", err, serveErr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop after cancel")
		}
	}
	stop()

	// After a restart the session and the edited policy are still there.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), &serveOut, &serveErr)
	}()
	waitHealthy(t, "http://"+strings.TrimPrefix(gatewayAddr(t, c.config), "http://"), done)
	if got := c.ok("", "admin", "GET", "/v1/auth/whoami"); !strings.Contains(got, `"name":"root"`) {
		t.Errorf("whoami after restart = %s", got)
	}
	if got := c.ok("", "admin", "policy", "show", "ops"); !strings.Contains(got, "max_order_qty = 0.5") {
		t.Errorf("policy after restart = %s", got)
	}
	c.ok("", "admin", "POST", "/v1/auth/logout")
	c.fails("401", "", "admin", "GET", "/v1/auth/whoami")
	stop()
}

// gatewayAddr reads [gateway] listen back from the config file.
func gatewayAddr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^listen = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no listen in config")
	}
	return string(m[1])
}

// TestServeStopsWhenAdminCannotListen checks that serve refuses to run
// without the admin API it was configured with, and says why.
func TestServeStopsWhenAdminCannotListen(t *testing.T) {
	c := newCLI(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + freePort(t) + `"
plaintext = true

[admin]
listen = "` + busy.Addr().String() + `"

[[venue]]
name = "binance"
`)
	f.Close()
	pwFile := filepath.Join(c.dir, "admin-pass")
	writeFile(t, pwFile, "the first admin's password\n", 0o600)
	c.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", pwFile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getenv := func(k string) string {
		if k == "KEYWARDEN_CONFIG" {
			return c.config
		}
		return ""
	}
	var out, errOut bytes.Buffer
	err = runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "admin API") || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("serve with a busy admin address = %v, want an admin API listen error naming %s", err, busy.Addr())
	}
	if ctx.Err() != nil {
		t.Fatal("serve ran until the timeout instead of stopping")
	}
}
