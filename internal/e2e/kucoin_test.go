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

// kucoinMarket is ccxt's BTC/USDT spot market on KuCoin.
func kucoinMarket() map[string]any {
	m := spotMarket("BTC-USDT", "BTC", "USDT")
	m["info"] = map[string]any{"symbol": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT", "enableTrading": true}
	return m
}

// kucoinJob is a ccxt kucoin bot holding iss and pointed at env's gateway.
func kucoinJob(env *Env, iss *client.Issued, opts map[string]any, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange: "kucoin",
		Credentials: map[string]string{
			"apiKey": iss.ID, "secret": string(iss.Secret), "password": string(iss.Passphrase),
		},
		Options:    opts,
		HostMap:    map[string]string{"https://api.kucoin.com": env.URL + "/kucoin"},
		Markets:    []map[string]any{kucoinMarket()},
		Currencies: currencies("BTC", "USDT"),
		Steps:      steps,
	}
}

// TestCCXTKucoinThroughGateway: an unmodified ccxt kucoin bot, pointed at
// keywarden, reads its balance, places and cancels an order, and is denied
// a withdrawal; the simulator sees only the exchange key. ccxt asks KuCoin
// whether the account is unified before its first private call, and uses
// the classic or the high-frequency order endpoints depending on the
// account; both paths run.
func TestCCXTKucoinThroughGateway(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		reqs []string // what the simulator should receive, in order
	}{
		{name: "classic", reqs: []string{
			"GET /api/ua/v1/account/mode", "GET /api/v1/accounts", "POST /api/v1/orders", "DELETE /api/v1/orders/{id}"}},
		// what loadMarkets sets for an account migrated to HF trading.
		{name: "hf", opts: map[string]any{"hf": true}, reqs: []string{
			"GET /api/ua/v1/account/mode", "GET /api/v1/accounts", "POST /api/v1/hf/orders", "DELETE /api/v1/hf/orders/{id}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := NewEnv(t, []string{"kucoin"}, map[string]policy.Definition{
				"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 100000},
			})
			key := env.AddKey("kucoin", "main", "read", "trade", "withdraw")
			kit := env.Sims["kucoin"].Kit
			kit.SetPrice("BTC-USDT", 50000)
			iss := env.Issue("kucoin", "main", "trader")
			res := exchangetest.CCXTBot(t, kucoinJob(env, iss, tt.opts,
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
			if orders[0].Status != "CANCELED" || orders[0].Symbol != "BTC-USDT" || orders[0].Quantity != 0.01 || orders[0].Price != 49000 {
				t.Errorf("simulator order = %+v, want a canceled BTC-USDT buy of 0.01 at 49000", orders[0])
			}
			if e := res[3].Error; e == nil || !strings.Contains(e.Message, "rule scope") {
				t.Errorf("withdraw error = %+v, want a policy denial naming the scope rule", e)
			}
			// The withdrawal is never forwarded.
			if diff := cmp.Diff(tt.reqs, simRequests(env, "kucoin", orders[0].ID)); diff != "" {
				t.Errorf("simulator requests (-want +got):\n%s", diff)
			}
			expectSimSawOnlyExchangeKey(t, env, "kucoin", key, iss)
			expectBotOutputClean(t, env, res, key)
			got := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
			want := map[string]int{"intent/allow/": 4, "outcome": 4, "denied/deny/scope": 1}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("audit decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCCXTKucoinOrderDenied: orders outside the policy reach ccxt as
// KuCoin's permission error and never reach the simulator.
func TestCCXTKucoinOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"kucoin"}, map[string]policy.Definition{
		"eth-only": {Scopes: []string{"read", "trade"}, Symbols: []string{"ETH-USDT"}},
		"small":    {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 100},
	})
	key := env.AddKey("kucoin", "main", "read", "trade")
	kit := env.Sims["kucoin"].Kit
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
			iss := env.Issue("kucoin", "main", tt.policy)
			res := exchangetest.CCXTBot(t, kucoinJob(env, iss, nil,
				exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}},
			))
			expectBotSteps(t, res, false)
			// KuCoin answers a refused permission with code 400007, which
			// ccxt raises as AuthenticationError.
			if e := res[0].Error; e == nil || e.Name != "AuthenticationError" || !strings.Contains(e.Message, "400007") ||
				!strings.Contains(e.Message, "rule "+tt.rule) {
				t.Errorf("createOrder error = %+v, want AuthenticationError with code 400007 naming rule %s", e, tt.rule)
			}
			// ccxt first asks for the account mode, which the policy allows.
			if diff := cmp.Diff([]string{"GET /api/ua/v1/account/mode"}, simRequests(env, "kucoin", "")); diff != "" {
				t.Errorf("simulator requests (-want +got):\n%s", diff)
			}
			if n := len(kit.Orders(key.APIKey)); n != 0 {
				t.Errorf("simulator holds %d orders, want 0", n)
			}
			expectSimSawOnlyExchangeKey(t, env, "kucoin", key, iss)
			expectBotOutputClean(t, env, res, key)
		})
	}
	got := Decisions(env.CheckAudit(key.Secret, key.Passphrase))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/symbol": 1, "denied/deny/max_order_notional": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// expectBotSteps checks which of the bot's steps succeeded.
