package server

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
)

// registryView answers Lookup from a map: the registry's current entries.
type registryView map[string]*client.Entry

func (v registryView) Lookup(venue, id string) (*client.Entry, error) {
	if e, ok := v[venue+"/"+id]; ok {
		return e, nil
	}
	return nil, client.ErrNotFound
}

// TestReadOnlyPreCheck: a downgraded credential's trade, transfer,
// withdraw and account-admin calls are refused with rule read_only before
// the policy is asked, whether the downgrade is in the credential the
// gateway holds or only in the registry's current entry (a WebSocket
// session logged on before the downgrade); read and public calls pass;
// the registry's current entry wins over the held copy (a session logged
// on while downgraded may trade once restored).
func TestReadOnlyPreCheck(t *testing.T) {
	pols, err := policy.CompileAll(map[string]policy.Definition{"p": {
		Scopes: []string{"read", "trade"}, UnknownPrice: "allow"}})
	if err != nil {
		t.Fatal(err)
	}
	down := &client.Downgrade{Since: time.Now(), By: "automatic-response", Reason: "alert alert-1"}
	stale := client.Client{ID: "kw1", Venue: "binance", Key: "main", Policy: "p"}
	current := stale
	current.ReadOnly = down
	tests := []struct {
		name     string
		held     client.Client // what the gateway passes
		registry *client.Client
		scope    exchange.Scope
		denied   bool
	}{
		{"full trade", stale, &stale, exchange.ScopeTrade, false},
		{"held downgrade trade", current, nil, exchange.ScopeTrade, true},
		{"session stale trade", stale, &current, exchange.ScopeTrade, true},
		{"session stale transfer", stale, &current, exchange.ScopeTransfer, true},
		{"session stale withdraw", stale, &current, exchange.ScopeWithdraw, true},
		{"session stale account-admin", stale, &current, exchange.ScopeAccountAdmin, true},
		{"session stale read", stale, &current, exchange.ScopeRead, false},
		{"held downgrade public", current, &current, exchange.ScopePublic, false},
		{"session logged on while downgraded, since restored", current, &stale, exchange.ScopeTrade, false},
		{"held downgrade, gone from the registry", current, nil, exchange.ScopeTransfer, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view := registryView{}
			if tt.registry != nil {
				view["binance/kw1"] = &client.Entry{Client: *tt.registry}
			}
			a := &policyAdapter{clients: view}
			a.engine.Store(policy.NewEngine(policy.Options{Policies: pols}))
			held := tt.held
			call := exchange.Call{Venue: "binance", Scope: tt.scope}
			if tt.scope == exchange.ScopeTrade {
				call.Orders = []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1}}
			}
			p, err := a.Check(context.Background(), gateway.Check{Client: &held, Exchange: "binance",
				SourceIP: netip.MustParseAddr("127.0.0.1"), Now: time.Now(), Call: call})
			var d *gateway.Denial
			switch {
			case tt.denied && (!errors.As(err, &d) || d.Rule != RuleReadOnly):
				t.Fatalf("Check(%s) = %v, want a %s denial", tt.scope, err, RuleReadOnly)
			case !tt.denied && err != nil:
				t.Fatalf("Check(%s) = %v, want allowed", tt.scope, err)
			}
			if p != nil {
				p.Release()
			}
		})
	}
}
