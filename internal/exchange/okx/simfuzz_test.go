package okx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// FuzzSimulator sends the simulator arbitrary requests signed with a valid
// key, so the fuzzer reaches the handlers behind authentication. The
// simulator must answer every one in OKX's shape and never panic.
func FuzzSimulator(f *testing.F) {
	f.Add("POST", "/api/v5/trade/order", "", `{"instId":"BTC-USDT","side":"buy","ordType":"market","sz":"1"}`)
	f.Add("POST", "/api/v5/trade/batch-orders", "", `[{"instId":"BTC-USDT","side":"sell","ordType":"limit","sz":"1","px":"1"},7]`)
	f.Add("POST", "/api/v5/trade/cancel-order", "", `{"instId":"BTC-USDT","ordId":1}`)
	f.Add("POST", "/api/v5/asset/withdrawal", "", `{"ccy":"BTC","amt":"100","dest":"4","toAddr":"x"}`)
	f.Add("POST", "/api/v5/asset/transfer", "", `{"ccy":"BTC","amt":"1","from":"6","to":"18"}`)
	f.Add("GET", "/api/v5/trade/orders-pending", "instId=BTC-USDT", "")
	f.Add("GET", "/api/v5/market/ticker", "instId=%ff", "")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return now }
	kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true, "withdraw": true, "transfer": true}})
	s := NewSimulator(kit)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n/") || !strings.HasPrefix(path, "/") ||
			strings.ContainsAny(path+query, " \t\r\n#") {
			return
		}
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body)}
		if err := (signer{}).Sign(r, testKey(), now); err != nil {
			t.Fatal(err)
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, "http://sim.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.RequestURI = target
		req.Header = r.Header
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" && w.Code != http.StatusMovedPermanently && w.Code != http.StatusTemporaryRedirect {
			t.Errorf("%s %s = %d with Content-Type %q, want OKX json", method, target, w.Code, ct)
		}
		if len(kit.Log()) > 1000 {
			kit.ResetLog()
		}
	})
}
