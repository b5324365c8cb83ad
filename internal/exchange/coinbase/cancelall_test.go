package coinbase

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
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
	newKey := func(name string) *exchange.Credential {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyEd25519, APIKey: name, PublicKey: pub},
			Permissions: map[string]bool{"read": true, "trade": true}})
		return &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: name, PrivateKey: priv}
	}
	key, other := newKey("organizations/o1/apiKeys/k1"), newKey("organizations/o1/apiKeys/k2")
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	place := func(k *exchange.Credential, product string, i int) {
		t.Helper()
		b := fmt.Sprintf(`{"client_order_id":"c%d","product_id":%q,"side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.01","limit_price":"100"}}}`, i, product)
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodPost, Path: "/api/v3/brokerage/orders", Body: []byte(b),
			Header: http.Header{"Content-Type": {"application/json"}}}, k)
		if err != nil || st != http.StatusOK || !strings.Contains(string(body), `"success":true`) {
			t.Fatalf("place: %d %s %v", st, body, err)
		}
	}
	for i := range 105 { // more than one batch_cancel
		place(key, []string{"BTC-USD", "ETH-USD"}[i%2], i)
	}
	place(other, "BTC-USD", 999)
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 105 || strings.Join(rep.Scopes, ",") != "BTC-USD,ETH-USD" {
		t.Errorf("report %+v, want 105 cancelled in BTC-USD and ETH-USD", rep)
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
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	bad := &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: key.APIKey, PrivateKey: wrong}
	if _, err := (Canceller{}).CancelAll(ctx, d, bad); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}
