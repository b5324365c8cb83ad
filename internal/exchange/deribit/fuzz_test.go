package deribit

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

var now0 = time.UnixMilli(d2TS)

func FuzzDescribe(f *testing.F) {
	f.Add("/api/v2/private/buy", "instrument_name=BTC-PERPETUAL&amount=10", "")
	f.Add("/api/v2", "", `{"jsonrpc":"2.0","id":1,"method":"private/withdraw","params":{"currency":"BTC","amount":1,"address":"a"}}`)
	f.Add("/api/v2/private/mass_quote", "", `{"quotes":[{"instrument_name":"X","bid":{"amount":1,"price":2}}]}`)
	f.Add("/api/v2/private/execute_block_trade", "", `{"role":"taker","trades":[{"direction":"buy"}]}`)
	f.Add("/api/v2/private/buy", "otoco_config=%5B%7B%7D%5D", "")
	f.Fuzz(func(t *testing.T, path, query, body string) {
		r := &exchange.Request{Method: "POST", Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
		c, err := Describer{}.Describe(r)
		if err != nil {
			if _, ok := err.(*exchange.Error); !ok {
				t.Fatalf("Describe error %T is not *exchange.Error", err)
			}
			return
		}
		if _, err := exchange.ParseScope(string(c.Scope)); err != nil {
			t.Fatalf("Describe scope %q invalid", c.Scope)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(d2Header, "currency=BTC", "")
	f.Add("Basic ZGVyaWJpdC10ZXN0LWlkOmRlcmliaXQtdGVzdC1zZWNyZXQ=", "", "{}")
	f.Add("deri-hmac-sha256 id=,ts=,sig=,nonce=", "", "")
	f.Add("deri-hmac-sha256 id=a,ts=99999999999999999999,sig=x,nonce=y", "", "")
	f.Fuzz(func(t *testing.T, header, query, body string) {
		r := d2Request()
		r.RawQuery, r.Body = query, []byte(body)
		r.Header.Set("Authorization", header)
		v := NewVerifier()
		if _, err := v.ClientKey(r); err != nil {
			if _, ok := err.(*exchange.Error); !ok {
				t.Fatalf("ClientKey error %T is not *exchange.Error", err)
			}
		}
		out, err := v.Verify(r, cred(d2ID, d2Secret), now0)
		if err == nil && out.Header.Get("Authorization") != "" {
			t.Fatal("Verify kept the Authorization header")
		}
	})
}

func BenchmarkSign(b *testing.B) {
	key := cred(d2ID, d2Secret)
	r := d2Request()
	r.Scratch = exchange.NewSignScratch()
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		if err := (Signer{}).Sign(r, key, now0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := cred(d2ID, d2Secret)
	r := d2Request()
	r.Header.Set("Authorization", d2Header)
	a, _, _ := parseAuth(r.Header)
	b.ReportAllocs()
	for b.Loop() {
		// checkSignature is Verify without the nonce memory, which would
		// (rightly) reject the repeated request.
		if err := checkSignature(r, a, key.Secret, now0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := &exchange.Request{Method: "GET", Path: "/api/v2/private/buy", RawQuery: "instrument_name=BTC-PERPETUAL&amount=100&type=limit&price=50000&label=l1", Header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
