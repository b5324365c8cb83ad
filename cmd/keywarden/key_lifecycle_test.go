package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/store/sqlite"
)

func TestKeyPlan(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--exchange", "binance", "--purpose", "trading"}, "[x] Enable Spot & Margin Trading"},
		{[]string{"--exchange", "binance", "--purpose", "trading"}, "[ ] Enable Withdrawals"},
		{[]string{"--exchange", "kraken", "--purpose", "readonly"}, "[ ] Create & Modify Orders"},
	}
	for _, tt := range tests {
		if out := c.ok("", append([]string{"key", "plan"}, tt.args...)...); !strings.Contains(out, tt.want) {
			t.Errorf("key plan %v = %q, want %q", tt.args, out, tt.want)
		}
	}
	c.fails("unknown purpose", "", "key", "plan", "--exchange", "okx", "--purpose", "everything")
	c.fails("no key plan", "", "key", "plan", "--exchange", "nowhere")
}

// TestKeyPostureRotateRevoke runs key audit, report compliance, key rotate
// and key revoke against the Deribit simulator.
func TestKeyPostureRotateRevoke(t *testing.T) {
	kit := sim.NewKit()
	srv := httptest.NewServer(deribit.NewSimulator(kit))
	defer srv.Close()
	old := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "oldclient", Secret: exchange.Secret("old-" + marker), Account: "7"}
	kit.AddAccount(sim.Account{Key: old, Permissions: map[string]bool{"read": true, "trade": true, "admin": true}})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	venue := deribit.New(u)
	works := func(c exchange.Credential) bool {
		_, err := posture.Inspect(context.Background(), srv.Client(), venue, &c, time.Now())
		return err == nil
	}

	if !works(old) {
		t.Fatalf("the old key does not work at the simulator")
	}
	c := newCLI(t)
	cfg, _ := os.ReadFile(c.config)
	writeFile(t, c.config, string(cfg)+"\n[[venue]]\nname = \"deribit\"\nupstream = \""+srv.URL+"\"\n", 0o600)
	c.ok("", "operator", "init")
	c.ok("api_key=oldclient\nsecret=old-"+marker+"\n", "key", "add", "--exchange", "deribit", "--name", "bot", "--account", "7", "--scopes", "read,trade", "--stdin")

	out, _, err := c.run("", "key", "audit", "deribit/bot")
	if err == nil || !strings.Contains(err.Error(), "high findings") || !strings.Contains(out, posture.CodeNoIP) {
		t.Errorf("key audit = %q, %v, want a high no-IP finding", out, err)
	}

	var rep posture.Report
	if err := json.Unmarshal([]byte(c.ok("", "report", "compliance", "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Keys) != 1 || rep.Keys[0].Posture == nil || !rep.Keys[0].Posture.CanTrade || len(rep.History) != 1 {
		t.Errorf("report = %+v, want one inspected key and one snapshot", rep)
	}

	out = c.ok("", "key", "rotate", "deribit/bot", "--permission", "account:read_write,trade:read_write")
	if !strings.Contains(out, "Rotation of deribit/bot: done") {
		t.Errorf("key rotate = %q, want done", out)
	}
	if works(old) {
		t.Errorf("the old key still works at the venue after key rotate")
	}
	// Every step is in the hash-chained audit log, which still verifies.
	events := c.ok("", "audit", "search")
	for _, step := range []string{"started", "created", "verified", "switched", "done"} {
		if !strings.Contains(events, "event      key.rotate."+step+" actor=cli") {
			t.Errorf("audit log lacks key.rotate.%s:\n%s", step, events)
		}
	}
	c.ok("", "audit", "verify")
	// the vault signs with the new key: the audit still reaches the venue
	out, _, _ = c.run("", "key", "audit", "deribit/bot", "--json")
	var entries []posture.KeyEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 || entries[0].Posture == nil {
		t.Errorf("key audit after rotate = %q, %v, want the new key inspected", out, err)
	}

	c.fails("needs --reason", "", "key", "revoke", "deribit/bot")
	out = c.ok("", "key", "revoke", "deribit/bot", "--reason", "bot host compromised")
	if !strings.Contains(out, "Revoked deribit/bot") {
		t.Errorf("key revoke = %q", out)
	}
	out = c.ok("", "report", "compliance", "--format", "md")
	for _, want := range []string{"| deribit/bot | revoked |", "bot host compromised", "| rotated |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report md lacks %q:\n%s", want, out)
		}
	}
	if err := json.Unmarshal([]byte(c.ok("", "report", "compliance", "--format", "json", "--offline")), &rep); err != nil || len(rep.History) != 3 {
		t.Errorf("report history = %v, %v, want 3 snapshots", rep.History, err)
	}
	c.fails("unknown format", "", "report", "compliance", "--format", "pdf")
}

