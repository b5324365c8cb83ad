package bitget

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// vectorTime is the timestamp of the spec's Bitget vectors.
var vectorTime = time.UnixMilli(1700000000000)

func testKey() *exchange.Credential {
	return &exchange.Credential{
		Kind: exchange.KeyHMAC, APIKey: "bg-test-key",
		Secret: exchange.Secret("bg-test-secret"), Passphrase: exchange.Secret("bg-pass-1"),
	}
}

// vectors are spec/exchanges.md §9 b) G1 and G2 [XCHECK]: secret
// bg-test-secret, timestamp 1700000000000, computed with Python hmac and
// with ccxt 4.5.84 bitget.sign().
var vectors = []struct {
	name string
	req  exchange.Request
	sig  string
}{
	{"G1 GET with query", exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: "coin=USDT"},
		"GHSVzqgUZty+MaMcqW97BkRqhyakND4ZHiqJ53PX8qY="},
	{"G2 POST json", exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order",
		Body: []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01","clientOid":"bg-1"}`)},
		"EfDgTouEtSFygwC9kD7XQ9CMpvShkWWSmI8236EpI/w="},
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.Clone()
			if err := (signer{}).Sign(r, testKey(), vectorTime); err != nil {
				t.Fatalf("Sign() = %v", err)
			}
			want := http.Header{
				hdrKey: {"bg-test-key"}, hdrSign: {tt.sig}, hdrTimestamp: {"1700000000000"}, hdrPassphrase: {"bg-pass-1"},
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

func TestSignSortsQuery(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v2/mix/market/depth", RawQuery: "symbol=BTCUSDT&limit=20&b=x%20y"}
	if err := (signer{}).Sign(r, testKey(), vectorTime); err != nil {
		t.Fatal(err)
	}
	if want := "b=x%20y&limit=20&symbol=BTCUSDT"; r.RawQuery != want {
		t.Errorf("Sign() query = %q, want %q", r.RawQuery, want)
	}
	// The decoded query is what is signed (as ccxt and Bitget do).
	want := string(hmacSignature(nil, []byte("bg-test-secret"), "1700000000000", "GET", "/api/v2/mix/market/depth", "b=x y&limit=20&symbol=BTCUSDT", nil))
	if got := r.Header.Get(hdrSign); got != want {
		t.Errorf("Sign() signature = %q, want %q", got, want)
	}
}

func TestSignDemo(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets"}
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
		{"rsa without private key", &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "k", Passphrase: exchange.Secret("p")}},
		{"ed25519", &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: "k", Secret: exchange.Secret("s"), Passphrase: exchange.Secret("p")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets"}
			if err := (signer{}).Sign(r, tt.key, vectorTime); err == nil {
				t.Errorf("Sign(%s) = nil, want error", tt.name)
			}
		})
	}
}

