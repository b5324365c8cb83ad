package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// bybitMarket is ccxt's BTC/USDT (or ETH/USDT) spot market on Bybit, as its
// loadMarkets would build it from /v5/market/instruments-info.
func bybitMarket(base string) map[string]any {
	id := base + "USDT"
	m := spotMarket(id, base, "USDT")
	m["margin"] = true
	m["precision"] = map[string]any{"amount": 0.00000001, "price": 0.1}
	m["info"] = map[string]any{"symbol": id, "baseCoin": base, "quoteCoin": "USDT", "status": "Trading"}
	return m
}

// bybitJob is a ccxt bybit bot holding iss and pointed at env's gateway.
// ccxt's Bybit urls are "https://api.{hostname}" with hostname bybit.com,
// so the template itself is mapped.
func bybitJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "bybit",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://api.{hostname}": env.URL + "/bybit"},
		Markets:     []map[string]any{bybitMarket("BTC"), bybitMarket("ETH")},
		Currencies:  currencies("BTC", "ETH", "USDT"),
		Steps:       steps,
	}
}

// bybitLog is kit's request log with ccxt's two unified-account probes,
// which it sends concurrently before its first private call, in a fixed
// order.
func bybitLog(kit *sim.Kit) []sim.Logged {
	log := kit.Log()
	if len(log) >= 2 && log[0].Path == "/v5/account/info" && log[1].Path == "/v5/user/query-api" {
		log[0], log[1] = log[1], log[0]
	}
	return log
}

// bybitTicker is where keywarden reads Bybit reference prices.
const bybitTicker = "/v5/market/tickers"

// TestCCXTBybitThroughGateway: an unmodified ccxt bybit bot, pointed at
// keywarden with a client key and secret, reads its balance, places and
// cancels a limit order, and is denied a withdrawal; the simulator sees
// only requests signed with the exchange key.
func TestCCXTBybitThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"bybit"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 100000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["bybit"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	key := env.AddKey("bybit", "main", "read", "trade", "withdraw")
	iss := env.Issue("bybit", "main", "trader")
	res := exchangetest.CCXTBot(t, bybitJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"USDT", 100, "TXYZ1111111111111111111111111111111", map[string]any{"network": "TRX"}}},
		// The raw key self-inspection answer, as ccxt's implicit method
		// returns it.
		exchangetest.BotStep{Op: "privateGetV5UserQueryApi"},
	))
	expectBotSteps(t, res, true, true, true, false, true)
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
	if o := orders[0]; o.Status != "CANCELED" || o.Symbol != "BTCUSDT" || o.Quantity != 0.01 || o.Price != 49000 {
		t.Errorf("simulator order = %+v, want a canceled BTCUSDT buy of 0.01 at 49000", o)
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want a policy denial naming the scope rule", e)
	}
	// Bybit echoes the calling key; the bot sees its own client id there.
	if r := string(res[4].Result); !strings.Contains(r, `"apiKey":"`+iss.ID+`"`) {
		t.Errorf("query-api result = %s, want apiKey %q", r, iss.ID)
	}
	// The withdrawal is never forwarded.
	venueCheckForwarded(t, bybitLog(kit), bybitTicker, key.APIKey, []string{iss.ID, string(iss.Secret)}, []string{
		// ccxt asks whether the account is unified before its first
		// private call; the policy's read scope allows both probes.
		"GET /v5/user/query-api",
		"GET /v5/account/info",
		"GET /v5/account/wallet-balance",
		"POST /v5/order/create",
		"POST /v5/order/cancel",
		"GET /v5/user/query-api",
	})
	expectBotOutputClean(t, env, res, key)
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 6, "outcome": 6, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTBybitOrderDenied: a policy with a notional cap and a price band
// denies a market order whose value only Bybit's public ticker reveals, a
// small limit order priced far from that ticker, and an order on a symbol
// it does not list; each reaches ccxt as Bybit's permission error and none
// reaches the simulator, while a small market sell and a small market buy
// sized in USDT do.
func TestCCXTBybitOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"bybit"}, map[string]policy.Definition{
		"small": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT", PriceBandPct: 5},
	})
	kit := env.Sims["bybit"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	key := env.AddKey("bybit", "main", "read", "trade")
	iss := env.Issue("bybit", "main", "small")
	res := exchangetest.CCXTBot(t, bybitJob(env, iss,
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "market", "sell", 0.01}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "market", "sell", 0.1}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USDT", "limit", "buy", 0.1, 2000}},
		// Small, but priced 20% above the ticker: outside the 5% band.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.001, 60000}},
		// Market buys sized in USDT: their value is the size itself.
		exchangetest.BotStep{Op: "createMarketBuyOrderWithCost", Args: []any{"BTC/USDT", 500}},
		exchangetest.BotStep{Op: "createMarketBuyOrderWithCost", Args: []any{"BTC/USDT", 5000}},
	))
	expectBotSteps(t, res, true, false, false, false, true, false)
	for i, rule := range map[int]string{1: "max_order_notional", 2: "symbol", 3: "price_band", 5: "max_order_notional"} {
		if e := res[i].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule "+rule) {
			t.Errorf("createOrder step %d error = %+v, want PermissionDenied naming rule %s", i, e, rule)
		}
	}
	if tickers := venueCheckForwarded(t, bybitLog(kit), bybitTicker, key.APIKey, []string{iss.ID, string(iss.Secret)},
		[]string{"GET /v5/user/query-api", "GET /v5/account/info", "POST /v5/order/create", "POST /v5/order/create"}); tickers == 0 {
		t.Errorf("keywarden never read the BTCUSDT ticker, want it as the market order's reference price")
	}
	// The simulator fills the 500 USDT buy at its 50000 price: 0.01 BTC.
	if o := kit.Orders(key.APIKey); len(o) != 2 || o[0].Side != "sell" || o[0].Quantity != 0.01 || o[0].Type != "market" ||
		o[1].Side != "buy" || o[1].Quantity != 0.01 || o[1].Type != "market" {
		t.Errorf("simulator orders = %+v, want only the 0.01 market sell and the 500 USDT market buy", o)
	}
	expectBotOutputClean(t, env, res, key)
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 4, "outcome": 4, "denied/deny/max_order_notional": 2, "denied/deny/symbol": 1, "denied/deny/price_band": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
