package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/policy"
)

// krakenFuturesPerp is a ccxt market for a Kraken Futures linear perpetual
// (PF_XBTUSD is BTC/USD:USD, one contract per unit of base), as ccxt's
// fetchMarkets builds it from the instruments list.
func krakenFuturesPerp(id, base, baseID string) map[string]any {
	return map[string]any{
		"id": id, "symbol": base + "/USD:USD", "base": base, "quote": "USD", "settle": "USD",
		"baseId": baseID, "quoteId": "usd", "settleId": "usd",
		"type": "swap", "spot": false, "margin": false, "swap": true, "future": false, "option": false, "index": false,
		"contract": true, "linear": true, "inverse": false, "contractSize": 1, "active": true,
		"precision": map[string]any{"amount": 0.0001, "price": 1},
		"limits":    map[string]any{"amount": map[string]any{}, "price": map[string]any{}, "cost": map[string]any{}, "leverage": map[string]any{}},
		"info":      map[string]any{"symbol": id, "type": "flexible_futures", "tradeable": true, "tickSize": 1, "contractSize": 1},
	}
}

func krakenFuturesJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "krakenfutures",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://futures.kraken.com": env.URL + "/kraken-futures"},
		Markets:     []map[string]any{krakenFuturesPerp("PF_XBTUSD", "BTC", "xbt"), krakenFuturesPerp("PF_ETHUSD", "ETH", "eth")},
		Currencies:  currencies("BTC", "ETH", "USD"),
		Steps:       steps,
	}
}

// krakenFuturesDenied says whether a step failed with Kraken Futures'
// permissionDenied error naming rule. ccxt's krakenfutures has no exception
// class of its own for that code, so it raises its generic ExchangeError
// with the venue's reply as the message.
func krakenFuturesDenied(r exchangetest.BotResult, rule string) bool {
	e := r.Error
	return !r.OK && e != nil && e.Name == "ExchangeError" &&
		strings.Contains(e.Message, `"error":"permissionDenied"`) && strings.Contains(e.Message, rule)
}

// krakenFuturesTicker is where keywarden reads PF_XBTUSD's reference price.
const krakenFuturesTicker = "/derivatives/api/v3/tickers/PF_XBTUSD"

