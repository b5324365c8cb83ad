package krakenfutures

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
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kf-key", Secret: secret("kraken-secret-one")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kf-other", Secret: secret("kraken-secret-two")},
		BadSignature: exchangetest.WithSecret(key, secret("wrong")),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			return &exchange.Request{Method: http.MethodPost, Path: "/derivatives/api/v3/sendorder",
				Body:   []byte("orderType=lmt&symbol=" + o.Symbol + "&side=buy&size=1&limitPrice=100"),
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
		},
		PlaceOK:     `"result":"success"`,
		KeyOrders:   exchangetest.Orders(2, "PF_XBTUSD", "PF_ETHUSD"),
		OtherOrders: exchangetest.Orders(1, "PF_XBTUSD"),
		Cancelled:   2,
	})
}
