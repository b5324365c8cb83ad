package coinbase

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	newKey := func(name string) *exchange.Credential {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		return &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: name, PrivateKey: priv}
	}
	key := newKey("organizations/o1/apiKeys/k1")
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        newKey("organizations/o1/apiKeys/k2"),
		BadSignature: newKey(key.APIKey),
		Place: func(o exchangetest.Order, i int) *exchange.Request {
			b := fmt.Sprintf(`{"client_order_id":"c%d","product_id":%q,"side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.01","limit_price":"100"}}}`, i, o.Symbol)
			return &exchange.Request{Method: http.MethodPost, Path: "/api/v3/brokerage/orders", Body: []byte(b),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		PlaceOK:     `"success":true`,
		KeyOrders:   exchangetest.Orders(105, "BTC-USD", "ETH-USD"), // more than one batch_cancel
		OtherOrders: exchangetest.Orders(1, "BTC-USD"),
		Cancelled:   105,
		Scopes:      []string{"BTC-USD", "ETH-USD"},
	})
}
