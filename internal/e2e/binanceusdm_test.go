package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/policy"
)

func binanceUSDMMarket() map[string]any {
	m := spotMarket("BTCUSDT", "BTC", "USDT")
	m["symbol"] = "BTC/USDT:USDT"
	m["type"], m["spot"], m["swap"], m["contract"] = "swap", false, true, true
	m["linear"], m["inverse"], m["settle"], m["settleId"], m["contractSize"] = true, false, "USDT", "USDT", 1
	m["info"] = map[string]any{"symbol": "BTCUSDT", "orderTypes": []string{"LIMIT", "MARKET", "STOP", "STOP_MARKET"}}
	return m
}

// TestCCXTBinanceUSDMThroughGateway: a ccxt binanceusdm bot trades futures
// through keywarden's binance-usdm venue with a key shared with spot.
func TestCCXTBinanceUSDMThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"binance", "binance-usdm"}, map[string]policy.Definition{
		"futures": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 100000},
	})
	key := env.AddKey("binance-usdm", "main", "read", "trade")
	env.Sims["binance-usdm"].Kit.SetPrice("BTCUSDT", 50000)
	iss := env.Issue("binance-usdm", "main", "futures")
	job := exchangetest.BotJob{
		Exchange:    "binanceusdm",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://fapi.binance.com": env.URL + "/binance-usdm"},
		Markets:     []map[string]any{binanceUSDMMarket()},
		Currencies:  currencies("BTC", "USDT"),
		Steps: []exchangetest.BotStep{
			{Op: "fetchBalance"},
			{Op: "createOrder", Args: []any{"BTC/USDT:USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
			{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT:USDT"}},
			{Op: "createOrder", Args: []any{"BTC/USDT:USDT", "limit", "buy", 5, 49000}},
		},
	}
	res := exchangetest.CCXTBot(t, job)
	for i, want := range []bool{true, true, true, false} {
		if res[i].OK != want {
			t.Errorf("step %d %s ok = %v, want %v: %+v %s", i, res[i].Op, res[i].OK, want, res[i].Error, res[i].Result)
		}
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, "max_order_notional") {
		t.Errorf("oversized order error = %+v, want a denial naming max_order_notional", e)
	}
	signed := 0
	for _, l := range env.Sims["binance-usdm"].Kit.Log() {
		if l.Path == "/fapi/v1/ticker/price" {
			continue
		}
		signed++
		if l.APIKey != key.APIKey || !l.Verified || !strings.HasPrefix(l.Path, "/fapi/") {
			t.Errorf("simulator saw %s %s key %q verified=%v, want a /fapi call signed with the exchange key", l.Method, l.Path, l.APIKey, l.Verified)
		}
	}
	if signed != 3 {
		t.Errorf("simulator received %d signed requests, want 3", signed)
	}
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/max_order_notional": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
