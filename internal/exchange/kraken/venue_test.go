package kraken

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
	u, _ := url.Parse(DefaultUpstream)
	v := New(u)
	if v.Name != "kraken" || v.Upstream != u || v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil {
		t.Errorf("New(%s) = %+v, want every part set", u, v)
	}
	if len(v.KeyKinds) != 1 || v.KeyKinds[0] != exchange.KeyHMAC || v.NeedsPassphrase {
		t.Errorf("New().KeyKinds = %v, NeedsPassphrase %v, want [hmac], false", v.KeyKinds, v.NeedsPassphrase)
	}
}

func TestSimulatorIPRestriction(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-key", Secret: exchange.Secret(docSecret)}
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true}, IPs: []string{"198.51.100.7"}})
	r := formRequest("/0/private/Balance", "")
	if err := NewSigner().Sign(r, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/0/private/Balance", strings.NewReader(string(r.Body)))
	req.Header = r.Header
	w := httptest.NewRecorder()
	NewSimulator(kit).ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), errPermission) {
		t.Errorf("simulator answered %s to a request from outside the key's IPs, want %s", w.Body, errPermission)
	}
}
