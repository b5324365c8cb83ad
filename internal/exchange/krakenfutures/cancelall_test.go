package krakenfutures

import (
	"context"
	"encoding/base64"
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
	secret := func(s string) exchange.Secret { return exchange.Secret(base64.StdEncoding.EncodeToString([]byte(s))) }
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kf-key", Secret: secret("kraken-secret-one")}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kf-other", Secret: secret("kraken-secret-two")}
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
		r := &exchange.Request{Method: http.MethodPost, Path: "/derivatives/api/v3/sendorder",
			Body:   []byte("orderType=lmt&symbol=" + pair + "&side=buy&size=1&limitPrice=100"),
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
		st, body, err := d.Do(ctx, r, k)
		if err != nil || st != http.StatusOK || !strings.Contains(string(body), `"result":"success"`) {
			t.Fatalf("place %s: %d %s %v", pair, st, body, err)
		}
	}
	place(key, "PF_XBTUSD")
	place(key, "PF_ETHUSD")
	place(other, "PF_XBTUSD")
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
	bad := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key.APIKey, Secret: secret("wrong")}
	if _, err := (Canceller{}).CancelAll(ctx, d, bad); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
