package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// bitmexModule is the npm alias of the last ccxt release that ships bitmex
// (4.5.82); ccxt dropped BitMEX from its npm package in 4.5.84 (spec
// exchanges.md §15.12).
const bitmexModule = "ccxt-bitmex"

// bitmexBot runs job through exchangetest's bot.js with ccxt taken from
// bitmexModule. It skips, or fails under KEYWARDEN_REQUIRE_CCXT=1, when that
// module is not installed, as exchangetest.CCXTBot does for ccxt.
func bitmexBot(t *testing.T, job exchangetest.BotJob) []exchangetest.BotResult {
	t.Helper()
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", bitmexModule)); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("%s is not installed in %s (run: npm ci --prefix %s)", bitmexModule, dir, dir)
		}
		t.Skipf("%s is not installed in %s; the project's test command installs it", bitmexModule, dir)
	}
	in, err := json.Marshal(struct {
		exchangetest.BotJob
		Module string `json:"module"`
	}{job, bitmexModule})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "bot.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt bot.js: %v: %s", err, stderr.String())
	}
	var res []exchangetest.BotResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ccxt bot.js output: %v: %s", err, out)
	}
	if len(res) != len(job.Steps) {
		t.Fatalf("ccxt bot ran %d of %d steps", len(res), len(job.Steps))
	}
	return res
}

// bitmexSwap is ccxt's market structure for a BitMEX perpetual settled in
// XBt, as bitmex.js's fetchMarkets builds it from /instrument/active.
// XBTUSD is inverse: one contract is one USD.
func bitmexSwap(id, base, baseID string, inverse bool, lot float64) map[string]any {
	return map[string]any{
		"id": id, "symbol": base + "/USD:BTC", "base": base, "quote": "USD", "settle": "BTC",
		"baseId": baseID, "quoteId": "USD", "settleId": "XBt",
		"type": "swap", "spot": false, "margin": false, "swap": true, "future": false, "option": false,
		"contract": true, "active": true, "linear": false, "inverse": inverse, "quanto": !inverse, "contractSize": 1,
		"taker": 0.0005, "maker": -0.0001,
		"precision": map[string]any{"amount": lot, "price": 0.5},
		"limits": map[string]any{"amount": map[string]any{"min": lot}, "price": map[string]any{"min": 0.5},
			"cost": map[string]any{}, "leverage": map[string]any{}},
		"info": map[string]any{"symbol": id, "rootSymbol": baseID, "state": "Open", "typ": "FFWCSX",
			"quoteCurrency": "USD", "settlCurrency": "XBt", "lotSize": lot, "tickSize": 0.5, "isInverse": inverse},
	}
}

// bitmexCurrencies are ccxt's currency structures for BitMEX's margin
// currencies; precision is the size of one unit of the BitMEX id (one
// satoshi for XBt), which ccxt uses to convert balances and withdrawals.
func bitmexCurrencies() map[string]any {
	cur := func(id, code string, precision float64, network, networkID string) map[string]any {
		return map[string]any{"id": id, "code": code, "precision": precision, "active": true, "info": map[string]any{},
			"networks": map[string]any{network: map[string]any{"id": networkID, "network": network, "info": map[string]any{}}}}
	}
	return map[string]any{
		"BTC":  cur("XBt", "BTC", 1e-8, "BTC", "btc"),
		"USDT": cur("USDt", "USDT", 1e-6, "ERC20", "eth"),
		"ETH":  cur("Gwei", "ETH", 1e-9, "ERC20", "eth"),
	}
}

// bitmexJob is an unmodified ccxt bitmex bot holding the keywarden client
// credential iss, whose API host is env's gateway.
func bitmexJob(env *Env, iss *client.Issued, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "bitmex",
		Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
		HostMap:     map[string]string{"https://www.bitmex.com": env.URL + "/bitmex"},
		Markets:     []map[string]any{bitmexSwap("XBTUSD", "BTC", "XBT", true, 100), bitmexSwap("ETHUSD", "ETH", "ETH", false, 1)},
		Currencies:  bitmexCurrencies(),
		Steps:       steps,
	}
}

// bitmexSetup starts keywarden with policy pol (named "bot"), a BitMEX key
// with every permission and a funded account, and a credential for it.
func bitmexSetup(t *testing.T, pol policy.Definition) (*Env, Key, *client.Issued) {
	t.Helper()
	env := NewEnv(t, []string{"bitmex"}, map[string]policy.Definition{"bot": pol})
	key := env.AddKey("bitmex", "main", "read", "trade", "withdraw")
	s := env.Sims["bitmex"]
	s.Kit.SetPrice("XBTUSD", 50000)
	s.Kit.SetPrice("ETHUSD", 3000)
	acc, ok := s.Kit.Account(key.APIKey)
	if !ok {
		t.Fatalf("simulator has no account for the exchange key")
	}
	acc.Balances = map[string]float64{"BTC": 1.5, "USDT": 250}
	return env, key, env.Issue("bitmex", "main", "bot")
}

