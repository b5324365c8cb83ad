package gate

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// Vectors GT1 and GT2 are from Gate's APIv4 "Authentication" docs
// (https://www.gate.com/docs/developers/apiv4/en/#authentication), recomputed
// in spec/exchanges.md §10b [DOC-VERIFIED]; GT3 is the settle-scoped path
// cross-checked with ccxt 4.5.84 [XCHECK].
var (
	vecKey  = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "key", Secret: exchange.Secret("secret")}
	vecTime = time.Unix(1541993715, 0)
)

var vectors = []struct {
	name string
	req  exchange.Request
	sign string
}{
	{
		name: "GT1 GET with query",
		req:  exchange.Request{Method: "GET", Path: "/api/v4/futures/orders", RawQuery: "contract=BTC_USD&status=finished&limit=50"},
		sign: "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a",
	},
	{
		name: "GT2 POST with body",
		req: exchange.Request{Method: "POST", Path: "/api/v4/futures/orders",
			Body: []byte(`{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}`)},
		sign: "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541fc4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0",
	},
	{
		name: "GT3 settle-scoped path",
		req:  exchange.Request{Method: "GET", Path: "/api/v4/futures/usdt/orders", RawQuery: "contract=BTC_USD&status=finished&limit=50"},
		sign: "60371b3bdb113c5c31f52de2073b828a0cbdfeb00a0778ffca8f295bcfe4c59bcee338a6472f818b7774af56536a93e340bdaf78987070e44b788a833c768a09",
	},
}

func TestSignVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req.Clone()
			if err := (signer{}).Sign(r, vecKey, vecTime); err != nil {
				t.Fatalf("Sign() error = %v", err)
			}
			for h, want := range map[string]string{"KEY": "key", "Timestamp": "1541993715", "SIGN": tt.sign} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("Sign(%s) header %s = %q, want %q", tt.name, h, got, want)
				}
			}
			if r.RawQuery != tt.req.RawQuery || string(r.Body) != string(tt.req.Body) {
				t.Errorf("Sign(%s) changed the query or body", tt.name)
			}
		})
	}
}

// TestBodyHash checks the two body hashes spec §10a quotes.
func TestBodyHash(t *testing.T) {
	b := appendPayload(nil, "GET", "/p", "", nil, []byte("1"))
	if want := "GET\n/p\n\n" + emptyBodyHash + "\n1"; string(b) != want {
		t.Errorf("payload(empty body) = %q, want %q", b, want)
	}
	b = appendPayload(nil, "POST", "/p", "", vectors[1].req.Body, []byte("1"))
	if want := "POST\n/p\n\nad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca\n1"; string(b) != want {
		t.Errorf("payload(GT2 body) = %q, want %q", b, want)
	}
}

func signedVector(req exchange.Request, sign, ts string) *exchange.Request {
	r := req.Clone()
	r.Header = http.Header{}
	r.Header.Set("KEY", "key")
	r.Header.Set("SIGN", sign)
	r.Header.Set("Timestamp", ts)
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestVerifyVectors(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			r := signedVector(tt.req, tt.sign, "1541993715")
			out, err := (verifier{}).Verify(r, vecKey, vecTime.Add(59*time.Second))
			if err != nil {
				t.Fatalf("Verify(%s) error = %v", tt.name, err)
			}
			for _, h := range authHeaders {
				if v := out.Header.Get(h); v != "" {
					t.Errorf("Verify(%s) kept header %s = %q", tt.name, h, v)
				}
			}
			if out.Header.Get("Content-Type") == "" || out.RawQuery != tt.req.RawQuery || string(out.Body) != string(tt.req.Body) {
				t.Errorf("Verify(%s) changed the request: %+v", tt.name, out)
			}
			if r.Header.Get("SIGN") == "" {
				t.Errorf("Verify(%s) modified its input", tt.name)
			}
		})
	}
}

