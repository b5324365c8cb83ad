package deribit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

func cred(id, secret string) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: id, Secret: exchange.Secret(secret)}
}

// Spec §11 b: vector D2 [XCHECK], REST header.
const (
	d2Secret = "deribit-test-secret"
	d2ID     = "deribit-test-id"
	d2TS     = 1700000000000
	d2Sig    = "dfd0ed7fd4ba215a88b289ee692ee33656d621e1830fe6b85b904a50da5f1cd8"
	d2Header = "deri-hmac-sha256 id=deribit-test-id,ts=1700000000000,sig=" + d2Sig + ",nonce=abcd1234"
)

func d2Request() *exchange.Request {
	return &exchange.Request{
		Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{},
	}
}

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name   string
		req    *exchange.Request
		key    *exchange.Credential
		ts     int64
		nonce  string
		header string
	}{
		// spec §11 b D2 [XCHECK]
		{"D2", d2Request(), cred(d2ID, d2Secret), d2TS, "abcd1234", d2Header},
		{
			"post body", &exchange.Request{Method: "post", Path: "/api/v2/private/buy", Body: []byte(`{"x":1}`)},
			cred("k", "s"), 1, "n",
			"deri-hmac-sha256 id=k,ts=1,sig=" + hexMAC("s", "1\nn\nPOST\n/api/v2/private/buy\n{\"x\":1}\n") + ",nonce=n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := signWith(tt.req, tt.key, tt.ts, []byte(tt.nonce)); err != nil {
				t.Fatal(err)
			}
			if got := tt.req.Header.Get("Authorization"); got != tt.header {
				t.Errorf("Sign(%s) = %q, want %q", tt.name, got, tt.header)
			}
		})
	}
}

func hexMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestClientSignatureVectors(t *testing.T) {
	tests := []struct {
		name, secret string
		ts           int64
		nonce, data  string
		want         string
	}{
		// spec §11 b D1 [DOC-VERIFIED], Deribit docs public/auth client_signature example.
		{"D1", "AMANDASECRECT", 1576074319000, "1iqt2wls", "", "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"},
		// spec §11 b D3 (Python-computed).
		{"D3", "deribit-test-secret", 1700000000000, "abcd1234", "", "ea7fbd057fefc5bff1bade2ded9efc715f7212c92a786a234c337cd97e8464e0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientSignature([]byte(tt.secret), tt.ts, tt.nonce, tt.data); got != tt.want {
				t.Errorf("clientSignature(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	// The signer completes the inspection request with the same grant.
	r := Inspector{}.InspectRequest()
	if err := signWith(r, cred("AMANDA", "AMANDASECRECT"), 1576074319000, []byte("1iqt2wls")); err != nil {
		t.Fatal(err)
	}
	want := "grant_type=client_signature&data=&client_id=AMANDA&timestamp=1576074319000&nonce=1iqt2wls&signature=56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
	if r.RawQuery != want {
		t.Errorf("Sign(public/auth) query = %q, want %q", r.RawQuery, want)
	}
}

func TestSignFreshNonce(t *testing.T) {
	k := cred("id", "secret")
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		r := d2Request()
		if err := (Signer{}).Sign(r, k, time.UnixMilli(d2TS)); err != nil {
			t.Fatal(err)
		}
		a, ok, err := parseAuth(r.Header)
		if !ok || err != nil {
			t.Fatalf("parseAuth(%q) = %v, %v", r.Header.Get("Authorization"), ok, err)
		}
		if seen[a.nonce] {
			t.Fatalf("Sign reused nonce %q", a.nonce)
		}
		seen[a.nonce] = true
		if _, err := NewVerifier().Verify(r, k, time.UnixMilli(d2TS)); err != nil {
			t.Fatalf("Verify(Sign(r)) = %v", err)
		}
	}
	for _, bad := range []*exchange.Credential{nil, cred("", "s"), cred("id", ""), cred("a,b", "s"), cred("a b", "s")} {
		if err := (Signer{}).Sign(d2Request(), bad, time.Now()); err == nil {
			t.Errorf("Sign(key %v) = nil, want error", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	key := cred(d2ID, d2Secret)
	now := time.UnixMilli(d2TS)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(d2ID+":"+d2Secret))
	badBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte(d2ID+":nope"))
	tests := []struct {
		name   string
		header []string
		mutate func(r *exchange.Request)
		now    time.Time
		kind   exchange.ErrorKind // 0 = accepted
	}{
		{"D2 accepted", []string{d2Header}, nil, now, 0},
		{"D2 59s later", []string{d2Header}, nil, now.Add(59 * time.Second), 0},
		{"D2 59s early", []string{d2Header}, nil, now.Add(-59 * time.Second), 0},
		{"stale", []string{d2Header}, nil, now.Add(61 * time.Second), exchange.ErrTimestamp},
		{"future", []string{d2Header}, nil, now.Add(-61 * time.Second), exchange.ErrTimestamp},
		{"scheme case", []string{strings.Replace(d2Header, "deri-hmac-sha256", "DERI-HMAC-SHA256", 1)}, nil, now, 0},
		{"tampered query", []string{d2Header}, func(r *exchange.Request) { r.RawQuery = "currency=ETH" }, now, exchange.ErrAuth},
		{"tampered path", []string{d2Header}, func(r *exchange.Request) { r.Path = "/api/v2/private/withdraw" }, now, exchange.ErrAuth},
		{"added body", []string{d2Header}, func(r *exchange.Request) { r.Body = []byte("{}") }, now, exchange.ErrAuth},
		{"method", []string{d2Header}, func(r *exchange.Request) { r.Method = "POST" }, now, exchange.ErrAuth},
		{"upper-case sig", []string{strings.Replace(d2Header, d2Sig, strings.ToUpper(d2Sig), 1)}, nil, now, exchange.ErrAuth},
		{"short sig", []string{strings.Replace(d2Header, d2Sig, d2Sig[:10], 1)}, nil, now, exchange.ErrAuth},
		{"other id", []string{strings.Replace(d2Header, "id=deribit-test-id", "id=other", 1)}, nil, now, exchange.ErrAuth},
		{"other nonce", []string{strings.Replace(d2Header, "nonce=abcd1234", "nonce=abcd1235", 1)}, nil, now, exchange.ErrAuth},
		{"missing nonce", []string{strings.Replace(d2Header, ",nonce=abcd1234", "", 1)}, nil, now, exchange.ErrAuth},
		{"repeated field", []string{d2Header + ",nonce=x"}, nil, now, exchange.ErrAuth},
		{"extra field", []string{strings.Replace(d2Header, ",nonce", ",data=x,nonce", 1)}, nil, now, exchange.ErrAuth},
		{"signed ts", []string{strings.Replace(d2Header, "ts=", "ts=+", 1)}, nil, now, exchange.ErrAuth},
		{"two headers", []string{d2Header, d2Header}, nil, now, exchange.ErrAuth},
		{"no auth", nil, nil, now, exchange.ErrAuth},
		{"bearer", []string{"Bearer abc"}, nil, now, exchange.ErrAuth},
		{"basic", []string{basic}, nil, now, 0},
		{"basic wrong secret", []string{badBasic}, nil, now, exchange.ErrAuth},
		{"garbage", []string{"deri-hmac-sha256"}, nil, now, exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := d2Request()
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			if tt.mutate != nil {
				tt.mutate(r)
			}
			out, err := NewVerifier().Verify(r, key, tt.now)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
				}
				if out.Header.Get("Authorization") != "" || out.RawQuery != r.RawQuery || out.Path != r.Path {
					t.Errorf("Verify(%s) = %+v, want auth removed and the rest unchanged", tt.name, out)
				}
				if r.Header.Get("Authorization") == "" {
					t.Errorf("Verify(%s) changed its input", tt.name)
				}
				return
			}
			if got := exchange.AsError(err); err == nil || got.Kind != tt.kind {
				t.Errorf("Verify(%s) = %v, want kind %d", tt.name, err, tt.kind)
			}
			if err != nil && strings.Contains(err.Error(), d2Secret) {
				t.Errorf("Verify(%s) error %q shows the secret", tt.name, err)
			}
		})
	}
}

