package deribit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "deribit-key", Secret: exchange.Secret("s3cret")}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "deribit-other", Secret: exchange.Secret("s3cret2")}
	for _, k := range []*exchange.Credential{key, other} {
		kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, inst string) {
		t.Helper()
		q := "instrument_name=" + inst + "&amount=10&type=limit&price=100"
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v2/private/buy", RawQuery: q, Header: http.Header{}}, k)
		if err != nil || st != http.StatusOK {
			t.Fatalf("place %s: %d %s %v", inst, st, body, err)
		}
	}
	place(key, "BTC-PERPETUAL")
	place(key, "ETH-PERPETUAL")
	place(other, "BTC-PERPETUAL")
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 2 {
		t.Errorf("report %+v, want 2 cancelled", rep)
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
	bad := *key
	bad.Secret = exchange.Secret("wrong")
	if _, err := (Canceller{}).CancelAll(ctx, d, &bad); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
