package okx

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// vectorTime is the timestamp of the spec's OKX vectors.
var vectorTime = time.Date(2020, 12, 8, 9, 8, 57, 715e6, time.UTC)

func testKey() *exchange.Credential {
	return &exchange.Credential{
		Kind: exchange.KeyHMAC, APIKey: "okx-test-key",
		Secret: exchange.Secret("okx-test-secret"), Passphrase: exchange.Secret("okx-pass-1"),
	}
}

// vectors are spec/exchanges.md §6 b) O1 and O2 [XCHECK]: secret
// okx-test-secret, timestamp 2020-12-08T09:08:57.715Z, computed with Python
// hmac and with ccxt 4.5.84 okx.sign().
var vectors = []struct {
	name string
	req  exchange.Request
	sig  string
}{
	{"O1 GET with query", exchange.Request{Method: "GET", Path: "/api/v5/account/balance", RawQuery: "ccy=BTC"},
		"zoyYBAbbthbWS/lMxs58ldmr49iLIYLocgewx2gd6g8="},
	{"O2 POST json", exchange.Request{Method: "POST", Path: "/api/v5/account/set-leverage",
		Body: []byte(`{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}`)},
		"8+yrQYFtgYd6c9KYxoAIB0BbaW7K+EgIn4LFvC0m7y4="},
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.Clone()
			if err := (signer{}).Sign(r, testKey(), vectorTime); err != nil {
				t.Fatalf("Sign() = %v", err)
			}
			want := http.Header{
				hdrKey: {"okx-test-key"}, hdrSign: {tt.sig}, hdrTimestamp: {"2020-12-08T09:08:57.715Z"},
				hdrPassphrase: {"okx-pass-1"},
			}
			if len(r.Body) > 0 {
				want["Content-Type"] = []string{"application/json"}
			}
			if diff := cmp.Diff(want, r.Header); diff != "" {
				t.Errorf("Sign(%s) headers (-want +got):\n%s", tt.name, diff)
			}
			if r.RawQuery != tt.req.RawQuery || string(r.Body) != string(tt.req.Body) || r.Path != tt.req.Path {
				t.Errorf("Sign(%s) changed the request line or body", tt.name)
			}
		})
	}
}

func TestSignDemo(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v5/account/balance"}
	if err := (signer{demo: true}).Sign(r, testKey(), vectorTime); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get(DemoHeader); got != "1" {
		t.Errorf("demo Sign() %s = %q, want %q", DemoHeader, got, "1")
	}
}

func TestSignRejectsBadKeys(t *testing.T) {
	tests := []struct {
		name string
		key  *exchange.Credential
	}{
		{"nil", nil},
		{"no secret", &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k", Passphrase: exchange.Secret("p")}},
		{"no passphrase", &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k", Secret: exchange.Secret("s")}},
		{"rsa", &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "k", Secret: exchange.Secret("s"), Passphrase: exchange.Secret("p")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: "GET", Path: "/api/v5/account/balance"}
			if err := (signer{}).Sign(r, tt.key, vectorTime); err == nil {
				t.Errorf("Sign(%s) = nil, want error", tt.name)
			}
		})
	}
}

// signedVector returns vector i as a bot would send it, signed with the
// client credential's secret (the same secret as the spec vector).
func signedVector(t testing.TB, i int) *exchange.Request {
	t.Helper()
	r := vectors[i].req.Clone()
	r.Header = http.Header{}
	r.Header.Set("OK-ACCESS-KEY", "okx-test-key")
	r.Header.Set("OK-ACCESS-SIGN", vectors[i].sig)
	r.Header.Set("OK-ACCESS-TIMESTAMP", "2020-12-08T09:08:57.715Z")
	r.Header.Set("OK-ACCESS-PASSPHRASE", "okx-pass-1")
	r.Header.Set("X-Simulated-Trading", "1")
	r.Header.Set("User-Agent", "bot/1")
	return r
}

