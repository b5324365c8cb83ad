package bitmex

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
	key, other := cred("bitmex-key", "bitmex-secret-1"), cred("bitmex-other", "bitmex-secret-2")
	for _, k := range []*exchange.Credential{key, other} {
		kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, sym string) {
		t.Helper()
		r := &exchange.Request{Method: http.MethodPost, Path: "/api/v1/order",
			Body:   []byte(`{"symbol":"` + sym + `","side":"Buy","orderQty":100,"price":100,"ordType":"Limit"}`),
			Header: http.Header{"Content-Type": {"application/json"}}}
		st, body, err := d.Do(ctx, r, k)
		if err != nil || st != http.StatusOK {
			t.Fatalf("place %s: %d %s %v", sym, st, body, err)
		}
	}
	place(key, "XBTUSD")
	place(key, "ETHUSD")
	place(other, "XBTUSD")
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 2 || strings.Join(rep.Scopes, ",") != "ETHUSD,XBTUSD" {
		t.Errorf("report %+v, want 2 cancelled in ETHUSD and XBTUSD", rep)
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
	if _, err := (Canceller{}).CancelAll(ctx, d, cred(key.APIKey, "wrong")); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
