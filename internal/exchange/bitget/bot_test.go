package bitget

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// bitgetMarket is ccxt's BTC/USDT spot market on Bitget.
func bitgetMarket() map[string]any {
	return map[string]any{
		"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
		"type": "spot", "spot": true, "margin": true, "swap": false, "future": false, "option": false,
		"contract": false, "active": true, "linear": nil, "inverse": nil, "settle": nil, "settleId": nil,
		"precision": map[string]any{"amount": 0.00000001, "price": 0.1},
		"limits":    map[string]any{"amount": map[string]any{"min": 0.00001}, "price": map[string]any{"min": 0.1}, "cost": map[string]any{"min": 1}},
		"info":      map[string]any{"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "online"},
	}
}

// TestCCXTBot runs an unmodified ccxt bitget client against the simulator: the
// simulator's answers must be what ccxt parses, and its checks what ccxt
// passes.
func TestCCXTBot(t *testing.T) {
	kit := sim.NewKit()
	kit.SetPrice("BTCUSDT", 50000)
	key := testKey()
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true, "trade": true}})
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	res := exchangetest.CCXTBot(t, exchangetest.BotJob{
		Exchange:    "bitget",
		Credentials: map[string]string{"apiKey": key.APIKey, "secret": string(key.Secret), "password": string(key.Passphrase)},
		HostMap:     map[string]string{"https://api.{hostname}": srv.URL},
		Markets:     []map[string]any{bitgetMarket()},
		Currencies: map[string]any{
			"BTC":  map[string]any{"id": "BTC", "code": "BTC", "precision": 0.00000001, "networks": map[string]any{}, "info": map[string]any{}},
			"USDT": map[string]any{"id": "USDT", "code": "USDT", "precision": 0.000001, "networks": map[string]any{}, "info": map[string]any{}},
		},
		Steps: []exchangetest.BotStep{
			{Op: "fetchTime"},
			{Op: "fetchTicker", Args: []any{"BTC/USDT"}},
			{Op: "fetchBalance"},
			{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.1, 40000}, Save: "id", SaveField: "id"},
			{Op: "fetchOpenOrders", Args: []any{"BTC/USDT"}},
			{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
			{Op: "withdraw", Args: []any{"USDT", 10, "TXabc", nil, map[string]any{"network": "TRC20"}}},
		},
	})
	for i, r := range res[:len(res)-1] {
		if !r.OK {
			t.Errorf("ccxt %s (step %d) failed: %+v", r.Op, i, r.Error)
		}
	}
	var order struct {
		ID     string  `json:"id"`
		Price  float64 `json:"price"`
		Amount float64 `json:"amount"`
		Status string  `json:"status"`
	}
	var open []json.RawMessage
	if err := json.Unmarshal(res[4].Result, &open); err != nil || len(open) != 1 || json.Unmarshal(open[0], &order) != nil {
		t.Fatalf("fetchOpenOrders = %s, want one order", res[4].Result)
	}
	if order.Price != 40000 || order.Amount != 0.1 || order.Status != "open" {
		t.Errorf("fetchOpenOrders()[0] = %+v, want price 40000 amount 0.1 open", order)
	}
	// The key has no withdraw permission: ccxt sees Bitget's refusal.
	if w := res[len(res)-1]; w.OK || w.Error == nil || !strings.Contains(w.Error.Message, "40014") {
		t.Errorf("ccxt withdraw = %+v, want Bitget error 40014", w.Error)
	}
	// A key with withdraw permission gets its withdrawal through.
	wkey := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bot-withdrawer", Secret: exchange.Secret("bw-secret"), Passphrase: exchange.Secret("bw-pass")}
	kit.AddAccount(sim.Account{Key: *wkey, Permissions: map[string]bool{"read": true, "withdraw": true}})
	wres := exchangetest.CCXTBot(t, exchangetest.BotJob{
		Exchange:    "bitget",
		Credentials: map[string]string{"apiKey": wkey.APIKey, "secret": string(wkey.Secret), "password": string(wkey.Passphrase)},
		HostMap:     map[string]string{"https://api.{hostname}": srv.URL},
		Markets:     []map[string]any{bitgetMarket()},
		Steps:       []exchangetest.BotStep{{Op: "withdraw", Args: []any{"USDT", 10, "TXabc", nil, map[string]any{"network": "TRC20"}}}},
	})
	if !wres[0].OK || !strings.Contains(string(wres[0].Result), `"id"`) {
		t.Errorf("ccxt withdraw with permission = %s %+v, want an id", wres[0].Result, wres[0].Error)
	}
	if got, _ := kit.Account(wkey.APIKey); got.Balances["USDT"] != 100000-10 {
		t.Errorf("USDT balance after withdrawal = %v, want %v", got.Balances["USDT"], 100000-10)
	}
	// Everything ccxt sent is described without error and below admin scope,
	// so a bot going through keywarden is not refused for ordinary calls.
	for _, l := range kit.Log() {
		c, err := describer{}.Describe(&exchange.Request{Method: l.Method, Path: l.Path, RawQuery: l.RawQuery, Header: l.Header, Body: l.Body})
		if err != nil || c.Scope == exchange.ScopeAccountAdmin {
			t.Errorf("Describe(ccxt's %s %s) = %s, %v", l.Method, l.Path, c.Scope, err)
		}
	}
	for _, l := range kit.Log() {
		if l.Error != "" && l.Path != "/api/v2/spot/wallet/withdrawal" {
			t.Errorf("simulator rejected ccxt's %s %s: %s", l.Method, l.Path, l.Error)
		}
	}
}