// TestVerifyFractionalTimestamp accepts the float seconds Gate's own SDK
// sends, signed as sent.
func TestVerifyFractionalTimestamp(t *testing.T) {
	req := vectors[0].req
	ts := "1541993715.123456"
	r := signedVector(req, mac(vecKey.Secret, req.Method, req.Path, req.RawQuery, nil, ts), ts)
	if _, err := (verifier{}).Verify(r, vecKey, vecTime); err != nil {
		t.Errorf("Verify(fractional timestamp) = %v, want nil", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	gt1, gt2 := vectors[0], vectors[1]
	tests := []struct {
		name   string
		req    exchange.Request
		sign   string
		mutate func(r *exchange.Request)
		now    time.Time
		client *exchange.Credential
		want   exchange.ErrorKind
	}{
		{name: "stale timestamp", now: vecTime.Add(61 * time.Second), want: exchange.ErrTimestamp},
		{name: "future timestamp", now: vecTime.Add(-61 * time.Second), want: exchange.ErrTimestamp},
		{name: "milliseconds timestamp", mutate: func(r *exchange.Request) { r.Header.Set("Timestamp", "1541993715000") }, want: exchange.ErrTimestamp},
		{name: "signed timestamp", mutate: func(r *exchange.Request) { r.Header.Set("Timestamp", "+1541993715") }, want: exchange.ErrTimestamp},
		{name: "tampered query", mutate: func(r *exchange.Request) { r.RawQuery = "contract=BTC_USD&status=finished&limit=51" }, want: exchange.ErrAuth},
		{name: "reordered query", mutate: func(r *exchange.Request) { r.RawQuery = "status=finished&contract=BTC_USD&limit=50" }, want: exchange.ErrAuth},
		{name: "tampered path", mutate: func(r *exchange.Request) { r.Path = "/api/v4/futures/usdt/orders" }, want: exchange.ErrAuth},
		{name: "tampered body", req: gt2.req, sign: gt2.sign, mutate: func(r *exchange.Request) {
			r.Body = []byte(`{"contract":"BTC_USD","type":"limit","size":1000,"price":6800,"time_in_force":"gtc"}`)
		}, want: exchange.ErrAuth},
		{name: "upper-case hex", mutate: func(r *exchange.Request) {
			r.Header.Set("SIGN", "55F84EA195D6FE57CE62464DAAA7C3C02FA9D1DDE954E4C898289C9A2407A3D6FB3FAF24DEFF16790D726B66AC9F74526668B13BD01029199CC4FCC522418B8A")
		}, want: exchange.ErrAuth},
		{name: "wrong secret", client: &exchange.Credential{APIKey: "key", Secret: exchange.Secret("other")}, want: exchange.ErrAuth},
		{name: "other key", client: &exchange.Credential{APIKey: "other", Secret: vecKey.Secret}, want: exchange.ErrAuth},
		{name: "missing sign", mutate: func(r *exchange.Request) { r.Header.Del("SIGN") }, want: exchange.ErrAuth},
		{name: "missing timestamp", mutate: func(r *exchange.Request) { r.Header.Del("Timestamp") }, want: exchange.ErrAuth},
		{name: "missing key", mutate: func(r *exchange.Request) { r.Header.Del("KEY") }, want: exchange.ErrAuth},
		{name: "repeated key", mutate: func(r *exchange.Request) { r.Header.Add("KEY", "key") }, want: exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, sign := gt1.req, gt1.sign
			if tt.sign != "" {
				req, sign = tt.req, tt.sign
			}
			r := signedVector(req, sign, "1541993715")
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
}

// TestSignDecodedQuery checks that the query is signed without URL-encoding
// (spec §10a) while the wire bytes stay as they are.
func TestSignDecodedQuery(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v4/wallet/deposits", RawQuery: "currency=USDT&from=1&memo=a%2Bb%20c"}
	if err := (signer{}).Sign(r, vecKey, vecTime); err != nil {
		t.Fatal(err)
	}
	want := mac(vecKey.Secret, "GET", "/api/v4/wallet/deposits", "currency=USDT&from=1&memo=a+b c", nil, "1541993715")
	if got := r.Header.Get("SIGN"); got != want {
		t.Errorf("Sign(encoded query) = %q, want %q", got, want)
	}
	if r.RawQuery != "currency=USDT&from=1&memo=a%2Bb%20c" {
		t.Errorf("Sign changed RawQuery to %q", r.RawQuery)
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
		{name: "key", header: http.Header{"Key": {"abc"}}, want: "abc"},
		{name: "sign without key", header: http.Header{"Sign": {"abc"}}, wantErr: true},
		{name: "control character", header: http.Header{"Key": {"a\x7f"}}, wantErr: true},
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

func BenchmarkSign(b *testing.B) {
	r := vectors[1].req.Clone()
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
	r := signedVector(vectors[1].req, vectors[1].sign, "1541993715")
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