func TestPostureSchedule(t *testing.T) {
	tests := []struct {
		interval string
		want     time.Duration
		sims     bool
		err      bool
	}{
		{"", 6 * time.Hour, false, false},
		{"off", 0, false, false},
		{"1h", time.Hour, true, false},
		{"10s", 0, false, true},
		{"soon", 0, false, true},
	}
	for _, tt := range tests {
		d, sims, err := PostureConfig{Interval: tt.interval}.schedule()
		if d != tt.want || sims != tt.sims || (err != nil) != tt.err {
			t.Errorf("schedule(%q) = %v, %v, %v, want %v, %v, error %v", tt.interval, d, sims, err, tt.want, tt.sims, tt.err)
		}
	}
	a := &app{cfg: Config{Venues: []VenueConfig{{Name: "deribit", Upstream: "http://127.0.0.1:9"}, {Name: "okx"}}}}
	if !a.simulated("deribit") || a.simulated("okx") {
		t.Errorf("simulated(deribit, okx) = %v, %v, want true, false", a.simulated("deribit"), a.simulated("okx"))
	}
}

// TestServePostureAlerts runs serve with [posture] interval set: the first
// scheduled check finds the key without an IP restriction, raises a
// posture_change alert through the webhook, and stores the run.
func TestServePostureAlerts(t *testing.T) {
	kit := sim.NewKit()
	up := httptest.NewServer(deribit.NewSimulator(kit))
	defer up.Close()
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "postureclient", Secret: exchange.Secret("s-" + marker), Account: "7"},
		Permissions: map[string]bool{"read": true, "trade": true}})
	hookKey := "whsec-posture-0123456789"
	rcv := &hookReceiver{key: []byte(hookKey)}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	c := newCLI(t)
	writeFile(t, filepath.Join(c.dir, "hook-key"), hookKey+"\n", 0o600)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + freePort(t) + `"
plaintext = true

[[venue]]
name = "deribit"
upstream = "` + up.URL + `"

[posture]
interval = "1h"

[[alerts.webhook]]
url = "` + hook.URL + `/alerts"
key_file = "hook-key"
`)
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key=postureclient\nsecret=s-"+marker+"\n", "key", "add", "--exchange", "deribit", "--name", "bot", "--account", "7", "--scopes", "read,trade", "--stdin")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var serveErr bytes.Buffer
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), io.Discard, &serveErr)
	}()
	waitRule(t, rcv, posture.RuleChange)
	rcv.mu.Lock()
	var got monitor.Alert
	for _, a := range rcv.alerts {
		if a.Rule == posture.RuleChange {
			got = a
		}
	}
	rcv.mu.Unlock()
	if got.Subject != "deribit/bot" || got.Severity != monitor.SeverityCritical || !strings.Contains(got.Evidence["changes"], "new "+posture.CodeNoIP) {
		t.Errorf("posture alert = %+v, want a critical new no-ip-restriction for deribit/bot", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, serveErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	db, err := sqlite.Open(context.Background(), sqlite.Options{Dir: filepath.Join(c.dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs, err := posture.NewHistory(db, 0).Runs(context.Background(), 0)
	if err != nil || len(runs) != 1 || len(runs[0].Keys) != 1 || runs[0].Keys[0] != "deribit/bot" {
		t.Errorf("stored runs = %+v, %v, want one run of deribit/bot", runs, err)
	}
}
