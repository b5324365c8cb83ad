package rotation

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
)

// TestHTTPVenueErrorsNameNoSignature: Binance signs the query, so a
// transport error quoting the URL would put a usable signature in logs and
// audit records. The error names the method and path only.
func TestHTTPVenueErrorsNameNoSignature(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the call fails in the transport
	u, _ := url.Parse("http://" + addr)
	h := &HTTPVenue{Venue: binance.Spot(u), Client: &http.Client{}}
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "APIKEYAPIKEY", Secret: exchange.Secret("SECRETSECRET")}
	_, _, err = h.do(t.Context(), &exchange.Request{Method: http.MethodGet, Path: "/api/v3/account"}, key)
	if err == nil {
		t.Fatal("a call to a closed port succeeded")
	}
	for _, s := range []string{"signature=", "timestamp=", "APIKEYAPIKEY", "SECRETSECRET"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
	if !strings.Contains(err.Error(), "GET /api/v3/account") {
		t.Errorf("error %q does not name the call", err)
	}
}
