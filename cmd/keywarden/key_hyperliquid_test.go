package main

import (
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// TestKeyRotateHyperliquid rotates a Hyperliquid agent wallet twice with
// keywarden key rotate, the master wallet's entry approving each new
// agent: the operator's agent and then the first new agent are
// deregistered (their names given to placeholders), every approved address
// is distinct, and the audit log records every step. Without --manager the
// rotation is refused and nothing is approved.
func TestKeyRotateHyperliquid(t *testing.T) {
	kit := sim.NewKit()
	s := hyperliquid.NewSimulator(kit)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	master, err := eip712.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	agent, err := eip712.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	m := master.Address().Hex()
	kit.AddAccount(sim.Account{Key: exchange.Credential{APIKey: m}})
	if err := s.ApproveAgent(master.Address(), agent.Address(), "keywarden"); err != nil {
		t.Fatal(err)
	}

	c := newCLI(t)
	cfg, _ := os.ReadFile(c.config)
	writeFile(t, c.config, string(cfg)+"\n[[venue]]\nname = \"hyperliquid\"\nupstream = \""+srv.URL+"\"\n", 0o600)
	c.ok("", "operator", "init")
	c.ok("api_key="+m+"\nsecret="+master.Hex()+"\n", "key", "add", "--exchange", "hyperliquid", "--name", "master",
		"--account", m, "--scopes", "read,trade,withdraw,account-admin", "--stdin")
	c.ok("api_key="+agent.Address().Hex()+"\nsecret="+agent.Hex()+"\n", "key", "add", "--exchange", "hyperliquid", "--name", "bot",
		"--account", m, "--scopes", "read,trade", "--stdin")

	c.fails("--manager", "", "key", "rotate", "hyperliquid/bot", "--permission", "agent")
	if got := s.Agents(master.Address()); !slices.Equal(got, []string{agent.Address().Hex()}) {
		t.Fatalf("agents after a refused rotation = %v, want only the operator's", got)
	}
	args := []string{"key", "rotate", "hyperliquid/bot", "--manager", "hyperliquid/master", "--permission", "agent"}
	var seen []string
	for round := 1; round <= 2; round++ {
		if out := c.ok("", args...); !strings.Contains(out, "Rotation of hyperliquid/bot: done") {
			t.Fatalf("key rotate round %d = %q, want done", round, out)
		}
		agents := s.Agents(master.Address())
		if len(agents) != round+1 || slices.Contains(agents, agent.Address().Hex()) {
			t.Errorf("round %d: agents = %v, want %d, none the operator's", round, agents, round+1)
		}
		for _, a := range agents {
			if !slices.Contains(seen, a) {
				seen = append(seen, a)
			}
		}
	}
	// Two rotations approved two agents and two placeholders, all distinct.
	if len(seen) != 4 {
		t.Errorf("distinct agent addresses over two rotations = %d (%v), want 4", len(seen), seen)
	}
	events := c.ok("", "audit", "search")
	if n := strings.Count(events, "key.rotate.done actor=cli"); n != 2 {
		t.Errorf("audit log has %d key.rotate.done events, want 2:\n%s", n, events)
	}
	c.ok("", "audit", "verify")
	for _, o := range c.outputs {
		if strings.Contains(o, master.Hex()[2:]) || strings.Contains(o, agent.Hex()[2:]) {
			t.Errorf("an output shows a private key:\n%s", o)
		}
	}
}
