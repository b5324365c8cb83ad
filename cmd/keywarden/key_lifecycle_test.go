package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/posture"
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
