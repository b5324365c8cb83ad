package bybit

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bybit-key", Secret: exchange.Secret("s3cret")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bybit-other", Secret: exchange.Secret("s3cret2")},
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			b := fmt.Sprintf(`{"category":%q,"symbol":%q,"side":"Buy","orderType":"Limit","qty":"1","price":"100"}`, o.Kind, o.Symbol)
			return &exchange.Request{Method: http.MethodPost, Path: "/v5/order/create", Body: []byte(b),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		PlaceOK:     `"retCode":0`,
		KeyOrders:   []exchangetest.Order{{Kind: "spot", Symbol: "BTCUSDT"}, {Kind: "linear", Symbol: "ETHUSDT"}, {Kind: "linear", Symbol: "SOLUSDC"}},
		OtherOrders: []exchangetest.Order{{Kind: "spot", Symbol: "BTCUSDT"}},
		// The simulator keeps no category: the spot sweep takes all three.
		Cancelled: 3,
		// Every category was swept, linear once per settle coin; inverse per
		// symbol listed (the simulator lists every open order there).
		Extra: func(t *testing.T, kit *sim.Kit, _ exchange.CancelReport) {
			var sweeps []string
			for _, l := range kit.Log() {
				if strings.HasSuffix(l.Path, "/v5/order/cancel-all") {
					sweeps = append(sweeps, string(l.Body))
				}
			}
			all := strings.Join(sweeps, "\n")
			for _, want := range []string{`"category":"spot"`, `"category":"linear","settleCoin":"USDT"`, `"category":"linear","settleCoin":"USDC"`,
				`"category":"inverse","symbol":"ETHUSDT"`, `"category":"option"`} {
				if !strings.Contains(all, want) {
					t.Errorf("no cancel-all with %s; sent:\n%s", want, all)
				}
			}
		},
	})
}