// TestCCXTKrakenFuturesThroughGateway: an unmodified ccxt krakenfutures bot,
// pointed at keywarden, reads its balance, places and cancels a limit order,
// and is denied moving funds out of the futures wallet (ccxt's transfer to
// spot, Kraken Futures' withdrawal endpoint); the simulator sees only
// requests signed with the exchange key.
func TestCCXTKrakenFuturesThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"kraken-futures"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"PF_XBTUSD"}, MaxOrderNotional: 100000, NotionalCurrency: "USD"},
	})
	kit := env.Sims["kraken-futures"].Kit
	kit.SetPrice("PF_XBTUSD", 50000)
	key := env.AddKey("kraken-futures", "main", "read", "trade", "withdraw")
	iss := env.Issue("kraken-futures", "main", "trader")
	res := exchangetest.CCXTBot(t, krakenFuturesJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:USD", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD:USD"}},
		exchangetest.BotStep{Op: "transfer", Args: []any{"USD", 100, "future", "spot"}},
	))
	venueExpectSteps(t, res, true, true, true, false)

	var bal map[string]any
	if err := json.Unmarshal(res[0].Result, &bal); err != nil {
		t.Fatal(err)
	}
	if total, _ := bal["total"].(map[string]any); total["BTC"] != 10.0 || total["USD"] != 100000.0 {
		t.Errorf("fetchBalance total = %v, want BTC 10 and USD 100000", bal["total"])
	}
	placed := kit.Orders(key.APIKey)
	if len(placed) != 1 || placed[0].Status != "CANCELED" || placed[0].Symbol != "PF_XBTUSD" || placed[0].Price != 49000 || placed[0].Quantity != 0.01 {
		t.Errorf("simulator orders = %+v, want one canceled PF_XBTUSD 0.01 @ 49000", placed)
	}
	id := venueResultString(t, res[1], "id")
	if len(placed) == 1 && id != placed[0].ID {
		t.Errorf("createOrder id = %q, want the simulator's %q", id, placed[0].ID)
	}
	if got := venueResultString(t, res[2], "id"); got != id {
		t.Errorf("cancelOrder id = %q, want %q", got, id)
	}
	if !krakenFuturesDenied(res[3], "rule scope") {
		t.Errorf("transfer to spot error = %+v, want Kraken Futures' permissionDenied naming the scope rule", res[3].Error)
	}
	venueCheckForwarded(t, kit.Log(), krakenFuturesTicker, key.APIKey, []string{iss.ID, string(iss.Secret)}, []string{
		"GET /derivatives/api/v3/accounts",
		"POST /derivatives/api/v3/sendorder",
		"POST /derivatives/api/v3/cancelorder",
	})
	for _, r := range res {
		env.AssertNoSecretIn("bot output", string(r.Result), key.Secret, key.APIKey)
		if r.Error != nil {
			env.AssertNoSecretIn("bot error", r.Error.Message, key.Secret, key.APIKey)
		}
	}
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTKrakenFuturesOrderDenied: a policy with a notional cap and a price
// band denies a market order whose value only the contract's public ticker
// reveals, a small limit order priced far from that ticker, and an order on
// a contract it does not list; ccxt raises Kraken Futures' "permissionDenied"
// reply, and none of them reaches the simulator, while a small market order
// does.
func TestCCXTKrakenFuturesOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"kraken-futures"}, map[string]policy.Definition{
		"small": {Scopes: []string{"read", "trade"}, Symbols: []string{"PF_XBTUSD"}, MaxOrderNotional: 1000, NotionalCurrency: "USD", PriceBandPct: 5},
	})
	kit := env.Sims["kraken-futures"].Kit
	kit.SetPrice("PF_XBTUSD", 50000)
	key := env.AddKey("kraken-futures", "main", "read", "trade")
	iss := env.Issue("kraken-futures", "main", "small")
	res := exchangetest.CCXTBot(t, krakenFuturesJob(env, iss,
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:USD", "market", "sell", 0.01}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:USD", "market", "sell", 0.1}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USD:USD", "limit", "buy", 0.1, 2000}},
		// Small, but priced 20% above the ticker: outside the 5% band.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:USD", "limit", "buy", 0.001, 60000}},
	))
	venueExpectSteps(t, res, true, false, false, false)
	if !krakenFuturesDenied(res[1], "rule max_order_notional") {
		t.Errorf("large market order error = %+v, want Kraken Futures' permissionDenied naming the notional cap", res[1].Error)
	}
	if !krakenFuturesDenied(res[2], "rule symbol") {
		t.Errorf("PF_ETHUSD order error = %+v, want Kraken Futures' permissionDenied naming the symbol rule", res[2].Error)
	}
	if !krakenFuturesDenied(res[3], "rule price_band") {
		t.Errorf("off-band order error = %+v, want Kraken Futures' permissionDenied naming the price band", res[3].Error)
	}
	if tickers := venueCheckForwarded(t, kit.Log(), krakenFuturesTicker, key.APIKey, []string{iss.ID, string(iss.Secret)},
		[]string{"POST /derivatives/api/v3/sendorder"}); tickers == 0 {
		t.Errorf("keywarden never read the PF_XBTUSD ticker, want it as the market order's reference price")
	}
	if o := kit.Orders(key.APIKey); len(o) != 1 || o[0].Quantity != 0.01 || o[0].Type != "mkt" {
		t.Errorf("simulator orders = %+v, want only the 0.01 market sell", o)
	}
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 1, "outcome": 1, "denied/deny/max_order_notional": 1, "denied/deny/symbol": 1, "denied/deny/price_band": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
