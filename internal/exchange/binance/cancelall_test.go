package binance

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	tests := []struct {
		name  string
		build func(*url.URL) exchange.Venue
		c     exchangetest.Canceller
		order string
	}{
		{"spot", Spot, SpotCanceller{}, "/api/v3/order"},
		{"usdm", USDM, FuturesCanceller{}, "/fapi/v1/order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k-" + tt.name, Secret: exchange.Secret("s3cret")}
			exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
				Venue:        tt.build,
				Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
				Canceller:    tt.c,
				Key:          key,
				Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "other-" + tt.name, Secret: exchange.Secret("s3cret2")},
				BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
				Place: func(o exchangetest.Order, _ int) *exchange.Request {
					q := "symbol=" + o.Symbol + "&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100"
					return &exchange.Request{Method: http.MethodPost, Path: tt.order, RawQuery: q, Header: http.Header{}}
				},
				KeyOrders:   exchangetest.Orders(3, "BTCUSDT", "BTCUSDT", "ETHUSDT"),
				OtherOrders: exchangetest.Orders(1, "BTCUSDT"),
				Cancelled:   3,
				Scopes:      []string{"BTCUSDT", "ETHUSDT"},
			})
		})
	}
}