func signedVector(t testing.TB, i int) *exchange.Request {
	t.Helper()
	r := vectors[i].req.Clone()
	r.Header = http.Header{}
	r.Header.Set("ACCESS-KEY", "bg-test-key")
	r.Header.Set("ACCESS-SIGN", vectors[i].sig)
	r.Header.Set("ACCESS-TIMESTAMP", "1700000000000")
	r.Header.Set("ACCESS-PASSPHRASE", "bg-pass-1")
	r.Header.Set("PAPTRADING", "1")
	r.Header.Set("locale", "en-US")
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
			want.Header = http.Header{"Paptrading": {"1"}, "Locale": {"en-US"}}
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
		{name: "tampered query", mutate: func(r *exchange.Request) { r.RawQuery = "coin=BTC" }, kind: exchange.ErrAuth},
		{name: "tampered path", mutate: func(r *exchange.Request) { r.Path = "/api/v2/spot/account/bills" }, kind: exchange.ErrAuth},
		{name: "tampered method", mutate: func(r *exchange.Request) { r.Method = "POST" }, kind: exchange.ErrAuth},
		{name: "tampered signature", mutate: func(r *exchange.Request) {
			r.Header.Set(hdrSign, "AHSVzqgUZty+MaMcqW97BkRqhyakND4ZHiqJ53PX8qY=")
		}, kind: exchange.ErrAuth},
		{name: "missing signature", mutate: func(r *exchange.Request) { r.Header.Del(hdrSign) }, kind: exchange.ErrAuth},
		{name: "missing timestamp", mutate: func(r *exchange.Request) { r.Header.Del(hdrTimestamp) }, kind: exchange.ErrTimestamp},
		{name: "missing key", mutate: func(r *exchange.Request) { r.Header.Del(hdrKey) }, kind: exchange.ErrAuth},
		{name: "missing passphrase", mutate: func(r *exchange.Request) { r.Header.Del(hdrPassphrase) }, kind: exchange.ErrPassphrase},
		{name: "repeated signature", mutate: func(r *exchange.Request) { r.Header.Add(hdrSign, vectors[0].sig) }, kind: exchange.ErrAuth},
		{name: "wrong passphrase", mutate: func(r *exchange.Request) { r.Header.Set(hdrPassphrase, "bg-pass-2") }, kind: exchange.ErrPassphrase},
		{name: "unknown key", mutate: func(r *exchange.Request) { r.Header.Set(hdrKey, "other") }, kind: exchange.ErrAuth},
		{name: "signed timestamp", mutate: func(r *exchange.Request) { r.Header.Set(hdrTimestamp, "+1700000000000") }, kind: exchange.ErrTimestamp},
		{name: "stale", now: now.Add(31 * time.Second), kind: exchange.ErrTimestamp},
		{name: "future", now: now.Add(-31 * time.Second), kind: exchange.ErrTimestamp},
		{name: "client without passphrase", client: func(c *exchange.Credential) { c.Passphrase = nil }, kind: exchange.ErrPassphrase},
		{name: "wrong client secret", client: func(c *exchange.Credential) { c.Secret = exchange.Secret("other") }, kind: exchange.ErrAuth},
		{name: "rsa client for hmac signature", client: func(c *exchange.Credential) { c.Kind = exchange.KeyRSA }, kind: exchange.ErrAuth},
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
			if strings.Contains(err.Error(), "bg-test-secret") || strings.Contains(err.Error(), "bg-pass-1") {
				t.Errorf("Verify(%s) error %q reveals a secret", tt.name, err)
			}
		})
	}
}

// TestVerifyQueryForms checks which query strings a signature may cover:
// the raw bytes, or the decoded form only when it reads back the same.
func TestVerifyQueryForms(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		signed   string
		accepted bool
	}{
		{"raw", "b=x%20y&coin=USDT", "b=x%20y&coin=USDT", true},
		{"decoded", "b=x%20y&coin=USDT", "b=x y&coin=USDT", true},
		{"decoded non-ascii", "s=%C3%A9", "s=é", true},
		{"ambiguous decoded", "a=b%26c%3Dd", "a=b&c=d", false},
		{"ambiguous raw", "a=b%26c%3Dd", "a=b%26c%3Dd", true},
		{"split into two", "a=b&c=d", "a=b%26c%3Dd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: tt.raw, Header: http.Header{}}
			sig := hmacSignature(nil, []byte("bg-test-secret"), "1700000000000", "GET", r.Path, tt.signed, nil)
			r.Header.Set(hdrKey, "bg-test-key")
			r.Header.Set(hdrSign, string(sig))
			r.Header.Set(hdrTimestamp, "1700000000000")
			r.Header.Set(hdrPassphrase, "bg-pass-1")
			_, err := verifier{}.Verify(r, testKey(), vectorTime)
			if (err == nil) != tt.accepted {
				t.Errorf("Verify(query %q signed as %q) = %v, want accepted %v", tt.raw, tt.signed, err, tt.accepted)
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
		{"public", http.Header{"Locale": {"en-US"}}, "", false},
		{"key", http.Header{hdrKey: {"abc"}}, "abc", false},
		{"signature without key", http.Header{hdrSign: {"abc"}}, "", true},
		{"two keys", http.Header{hdrKey: {"a", "b"}}, "", true},
		{"space", http.Header{hdrKey: {"a b"}}, "", true},
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

func TestRSA(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exKey := &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "bg-rsa", PrivateKey: priv, Passphrase: exchange.Secret("pp")}
	client := &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "bg-rsa", PublicKey: &priv.PublicKey, Passphrase: exchange.Secret("pp")}
	r := &exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order", Body: vectors[1].req.Body}
	if err := (signer{}).Sign(r, exKey, vectorTime); err != nil {
		t.Fatal(err)
	}
	if _, err := (verifier{}).Verify(r, client, vectorTime); err != nil {
		t.Errorf("Verify(RSA-signed) = %v, want nil", err)
	}
	r.Body = []byte(strings.Replace(string(r.Body), "0.01", "10", 1))
	if _, err := (verifier{}).Verify(r, client, vectorTime); err == nil {
		t.Errorf("Verify(RSA-signed, tampered body) = nil, want error")
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	client.PublicKey = &other.PublicKey
	r.Body = vectors[1].req.Body
	if _, err := (verifier{}).Verify(r, client, vectorTime); err == nil {
		t.Errorf("Verify(RSA-signed, other public key) = nil, want error")
	}
}

func TestSignatureMatchesCryptoHMAC(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 200} {
		secret := []byte(strings.Repeat("k", n))
		body := []byte(strings.Repeat("b", n*3))
		got := string(hmacSignature(nil, secret, "ts", "POST", "/p", "q=1", body))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("tsPOST/p?q=1" + string(body)))
		if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("hmacSignature(secret of %d bytes) = %q, want %q", n, got, want)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	in := &exchange.Request{Method: "GET", Path: "/api/v2/spot/trade/unfilled-orders", RawQuery: "symbol=BTCUSDT&limit=10", Header: http.Header{}}
	r := in.Clone()
	now := time.Unix(1_800_000_000, 123e6)
	if err := (signer{}).Sign(r, testKey(), now); err != nil {
		t.Fatal(err)
	}
	out, err := verifier{}.Verify(r, testKey(), now)
	if err != nil {
		t.Fatalf("Verify(Sign(r)) = %v", err)
	}
	in.RawQuery = "limit=10&symbol=BTCUSDT"
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("Verify(Sign(r)) (-want +got):\n%s", diff)
	}
}

