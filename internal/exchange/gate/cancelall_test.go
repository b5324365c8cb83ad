package gate

import (
	"context"
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
	newKey := func(name string) *exchange.Credential {
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret")}
	}
	key, other := newKey("gate-key"), newKey("gate-other")
	for _, k := range []*exchange.Credential{key, other} {
		kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, pair string) {
		t.Helper()
		r := &exchange.Request{Method: http.MethodPost, Path: "/api/v4/spot/orders",
			Body:   []byte(`{"text":"t-1","currency_pair":"` + pair + `","type":"limit","account":"spot","side":"buy","amount":"0.01","price":"100"}`),
			Header: http.Header{"Content-Type": {"application/json"}}}
		st, body, err := d.Do(ctx, r, k)
		if err != nil || st/100 != 2 {
			t.Fatalf("place %s: %d %s %v", pair, st, body, err)
		}
	}
	place(key, "BTC_USDT")
	place(key, "BTC_USDT")
	place(key, "ETH_USDT")
	place(other, "BTC_USDT")
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 3 || strings.Join(rep.Scopes, ",") != "BTC_USDT,ETH_USDT" {
		t.Errorf("report %+v, want 3 cancelled in BTC_USDT and ETH_USDT", rep)
	}
	if n := len(kit.OpenOrders(key.APIKey)); n != 0 {
		t.Errorf("%d open orders left, want 0", n)
	}
	if n := len(kit.OpenOrders(other.APIKey)); n != 1 {
		t.Errorf("another key's open orders = %d, want 1", n)
	}
	if rep, err := (Canceller{}).CancelAll(ctx, d, key); err != nil || rep.Cancelled != 0 {
		t.Errorf("second sweep = %+v, %v", rep, err)
	}
	if _, err := (Canceller{}).CancelAll(ctx, d, newKey("gate-key-wrong")); err == nil {
		t.Error("CancelAll with an unknown key = nil, want the venue's refusal")
	}
	bad := *key
	bad.Secret = exchange.Secret("wrong")
	if _, err := (Canceller{}).CancelAll(ctx, d, &bad); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
