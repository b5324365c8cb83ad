package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/policy"
)

// gateMarket is ccxt's BTC/USDT spot market on Gate.
func gateMarket() map[string]any {
	m := spotMarket("BTC_USDT", "BTC", "USDT")
	m["info"] = map[string]any{"id": "BTC_USDT", "base": "BTC", "quote": "USDT", "trade_status": "tradable"}
	return m
}

// gateJob is a ccxt gate bot holding iss and pointed at env's gateway.
// Gate's request paths carry /api/v4, so only the host is rewritten.
func gateJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "gate",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://api.gateio.ws": env.URL + "/gate"},
		Markets:     []map[string]any{gateMarket()},
		Currencies:  currencies("BTC", "USDT"),
		Steps:       steps,
	}
}

// TestCCXTGateThroughGateway: an unmodified ccxt gate bot, pointed at
// keywarden, reads its balance, places and cancels an order, and is denied
// a withdrawal; the simulator sees only the exchange key. Before its first
// balance ccxt reads the key's account detail to learn whether the account
// is unified.
func TestCCXTGateThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"gate"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC_USDT"}, MaxOrderNotional: 100000},
	})
	key := env.AddKey("gate", "main", "read", "trade", "withdraw")
	kit := env.Sims["gate"].Kit
	kit.SetPrice("BTC_USDT", 50000)
	iss := env.Issue("gate", "main", "trader")
	res := exchangetest.CCXTBot(t, gateJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"USDT", 100, "TXYZ1111111111111111111111111111111"}},
	))
	expectBotSteps(t, res, true, true, true, false)
	expectFreeBalance(t, res[0], "USDT", 100000)
	orders := kit.Orders(key.APIKey)
	if len(orders) != 1 {
		t.Fatalf("simulator holds %d orders, want 1", len(orders))
	}
	if id := botResultField(t, res[1], "id"); id != orders[0].ID {
		t.Errorf("createOrder id = %q, want the simulator's %q", id, orders[0].ID)
	}
	if id := botResultField(t, res[2], "id"); id != orders[0].ID {
		t.Errorf("cancelOrder id = %q, want %q", id, orders[0].ID)
	}
	if st := botResultField(t, res[2], "status"); st != "canceled" {
		t.Errorf("cancelOrder status = %q, want canceled", st)
	}
	if orders[0].Status != "CANCELED" || orders[0].Symbol != "BTC_USDT" || orders[0].Quantity != 0.01 || orders[0].Price != 49000 {
		t.Errorf("simulator order = %+v, want a canceled BTC_USDT buy of 0.01 at 49000", orders[0])
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want a policy denial naming the scope rule", e)
	}
	// The withdrawal is never forwarded.
	wantReqs := []string{"GET /api/v4/account/detail", "GET /api/v4/spot/accounts", "POST /api/v4/spot/orders", "DELETE /api/v4/spot/orders/{id}"}
	if diff := cmp.Diff(wantReqs, simRequests(env, "gate", orders[0].ID)); diff != "" {
		t.Errorf("simulator requests (-want +got):\n%s", diff)
	}
	expectSimSawOnlyExchangeKey(t, env, "gate", key, iss)
	expectBotOutputClean(t, env, res, key)
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 4, "outcome": 4, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTGateOrderDenied: orders outside the policy reach ccxt as Gate's
// permission error and never reach the simulator.
func TestCCXTGateOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"gate"}, map[string]policy.Definition{
		"eth-only": {Scopes: []string{"read", "trade"}, Symbols: []string{"ETH_USDT"}},
		"small":    {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC_USDT"}, MaxOrderNotional: 100},
	})
	key := env.AddKey("gate", "main", "read", "trade")
	kit := env.Sims["gate"].Kit
	tests := []struct {
		policy string
		rule   string
	}{
		{"eth-only", "symbol"},
		{"small", "max_order_notional"},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			kit.ResetLog()
			iss := env.Issue("gate", "main", tt.policy)
			res := exchangetest.CCXTBot(t, gateJob(env, iss,
				exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}},
			))
			expectBotSteps(t, res, false)
			if e := res[0].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule "+tt.rule) {
				t.Errorf("createOrder error = %+v, want PermissionDenied naming rule %s", e, tt.rule)
			}
			// ccxt first reads the account detail, which the policy allows.
			if diff := cmp.Diff([]string{"GET /api/v4/account/detail"}, simRequests(env, "gate", "")); diff != "" {
				t.Errorf("simulator requests (-want +got):\n%s", diff)
			}
			if n := len(kit.Orders(key.APIKey)); n != 0 {
				t.Errorf("simulator holds %d orders, want 0", n)
			}
			expectSimSawOnlyExchangeKey(t, env, "gate", key, iss)
			expectBotOutputClean(t, env, res, key)
		})
	}
	got := Decisions(env.CheckAudit(key.Secret))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/symbol": 1, "denied/deny/max_order_notional": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
