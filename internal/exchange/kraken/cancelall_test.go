package kraken

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	secret := func(s string) exchange.Secret { return exchange.Secret(base64.StdEncoding.EncodeToString([]byte(s))) }
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kraken-key", Secret: secret("kraken-secret-one")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kraken-other", Secret: secret("kraken-secret-two")},
		BadSignature: exchangetest.WithSecret(key, secret("wrong")),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			return &exchange.Request{Method: http.MethodPost, Path: "/0/private/AddOrder",
				Body:   []byte("pair=" + o.Symbol + "&type=buy&ordertype=limit&price=100&volume=1"),
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
		},
		PlaceOK:     `"error":[]`,
		KeyOrders:   exchangetest.Orders(2, "XBTUSD", "ETHUSD"),
		OtherOrders: exchangetest.Orders(1, "XBTUSD"),
		Cancelled:   2,
	})
}
