package coinbase

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestNew(t *testing.T) {
	u := upstream(t, DefaultUpstream)
	v := New(u)
	if v.Name != "coinbase" || v.Upstream != u || v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil {
		t.Errorf("New(%s) = %+v, want every part set", u, v)
	}
	if len(v.KeyKinds) != 3 || v.KeyKinds[0] != exchange.KeyEd25519 || v.NeedsPassphrase {
		t.Errorf("New().KeyKinds = %v, NeedsPassphrase %v", v.KeyKinds, v.NeedsPassphrase)
	}
	// The uri claim names the configured upstream host.
	signing, client := mustKey(t, sdkEdKey)
	r := getRequest(accounts, "")
	if err := New(upstream(t, "https://api-sandbox.coinbase.com/")).Signer.Sign(r, &signing, time.Unix(vectorTime, 0)); err != nil {
		t.Fatal(err)
	}
	tok, _ := bearer(r.Header.Get("Authorization"))
	jt, err := parseJWT(tok)
	if err != nil || len(jt.uris) != 1 || jt.uris[0] != "GET api-sandbox.coinbase.com"+accounts {
		t.Errorf("uri claim = %v (%v), want GET api-sandbox.coinbase.com%s", jt, err, accounts)
	}
	if !jt.verifySignature(client.PublicKey) {
		t.Errorf("signature does not verify")
	}
}

func TestSimulatorIPRestriction(t *testing.T) {
	kit := sim.NewKit()
	signing, client := mustKey(t, sdkEdKey)
	kit.AddAccount(sim.Account{Key: client, Permissions: map[string]bool{"read": true}, IPs: []string{"198.51.100.7"}})
	r := getRequest(accounts, "")
	if err := NewSigner(upstream(t, "https://example.com")).Sign(r, &signing, time.Now()); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "https://example.com"+accounts, nil)
	req.Header = r.Header
	w := httptest.NewRecorder()
	NewSimulator(kit).ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Unauthorized") {
		t.Errorf("simulator answered %d %s to a request from outside the key's IPs, want 401", w.Code, w.Body)
	}
	// The same request from an allowed address passes.
	kit2 := sim.NewKit()
	kit2.AddAccount(sim.Account{Key: client, Permissions: map[string]bool{"read": true}, IPs: []string{"198.51.100.7"}})
	req = httptest.NewRequest(http.MethodGet, "https://example.com"+accounts, nil)
	req.Header = r.Header
	req.RemoteAddr = "198.51.100.7:4000"
	w = httptest.NewRecorder()
	NewSimulator(kit2).ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("simulator answered %d %s from an allowed address, want 200", w.Code, w.Body)
	}
}
