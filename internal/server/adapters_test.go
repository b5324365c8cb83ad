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

// TestOpenOrdersFollowCancels: with max_open_orders 2, two resting orders
// fill the budget; a cancel accepted by the venue frees one slot, a market
// order never takes one.
func TestOpenOrdersFollowCancels(t *testing.T) {
	pols, err := policy.CompileAll(map[string]policy.Definition{"p": {Scopes: []string{"trade"}, MaxOpenOrders: 2, UnknownPrice: "allow"}})
	if err != nil {
		t.Fatal(err)
	}
	a := &policyAdapter{}
	a.engine.Store(policy.NewEngine(policy.Options{Policies: pols}))
	cl := &client.Client{ID: "kw1", Key: "main", Policy: "p"}
	check := func(action exchange.Action, typ string) (gateway.Permit, error) {
		return a.Check(context.Background(), gateway.Check{Client: cl, Exchange: "binance", SourceIP: netip.MustParseAddr("127.0.0.1"), Now: time.Now(),
			Call: exchange.Call{Venue: "binance", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: action, Symbol: "BTCUSDT", Side: exchange.Buy, Type: typ, Quantity: 1, Price: 1}}}})
	}
	for i := 0; i < 2; i++ {
		p, err := check(exchange.ActionNew, "limit")
		if err != nil {
			t.Fatalf("limit order %d: %v", i, err)
		}
		p.Commit()
	}
	if _, err := check(exchange.ActionNew, "limit"); err == nil {
		t.Fatal("third resting order allowed past max_open_orders 2")
	}
	// Market orders never rest: they neither take nor free a slot.
	for i := 0; i < 3; i++ {
		p, err := check(exchange.ActionNew, "market")
		if err != nil {
			t.Fatalf("market order %d: %v", i, err)
		}
		p.Commit()
	}
	if _, err := check(exchange.ActionNew, "limit"); err == nil {
		t.Fatal("market orders freed resting-order slots")
	}
	p, err := check(exchange.ActionCancel, "")
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	p, err = check(exchange.ActionNew, "limit")
	if err != nil {
		t.Fatalf("order after a cancel: %v", err)
	}
	p.Commit()
	if _, err := check(exchange.ActionNew, "limit"); err == nil {
		t.Fatal("budget not full again after the replacement order")
	}
}