func TestVerifyVectors(t *testing.T) {
	for i, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			in := signedVector(t, i)
			before := in.Clone()
			out, err := verifier{}.Verify(in, testKey(), vectorTime.Add(10*time.Second))
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			want := tt.req.Clone()
			want.Header = http.Header{"X-Simulated-Trading": {"1"}, "User-Agent": {"bot/1"}}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("Verify(%s) request (-want +got):\n%s", tt.name, diff)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("Verify(%s) changed its input:\n%s", tt.name, diff)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	now := vectorTime
	tests := []struct {
		name   string
		mutate func(r *exchange.Request)
		client func(c *exchange.Credential)
		now    time.Time
		kind   exchange.ErrorKind
	}{
		{name: "tampered query", mutate: func(r *exchange.Request) { r.RawQuery = "ccy=ETH" }, kind: exchange.ErrAuth},
		{name: "tampered path", mutate: func(r *exchange.Request) { r.Path = "/api/v5/asset/balances" }, kind: exchange.ErrAuth},
		{name: "tampered method", mutate: func(r *exchange.Request) { r.Method = "POST" }, kind: exchange.ErrAuth},
		{name: "tampered signature", mutate: func(r *exchange.Request) {
			r.Header.Set(hdrSign, "AoyYBAbbthbWS/lMxs58ldmr49iLIYLocgewx2gd6g8=")
		}, kind: exchange.ErrAuth},
		{name: "lower-case signature", mutate: func(r *exchange.Request) {
			r.Header.Set(hdrSign, strings.ToLower(vectors[0].sig))
		}, kind: exchange.ErrAuth},
		{name: "missing signature", mutate: func(r *exchange.Request) { r.Header.Del(hdrSign) }, kind: exchange.ErrAuth},
		{name: "missing timestamp", mutate: func(r *exchange.Request) { r.Header.Del(hdrTimestamp) }, kind: exchange.ErrAuth},
		{name: "missing key", mutate: func(r *exchange.Request) { r.Header.Del(hdrKey) }, kind: exchange.ErrAuth},
		{name: "missing passphrase", mutate: func(r *exchange.Request) { r.Header.Del(hdrPassphrase) }, kind: exchange.ErrPassphrase},
		{name: "repeated signature", mutate: func(r *exchange.Request) { r.Header.Add(hdrSign, vectors[0].sig) }, kind: exchange.ErrAuth},
		{name: "wrong passphrase", mutate: func(r *exchange.Request) { r.Header.Set(hdrPassphrase, "okx-pass-2") }, kind: exchange.ErrPassphrase},
		{name: "unknown key", mutate: func(r *exchange.Request) { r.Header.Set(hdrKey, "other-key") }, kind: exchange.ErrAuth},
		{name: "seconds timestamp", mutate: func(r *exchange.Request) { r.Header.Set(hdrTimestamp, "1607418537") }, kind: exchange.ErrTimestamp},
		{name: "stale", now: now.Add(31 * time.Second), kind: exchange.ErrTimestamp},
		{name: "future", now: now.Add(-31 * time.Second), kind: exchange.ErrTimestamp},
		{name: "client without passphrase", client: func(c *exchange.Credential) { c.Passphrase = nil }, kind: exchange.ErrPassphrase},
		{name: "wrong client secret", client: func(c *exchange.Credential) { c.Secret = exchange.Secret("other") }, kind: exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedVector(t, 0)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			c := testKey()
			if tt.client != nil {
				tt.client(c)
			}
			at := tt.now
			if at.IsZero() {
				at = now
			}
			out, err := verifier{}.Verify(r, c, at)
			if err == nil {
				t.Fatalf("Verify(%s) = %v, nil; want error", tt.name, out)
			}
			if got := exchange.AsError(err).Kind; got != tt.kind {
				t.Errorf("Verify(%s) kind = %v, want %v (%v)", tt.name, got, tt.kind, err)
			}
			if strings.Contains(err.Error(), "okx-test-secret") || strings.Contains(err.Error(), "okx-pass-1") {
				t.Errorf("Verify(%s) error %q reveals a secret", tt.name, err)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		want    string
		wantErr bool
	}{
		{"public", http.Header{"User-Agent": {"x"}}, "", false},
		{"key", http.Header{hdrKey: {"abc"}}, "abc", false},
		{"signature without key", http.Header{hdrSign: {"abc"}}, "", true},
		{"two keys", http.Header{hdrKey: {"a", "b"}}, "", true},
		{"control character", http.Header{hdrKey: {"a\x01"}}, "", true},
		{"too long", http.Header{hdrKey: {strings.Repeat("a", 200)}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifier{}.ClientKey(&exchange.Request{Header: tt.header})
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ClientKey(%v) = %q, %v; want %q, error %v", tt.header, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestSignVerifyRoundTrip checks that what the signer produces, the verifier
// accepts, and that Verify gives back exactly the unsigned request.
func TestSignVerifyRoundTrip(t *testing.T) {
	in := &exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Header: http.Header{},
		Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"30000"}`)}
	r := in.Clone()
	now := time.Unix(1_800_000_000, 123e6)
	if err := (signer{}).Sign(r, testKey(), now); err != nil {
		t.Fatal(err)
	}
	out, err := verifier{}.Verify(r, testKey(), now)
	if err != nil {
		t.Fatalf("Verify(Sign(r)) = %v", err)
	}
	in.Header.Set("Content-Type", "application/json")
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("Verify(Sign(r)) (-want +got):\n%s", diff)
	}
}

// TestSignatureMatchesCryptoHMAC checks the allocation-free HMAC against
// crypto/hmac for secrets shorter than, equal to and longer than a block.
func TestSignatureMatchesCryptoHMAC(t *testing.T) {
	for _, n := range []int{0, 1, 31, 63, 64, 65, 200} {
		secret := []byte(strings.Repeat("k", n))
		body := []byte(strings.Repeat("b", n*3))
		got := string(signature(nil, secret, "ts", "POST", "/p", "q=1", body))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("tsPOST/p?q=1" + string(body)))
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))
		if got != want {
			t.Errorf("signature(secret of %d bytes) = %q, want %q", n, got, want)
		}
	}
}

// TestWebSocketLoginVector checks the HMAC primitive against spec §6 b) O3
// (WebSocket login prehash, Python only): keywarden does not proxy OKX's
// WebSocket, but the login sign is the REST scheme over a fixed request.
func TestWebSocketLoginVector(t *testing.T) {
	got := string(signature(nil, []byte("okx-test-secret"), "1538054050", "GET", "/users/self/verify", "", nil))
	if want := "glDzkdxsbPQQjWTlU42gCcktsrKcEmquRBno72XX5Mk="; got != want {
		t.Errorf("signature(O3) = %q, want %q", got, want)
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing.
func TestSignScratch(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reqs := map[string]*exchange.Request{
		"post": {Method: "POST", Path: "/api/v5/trade/order", Header: http.Header{},
			Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"30000"}`)},
		"get": {Method: "GET", Path: "/api/v5/account/balance", RawQuery: "ccy=BTC,ETH", Header: http.Header{}},
	}
	for name, r := range reqs {
		for _, s := range []signer{{}, {demo: true}} {
			t.Run(name, func(t *testing.T) { exchangetest.CheckSignScratch(t, s, testKey(), now, r, 0) })
		}
	}
}
