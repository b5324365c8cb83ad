package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// spotMarket is a ccxt market structure for a spot pair, enough for the
// unified order methods to run without fetching market data.
func spotMarket(id, base, quote string) map[string]any {
	return map[string]any{
		"id": id, "symbol": base + "/" + quote, "base": base, "quote": quote, "baseId": base, "quoteId": quote,
		"type": "spot", "spot": true, "margin": false, "swap": false, "future": false, "option": false,
		"contract": false, "active": true, "linear": nil, "inverse": nil, "settle": nil, "settleId": nil,
		"precision": map[string]any{"amount": 0.00001, "price": 0.01},
		"limits":    map[string]any{"amount": map[string]any{"min": 0.00001}, "price": map[string]any{"min": 0.01}, "cost": map[string]any{"min": 1}},
		"info":      map[string]any{},
	}
}

func binanceMarket() map[string]any {
	m := spotMarket("BTCUSDT", "BTC", "USDT")
	m["info"] = map[string]any{"symbol": "BTCUSDT", "orderTypes": []string{"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}, "permissions": []string{"SPOT"}}
	return m
}

func currencies(codes ...string) map[string]any {
	out := map[string]any{}
	for _, c := range codes {
		out[c] = map[string]any{"id": c, "code": c, "precision": 0.00000001, "networks": map[string]any{}, "info": map[string]any{}}
	}
	return out
}

// TestCCXTBinanceThroughGateway: an unmodified ccxt binance bot, pointed at
// keywarden, reads its balance, places and cancels an order, and is denied
// a withdrawal; the simulator sees only the exchange key.
func TestCCXTBinanceThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 100000},
	})
	key := env.AddKey("binance", "main", "read", "trade", "withdraw")
	env.Sims["binance"].Kit.SetPrice("BTCUSDT", 50000)
	iss := env.Issue("binance", "main", "trader")
	job := exchangetest.BotJob{
		Exchange:    "binance",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://api.binance.com": env.URL + "/binance"},
		Markets:     []map[string]any{binanceMarket()},
		Currencies:  currencies("BTC", "USDT"),
		Steps: []exchangetest.BotStep{
			{Op: "fetchBalance"},
			{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
			{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
			{Op: "withdraw", Args: []any{"USDT", 100, "TXYZ1111111111111111111111111111111"}},
		},
	}
	res := exchangetest.CCXTBot(t, job)
	for i, want := range []bool{true, true, true, false} {
		if res[i].OK != want {
			t.Errorf("step %s ok = %v, want %v: %+v %s", res[i].Op, res[i].OK, want, res[i].Error, res[i].Result)
		}
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, "scope") {
		t.Errorf("withdraw error = %+v, want a policy denial naming the scope rule", e)
	}
	var log []sim.Logged
	for _, l := range env.Sims["binance"].Kit.Log() {
		if l.Path != "/api/v3/ticker/price" { // keywarden's own price lookups
			log = append(log, l)
		}
	}
	if len(log) != 3 {
		t.Errorf("simulator received %d signed requests, want 3 (withdraw never forwarded)", len(log))
	}
	for _, l := range log {
		if l.APIKey != key.APIKey || !l.Verified {
			t.Errorf("simulator saw key %q verified=%v, want the exchange key", l.APIKey, l.Verified)
		}
		all := l.RawQuery + string(l.Body)
		for k, vs := range l.Header {
			all += k + strings.Join(vs, ",")
		}
		if strings.Contains(all, iss.ID) || strings.Contains(all, string(iss.Secret)) {
			t.Errorf("simulator saw the client credential: %s %s", l.Method, l.Path)
		}
	}
	for _, r := range res {
		env.AssertNoSecretIn("bot output", string(r.Result), key.Secret, key.APIKey)
	}
	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
