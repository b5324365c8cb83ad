package bybit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bybit-key", Secret: exchange.Secret("s3cret")}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bybit-other", Secret: exchange.Secret("s3cret2")}
	for _, k := range []*exchange.Credential{key, other} {
		kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, cat, sym string) {
		t.Helper()
		b := fmt.Sprintf(`{"category":%q,"symbol":%q,"side":"Buy","orderType":"Limit","qty":"1","price":"100"}`, cat, sym)
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodPost, Path: "/v5/order/create", Body: []byte(b),
			Header: http.Header{"Content-Type": {"application/json"}}}, k)
		if err != nil || st != http.StatusOK || !strings.Contains(string(body), `"retCode":0`) {
			t.Fatalf("place %s: %d %s %v", sym, st, body, err)
		}
	}
	place(key, "spot", "BTCUSDT")
	place(key, "linear", "ETHUSDT")
	place(key, "linear", "SOLUSDC")
	place(other, "spot", "BTCUSDT")
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator keeps no category: the spot sweep takes all three.
	if rep.Cancelled != 3 {
		t.Errorf("report %+v, want 3 cancelled", rep)
	}
	if n := len(kit.OpenOrders(key.APIKey)); n != 0 {
		t.Errorf("%d open orders left, want 0", n)
	}
	if n := len(kit.OpenOrders(other.APIKey)); n != 1 {
		t.Errorf("another key's open orders = %d, want 1", n)
	}
	// Every category was swept, linear once per settle coin; inverse per
	// symbol listed (the simulator lists every open order there).
	var sweeps []string
	for _, l := range kit.Log() {
		if strings.HasSuffix(l.Path, "/v5/order/cancel-all") {
			sweeps = append(sweeps, string(l.Body))
		}
	}
	all := strings.Join(sweeps, "\n")
	for _, want := range []string{`"category":"spot"`, `"category":"linear","settleCoin":"USDT"`, `"category":"linear","settleCoin":"USDC"`,
		`"category":"inverse","symbol":"ETHUSDT"`, `"category":"option"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no cancel-all with %s; sent:\n%s", want, all)
		}
	}
	bad := *key
	bad.Secret = exchange.Secret("wrong")
	if _, err := (Canceller{}).CancelAll(ctx, d, &bad); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
