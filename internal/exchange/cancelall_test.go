package exchange

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// querySigner puts a signature in the query, as Binance does.
type querySigner struct{}

func (querySigner) Sign(r *Request, key *Credential, _ time.Time) error {
	r.RawQuery += "&signature=SIGNATURE0123456789"
	return nil
}

// TestHTTPDoerErrorsHideTheURL: a transport error names the method and
// path, never the signed query.
func TestHTTPDoerErrorsHideTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	u, _ := url.Parse("http://" + addr)
	d := &HTTPDoer{Venue: Venue{Upstream: u, Signer: querySigner{}}, Client: &http.Client{Timeout: 5 * time.Second}}
	_, _, err = d.Do(context.Background(), &Request{Method: http.MethodDelete, Path: "/api/v3/openOrders", RawQuery: "symbol=BTCUSDT"},
		&Credential{Kind: KeyHMAC, APIKey: "k", Secret: Secret("s")})
	if err == nil {
		t.Fatal("Do to a closed port = nil")
	}
	if strings.Contains(err.Error(), "SIGNATURE") || strings.Contains(err.Error(), "symbol=") {
		t.Errorf("error %q shows the signed query", err)
	}
	if !strings.Contains(err.Error(), "DELETE /api/v3/openOrders") {
		t.Errorf("error %q does not name the call", err)
	}
	var ne *net.OpError
	if !errors.As(err, &ne) {
		t.Errorf("error %q lost the transport error", err)
	}
}

func TestVenueErrorIsBounded(t *testing.T) {
	body := []byte(strings.Repeat("é", 300))
	err := VenueError("x: cancel", 500, body)
	if len(err.Error()) > 250 || !strings.HasPrefix(err.Error(), "x: cancel: status 500: ") {
		t.Errorf("VenueError = %q (%d bytes)", err, len(err.Error()))
	}
}
