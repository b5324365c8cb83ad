package kucoin

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// Vectors K1-K3 from spec/exchanges.md §8b [XCHECK]: no official vector
// exists; these were computed with an independent implementation of the
// documented algorithm and with ccxt 4.5.84.
var (
	vecKey = &exchange.Credential{
		Kind:       exchange.KeyHMAC,
		APIKey:     "kc-test-key",
		Secret:     exchange.Secret("kc-test-secret"),
		Passphrase: exchange.Secret("kc-test-pass"),
	}
	vecTime = time.UnixMilli(1700000000000)
)

const vecPassphrase = "4vLi5ZyAZK89HGxtp452p/eH4VWJoGGaUXkbEvin9vk=" // K3

var vectors = []struct {
	name string
	req  exchange.Request
	sign string
}{
	{
		name: "K1 GET with query",
		req:  exchange.Request{Method: "GET", Path: "/api/v1/accounts", RawQuery: "currency=USDT"},
		sign: "FNXeW+Skm+vh84xfzJRDHdUiIU/tfmPxfSbyh1v22Bg=",
	},
	{
		name: "K2 POST with JSON body",
		req: exchange.Request{Method: "POST", Path: "/api/v1/hf/orders",
			Body: []byte(`{"clientOid":"5c52e11203aa677f33e493fb","side":"buy","symbol":"BTC-USDT","type":"limit","price":"30000","size":"0.01"}`)},
		sign: "hgd2K+VTqA5R12FQV/GCrLOTWTLVNHxk39L/i6rrnHo=",
	},
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.Clone()
			if err := (signer{}).Sign(r, vecKey, vecTime); err != nil {
				t.Fatalf("Sign() error = %v", err)
			}
			want := map[string]string{
				"KC-API-KEY":         "kc-test-key",
				"KC-API-SIGN":        tt.sign,
				"KC-API-TIMESTAMP":   "1700000000000",
				"KC-API-PASSPHRASE":  vecPassphrase,
				"KC-API-KEY-VERSION": "2",
			}
			for h, w := range want {
				if got := r.Header.Get(h); got != w {
					t.Errorf("Sign(%s) header %s = %q, want %q", tt.name, h, got, w)
				}
			}
			if r.RawQuery != tt.req.RawQuery || string(r.Body) != string(tt.req.Body) {
				t.Errorf("Sign(%s) changed the query or body", tt.name)
			}
		})
	}
}

// signedVector returns the vector request with the bot's auth headers as a
// KuCoin client would send them.
func signedVector(req exchange.Request, sign string) *exchange.Request {
	r := req.Clone()
	r.Header = http.Header{}
	r.Header.Set("KC-API-KEY", "kc-test-key")
	r.Header.Set("KC-API-SIGN", sign)
	r.Header.Set("KC-API-TIMESTAMP", "1700000000000")
	r.Header.Set("KC-API-PASSPHRASE", vecPassphrase)
	r.Header.Set("KC-API-KEY-VERSION", "2")
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestVerifyVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := signedVector(tt.req, tt.sign)
			r.Header.Set("KC-API-PARTNER", "ccxt")
			out, err := (verifier{}).Verify(r, vecKey, vecTime.Add(4*time.Second))
			if err != nil {
				t.Fatalf("Verify(%s) error = %v", tt.name, err)
			}
			for _, h := range authHeaders {
				if v := out.Header.Get(h); v != "" {
					t.Errorf("Verify(%s) kept header %s = %q", tt.name, h, v)
				}
			}
			if out.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Verify(%s) dropped Content-Type", tt.name)
			}
			if out.RawQuery != tt.req.RawQuery || string(out.Body) != string(tt.req.Body) || out.Path != tt.req.Path {
				t.Errorf("Verify(%s) changed the request: %+v", tt.name, out)
			}
			if r.Header.Get("KC-API-SIGN") == "" {
				t.Errorf("Verify(%s) modified its input", tt.name)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k1 := vectors[0]
	k2 := vectors[1]
	tests := []struct {
		name   string
		mutate func(r *exchange.Request)
		now    time.Time
		client *exchange.Credential
		want   exchange.ErrorKind
	}{
		{name: "stale timestamp", now: vecTime.Add(5001 * time.Millisecond), want: exchange.ErrTimestamp},
		{name: "future timestamp", now: vecTime.Add(-5001 * time.Millisecond), want: exchange.ErrTimestamp},
		{name: "non-numeric timestamp", mutate: func(r *exchange.Request) { r.Header.Set("KC-API-TIMESTAMP", "17e11") }, want: exchange.ErrTimestamp},
		{name: "tampered query", mutate: func(r *exchange.Request) { r.RawQuery = "currency=BTC" }, want: exchange.ErrAuth},
		{name: "tampered path", mutate: func(r *exchange.Request) { r.Path = "/api/v1/accountz" }, want: exchange.ErrAuth},
		{name: "tampered method", mutate: func(r *exchange.Request) { r.Method = "DELETE" }, want: exchange.ErrAuth},
		{name: "bad signature", mutate: func(r *exchange.Request) { r.Header.Set("KC-API-SIGN", "AAAA"+k1.sign[4:]) }, want: exchange.ErrAuth},
		{name: "plain passphrase", mutate: func(r *exchange.Request) { r.Header.Set("KC-API-PASSPHRASE", "kc-test-pass") }, want: exchange.ErrPassphrase},
		{name: "wrong passphrase", client: &exchange.Credential{APIKey: "kc-test-key", Secret: vecKey.Secret, Passphrase: exchange.Secret("other")}, want: exchange.ErrPassphrase},
		{name: "wrong secret", client: &exchange.Credential{APIKey: "kc-test-key", Secret: exchange.Secret("x"), Passphrase: vecKey.Passphrase}, want: exchange.ErrPassphrase},
		{name: "other key", client: &exchange.Credential{APIKey: "other", Secret: vecKey.Secret, Passphrase: vecKey.Passphrase}, want: exchange.ErrAuth},
		{name: "missing sign", mutate: func(r *exchange.Request) { r.Header.Del("KC-API-SIGN") }, want: exchange.ErrAuth},
		{name: "missing passphrase", mutate: func(r *exchange.Request) { r.Header.Del("KC-API-PASSPHRASE") }, want: exchange.ErrAuth},
		{name: "missing key", mutate: func(r *exchange.Request) { r.Header.Del("KC-API-KEY") }, want: exchange.ErrAuth},
		{name: "key version 1", mutate: func(r *exchange.Request) { r.Header.Set("KC-API-KEY-VERSION", "1") }, want: exchange.ErrAuth},
		{name: "repeated sign", mutate: func(r *exchange.Request) { r.Header.Add("KC-API-SIGN", k1.sign) }, want: exchange.ErrAuth},
		{name: "client without passphrase", client: &exchange.Credential{APIKey: "kc-test-key", Secret: vecKey.Secret}, want: exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedVector(k1.req, k1.sign)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			now, client := vecTime, vecKey
			if !tt.now.IsZero() {
				now = tt.now
			}
			if tt.client != nil {
				client = tt.client
			}
			out, err := (verifier{}).Verify(r, client, now)
			var e *exchange.Error
			if !errors.As(err, &e) || e.Kind != tt.want {
				t.Fatalf("Verify(%s) = %v, %v, want error kind %v", tt.name, out, err, tt.want)
			}
		})
	}
	t.Run("tampered body", func(t *testing.T) {
		r := signedVector(k2.req, k2.sign)
		r.Body = []byte(`{"clientOid":"5c52e11203aa677f33e493fb","side":"buy","symbol":"BTC-USDT","type":"limit","price":"30000","size":"10.01"}`)
		if _, err := (verifier{}).Verify(r, vecKey, vecTime); err == nil {
			t.Errorf("Verify(tampered body) = nil error, want ErrAuth")
		}
	})
}

