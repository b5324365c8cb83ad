package deribit

import (
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "deribit-key", Secret: exchange.Secret("s3cret")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "deribit-other", Secret: exchange.Secret("s3cret2")},
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			q := "instrument_name=" + o.Symbol + "&amount=10&type=limit&price=100"
			return &exchange.Request{Method: http.MethodGet, Path: "/api/v2/private/buy", RawQuery: q, Header: http.Header{}}
		},
		KeyOrders:   exchangetest.Orders(2, "BTC-PERPETUAL", "ETH-PERPETUAL"),
		OtherOrders: exchangetest.Orders(1, "BTC-PERPETUAL"),
		Cancelled:   2,
	})
}
