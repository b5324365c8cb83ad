package gate

import (
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	newKey := func(name string) *exchange.Credential {
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret")}
	}
	key := newKey("gate-key")
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        newKey("gate-other"),
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		Unknown:      newKey("gate-key-wrong"),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			return &exchange.Request{Method: http.MethodPost, Path: "/api/v4/spot/orders",
				Body:   []byte(`{"text":"t-1","currency_pair":"` + o.Symbol + `","type":"limit","account":"spot","side":"buy","amount":"0.01","price":"100"}`),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		PlaceStatus: http.StatusCreated,
		KeyOrders:   exchangetest.Orders(3, "BTC_USDT", "BTC_USDT", "ETH_USDT"),
		OtherOrders: exchangetest.Orders(1, "BTC_USDT"),
		Cancelled:   3,
		Scopes:      []string{"BTC_USDT", "ETH_USDT"},
	})
}