func TestVerifyReplay(t *testing.T) {
	v := NewVerifier()
	key := cred(d2ID, d2Secret)
	r := d2Request()
	r.Header.Set("Authorization", d2Header)
	if _, err := v.Verify(r, key, time.UnixMilli(d2TS)); err != nil {
		t.Fatalf("Verify(first) = %v", err)
	}
	_, err := v.Verify(r, key, time.UnixMilli(d2TS+1000))
	if got := exchange.AsError(err); err == nil || got.Kind != exchange.ErrTimestamp {
		t.Errorf("Verify(replay) = %v, want ErrTimestamp", err)
	}
	// A bad signature with a fresh nonce does not consume it.
	bad := d2Request()
	bad.Header.Set("Authorization", strings.Replace(strings.Replace(d2Header, "abcd1234", "fresh", 1), d2Sig, strings.Repeat("0", 64), 1))
	if _, err := v.Verify(bad, key, time.UnixMilli(d2TS)); err == nil {
		t.Fatal("Verify(bad signature) = nil")
	}
	if !v.replay.add(d2ID, "fresh", d2TS, d2TS) {
		t.Error("a rejected request consumed its nonce")
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache(3)
	for i, n := range []string{"a", "b", "c"} {
		if !c.add("k", n, 1000, 1000) {
			t.Fatalf("add(%d) = false", i)
		}
	}
	if c.add("k", "d", 1000, 1000) {
		t.Error("add(full cache) = true, want false (fail closed)")
	}
	later := int64(1000) + 3*Window.Milliseconds()
	if !c.add("k", "d", later, later) {
		t.Error("add after expiry = false, want true")
	}
	if len(c.seen) != 1 {
		t.Errorf("len(seen) = %d after sweep, want 1", len(c.seen))
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name, header, want string
		err                bool
	}{
		{"public", "", "", false},
		{"hmac", d2Header, d2ID, false},
		{"basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("cid:sec")), "cid", false},
		{"bearer", "Bearer tok", "", true},
		{"bad basic", "Basic !!!", "", true},
		{"unknown", "Digest x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := d2Request()
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, err := NewVerifier().ClientKey(r)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("ClientKey(%s) = %q, %v, want %q, error %v", tt.name, got, err, tt.want, tt.err)
			}
			if err != nil && exchange.AsError(err).Kind != exchange.ErrAuth {
				t.Errorf("ClientKey(%s) error kind = %d, want ErrAuth", tt.name, exchange.AsError(err).Kind)
			}
		})
	}
}

// zeroReader reads zeros: a fixed nonce, so two signings compare equal.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing, with a fixed nonce source and with crypto/rand.
func TestSignScratch(t *testing.T) {
	reqs := map[string]*exchange.Request{
		"get":  d2Request(),
		"post": {Method: "POST", Path: "/api/v2", Header: http.Header{}, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10}}`)},
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			exchangetest.CheckSignScratch(t, Signer{rand: zeroReader{}}, cred(d2ID, d2Secret), now0, r, 0)
		})
	}
	r := d2Request()
	r.Scratch = exchange.NewSignScratch()
	key := cred(d2ID, d2Secret)
	allocs := testing.AllocsPerRun(100, func() {
		r.Scratch.Reset()
		if err := (Signer{}).Sign(r, key, now0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("Sign with crypto/rand nonces and a warmed scratch: %v allocations per call, want 0", allocs)
	}
}
