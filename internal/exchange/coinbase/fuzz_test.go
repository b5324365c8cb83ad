package coinbase

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", "/api/v3/brokerage/orders", "", `{"side":"BUY","product_id":"BTC-USD","order_configuration":{"limit_limit_gtc":{"base_size":"1","limit_price":"2"}}}`)
	f.Add("POST", "/v2/accounts/a/transactions", "", `{"type":"send","to":"x","amount":"1","currency":"BTC"}`)
	f.Add("POST", "/api/v3/brokerage/orders/batch_cancel", "", `{"order_ids":["a"]}`)
	f.Add("GET", accounts, "limit=5", "")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body)}
		call, err := describer{}.Describe(r)
		if err == nil && call.Scope == "" {
			t.Errorf("Describe(%q) gave no scope", path)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("Bearer "+jwtC1, "", "", "GET", accounts)
	f.Add("Bearer "+jwtC3, "", "", "GET", accounts)
	f.Add("", "legacy", "1700000000", "POST", "/api/v3/brokerage/orders")
	f.Fuzz(func(t *testing.T, auth, key, ts, method, path string) {
		r := &exchange.Request{Method: method, Path: path, Header: http.Header{}}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if key != "" {
			r.Header.Set("CB-ACCESS-KEY", key)
			r.Header.Set("CB-ACCESS-TIMESTAMP", ts)
			r.Header.Set("CB-ACCESS-SIGN", "00")
		}
		_, ed := mustKey(t, sdkEdKey)
		_, ec := mustKey(t, sdkECKey)
		legacy := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "legacy", Secret: exchange.Secret("s")}
		for _, c := range []exchange.Credential{ed, ec, legacy} {
			out, err := NewVerifier().Verify(r, &c, time.Unix(vectorTime, 0))
			if err == nil && out.Header.Get("Authorization") != "" {
				t.Errorf("Verify kept the Authorization header")
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	for _, secret := range []string{sdkEdKey, sdkECKey} {
		signing, _ := mustKey(b, secret)
		b.Run(string(signing.Kind), func(b *testing.B) {
			s := NewSigner(upstream(b, DefaultUpstream))
			r := getRequest(accounts, "limit=5")
			r.Scratch = exchange.NewSignScratch()
			now := time.Unix(vectorTime, 0)
			b.ReportAllocs()
			for b.Loop() {
				r.Scratch.Reset()
				if err := s.Sign(r, &signing, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("hmac", func(b *testing.B) {
		key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k", Secret: exchange.Secret("cb-test-secret")}
		s := NewSigner(upstream(b, DefaultUpstream))
		r := getRequest(accounts, "")
		r.Scratch = exchange.NewSignScratch()
		b.ReportAllocs()
		for b.Loop() {
			r.Scratch.Reset()
			if err := s.Sign(r, key, time.Unix(vectorTime, 0)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	signing, client := mustKey(b, sdkEdKey)
	s := NewSigner(upstream(b, DefaultUpstream))
	now := time.Unix(vectorTime, 0)
	// Every JWT is taken once, so each iteration verifies a fresh one.
	const n = 4096
	reqs := make([]*exchange.Request, n)
	for i := range reqs {
		reqs[i] = getRequest(accounts, "")
		if err := s.Sign(reqs[i], &signing, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	v := NewVerifier()
	for b.Loop() {
		if i == n {
			v, i = NewVerifier(), 0
		}
		if _, err := v.Verify(reqs[i], &client, now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := &exchange.Request{Method: "POST", Path: "/api/v3/brokerage/orders", Header: http.Header{},
		Body: []byte(`{"client_order_id":"c1","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.5","limit_price":"20000"}}}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
