package bybit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

func testKey() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bybit-test-key", Secret: exchange.Secret("bybit-test-secret")}
}

// vectors are spec/exchanges.md §7 b) Y1 and Y2 [XCHECK]: key
// bybit-test-key, secret bybit-test-secret, recvWindow 5000, computed with
// Python hmac and with ccxt 4.5.84 bybit.sign().
var vectors = []struct {
	name string
	req  exchange.Request
	ms   int64
	sig  string
}{
	{"Y1 GET query", exchange.Request{Method: "GET", Path: "/v5/order/realtime", RawQuery: "category=option&symbol=BTC-29JUL22-25000-C"},
		1658384314791, "957706307943ca5f3b98fb191220f4d846f72eb19ea3bbc68537df0d3a58fa55"},
	{"Y2 POST json", exchange.Request{Method: "POST", Path: "/v5/order/create",
		Body: []byte(`{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000"}`)},
		1658385579423, "6117926481a5473fac373527a3a96db60daa6e073dc5e8dd57ffc823f1c7f4db"},
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.Clone()
			if err := (signer{}).Sign(r, testKey(), time.UnixMilli(tt.ms)); err != nil {
				t.Fatalf("Sign() = %v", err)
			}
			want := http.Header{hdrKey: {"bybit-test-key"}, hdrSign: {tt.sig}, hdrTimestamp: {formatMs(tt.ms)}, hdrRecvWindow: {"5000"}}
			if len(r.Body) > 0 {
				want["Content-Type"] = []string{"application/json"}
			}
			if diff := cmp.Diff(want, r.Header); diff != "" {
				t.Errorf("Sign(%s) headers (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func formatMs(ms int64) string { return strconv.FormatInt(ms, 10) }

func signedVector(t testing.TB, i int) *exchange.Request {
	t.Helper()
	r := vectors[i].req.Clone()
	r.Header = http.Header{}
	r.Header.Set("X-BAPI-API-KEY", "bybit-test-key")
	r.Header.Set("X-BAPI-SIGN", vectors[i].sig)
	r.Header.Set("X-BAPI-TIMESTAMP", formatMs(vectors[i].ms))
	r.Header.Set("X-BAPI-RECV-WINDOW", "5000")
	r.Header.Set("X-BAPI-SIGN-TYPE", "2")
	r.Header.Set("Referer", "CCXT")
	return r
}

func TestVerifyVectors(t *testing.T) {
	for i, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			in := signedVector(t, i)
			before := in.Clone()
			out, err := verifier{}.Verify(in, testKey(), time.UnixMilli(tt.ms+4000))
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			want := tt.req.Clone()
			want.Header = http.Header{"Referer": {"CCXT"}}
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
	ts := time.UnixMilli(vectors[0].ms)
	tests := []struct {
		name   string
		i      int
		mutate func(r *exchange.Request)
		client func(c *exchange.Credential)
		now    time.Time
		kind   exchange.ErrorKind
	}{
		{name: "tampered query", mutate: func(r *exchange.Request) { r.RawQuery = "category=linear&symbol=BTC-29JUL22-25000-C" }, kind: exchange.ErrAuth},
		{name: "tampered body", i: 1, mutate: func(r *exchange.Request) { r.Body = []byte(strings.Replace(string(r.Body), "0.01", "10", 1)) }, kind: exchange.ErrAuth},
		{name: "upper-case signature", mutate: func(r *exchange.Request) { r.Header.Set(hdrSign, strings.ToUpper(vectors[0].sig)) }, kind: exchange.ErrAuth},
		{name: "missing signature", mutate: func(r *exchange.Request) { r.Header.Del(hdrSign) }, kind: exchange.ErrAuth},
		{name: "missing timestamp", mutate: func(r *exchange.Request) { r.Header.Del(hdrTimestamp) }, kind: exchange.ErrTimestamp},
		{name: "missing key", mutate: func(r *exchange.Request) { r.Header.Del(hdrKey) }, kind: exchange.ErrAuth},
		{name: "other recv window", mutate: func(r *exchange.Request) { r.Header.Set(hdrRecvWindow, "6000") }, kind: exchange.ErrAuth},
		{name: "huge recv window", mutate: func(r *exchange.Request) { r.Header.Set(hdrRecvWindow, "600000") }, kind: exchange.ErrTimestamp},
		{name: "negative recv window", mutate: func(r *exchange.Request) { r.Header.Set(hdrRecvWindow, "-1") }, kind: exchange.ErrTimestamp},
		{name: "repeated key", mutate: func(r *exchange.Request) { r.Header.Add(hdrKey, "bybit-test-key") }, kind: exchange.ErrAuth},
		{name: "unknown key", mutate: func(r *exchange.Request) { r.Header.Set(hdrKey, "other") }, kind: exchange.ErrAuth},
		{name: "seconds timestamp", mutate: func(r *exchange.Request) { r.Header.Set(hdrTimestamp, "1658384314") }, kind: exchange.ErrTimestamp},
		{name: "older than recv window", now: ts.Add(5001 * time.Millisecond), kind: exchange.ErrTimestamp},
		{name: "a second ahead", now: ts.Add(-time.Second), kind: exchange.ErrTimestamp},
		{name: "unsigned query on POST", i: 1, mutate: func(r *exchange.Request) { r.RawQuery = "qty=100" }, kind: exchange.ErrBadRequest},
		{name: "unsigned body on GET", mutate: func(r *exchange.Request) { r.Body = []byte(`{"qty":"100"}`) }, kind: exchange.ErrBadRequest},
		{name: "wrong client secret", client: func(c *exchange.Credential) { c.Secret = exchange.Secret("x") }, kind: exchange.ErrAuth},
		{name: "rsa client for hmac signature", client: func(c *exchange.Credential) { c.Kind = exchange.KeyRSA }, kind: exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedVector(t, tt.i)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			c := testKey()
			if tt.client != nil {
				tt.client(c)
			}
			at := tt.now
			if at.IsZero() {
				at = time.UnixMilli(vectors[tt.i].ms)
			}
			out, err := verifier{}.Verify(r, c, at)
			if err == nil {
				t.Fatalf("Verify(%s) = %v, nil; want error", tt.name, out)
			}
			if got := exchange.AsError(err).Kind; got != tt.kind {
				t.Errorf("Verify(%s) kind = %v, want %v (%v)", tt.name, got, tt.kind, err)
			}
			if strings.Contains(err.Error(), "bybit-test-secret") {
				t.Errorf("Verify(%s) error %q reveals the secret", tt.name, err)
			}
		})
	}
}

// TestVerifyWindowEdges checks Bybit's rule server - recvWindow <= ts <
// server + 1000 at its edges.
func TestVerifyWindowEdges(t *testing.T) {
	ts := time.UnixMilli(vectors[0].ms)
	tests := []struct {
		now time.Time
		ok  bool
	}{
		{ts.Add(5000 * time.Millisecond), true},
		{ts.Add(5001 * time.Millisecond), false},
		{ts.Add(-999 * time.Millisecond), true},
		{ts.Add(-1000 * time.Millisecond), false},
	}
	for _, tt := range tests {
		_, err := verifier{}.Verify(signedVector(t, 0), testKey(), tt.now)
		if (err == nil) != tt.ok {
			t.Errorf("Verify(ts, now=ts%+v) = %v, want ok %v", tt.now.Sub(ts), err, tt.ok)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		query   string
		want    string
		wantErr bool
	}{
		{"public", http.Header{"Referer": {"x"}}, "category=spot", "", false},
		{"key", http.Header{hdrKey: {"abc"}}, "", "abc", false},
		{"window without key", http.Header{hdrRecvWindow: {"5000"}}, "", "", true},
		{"two keys", http.Header{hdrKey: {"a", "b"}}, "", "", true},
		{"non-ascii", http.Header{hdrKey: {"ké"}}, "", "", true},
		{"legacy query signing", http.Header{}, "api_key=k&sign=abc&timestamp=1", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifier{}.ClientKey(&exchange.Request{Header: tt.header, RawQuery: tt.query})
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ClientKey(%v, %q) = %q, %v; want %q, error %v", tt.header, tt.query, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRSA(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exKey := &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "by-rsa", PrivateKey: priv}
	client := &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "by-rsa", PublicKey: &priv.PublicKey}
	now := time.UnixMilli(vectors[1].ms)
	r := vectors[1].req.Clone()
	if err := (signer{}).Sign(r, exKey, now); err != nil {
		t.Fatal(err)
	}
	if _, err := (verifier{}).Verify(r, client, now); err != nil {
		t.Errorf("Verify(RSA-signed) = %v, want nil", err)
	}
	r.Body = []byte(strings.Replace(string(r.Body), "0.01", "10", 1))
	if _, err := (verifier{}).Verify(r, client, now); err == nil {
		t.Errorf("Verify(RSA-signed, tampered body) = nil, want error")
	}
}

func TestSignatureMatchesCryptoHMAC(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 200} {
		secret := []byte(strings.Repeat("k", n))
		body := []byte(strings.Repeat("b", n*3))
		got := string(hmacSignature(nil, secret, "1", "key", "5000", body))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("1key5000" + string(body)))
		if want := hex.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("hmacSignature(secret of %d bytes) = %q, want %q", n, got, want)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	in := &exchange.Request{Method: "POST", Path: "/v5/order/create", Header: http.Header{"Referer": {"bot"}},
		Body: []byte(`{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.5"}`)}
	r := in.Clone()
	r.Header.Set(hdrSignType, "2")
	now := time.Unix(1_800_000_000, 0)
	if err := (signer{}).Sign(r, testKey(), now); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Header[hdrSignType]; ok {
		t.Errorf("Sign() kept %s", hdrSignType)
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

// TestVerifyPathNotSigned documents a property of Bybit's scheme: the
// signature covers timestamp, key, window and payload but not the method or
// path, so the same signed payload verifies on another endpoint within the
// window. The gateway describes and checks every request on its own path,
// so such a replay is still held to the credential's policy.
func TestVerifyPathNotSigned(t *testing.T) {
	r := signedVector(t, 0)
	r.Path = "/v5/position/list"
	if _, err := (verifier{}).Verify(r, testKey(), time.UnixMilli(vectors[0].ms)); err != nil {
		t.Errorf("Verify(other path, same payload) = %v; Bybit does not sign the path", err)
	}
}

// TestWebSocketAuthVector checks the HMAC primitive against spec §7 b) Y3
// (WebSocket auth string "GET/realtime" + expires, Python only).
func TestWebSocketAuthVector(t *testing.T) {
	got := string(hmacSignature(nil, []byte("bybit-test-secret"), "GET/realtime1662350400000", "", "", nil))
	if want := "e5afa359fdaabfeeae6a8755687997f43c4696196a957502edf608dcd3c83caa"; got != want {
		t.Errorf("hmacSignature(Y3) = %q, want %q", got, want)
	}
}

// TestSignScratch: with a scratch the signer writes the same request and,
// for an HMAC key, allocates nothing.
func TestSignScratch(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	reqs := map[string]*exchange.Request{
		"post": {Method: "POST", Path: "/v5/order/create", Header: http.Header{},
			Body: []byte(`{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000"}`)},
		"get": {Method: "GET", Path: "/v5/order/realtime", RawQuery: "category=spot&symbol=BTCUSDT&openOnly=0", Header: http.Header{}},
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) { exchangetest.CheckSignScratch(t, signer{}, testKey(), now, r, 0) })
	}
}
