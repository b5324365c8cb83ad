package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// batchPolicy caps one order at 1000 USDT of BTC (0.02 at 49000).
var batchPolicy = map[string]policy.Definition{
	"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USDT", "BTCUSDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
}

// openSizes returns the size of each of apiKey's orders by id, and how
// many there are in each status.
func openSizes(kit *sim.Kit, apiKey string) (map[string]float64, map[string]int) {
	sizes, status := map[string]float64{}, map[string]int{}
	for _, o := range kit.Orders(apiKey) {
		sizes[o.ID] = o.Quantity
		status[o.Status]++
	}
	return sizes, status
}

// wsOps lists the private ops the simulator received, in order.
func wsOps(kit *sim.Kit) []string {
	var out []string
	for _, l := range kit.Log() {
		if l.Method == "WS" {
			out = append(out, l.Path)
		}
	}
	return out
}

// TestWSOKXBatchAndAmend: OKX batch-orders, amend-order,
// batch-amend-orders and batch-cancel-orders through the gateway. As for
// their REST twins, a batch is checked as one call: one leg over the cap
// refuses the whole batch (50120) and nothing of it reaches the venue; an
// amend is checked at its new size and price, so one that raises the order
// over the cap is refused; allowed ops reach the simulator exactly once
// and change its book; every op leaves an audit record.
func TestWSOKXBatchAndAmend(t *testing.T) {
	env := NewEnv(t, []string{"okx"}, batchPolicy)
	kit := env.Sims["okx"].Kit
	kit.SetPrice("BTC-USDT", 49000)
	key := env.AddKey("okx", "main", "read", "trade")
	iss := env.Issue("okx", "main", "trader")
	c := wsDial(t, env, "/okx/ws/v5/private")
	if m := wsSend(t, c, okxLogin(iss, time.Now())); m["event"] != "login" {
		t.Fatalf("login: %v", m)
	}
	leg := func(sz string) map[string]string {
		return map[string]string{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": sz, "px": "49000"}
	}
	op := func(id, op string, args ...any) map[string]any {
		return map[string]any{"id": id, "op": op, "args": args}
	}
	amend := func(ordID, sz, px string) map[string]string {
		a := map[string]string{"instId": "BTC-USDT", "ordId": ordID, "newSz": sz}
		if px != "" {
			a["newPx"] = px
		}
		return a
	}
	refused := func(name string, m map[string]any) {
		t.Helper()
		if m["code"] != "50120" || !strings.Contains(m["msg"].(string), "max_order_notional") {
			t.Errorf("%s: %v, want 50120 naming max_order_notional", name, m)
		}
	}

	refused("batch with one leg over the cap", wsSend(t, c, op("1", "batch-orders", leg("0.01"), leg("0.05"))))
	if n := len(kit.Orders(key.APIKey)); n != 0 {
		t.Fatalf("a refused batch booked %d orders", n)
	}
	if m := wsSend(t, c, op("2", "batch-orders", leg("0.01"), leg("0.015"))); m["code"] != "0" || len(m["data"].([]any)) != 2 {
		t.Fatalf("batch within the cap: %v", m)
	}
	orders := kit.Orders(key.APIKey)
	if len(orders) != 2 {
		t.Fatalf("simulator holds %d orders, want 2", len(orders))
	}
	a, b := orders[0].ID, orders[1].ID

	refused("amend raising size and price over the cap", wsSend(t, c, op("3", "amend-order", amend(a, "0.03", "49000"))))
	refused("amend raising the size alone over the cap", wsSend(t, c, op("4", "amend-order", amend(a, "0.03", ""))))
	if m := wsSend(t, c, op("5", "amend-order", amend(a, "0.018", "48000"))); m["code"] != "0" {
		t.Errorf("amend within the cap: %v", m)
	}
	refused("batch amend with one leg over the cap", wsSend(t, c, op("6", "batch-amend-orders", amend(a, "0.005", "49000"), amend(b, "0.5", "49000"))))
	if m := wsSend(t, c, op("7", "batch-amend-orders", amend(a, "0.005", "49000"), amend(b, "0.004", "49000"))); m["code"] != "0" {
		t.Errorf("batch amend within the cap: %v", m)
	}
	sizes, _ := openSizes(kit, key.APIKey)
	if d := cmp.Diff(map[string]float64{a: 0.005, b: 0.004}, sizes); d != "" {
		t.Errorf("order sizes after the amends (-want +got):\n%s", d)
	}
	cancel := func(id string) map[string]string { return map[string]string{"instId": "BTC-USDT", "ordId": id} }
	if m := wsSend(t, c, op("8", "batch-cancel-orders", cancel(a), cancel(b))); m["code"] != "0" {
		t.Errorf("batch cancel: %v", m)
	}
	if _, st := openSizes(kit, key.APIKey); st["CANCELED"] != 2 {
		t.Errorf("orders by status after the batch cancel: %v", st)
	}

	if d := cmp.Diff([]string{"login", "batch-orders", "amend-order", "batch-amend-orders", "batch-cancel-orders"}, wsOps(kit)); d != "" {
		t.Errorf("ops at the simulator (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(key.Secret, key.Passphrase, string(iss.Secret), string(iss.Passphrase)))
	want := map[string]int{"intent/allow/": 5, "outcome": 5, "denied/deny/max_order_notional": 4}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}

// TestWSBybitBatchAndAmend: Bybit order.amend and the -batch forms through
// the gateway, checked as their REST twins like the OKX ops above.
func TestWSBybitBatchAndAmend(t *testing.T) {
	env := NewEnv(t, []string{"bybit"}, batchPolicy)
	kit := env.Sims["bybit"].Kit
	kit.SetPrice("BTCUSDT", 49000)
	key := env.AddKey("bybit", "main", "read", "trade")
	iss := env.Issue("bybit", "main", "trader")
	c := wsDial(t, env, "/bybit/v5/trade")
	if m := wsSend(t, c, bybitAuth(iss, time.Now().Add(5*time.Second))); m["success"] != true {
		t.Fatalf("auth: %v", m)
	}
	op := func(id, op string, arg any) map[string]any {
		return map[string]any{"reqId": id, "header": map[string]string{"X-BAPI-TIMESTAMP": "1"}, "op": op, "args": []any{arg}}
	}
	leg := func(link, qty string) map[string]string {
		return map[string]string{"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": qty, "price": "49000", "orderLinkId": link}
	}
	batch := func(legs ...map[string]string) map[string]any {
		return map[string]any{"category": "spot", "request": legs}
	}
	amend := func(link, qty, price string) map[string]string {
		a := map[string]string{"category": "spot", "symbol": "BTCUSDT", "orderLinkId": link, "qty": qty}
		if price != "" {
			a["price"] = price
		}
		return a
	}
	refused := func(name string, m map[string]any) {
		t.Helper()
		if m["retCode"] != float64(10005) || !strings.Contains(m["retMsg"].(string), "max_order_notional") {
			t.Errorf("%s: %v, want 10005 naming max_order_notional", name, m)
		}
	}

	refused("batch with one leg over the cap", wsSend(t, c, op("1", "order.create-batch", batch(leg("a", "0.01"), leg("b", "0.05")))))
	if n := len(kit.Orders(key.APIKey)); n != 0 {
		t.Fatalf("a refused batch booked %d orders", n)
	}
	m := wsSend(t, c, op("2", "order.create-batch", batch(leg("a", "0.01"), leg("b", "0.015"))))
	if m["retCode"] != float64(0) {
		t.Fatalf("batch within the cap: %v", m)
	}
	orders := kit.Orders(key.APIKey)
	if len(orders) != 2 {
		t.Fatalf("simulator holds %d orders, want 2", len(orders))
	}
	a, b := orders[0].ID, orders[1].ID

	refused("amend over the cap", wsSend(t, c, op("3", "order.amend", amend("a", "0.03", "49000"))))
	refused("amend raising the quantity alone over the cap", wsSend(t, c, op("3b", "order.amend", amend("a", "0.03", ""))))
	if m := wsSend(t, c, op("4", "order.amend", amend("a", "0.018", "48000"))); m["retCode"] != float64(0) {
		t.Errorf("amend within the cap: %v", m)
	}
	refused("batch amend with one leg over the cap", wsSend(t, c, op("5", "order.amend-batch", batch(amend("a", "0.005", "49000"), amend("b", "0.5", "49000")))))
	if m := wsSend(t, c, op("6", "order.amend-batch", batch(amend("a", "0.005", "49000"), amend("b", "0.004", "49000")))); m["retCode"] != float64(0) {
		t.Errorf("batch amend within the cap: %v", m)
	}
	sizes, _ := openSizes(kit, key.APIKey)
	if d := cmp.Diff(map[string]float64{a: 0.005, b: 0.004}, sizes); d != "" {
		t.Errorf("order sizes after the amends (-want +got):\n%s", d)
	}
	cancel := func(link string) map[string]string {
		return map[string]string{"category": "spot", "symbol": "BTCUSDT", "orderLinkId": link}
	}
	if m := wsSend(t, c, op("7", "order.cancel-batch", batch(cancel("a"), cancel("b")))); m["retCode"] != float64(0) {
		t.Errorf("batch cancel: %v", m)
	}
	if _, st := openSizes(kit, key.APIKey); st["CANCELED"] != 2 {
		t.Errorf("orders by status after the batch cancel: %v", st)
	}
	if d := cmp.Diff([]string{"auth", "order.create-batch", "order.amend", "order.amend-batch", "order.cancel-batch"}, wsOps(kit)); d != "" {
		t.Errorf("ops at the simulator (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 5, "outcome": 5, "denied/deny/max_order_notional": 4}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}