// TestWebSocketLoginVector checks the HMAC primitive against spec §9 b) G3
// (WebSocket login prehash, Python only).
func TestWebSocketLoginVector(t *testing.T) {
	got := string(hmacSignature(nil, []byte("bg-test-secret"), "1700000000", "GET", "/user/verify", "", nil))
	if want := "PogF8hXlSXjJ4POp5N9yU7jP+SuLhD5yIdRZZdJPRdA="; got != want {
		t.Errorf("hmacSignature(G3) = %q, want %q", got, want)
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing (a query already sorted and without escapes).
func TestSignScratch(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reqs := map[string]*exchange.Request{
		"post": {Method: "POST", Path: "/api/v2/spot/trade/place-order", Header: http.Header{},
			Body: []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01"}`)},
		"get": {Method: "GET", Path: "/api/v2/spot/trade/orderInfo", RawQuery: "orderId=1&symbol=BTCUSDT", Header: http.Header{}},
	}
	for name, r := range reqs {
		for _, s := range []signer{{}, {demo: true}} {
			t.Run(name, func(t *testing.T) { exchangetest.CheckSignScratch(t, s, testKey(), now, r, 0) })
		}
	}
}

// TestSignQueryShortcuts holds the allocation-free forms Sign uses to the
// general ones: appendDecodedQuery to decodeQuery, and sortQuery's shortcut
// for an already sorted query to sorting it.
func TestSignQueryShortcuts(t *testing.T) {
	for _, raw := range []string{
		"a=1", "a=1&b=2", "b=2&a=1", "a=1&a=2", "symbol=BTCUSDT&orderId=1", "flag&a=1", "a=&b=",
		"a=%20x&b=+", "B=1&a=2", "limit=10&symbol=BTC%2FUSDT", "a=1&&b=2", "a=%zz", "z=1&y=2&x=3",
	} {
		want, _, werr := decodeQuery(raw)
		got, gerr := appendDecodedQuery(nil, raw)
		if (werr != nil) != (gerr != nil) || string(got) != want {
			t.Errorf("appendDecodedQuery(%q) = %q, %v; decodeQuery says %q, %v", raw, got, gerr, want, werr)
		}
		parts := strings.Split(raw, "&")
		if sortedPlain(raw) && !slices.IsSortedFunc(parts, func(a, b string) int {
			an, _, _ := strings.Cut(a, "=")
			bn, _, _ := strings.Cut(b, "=")
			return strings.Compare(an, bn)
		}) {
			t.Errorf("sortedPlain(%q) = true for a query out of order", raw)
		}
	}
}