func expectBotSteps(t *testing.T, res []exchangetest.BotResult, want ...bool) {
	t.Helper()
	if len(res) != len(want) {
		t.Fatalf("bot ran %d steps, want %d", len(res), len(want))
	}
	for i, w := range want {
		if res[i].OK != w {
			t.Errorf("step %d %s ok = %v, want %v: %+v %s", i, res[i].Op, res[i].OK, w, res[i].Error, res[i].Result)
		}
	}
}

// botResultField returns the string field name of a step's result.
func botResultField(t *testing.T, r exchangetest.BotResult, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Result, &m); err != nil {
		t.Fatalf("%s result %s: %v", r.Op, r.Result, err)
	}
	s, _ := m[name].(string)
	return s
}

// expectFreeBalance checks ccxt's parsed free balance of code.
func expectFreeBalance(t *testing.T, r exchangetest.BotResult, code string, want float64) {
	t.Helper()
	var b struct {
		Free map[string]float64 `json:"free"`
	}
	if err := json.Unmarshal(r.Result, &b); err != nil {
		t.Fatalf("%s result %s: %v", r.Op, r.Result, err)
	}
	if got, ok := b.Free[code]; !ok || got != want {
		t.Errorf("fetchBalance free[%s] = %v (present %v), want %v", code, got, ok, want)
	}
}

// expectSimSawOnlyExchangeKey checks that every request venue's simulator
// received was verified with the exchange key and carries no part of the
// client credential.
func expectSimSawOnlyExchangeKey(t *testing.T, env *Env, venue string, key Key, iss *client.Issued) {
	t.Helper()
	for _, l := range env.Sims[venue].Kit.Log() {
		if l.APIKey != key.APIKey || !l.Verified {
			t.Errorf("simulator saw %s %s with key %q verified=%v, want the exchange key", l.Method, l.Path, l.APIKey, l.Verified)
		}
		all := l.Path + "?" + l.RawQuery + string(l.Body)
		for k, vs := range l.Header {
			all += k + ":" + strings.Join(vs, ",")
		}
		for _, s := range []string{iss.ID, string(iss.Secret), string(iss.Passphrase)} {
			if s != "" && strings.Contains(all, s) {
				t.Errorf("simulator saw the client credential in %s %s", l.Method, l.Path)
			}
		}
	}
}

// expectBotOutputClean checks that nothing the bot got back holds the
// exchange key's secrets.
func expectBotOutputClean(t *testing.T, env *Env, res []exchangetest.BotResult, key Key) {
	t.Helper()
	for _, r := range res {
		out := string(r.Result)
		if r.Error != nil {
			out += r.Error.Message
		}
		env.AssertNoSecretIn("bot output of "+r.Op, out, key.Secret, key.Passphrase, key.APIKey, Marker)
	}
}

// simRequests lists "METHOD path" of every request venue's simulator
// received, with orderID written {id}.
func simRequests(env *Env, venue, orderID string) []string {
	var out []string
	for _, l := range env.Sims[venue].Kit.Log() {
		p := l.Path
		if orderID != "" {
			p = strings.ReplaceAll(p, orderID, "{id}")
		}
		out = append(out, l.Method+" "+p)
	}
	return out
}

// TestCCXTKucoinUnifiedThroughGateway: a ccxt kucoin bot on a unified
// trading account places and cancels through /api/ua/v1/unified/order/...,
// which keywarden describes like any order: the policy's symbol and notional
// rules apply to it.
func TestCCXTKucoinUnifiedThroughGateway(t *testing.T) {
	env := NewEnv(t, []string{"kucoin"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 1000},
	})
	key := env.AddKey("kucoin", "main", "read", "trade")
	kit := env.Sims["kucoin"].Kit
	kit.SetPrice("BTC-USDT", 50000)
	iss := env.Issue("kucoin", "main", "trader")
	res := exchangetest.CCXTBot(t, kucoinJob(env, iss, map[string]any{"uta": true},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USDT"}},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDT", "limit", "buy", 1, 49000}},
	))
	expectBotSteps(t, res, true, true, false)
	orders := kit.Orders(key.APIKey)
	if len(orders) != 1 || orders[0].Status != "CANCELED" || orders[0].Quantity != 0.01 || orders[0].Price != 49000 {
		t.Fatalf("simulator orders = %+v, want one canceled buy of 0.01 at 49000", orders)
	}
	if id := botResultField(t, res[0], "id"); id != orders[0].ID {
		t.Errorf("createOrder id = %q, want the simulator's %q", id, orders[0].ID)
	}
	if e := res[2].Error; e == nil || !strings.Contains(e.Message, "max_order_notional") {
		t.Errorf("large order error = %+v, want a denial naming max_order_notional", e)
	}
	want := []string{"POST /api/ua/v1/unified/order/place", "POST /api/ua/v1/unified/order/cancel"}
	if diff := cmp.Diff(want, simRequests(env, "kucoin", orders[0].ID)); diff != "" {
		t.Errorf("simulator requests (-want +got):\n%s", diff)
	}
	expectSimSawOnlyExchangeKey(t, env, "kucoin", key, iss)
	got := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
	if diff := cmp.Diff(map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/max_order_notional": 1}, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