// TestSignDecodedQuery checks KuCoin's rule that the query is signed without
// URL-encoding (spec §8a: the docs sign passphrase=abc!@#11 while sending
// abc%21%40%2311).
func TestSignDecodedQuery(t *testing.T) {
	r := &exchange.Request{Method: "DELETE", Path: "/api/v1/sub/api-key", RawQuery: "apiKey=67b3&subName=test&passphrase=abc%21%40%2311"}
	if err := (signer{}).Sign(r, vecKey, vecTime); err != nil {
		t.Fatal(err)
	}
	want := mac(vecKey.Secret, "1700000000000", "DELETE", "/api/v1/sub/api-key", "apiKey=67b3&subName=test&passphrase=abc!@#11", nil)
	if got := r.Header.Get("KC-API-SIGN"); got != want {
		t.Errorf("Sign(encoded query) = %q, want %q", got, want)
	}
	if r.RawQuery != "apiKey=67b3&subName=test&passphrase=abc%21%40%2311" {
		t.Errorf("Sign changed RawQuery to %q", r.RawQuery)
	}
	// The verifier accepts both the documented form and one over the
	// wire bytes.
	for _, q := range []string{"apiKey=67b3&subName=test&passphrase=abc!@#11", r.RawQuery} {
		in := signedVector(exchange.Request{Method: "DELETE", Path: r.Path, RawQuery: r.RawQuery},
			mac(vecKey.Secret, "1700000000000", "DELETE", r.Path, q, nil))
		if _, err := (verifier{}).Verify(in, vecKey, vecTime); err != nil {
			t.Errorf("Verify(signed over %q) = %v, want nil", q, err)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		want    string
		wantErr bool
	}{
		{name: "public", header: http.Header{}, want: ""},
		{name: "nil header", header: nil, want: ""},
		{name: "key", header: http.Header{"Kc-Api-Key": {"abc"}}, want: "abc"},
		{name: "sign without key", header: http.Header{"Kc-Api-Sign": {"abc"}}, wantErr: true},
		{name: "control character", header: http.Header{"Kc-Api-Key": {"a\x01"}}, wantErr: true},
		{name: "two keys", header: http.Header{"Kc-Api-Key": {"a", "b"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (verifier{}).ClientKey(&exchange.Request{Header: tt.header})
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ClientKey(%v) = %q, %v, want %q (error %v)", tt.header, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSignRejectsIncompleteKey(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v1/accounts"}
	if err := (signer{}).Sign(r, &exchange.Credential{APIKey: "k", Secret: exchange.Secret("s")}, vecTime); err == nil {
		t.Errorf("Sign(no passphrase) = nil, want error")
	}
}

func BenchmarkSign(b *testing.B) {
	req := vectors[1].req
	r := req.Clone()
	r.Scratch = exchange.NewSignScratch()
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		if err := (signer{}).Sign(r, vecKey, vecTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := signedVector(vectors[1].req, vectors[1].sign)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (verifier{}).Verify(r, vecKey, vecTime); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing.
func TestSignScratch(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) { exchangetest.CheckSignScratch(t, signer{}, vecKey, vecTime, &v.req, 0) })
	}
}
