package krakenfutures

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestNew(t *testing.T) {
	u, _ := url.Parse(TestnetUpstream)
	v := New(u)
	if v.Name != "kraken-futures" || v.Upstream != u || v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil {
		t.Errorf("New(%s) = %+v, want every part set", u, v)
	}
	if v.Inspector != nil || v.Keys != nil {
		t.Errorf("New() has an Inspector or KeyManager, but Kraken Futures has no such API")
	}
}

func TestSimulatorIPRestriction(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-key", Secret: exchange.Secret(wsSecret)}
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true}, IPs: []string{"198.51.100.7"}})
	r := &exchange.Request{Method: "GET", Path: "/derivatives/api/v3/accounts", Header: http.Header{}}
	if err := NewSigner().Sign(r, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, r.Path, nil)
	req.Header = r.Header
	w := httptest.NewRecorder()
	NewSimulator(kit).ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), errAuthentication) {
		t.Errorf("simulator answered %d %s to a request from outside the key's IPs, want 401 %s", w.Code, w.Body, errAuthentication)
	}
}
