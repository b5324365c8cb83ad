package krakenfutures

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// FuzzSimulator feeds arbitrary requests to the simulator, which parses them
// as the venue would: it must answer without panicking.
func FuzzSimulator(f *testing.F) {
	f.Add("POST", "/derivatives/api/v3/sendorder", "", "APIKey", "sim-key", "orderType=lmt")
	f.Add("GET", "/derivatives/api/v3/tickers/PF_XBTUSD", "", "", "", "")
	kit := sim.NewKit()
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "sim-key", Secret: exchange.Secret("c2VjcmV0")}, Permissions: map[string]bool{"read": true, "trade": true, "withdraw": true}})
	s := NewSimulator(kit)
	f.Fuzz(func(t *testing.T, method, path, query, header, value, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path+query, " \r\n#") || method == "" || strings.ContainsAny(method, " \r\n/") {
			return
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, "http://sim.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		if header != "" && value != "" {
			req.Header[header] = []string{value}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == 0 {
			t.Errorf("no status for %s %s", method, target)
		}
		if len(kit.Log()) > 1000 {
			kit.ResetLog()
		}
	})
}
