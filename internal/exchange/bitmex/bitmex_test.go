package bitmex

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// Spec §12 b [DOC-VERIFIED]: BitMEX API key usage examples
// (bitmex.com/app/apiKeysUsage, quoted in the official api-connectors).
const (
	vecKey    = "LAqUlngMIQkIUjXMUreyu3qn"
	vecSecret = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"
	vecBody   = `{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}`
)

func cred(key, secret string) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)}
}

type vector struct {
	name, method, path, query, body string
	expires                         int64
	legacy                          bool
	sig                             string
}

var vectors = []vector{
	{"X1", "GET", "/api/v1/instrument", "", "", 1518064236, false, "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00"},
	{"X2", "GET", "/api/v1/instrument", "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", "", 1518064237, false, "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f"},
	{"X3", "POST", "/api/v1/order", "", vecBody, 1518064238, false, "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b"},
	{"X4 legacy nonce", "GET", "/api/v1/instrument", "filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", "", 1429631577690, true, "9f1753e2db64711e39d111bc2ecace3dc9e7f026e6f65b65c4f53d3d14a60e5f"},
	{"X5 legacy nonce", "POST", "/api/v1/order", "", vecBody, 1429631577995, true, "93912e048daa5387759505a76c28d6e92c6a0d782504fc9980f4fb8adfc13e25"},
}

