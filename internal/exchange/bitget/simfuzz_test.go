package bitget

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
// simulator must answer every one in Bitget's shape and never panic.
func FuzzSimulator(f *testing.F) {
	f.Add("POST", "/api/v2/spot/trade/place-order", "", `{"symbol":"BTCUSDT","side":"buy","orderType":"market","size":"1"}`)
	f.Add("POST", "/api/v2/spot/trade/cancel-order", "", `{"symbol":"BTCUSDT","orderId":1}`)
	f.Add("POST", "/api/v2/spot/wallet/withdrawal", "", `{"coin":"BTC","size":"100","transferType":"on_chain","address":"x"}`)
	f.Add("POST", "/api/v2/spot/wallet/transfer", "", `{"coin":"BTC","amount":"1","fromType":"spot","toType":"usdt_futures"}`)
	f.Add("GET", "/api/v2/spot/trade/unfilled-orders", "symbol=BTCUSDT&b=x%20y", "")
	f.Add("GET", "/api/v2/spot/market/tickers", "symbol=%ff", "")
	f.Add("POST", pathCreateKey, "", `{"subAccountUid":"1","passphrase":"Pass12345","label":"x","ipList":["10.0.0.1"],"permList":["read"]}`)
	f.Add("POST", pathModifyKey, "", `{"subAccountUid":"1","subAccountApiKey":"bg_x","passphrase":"Pass12345","label":"x","ipList":[],"permList":[]}`)
	f.Add("GET", pathListKeys, "subAccountUid=1", "")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return now }
	// a main account's key, IP-bound, so the key-management handlers are reached too
	kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true, "withdraw": true, "transfer": true, "admin": true},
		IPs: []string{"192.0.2.10"}})
	s := NewSimulator(kit)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n/") || !strings.HasPrefix(path, "/") ||
			strings.ContainsAny(path+query, " \t\r\n#") {
			return
		}
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body)}
		// The signer refuses queries it cannot decode; those go unsigned.
		_ = (signer{}).Sign(r, testKey(), now)
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, "http://sim.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.RequestURI = target
		req.RemoteAddr = "192.0.2.10:40000"
		req.Header = r.Header
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" && w.Code != http.StatusMovedPermanently && w.Code != http.StatusTemporaryRedirect {
			t.Errorf("%s %s = %d with Content-Type %q, want Bitget json", method, target, w.Code, ct)
		}
		if len(kit.Log()) > 1000 {
			kit.ResetLog()
		}
	})
}
