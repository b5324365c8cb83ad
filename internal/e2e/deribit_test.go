package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// deribitPerpetual is ccxt's market structure for a Deribit inverse
// perpetual (sized in USD, settled in the base coin), as deribit.js's
// fetchMarkets builds it from public/get_instruments.
func deribitPerpetual(base string) map[string]any {
	id := base + "-PERPETUAL"
	return map[string]any{
		"id": id, "symbol": base + "/USD:" + base, "base": base, "quote": "USD", "settle": base,
		"baseId": base, "quoteId": "USD", "settleId": base,
		"type": "swap", "spot": false, "margin": false, "swap": true, "future": false, "option": false,
		"contract": true, "active": true, "linear": false, "inverse": true, "contractSize": 10,
		"taker": 0.0005, "maker": 0,
		"precision": map[string]any{"amount": 10, "price": 0.5},
		"limits": map[string]any{"amount": map[string]any{"min": 10}, "price": map[string]any{"min": 0.5},
			"cost": map[string]any{}, "leverage": map[string]any{}},
		"info": map[string]any{"instrument_name": id, "kind": "future", "settlement_period": "perpetual",
			"base_currency": base, "quote_currency": "USD", "settlement_currency": base,
			"contract_size": 10, "tick_size": 0.5, "min_trade_amount": 10, "is_active": true},
	}
}

// deribitJob is an unmodified ccxt deribit bot holding the keywarden client
// credential iss, with markets for the BTC and ETH perpetuals, whose API
// host is env's gateway.
func deribitJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "deribit",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://www.deribit.com": env.URL + "/deribit"},
		Markets:     []map[string]any{deribitPerpetual("BTC"), deribitPerpetual("ETH")},
		Currencies:  currencies("BTC", "ETH", "USD"),
		Steps:       steps,
	}
}

// deribitSetup starts keywarden with policy pol (named "bot"), a Deribit
// key with every permission and a funded account, and a credential for it.
func deribitSetup(t *testing.T, pol policy.Definition) (*Env, Key, *client.Issued) {
	t.Helper()
	env := NewEnv(t, []string{"deribit"}, map[string]policy.Definition{"bot": pol})
	key := env.AddKey("deribit", "main", "read", "trade", "withdraw")
	s := env.Sims["deribit"]
	s.Kit.SetPrice("BTC-PERPETUAL", 50000)
	s.Kit.SetPrice("ETH-PERPETUAL", 3000)
	acc, ok := s.Kit.Account(key.APIKey)
	if !ok {
		t.Fatalf("simulator has no account for the exchange key")
	}
	acc.Balances = map[string]float64{"BTC": 1.5, "ETH": 20}
	return env, key, env.Issue("deribit", "main", "bot")
}

