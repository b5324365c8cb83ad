package bitmex

import (
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          cred("bitmex-key", "bitmex-secret-1"),
		Other:        cred("bitmex-other", "bitmex-secret-2"),
		BadSignature: cred("bitmex-key", "wrong"),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			return &exchange.Request{Method: http.MethodPost, Path: "/api/v1/order",
				Body:   []byte(`{"symbol":"` + o.Symbol + `","side":"Buy","orderQty":100,"price":100,"ordType":"Limit"}`),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		KeyOrders:   exchangetest.Orders(2, "XBTUSD", "ETHUSD"),
		OtherOrders: exchangetest.Orders(1, "XBTUSD"),
		Cancelled:   2,
		Scopes:      []string{"ETHUSD", "XBTUSD"},
	})
}
