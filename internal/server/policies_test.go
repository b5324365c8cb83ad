package server

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
)

// TestSetPolicies checks that replacing the policies changes the next
// decision of the gateway's policy adapter.
func TestSetPolicies(t *testing.T) {
	compile := func(d policy.Definition) map[string]*policy.Policy {
		ps, err := policy.CompileAll(map[string]policy.Definition{"p": d})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	a := &policyAdapter{}
	a.engine.Store(policy.NewEngine(policy.Options{Policies: compile(policy.Definition{Scopes: []string{"trade"}, UnknownPrice: "allow"})}))
	s := &Server{policies: a}
	cl := &client.Client{ID: "kw1", Key: "main", Policy: "p"}
	check := func() error {
		_, err := a.Check(context.Background(), gateway.Check{Client: cl, Exchange: "binance", SourceIP: netip.MustParseAddr("127.0.0.1"), Now: time.Now(),
			Call: exchange.Call{Venue: "binance", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1}}}})
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("trade under a trade policy = %v, want allowed", err)
	}
	s.SetPolicies(compile(policy.Definition{})) // read only
	if err := check(); err == nil {
		t.Fatal("trade after the policy became read only = allowed, want denied")
	}
	if s.PolicyEngine().Policy("p") == nil {
		t.Error("PolicyEngine() lacks the new policy")
	}
}
