package okx

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "okx-key", Secret: exchange.Secret("s3cret"), Passphrase: exchange.Secret("pass")}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "okx-other", Secret: exchange.Secret("s3cret2"), Passphrase: exchange.Secret("pass")}
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
		b := fmt.Sprintf(`{"instId":%q,"tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"100"}`, inst)
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodPost, Path: "/api/v5/trade/order", Body: []byte(b),
			Header: http.Header{"Content-Type": {"application/json"}}}, k)
		if err != nil || st != http.StatusOK {
			t.Fatalf("place %s: %d %s %v", inst, st, body, err)
		}
	}
	// More than one batch of 20.
	for i := range 23 {
		place(key, []string{"BTC-USDT", "ETH-USDT"}[i%2])
	}
	place(other, "BTC-USDT")
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 23 || len(rep.Scopes) != 2 {
		t.Errorf("report %+v, want 23 cancelled in BTC-USDT and ETH-USDT", rep)
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
