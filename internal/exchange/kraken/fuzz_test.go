package kraken

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("/0/private/AddOrder", "", docBody, false)
	f.Add("/0/private/AddOrderBatch", "", `{"pair":"XBTUSD","orders":[{"type":"buy","volume":"1"}]}`, true)
	f.Add("/0/private/AddOrderBatch", "", "orders[0][type]=buy&orders[1][volume]=2", false)
	f.Add("/0/public/Ticker", "pair=XBTUSD", "", false)
	f.Add("/0/private/Withdraw", "", "asset=XBT&key=k&amount=1", false)
	f.Fuzz(func(t *testing.T, path, query, body string, isJSON bool) {
		r := formRequest(path, body)
		r.RawQuery = query
		if isJSON {
			r.Header.Set("Content-Type", "application/json")
		}
		call, err := describer{}.Describe(r)
		if err == nil && call.Scope == "" {
			t.Errorf("Describe(%q) gave no scope", path)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(docBody, docSign, false)
	f.Add(docJSONBody, docJSONSign, true)
	f.Add("nonce=1", "", false)
	f.Fuzz(func(t *testing.T, body, sign string, isJSON bool) {
		r := formRequest("/0/private/AddOrder", body)
		if isJSON {
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("API-Key", "doc-key")
		r.Header.Set("API-Sign", sign)
		out, err := NewVerifier().Verify(r, docKey(), time.Now())
		if err == nil && (out.Header.Get("API-Sign") != "" || out == nil) {
			t.Errorf("Verify kept the signature")
		}
		if err != nil {
			_ = exchange.AsError(err)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s, key := NewSigner(), docKey()
	now := time.UnixMilli(docNonce)
	r := formRequest("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
	body := r.Body
	r.Scratch = exchange.NewSignScratch()
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		r.Body = body
		if err := s.Sign(r, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := formRequest("/0/private/AddOrder", docBody)
	r.Header = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Api-Key": {"doc-key"}, "Api-Sign": {docSign}}
	key := docKey()
	b.ReportAllocs()
	for b.Loop() {
		v := NewVerifier() // a fresh nonce history each time: the nonce is fixed
		if _, err := v.Verify(r, key, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := formRequest("/0/private/AddOrder", docBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