func (v vector) request() *exchange.Request {
	r := &exchange.Request{Method: v.method, Path: v.path, RawQuery: v.query, Header: http.Header{}}
	if v.body != "" {
		r.Body = []byte(v.body)
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func (v vector) signed() *exchange.Request {
	r := v.request()
	r.Header.Set("api-key", vecKey)
	if v.legacy {
		r.Header.Set("api-nonce", strconv.FormatInt(v.expires, 10))
	} else {
		r.Header.Set("api-expires", strconv.FormatInt(v.expires, 10))
	}
	r.Header.Set("api-signature", v.sig)
	return r
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			var got [64]byte
			signature(got[:], []byte(vecSecret), tt.request(), []byte(strconv.FormatInt(tt.expires, 10)))
			if string(got[:]) != tt.sig {
				t.Errorf("signature(%s) = %s, want %s", tt.name, got, tt.sig)
			}
			if tt.legacy {
				return
			}
			// Sign sets api-expires = now + Expiry; pick now so it equals the vector's.
			r := tt.request()
			r.Header.Set("Api-Nonce", "1")
			now := time.Unix(tt.expires, 0).Add(-Expiry)
			if err := (Signer{}).Sign(r, cred(vecKey, vecSecret), now); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"Api-Key": vecKey, "Api-Expires": strconv.FormatInt(tt.expires, 10), "Api-Signature": tt.sig, "Api-Nonce": ""}
			for h, w := range want {
				if got := r.Header.Get(h); got != w {
					t.Errorf("Sign(%s) header %s = %q, want %q", tt.name, h, got, w)
				}
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	key := cred(vecKey, vecSecret)
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(tt.expires-3, 0)
			if tt.legacy {
				now = time.Unix(tt.expires/1000, 0)
			}
			v := NewVerifier()
			r := tt.signed()
			out, err := v.Verify(r, key, now)
			if err != nil {
				t.Fatalf("Verify(%s) = %v", tt.name, err)
			}
			for _, h := range []string{"Api-Key", "Api-Expires", "Api-Nonce", "Api-Signature"} {
				if out.Header.Get(h) != "" {
					t.Errorf("Verify(%s) kept header %s", tt.name, h)
				}
			}
			if out.RawQuery != r.RawQuery || string(out.Body) != string(r.Body) || out.Header.Get("Content-Type") != r.Header.Get("Content-Type") {
				t.Errorf("Verify(%s) changed the request: %+v", tt.name, out)
			}
			if tt.legacy {
				if _, err := v.Verify(tt.signed(), key, now); err == nil || exchange.AsError(err).Kind != exchange.ErrTimestamp {
					t.Errorf("Verify(%s replayed nonce) = %v, want ErrTimestamp", tt.name, err)
				}
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := cred(vecKey, vecSecret)
	x3 := vectors[2]
	now := time.Unix(x3.expires-3, 0)
	tests := []struct {
		name   string
		mutate func(r *exchange.Request)
		now    time.Time
		kind   exchange.ErrorKind
	}{
		{"expired", nil, time.Unix(x3.expires, 0), exchange.ErrTimestamp},
		{"too far ahead", nil, time.Unix(x3.expires, 0).Add(-MaxExpiresAhead - time.Second), exchange.ErrTimestamp},
		{"tampered body", func(r *exchange.Request) { r.Body = []byte(strings.Replace(vecBody, "98", "980", 1)) }, now, exchange.ErrAuth},
		{"tampered query", func(r *exchange.Request) { r.RawQuery = "a=1" }, now, exchange.ErrAuth},
		{"tampered path", func(r *exchange.Request) { r.Path = "/api/v1/user/requestWithdrawal" }, now, exchange.ErrAuth},
		{"tampered method", func(r *exchange.Request) { r.Method = "PUT" }, now, exchange.ErrAuth},
		{"upper-case signature", func(r *exchange.Request) { r.Header.Set("api-signature", strings.ToUpper(x3.sig)) }, now, exchange.ErrAuth},
		{"other key", func(r *exchange.Request) { r.Header.Set("api-key", "someone") }, now, exchange.ErrAuth},
		{"missing key", func(r *exchange.Request) { r.Header.Del("api-key") }, now, exchange.ErrAuth},
		{"missing signature", func(r *exchange.Request) { r.Header.Del("api-signature") }, now, exchange.ErrAuth},
		{"missing expires", func(r *exchange.Request) { r.Header.Del("api-expires") }, now, exchange.ErrAuth},
		{"expires and nonce", func(r *exchange.Request) { r.Header.Set("api-nonce", "5") }, now, exchange.ErrAuth},
		{"repeated header", func(r *exchange.Request) { r.Header.Add("api-expires", "1518064238") }, now, exchange.ErrAuth},
		{"signed expires", func(r *exchange.Request) { r.Header.Set("api-expires", "+1518064238") }, now, exchange.ErrAuth},
		{"all auth removed", func(r *exchange.Request) {
			r.Header.Del("api-key")
			r.Header.Del("api-expires")
			r.Header.Del("api-signature")
		}, now, exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := x3.signed()
			if tt.mutate != nil {
				tt.mutate(r)
			}
			_, err := NewVerifier().Verify(r, key, tt.now)
			if err == nil || exchange.AsError(err).Kind != tt.kind {
				t.Errorf("Verify(%s) = %v, want kind %d", tt.name, err, tt.kind)
			}
			if err != nil && strings.Contains(err.Error(), vecSecret) {
				t.Errorf("Verify(%s) error shows the secret", tt.name)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   string
		err    bool
	}{
		{"public", http.Header{}, "", false},
		{"signed", vectors[0].signed().Header, vecKey, false},
		{"signature without key", http.Header{"Api-Signature": {"x"}}, "", true},
		{"two keys", http.Header{"Api-Key": {"a", "b"}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewVerifier().ClientKey(&exchange.Request{Header: tt.header})
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("ClientKey(%s) = %q, %v, want %q, error %v", tt.name, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestSignRejectsBadKey(t *testing.T) {
	for _, k := range []*exchange.Credential{nil, cred("", "s"), cred("k", ""), cred("a b", "s"), cred("a\nb", "s")} {
		if err := (Signer{}).Sign(vectors[0].request(), k, time.Now()); err == nil {
			t.Errorf("Sign(key %v) = nil, want error", k)
		}
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing.
func TestSignScratch(t *testing.T) {
	now := time.Unix(1518064230, 0)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			exchangetest.CheckSignScratch(t, Signer{}, cred(vecKey, vecSecret), now, v.request(), 0)
		})
	}
}
