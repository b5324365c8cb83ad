package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/policy"
)

// okxMarket is ccxt's BTC/USDT (or ETH/USDT) spot market on OKX, as its
// loadMarkets would build it from /api/v5/public/instruments.
func okxMarket(base string) map[string]any {
	id := base + "-USDT"
	m := spotMarket(id, base, "USDT")
	m["margin"] = true
	m["precision"] = map[string]any{"amount": 0.00000001, "price": 0.1}
	m["info"] = map[string]any{"instId": id, "instType": "SPOT", "baseCcy": base, "quoteCcy": "USDT", "state": "live"}
	return m
}

// okxJob is a ccxt okx bot holding iss (passphrase as ccxt's password) and
// pointed at env's gateway. ccxt's OKX urls are "https://{hostname}" with
// hostname www.okx.com, so the template itself is mapped.
func okxJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange: "okx",
		Credentials: map[string]string{
			"apiKey": iss.ID, "secret": string(iss.Secret), "password": string(iss.Passphrase),
		},
		HostMap:    map[string]string{"https://{hostname}": env.URL + "/okx"},
		Markets:    []map[string]any{okxMarket("BTC"), okxMarket("ETH")},
		Currencies: currencies("BTC", "ETH", "USDT"),
		Steps:      steps,
	}
}

// okxTicker is where keywarden reads OKX reference prices.
const okxTicker = "/api/v5/market/ticker"

// TestCCXTOKXThroughGateway: an unmodified ccxt okx bot, pointed at
// keywarden with a client key, secret and passphrase, reads its balance,
// places and cancels a limit order, and is denied a withdrawal; the
// simulator sees only requests signed with the exchange key.
func TestCCXTOKXThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"okx"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 100000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["okx"].Kit
	kit.SetPrice("BTC-USDT", 50000)
	key := env.AddKey("okx", "main", "read", "trade", "withdraw")
	iss := env.Issue("okx", "main", "trader")
	res := exchangetest.CCXTBot(t, okxJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"USDT", 100, "TXYZ1111111111111111111111111111111",
			map[string]any{"chain": "USDT-TRC20", "fee": "1"}}},
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
	if o := orders[0]; o.Status != "CANCELED" || o.Symbol != "BTC-USDT" || o.Quantity != 0.01 || o.Price != 49000 {
		t.Errorf("simulator order = %+v, want a canceled BTC-USDT buy of 0.01 at 49000", o)
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, `"code":"50120"`) || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want OKX's 50120 naming the scope rule", e)
	}
	// The withdrawal is never forwarded.
	venueCheckForwarded(t, kit.Log(), okxTicker, key.APIKey, []string{iss.ID, string(iss.Secret), string(iss.Passphrase)}, []string{
		"GET /api/v5/account/balance",
		"POST /api/v5/trade/batch-orders", // ccxt places single orders through the batch endpoint
		"POST /api/v5/trade/cancel-order",
	})
	expectBotOutputClean(t, env, res, key)
	got := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTOKXOrderDenied: a policy with a notional cap and a price band
// denies a market order whose value only OKX's public ticker reveals, a
// small limit order priced far from that ticker, and an order on an
// instrument it does not list; each reaches ccxt as OKX's permission error
// and none reaches the simulator, while a small market sell and a small
// market buy sized in USDT do.
func TestCCXTOKXOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"okx"}, map[string]policy.Definition{
		"small": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT", PriceBandPct: 5},
	})
	kit := env.Sims["okx"].Kit
	kit.SetPrice("BTC-USDT", 50000)
	key := env.AddKey("okx", "main", "read", "trade")
	iss := env.Issue("okx", "main", "small")
	res := exchangetest.CCXTBot(t, okxJob(env, iss,
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
	// Denials answer OKX's 50120 "API key doesn't have permission", which
	// ccxt 4.5.84 does not map and raises as ExchangeError with the body.
	for i, rule := range map[int]string{1: "max_order_notional", 2: "symbol", 3: "price_band", 5: "max_order_notional"} {
		if e := res[i].Error; e == nil || e.Name != "ExchangeError" || !strings.Contains(e.Message, `"code":"50120"`) ||
			!strings.Contains(e.Message, "rule "+rule) {
			t.Errorf("createOrder step %d error = %+v, want ExchangeError with code 50120 naming rule %s", i, e, rule)
		}
	}
	if tickers := venueCheckForwarded(t, kit.Log(), okxTicker, key.APIKey, []string{iss.ID, string(iss.Secret), string(iss.Passphrase)},
		[]string{"POST /api/v5/trade/batch-orders", "POST /api/v5/trade/batch-orders"}); tickers == 0 {
		t.Errorf("keywarden never read the BTC-USDT ticker, want it as the market order's reference price")
	}
	// The simulator fills the 500 USDT buy at its 50000 price: 0.01 BTC.
	if o := kit.Orders(key.APIKey); len(o) != 2 || o[0].Side != "sell" || o[0].Quantity != 0.01 || o[0].Type != "market" ||
		o[1].Side != "buy" || o[1].Quantity != 0.01 || o[1].Type != "market" {
		t.Errorf("simulator orders = %+v, want only the 0.01 market sell and the 500 USDT market buy", o)
	}
	expectBotOutputClean(t, env, res, key)
	got := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/max_order_notional": 2, "denied/deny/symbol": 1, "denied/deny/price_band": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