// deribitCheckForwarded checks that the simulator received exactly want
// requests (method names), each verified with the exchange key, none
// carrying the client credential.
func deribitCheckForwarded(t *testing.T, log []sim.Logged, key Key, iss *client.Issued, want []string) {
	t.Helper()
	var got []string
	for _, l := range log {
		got = append(got, strings.TrimPrefix(l.Path, "/api/v2/"))
		if l.APIKey != key.APIKey || !l.Verified || l.Error != "" {
			t.Errorf("simulator: %s signed by %q verified=%v err=%q, want verified with the exchange key", l.Path, l.APIKey, l.Verified, l.Error)
		}
		if a := l.Header.Get("Authorization"); !strings.HasPrefix(a, "deri-hmac-sha256 id="+key.APIKey+",") {
			t.Errorf("simulator: %s Authorization = %q, want deri-hmac-sha256 with the exchange client id", l.Path, a)
		}
		all := l.Path + "?" + l.RawQuery + string(l.Body)
		for k, vs := range l.Header {
			all += k + ":" + strings.Join(vs, ",")
		}
		if strings.Contains(all, iss.ID) || strings.Contains(all, string(iss.Secret)) {
			t.Errorf("simulator saw the client credential in %s %s", l.Method, l.Path)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests at the simulator (-want +got):\n%s", diff)
	}
}

// deribitCheckBotOutput checks no step result or error shows the exchange
// key or secret.
func deribitCheckBotOutput(env *Env, res []exchangetest.BotResult, key Key) {
	for _, r := range res {
		out := string(r.Result)
		if r.Error != nil {
			out += r.Error.Name + r.Error.Message
		}
		env.AssertNoSecretIn("bot output of "+r.Op, out, key.Secret, key.APIKey)
	}
}

// derivOrder is the part of ccxt's unified order structure the Deribit and
// BitMEX tests read.
type derivOrder struct {
	ID     string  `json:"id"`
	Symbol string  `json:"symbol"`
	Side   string  `json:"side"`
	Type   string  `json:"type"`
	Amount float64 `json:"amount"`
	Price  float64 `json:"price"`
	Status string  `json:"status"`
}

func parseDerivOrder(t *testing.T, r exchangetest.BotResult) derivOrder {
	t.Helper()
	var o derivOrder
	if r.OK {
		if err := json.Unmarshal(r.Result, &o); err != nil {
			t.Fatalf("%s result: %v: %s", r.Op, err, r.Result)
		}
	}
	return o
}

// TestCCXTDeribitThroughGateway: an unmodified ccxt deribit bot, pointed at
// keywarden, reads its balance, places and cancels an order on an inverse
// perpetual, and is denied a withdrawal; the simulator sees only requests
// signed with the exchange key.
func TestCCXTDeribitThroughGateway(t *testing.T) {
	env, key, iss := deribitSetup(t, policy.Definition{
		Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-PERPETUAL"}, MaxOrderNotional: 1000, NotionalCurrency: "USD",
	})
	res := exchangetest.CCXTBot(t, deribitJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "buy", 100, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD:BTC"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"BTC", 0.1, "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"}},
	))
	for i, want := range []bool{true, true, true, false} {
		if res[i].OK != want {
			t.Errorf("step %s ok = %v, want %v: %+v %s", res[i].Op, res[i].OK, want, res[i].Error, res[i].Result)
		}
	}

	var bal struct {
		Free map[string]float64 `json:"free"`
	}
	if err := json.Unmarshal(res[0].Result, &bal); err != nil {
		t.Fatalf("fetchBalance result: %v: %s", err, res[0].Result)
	}
	if diff := cmp.Diff(map[string]float64{"BTC": 1.5, "ETH": 20}, bal.Free); diff != "" {
		t.Errorf("fetchBalance free (-want +got):\n%s", diff)
	}

	placed, canceled := parseDerivOrder(t, res[1]), parseDerivOrder(t, res[2])
	orders := env.Sims["deribit"].Kit.Orders(key.APIKey)
	if len(orders) != 1 {
		t.Fatalf("simulator holds %d orders, want 1", len(orders))
	}
	wantPlaced := derivOrder{ID: orders[0].ID, Symbol: "BTC/USD:BTC", Side: "buy", Type: "limit", Amount: 100, Price: 49000, Status: "open"}
	if diff := cmp.Diff(wantPlaced, placed); diff != "" {
		t.Errorf("createOrder (-want +got):\n%s", diff)
	}
	wantCanceled := wantPlaced
	wantCanceled.Status = "canceled"
	if diff := cmp.Diff(wantCanceled, canceled); diff != "" {
		t.Errorf("cancelOrder (-want +got):\n%s", diff)
	}
	if orders[0].Status != "CANCELED" || orders[0].Symbol != "BTC-PERPETUAL" || orders[0].Quantity != 100 {
		t.Errorf("simulator order = %+v, want BTC-PERPETUAL 100 USD canceled", orders[0])
	}

	if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want PermissionDenied naming rule scope", e)
	}
	log := env.Sims["deribit"].Kit.Log()
	deribitCheckForwarded(t, log, key, iss, []string{"private/get_account_summaries", "private/buy", "private/cancel"})
	if len(log) == 3 && !strings.Contains(log[2].RawQuery, "order_id="+placed.ID) {
		t.Errorf("cancel query = %q, want order_id=%s", log[2].RawQuery, placed.ID)
	}
	deribitCheckBotOutput(env, res, key)

	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTDeribitOrderDenied: orders outside the policy (another
// instrument, or over the USD notional cap of an inverse perpetual) reach
// ccxt as Deribit's 13021 "forbidden", which ccxt raises as
// PermissionDenied, and never reach the simulator; an order inside the cap
// goes through.
func TestCCXTDeribitOrderDenied(t *testing.T) {
	env, key, iss := deribitSetup(t, policy.Definition{
		Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-PERPETUAL"}, MaxOrderNotional: 1000, NotionalCurrency: "USD",
	})
	res := exchangetest.CCXTBot(t, deribitJob(env, iss,
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USD:ETH", "limit", "buy", 100, 2900}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "sell", 5000, 51000}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "sell", 1000, 51000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD:BTC"}},
	))
	for i, rule := range []string{"symbol", "max_order_notional"} {
		e := res[i].Error
		if res[i].OK || e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, `"code":13021`) ||
			!strings.Contains(e.Message, "rule "+rule) {
			t.Errorf("step %d %s = ok %v %+v, want PermissionDenied (13021) naming rule %s", i, res[i].Op, res[i].OK, e, rule)
		}
	}
	for _, i := range []int{2, 3} {
		if !res[i].OK {
			t.Errorf("step %d %s failed: %+v", i, res[i].Op, res[i].Error)
		}
	}
	if placed, canceled := parseDerivOrder(t, res[2]), parseDerivOrder(t, res[3]); placed.ID == "" || canceled.ID != placed.ID {
		t.Errorf("cancelOrder id = %q, want the placed order's id %q", canceled.ID, placed.ID)
	}
	deribitCheckForwarded(t, env.Sims["deribit"].Kit.Log(), key, iss, []string{"private/sell", "private/cancel"})
	deribitCheckBotOutput(env, res, key)

	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/symbol": 1, "denied/deny/max_order_notional": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
