package krakenfutures

import (
	"github.com/google/go-cmp/cmp"
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
	if v.Inspector == nil || v.Keys != nil {
		t.Errorf("New() = %+v, want an Inspector and no KeyManager", v)
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

func TestInspector(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		body string
		want exchange.KeyPosture
	}{
		{`{"apiKey":"k","accountUid":"u","iiban":null,"createdAt":"2025-01-02T03:04:05Z","permissions":{"general":"READ_ONLY","withdrawal":"NO_ACCESS"},"allowedCidrBlock":"203.0.113.0/24","allowedCidrBlocks":["203.0.113.0/24"]}`,
			exchange.KeyPosture{Permissions: []string{"general=read", "withdrawal=none"}, CanRead: true, CanFutures: true, IPRestricted: true, IPs: []string{"203.0.113.0/24"}, Created: created}},
		{`{"apiKey":"k","createdAt":"2025-01-02T03:04:05Z","permissions":{"general":"FULL_ACCESS","withdrawal":"FULL_ACCESS"},"allowedCidrBlock":null,"allowedCidrBlocks":[]}`,
			exchange.KeyPosture{Permissions: []string{"general=full", "withdrawal=full"}, CanRead: true, CanTrade: true, CanTransfer: true, CanWithdraw: true, CanFutures: true, IPs: []string{}, Created: created}},
		{`{"apiKey":"k","createdAt":"2025-01-02T03:04:05Z","permissions":{"mystery":"SOMETHING"}}`,
			exchange.KeyPosture{Permissions: []string{"mystery=full"}, CanRead: true, CanTrade: true, CanTransfer: true, CanFutures: true, Created: created}},
	}
	for _, tt := range tests {
		got, err := inspector{}.ParsePosture(200, []byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParsePosture(%s) mismatch (-want +got):\n%s", tt.body, diff)
		}
	}
	if _, err := (inspector{}).ParsePosture(401, nil); err == nil {
		t.Errorf("ParsePosture(401) = nil error, want error")
	}
}

func TestSimulatorKeyCheck(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ins-key", Secret: exchange.Secret(wsSecret)}
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true, "trade": true}})
	r := inspector{}.InspectRequest()
	if err := NewSigner().Sign(r, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(r.Method, r.Path, nil)
	req.Header = r.Header
	w := httptest.NewRecorder()
	NewSimulator(kit).ServeHTTP(w, req)
	got, err := inspector{}.ParsePosture(w.Code, w.Body.Bytes())
	if err != nil {
		t.Fatalf("ParsePosture(%d %s) = %v", w.Code, w.Body, err)
	}
	if !got.CanTrade || got.CanWithdraw || got.IPRestricted {
		t.Errorf("posture = %+v, want trade without withdraw or IP restriction", got)
	}
}