// bitmexCheckForwarded checks that the simulator received exactly want
// requests ("METHOD /path"), each verified with the exchange key, none
// carrying the client credential.
func bitmexCheckForwarded(t *testing.T, log []sim.Logged, key Key, iss *client.Issued, want []string) {
	t.Helper()
	var got []string
	for _, l := range log {
		got = append(got, l.Method+" "+l.Path)
		if l.APIKey != key.APIKey || !l.Verified || l.Error != "" {
			t.Errorf("simulator: %s signed by %q verified=%v err=%q, want verified with the exchange key", l.Path, l.APIKey, l.Verified, l.Error)
		}
		if k := l.Header.Get("Api-Key"); k != key.APIKey {
			t.Errorf("simulator: %s api-key = %q, want the exchange key", l.Path, k)
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

// bitmexCheckBotOutput checks no step result or error shows the exchange
// key or secret.
func bitmexCheckBotOutput(env *Env, res []exchangetest.BotResult, key Key) {
	for _, r := range res {
		out := string(r.Result)
		if r.Error != nil {
			out += r.Error.Name + r.Error.Message
		}
		env.AssertNoSecretIn("bot output of "+r.Op, out, key.Secret, key.APIKey)
	}
}

// TestCCXTBitmexThroughGateway: an unmodified ccxt bitmex bot (ccxt 4.5.82),
// pointed at keywarden, reads its balance, places and cancels an order on
// XBTUSD, and is denied a withdrawal; the simulator sees only requests
// signed with the exchange key.
func TestCCXTBitmexThroughGateway(t *testing.T) {
	env, key, iss := bitmexSetup(t, policy.Definition{
		Scopes: []string{"read", "trade"}, Symbols: []string{"XBTUSD"}, MaxOrderNotional: 1000, NotionalCurrency: "USD",
	})
	res := bitmexBot(t, bitmexJob(env, iss,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "buy", 100, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD:BTC"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"BTC", 0.1, "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", nil, map[string]any{"network": "BTC"}}},
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
	if diff := cmp.Diff(map[string]float64{"BTC": 1.5, "USDT": 250, "ETH": 0}, bal.Free); diff != "" {
		t.Errorf("fetchBalance free (-want +got):\n%s", diff)
	}

	placed, canceled := parseDerivOrder(t, res[1]), parseDerivOrder(t, res[2])
	orders := env.Sims["bitmex"].Kit.Orders(key.APIKey)
	if len(orders) != 1 {
		t.Fatalf("simulator holds %d orders, want 1", len(orders))
	}
	wantPlaced := derivOrder{ID: orders[0].ID, Symbol: "BTC/USD:BTC", Side: "buy", Type: "limit", Amount: 100, Price: 49000, Status: "open"}
	if diff := cmp.Diff(wantPlaced, placed); diff != "" {
		t.Errorf("createOrder (-want +got):\n%s", diff)
	}
	// For inverse contracts ccxt reads orderQty as the cost in USD and
	// derives amount from filled+remaining, which a canceled order zeroes.
	wantCanceled := wantPlaced
	wantCanceled.Status, wantCanceled.Amount = "canceled", 0
	if diff := cmp.Diff(wantCanceled, canceled); diff != "" {
		t.Errorf("cancelOrder (-want +got):\n%s", diff)
	}
	if orders[0].Status != "CANCELED" || orders[0].Symbol != "XBTUSD" || orders[0].Quantity != 100 {
		t.Errorf("simulator order = %+v, want XBTUSD 100 contracts canceled", orders[0])
	}

	if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, `"message":"Access Denied"`) ||
		!strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want PermissionDenied naming rule scope", e)
	}
	log := env.Sims["bitmex"].Kit.Log()
	bitmexCheckForwarded(t, log, key, iss, []string{"GET /api/v1/user/margin", "POST /api/v1/order", "DELETE /api/v1/order"})
	if len(log) == 3 && !strings.Contains(string(log[2].Body), `"orderID":"`+placed.ID+`"`) {
		t.Errorf("cancel body = %s, want orderID %s", log[2].Body, placed.ID)
	}
	bitmexCheckBotOutput(env, res, key)

	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/scope": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestCCXTBitmexOrderDenied: orders outside the policy (another symbol, or
// over the USD notional cap of XBTUSD) reach ccxt as BitMEX's 403 "Access
// Denied", which ccxt raises as PermissionDenied, and never reach the
// simulator; an order inside the cap goes through.
func TestCCXTBitmexOrderDenied(t *testing.T) {
	env, key, iss := bitmexSetup(t, policy.Definition{
		Scopes: []string{"read", "trade"}, Symbols: []string{"XBTUSD"}, MaxOrderNotional: 1000, NotionalCurrency: "USD",
	})
	res := bitmexBot(t, bitmexJob(env, iss,
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USD:BTC", "limit", "buy", 1, 2900}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "sell", 5000, 51000}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD:BTC", "limit", "sell", 1000, 51000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD:BTC"}},
	))
	for i, rule := range []string{"symbol", "max_order_notional"} {
		e := res[i].Error
		if res[i].OK || e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, `"message":"Access Denied"`) ||
			!strings.Contains(e.Message, "rule "+rule) {
			t.Errorf("step %d %s = ok %v %+v, want PermissionDenied (Access Denied) naming rule %s", i, res[i].Op, res[i].OK, e, rule)
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
	bitmexCheckForwarded(t, env.Sims["bitmex"].Kit.Log(), key, iss, []string{"POST /api/v1/order", "DELETE /api/v1/order"})
	bitmexCheckBotOutput(env, res, key)

	got := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/symbol": 1, "denied/deny/max_order_notional": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
