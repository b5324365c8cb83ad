package kucoin

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
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret"), Passphrase: exchange.Secret(name + "-pass")}
	}
	key, other := newKey("kucoin-key"), newKey("kucoin-other")
	for _, k := range []*exchange.Credential{key, other} {
		kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, path, sym string) {
		t.Helper()
		r := &exchange.Request{Method: http.MethodPost, Path: path,
			Body:   []byte(`{"clientOid":"c-` + sym + path[len(path)-3:] + `","side":"buy","symbol":"` + sym + `","type":"limit","price":"100","size":"0.01"}`),
			Header: http.Header{"Content-Type": {"application/json"}}}
		st, body, err := d.Do(ctx, r, k)
		if err != nil || st != http.StatusOK || !strings.Contains(string(body), `"200000"`) {
			t.Fatalf("place %s: %d %s %v", sym, st, body, err)
		}
	}
	place(key, "/api/v1/orders", "BTC-USDT")
	place(key, "/api/v1/hf/orders", "ETH-USDT")
	place(other, "/api/v1/hf/orders", "BTC-USDT")
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
	var paths []string
	for _, l := range kit.Log() {
		if l.Method == http.MethodDelete && l.APIKey == key.APIKey {
			paths = append(paths, l.Path)
		}
	}
	if strings.Join(paths, " ") != "/api/v1/orders /api/v1/hf/orders/cancelAll" {
		t.Errorf("cancel calls %q, want the classic then the high-frequency cancel-all", paths)
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
