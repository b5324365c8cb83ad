package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/policy"
)

func bybitAuth(iss *client.Issued, expires time.Time) map[string]any {
	exp := expires.UnixMilli()
	return map[string]any{"req_id": "auth", "op": "auth", "args": []any{iss.ID, exp, bybit.WSSignature(iss.Secret, exp)}}
}

// TestWSBybitTrade: a Bybit bot authenticates its trade socket with its
// client key; keywarden authenticates the upstream socket with the exchange
// key and checks order.create like POST /v5/order/create; an expired or
// forged auth and orders outside the policy are refused and never reach
// the simulator; public tickers pass unchanged.
func TestWSBybitTrade(t *testing.T) {
	env := NewEnv(t, []string{"bybit"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["bybit"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	key := env.AddKey("bybit", "main", "read", "trade")
	iss := env.Issue("bybit", "main", "trader")

	pub := wsDial(t, env, "/bybit/v5/public/spot")
	if m := wsSend(t, pub, map[string]any{"op": "subscribe", "args": []string{"tickers.BTCUSDT"}}); m["success"] != true {
		t.Fatalf("public subscribe: %v", m)
	}
	if m := wsRead(t, pub); m["topic"] != "tickers.BTCUSDT" {
		t.Errorf("ticker push %v", m)
	}

	bad := wsDial(t, env, "/bybit/v5/trade")
	if m := wsSend(t, bad, bybitAuth(iss, time.Now().Add(-time.Second))); m["success"] != false {
		t.Errorf("expired auth: %v, want a refusal", m)
	}
	forged := bybitAuth(iss, time.Now().Add(5*time.Second))
	forged["args"].([]any)[2] = strings.Repeat("0", 64)
	if m := wsSend(t, bad, forged); m["success"] != false {
		t.Errorf("forged auth: %v, want a refusal", m)
	}

	c := wsDial(t, env, "/bybit/v5/trade")
	if m := wsSend(t, c, bybitAuth(iss, time.Now().Add(5*time.Second))); m["success"] != true {
		t.Fatalf("auth: %v", m)
	}
	order := func(id, sym, qty string) map[string]any {
		return map[string]any{"reqId": id, "header": map[string]string{"X-BAPI-TIMESTAMP": "1", "X-BAPI-RECV-WINDOW": "8000"}, "op": "order.create",
			"args": []any{map[string]string{"category": "spot", "symbol": sym, "side": "Buy", "orderType": "Limit", "qty": qty, "price": "49000"}}}
	}
	m := wsSend(t, c, order("1", "BTCUSDT", "0.01"))
	orders := kit.Orders(key.APIKey)
	if m["retCode"] != float64(0) || len(orders) != 1 || orders[0].Quantity != 0.01 {
		t.Fatalf("order.create: %v; simulator orders %+v", m, orders)
	}
	for _, s := range []struct {
		name string
		msg  map[string]any
		rule string
	}{
		{"over the cap", order("2", "BTCUSDT", "1"), "max_order_notional"},
		{"other symbol", order("3", "ETHUSDT", "0.01"), "symbol"},
	} {
		m := wsSend(t, c, s.msg)
		if m["retCode"] != float64(10005) || !strings.Contains(m["retMsg"].(string), s.rule) {
			t.Errorf("%s: %v, want 10005 naming %s", s.name, m, s.rule)
		}
	}
	m = wsSend(t, c, map[string]any{"reqId": "4", "op": "order.cancel", "args": []any{map[string]string{"category": "spot", "symbol": "BTCUSDT", "orderId": orders[0].ID}}})
	if m["retCode"] != float64(0) || kit.Orders(key.APIKey)[0].Status != "CANCELED" {
		t.Errorf("order.cancel: %v", m)
	}
	var got []string
	for _, l := range kit.Log() {
		if strings.HasPrefix(l.Path, "/v5/market/") {
			continue
		}
		got = append(got, l.Path)
		if l.APIKey != key.APIKey || !l.Verified {
			t.Errorf("simulator saw %s with key %q verified=%v", l.Path, l.APIKey, l.Verified)
		}
		env.AssertNoSecretIn("forwarded message", string(l.Body), iss.ID, string(iss.Secret))
	}
	if d := cmp.Diff([]string{"auth", "order.create", "order.cancel"}, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/timestamp": 1, "denied/deny/auth": 1,
		"denied/deny/max_order_notional": 1, "denied/deny/symbol": 1}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}
