package okx

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "okx-key", Secret: exchange.Secret("s3cret"), Passphrase: exchange.Secret("pass")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "okx-other", Secret: exchange.Secret("s3cret2"), Passphrase: exchange.Secret("pass")},
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			b := fmt.Sprintf(`{"instId":%q,"tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"100"}`, o.Symbol)
			return &exchange.Request{Method: http.MethodPost, Path: "/api/v5/trade/order", Body: []byte(b),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		KeyOrders:   exchangetest.Orders(23, "BTC-USDT", "ETH-USDT"), // more than one batch of 20
		OtherOrders: exchangetest.Orders(1, "BTC-USDT"),
		Cancelled:   23,
		Scopes:      []string{"BTC-USDT", "ETH-USDT"},
	})
}
