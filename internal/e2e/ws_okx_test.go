package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/policy"
)

// okxLogin is the login message an OKX client sends for iss.
func okxLogin(iss *client.Issued, at time.Time) map[string]any {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, iss.Secret)
	mac.Write([]byte(ts + "GET/users/self/verify"))
	return map[string]any{"op": "login", "args": []any{map[string]string{
		"apiKey": iss.ID, "passphrase": string(iss.Passphrase), "timestamp": ts, "sign": base64.StdEncoding.EncodeToString(mac.Sum(nil))}}}
}

func wsSend(t *testing.T, c *websocket.Conn, v any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	return wsRead(t, c)
}

// TestWSOKXPrivate: an OKX bot logs its private socket on with its client
// key, secret and passphrase; keywarden logs the upstream socket on with
// the exchange key, then checks every order op like its REST twin; a bad
// passphrase, a replayed login and orders outside the policy are refused
// and never reach the simulator; public tickers pass unchanged.
func TestWSOKXPrivate(t *testing.T) {
	env := NewEnv(t, []string{"okx"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["okx"].Kit
	kit.SetPrice("BTC-USDT", 50000)
	key := env.AddKey("okx", "main", "read", "trade")
	iss := env.Issue("okx", "main", "trader")

	pub := wsDial(t, env, "/okx/ws/v5/public")
	if m := wsSend(t, pub, map[string]any{"op": "subscribe", "args": []any{map[string]string{"channel": "tickers", "instId": "BTC-USDT"}}}); m["event"] != "subscribe" {
		t.Fatalf("public subscribe: %v", m)
	}
	if m := wsRead(t, pub); m["data"] == nil {
		t.Errorf("ticker push %v", m)
	}

	bad := wsDial(t, env, "/okx/ws/v5/private")
	wrong := *iss
	wrong.Passphrase = []byte("not-the-passphrase")
	if m := wsSend(t, bad, okxLogin(&wrong, time.Now())); m["event"] != "error" || m["code"] != "60009" {
		t.Errorf("login with a wrong passphrase: %v, want 60009", m)
	}
	if m := wsSend(t, bad, map[string]any{"id": "x", "op": "order", "args": []any{map[string]string{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.01", "px": "49000"}}}); m["code"] == "0" {
		t.Errorf("order before login: %v, want a refusal", m)
	}

	c := wsDial(t, env, "/okx/ws/v5/private")
	login := okxLogin(iss, time.Now())
	if m := wsSend(t, c, login); m["event"] != "login" || m["code"] != "0" {
		t.Fatalf("login: %v", m)
	}
	order := func(id, sym, sz, px string) map[string]any {
		return map[string]any{"id": id, "op": "order", "args": []any{map[string]string{"instId": sym, "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": sz, "px": px}}}
	}
	m := wsSend(t, c, order("1", "BTC-USDT", "0.01", "49000"))
	orders := kit.Orders(key.APIKey)
	if m["code"] != "0" || len(orders) != 1 || orders[0].Quantity != 0.01 {
		t.Fatalf("order: %v; simulator orders %+v", m, orders)
	}
	for _, s := range []struct {
		name string
		msg  map[string]any
		rule string
	}{
		{"over the cap", order("2", "BTC-USDT", "1", "49000"), "max_order_notional"},
		{"other instrument", order("3", "ETH-USDT", "0.01", "2000"), "symbol"},
	} {
		m := wsSend(t, c, s.msg)
		if m["code"] != "50120" || !strings.Contains(m["msg"].(string), s.rule) {
			t.Errorf("%s: %v, want 50120 naming %s", s.name, m, s.rule)
		}
	}
	m = wsSend(t, c, map[string]any{"id": "4", "op": "cancel-order", "args": []any{map[string]string{"instId": "BTC-USDT", "ordId": orders[0].ID}}})
	if m["code"] != "0" || kit.Orders(key.APIKey)[0].Status != "CANCELED" {
		t.Errorf("cancel-order: %v", m)
	}
	replay := wsDial(t, env, "/okx/ws/v5/private")
	if m := wsSend(t, replay, login); m["event"] != "error" {
		t.Errorf("replayed login: %v, want an error", m)
	}
	var got []string
	for _, l := range kit.Log() {
		if l.Path == "/api/v5/market/ticker" {
			continue
		}
		got = append(got, l.Path)
		if l.APIKey != key.APIKey || !l.Verified {
			t.Errorf("simulator saw %s with key %q verified=%v", l.Path, l.APIKey, l.Verified)
		}
		env.AssertNoSecretIn("forwarded message", string(l.Body), iss.ID, string(iss.Secret), string(iss.Passphrase))
	}
	if d := cmp.Diff([]string{"login", "order", "cancel-order"}, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
	want := map[string]int{"intent/allow/": 3, "outcome": 3, "denied/deny/passphrase": 1, "denied/deny/max_order_notional": 1,
		"denied/deny/symbol": 1, "denied/deny/timestamp": 1}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}
