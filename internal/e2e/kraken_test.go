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

// krakenPair is a ccxt market for a Kraken spot pair, with the ids ccxt's
// own loadMarkets gives it (XXBTZUSD, base XXBT, quote ZUSD).
func krakenPair(id, altname, base, quote, baseID, quoteID string) map[string]any {
	m := spotMarket(id, base, quote)
	m["baseId"], m["quoteId"] = baseID, quoteID
	m["altname"] = altname
	m["info"] = map[string]any{"altname": altname, "wsname": base + "/" + quote, "base": baseID, "quote": quoteID,
		"ordermin": "0.00005", "costmin": "0.5", "lot_decimals": 8, "pair_decimals": 1}
	return m
}

// krakenCurrencies maps Kraken's asset ids to unified codes, as ccxt's
// fetchCurrencies would.
func krakenCurrencies() map[string]any {
	out := map[string]any{}
	for code, id := range map[string]string{"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "USDT": "USDT", "USDC": "USDC"} {
		out[code] = map[string]any{"id": id, "code": code, "precision": 0.00000001, "networks": map[string]any{}, "info": map[string]any{}}
	}
	return out
}

func krakenJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "kraken",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://api.kraken.com": env.URL + "/kraken"},
		Markets: []map[string]any{
			krakenPair("XXBTZUSD", "XBTUSD", "BTC", "USD", "XXBT", "ZUSD"),
			krakenPair("XETHZUSD", "ETHUSD", "ETH", "USD", "XETH", "ZUSD"),
		},
		Currencies: krakenCurrencies(),
		Steps:      steps,
	}
}

// krakenTicker is where keywarden reads Kraken reference prices.
const krakenTicker = "/0/public/Ticker"

// TestCCXTKrakenThroughGateway: an unmodified ccxt kraken bot, pointed at
// keywarden with a base64 client secret, reads its balance, places and
// cancels a limit order, and is denied a withdrawal; the simulator sees only
// requests signed with the exchange key.
func TestCCXTKrakenThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"kraken"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"XXBTZUSD"}, MaxOrderNotional: 100000, NotionalCurrency: "USD"},
	})
	kit := env.Sims["kraken"].Kit
	kit.SetPrice("XXBTZUSD", 50000)
	key := env.AddKey("kraken", "main", "read", "trade", "withdraw")
	iss := env.Issue("kraken", "main", "trader")
	res := exchangetest.CCXTBot(t, krakenJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"USD", 100, "", nil, map[string]any{"key": "cold-wallet"}}},
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
	if len(placed) != 1 || placed[0].Status != "CANCELED" || placed[0].Symbol != "XXBTZUSD" || placed[0].Price != 49000 || placed[0].Quantity != 0.01 {
		t.Errorf("simulator orders = %+v, want one canceled XXBTZUSD 0.01 @ 49000", placed)
	}
	if id := venueResultString(t, res[1], "id"); len(placed) == 1 && id != placed[0].ID {
		t.Errorf("createOrder id = %q, want the simulator's %q", id, placed[0].ID)
	}
	if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want PermissionDenied naming the scope rule", e)
	}
	venueCheckForwarded(t, kit.Log(), krakenTicker, key.APIKey, []string{iss.ID, string(iss.Secret)}, []string{
		"POST /0/private/BalanceEx",
		"POST /0/private/AddOrder",
		"POST /0/private/CancelOrder",
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

// TestCCXTKrakenOrderDenied: a policy with a notional cap and a price band
// denies a market order whose value only Kraken's public ticker reveals, a
// small limit order priced far from that ticker, and an order on a pair it
// does not list; ccxt raises PermissionDenied from Kraken's
// "EGeneral:Permission denied", and none of them reaches the simulator,
// while a small market order does.
func TestCCXTKrakenOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"kraken"}, map[string]policy.Definition{
		"small": {Scopes: []string{"read", "trade"}, Symbols: []string{"XXBTZUSD"}, MaxOrderNotional: 1000, NotionalCurrency: "USD", PriceBandPct: 5},
	})
	kit := env.Sims["kraken"].Kit
	kit.SetPrice("XXBTZUSD", 50000)
	key := env.AddKey("kraken", "main", "read", "trade")
	iss := env.Issue("kraken", "main", "small")
	res := exchangetest.CCXTBot(t, krakenJob(env, iss,
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "market", "sell", 0.01}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "market", "sell", 0.1}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USD", "limit", "buy", 0.1, 2000}},
		// Small, but priced 20% above the ticker: outside the 5% band.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "limit", "buy", 0.001, 60000}},
	))
	venueExpectSteps(t, res, true, false, false, false)
	if e := res[1].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule max_order_notional") {
		t.Errorf("large market order error = %+v, want PermissionDenied naming the notional cap", e)
	}
	if e := res[2].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule symbol") {
		t.Errorf("XETHZUSD order error = %+v, want PermissionDenied naming the symbol rule", e)
	}
	if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule price_band") {
		t.Errorf("off-band order error = %+v, want PermissionDenied naming the price band", e)
	}
	if tickers := venueCheckForwarded(t, kit.Log(), krakenTicker, key.APIKey, []string{iss.ID, string(iss.Secret)},
		[]string{"POST /0/private/AddOrder"}); tickers == 0 {
		t.Errorf("keywarden never read the XXBTZUSD ticker, want it as the market order's reference price")
	}
	if o := kit.Orders(key.APIKey); len(o) != 1 || o[0].Quantity != 0.01 || o[0].Type != "market" {
		t.Errorf("simulator orders = %+v, want only the 0.01 market sell", o)
	}
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 1, "outcome": 1, "denied/deny/max_order_notional": 1, "denied/deny/symbol": 1, "denied/deny/price_band": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
