package kucoin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	newKey := func(name string) *exchange.Credential {
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret"), Passphrase: exchange.Secret(name + "-pass")}
	}
	key := newKey("kucoin-key")
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        newKey("kucoin-other"),
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		// Kind is the order path: classic or high-frequency.
		Place: func(o exchangetest.Order, _ int) *exchange.Request {
			path, sym := o.Kind, o.Symbol
			return &exchange.Request{Method: http.MethodPost, Path: path,
				Body:   []byte(`{"clientOid":"c-` + sym + path[len(path)-3:] + `","side":"buy","symbol":"` + sym + `","type":"limit","price":"100","size":"0.01"}`),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		PlaceOK:     `"200000"`,
		KeyOrders:   []exchangetest.Order{{Kind: "/api/v1/orders", Symbol: "BTC-USDT"}, {Kind: "/api/v1/hf/orders", Symbol: "ETH-USDT"}},
		OtherOrders: []exchangetest.Order{{Kind: "/api/v1/hf/orders", Symbol: "BTC-USDT"}},
		Cancelled:   2,
		Extra: func(t *testing.T, kit *sim.Kit, _ exchange.CancelReport) {
			var paths []string
			for _, l := range kit.Log() {
				if l.Method == http.MethodDelete && l.APIKey == key.APIKey {
					paths = append(paths, l.Path)
				}
			}
			if strings.Join(paths, " ") != "/api/v1/orders /api/v1/hf/orders/cancelAll" {
				t.Errorf("cancel calls %q, want the classic then the high-frequency cancel-all", paths)
			}
		},
	})
}
