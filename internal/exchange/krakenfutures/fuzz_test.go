package krakenfutures

import (
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", sendOrder, "", kfPost)
	f.Add("POST", "/derivatives/api/v3/batchorder", "", `json={"batchOrder":[{"order":"send","side":"buy"}]}`)
	f.Add("GET", "/api/history/v2/orders", "since=1", "")
	f.Add("POST", "/derivatives/api/v3/transfer/subaccount", "", "toUser=a&amount=1")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		r := postRequest(path, body)
		r.Method, r.RawQuery = method, query
		call, err := describer{}.Describe(r)
		if err == nil && call.Scope == "" {
			t.Errorf("Describe(%q) gave no scope", path)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(sendOrder, "", kfPost, "1415957147987", kf2)
	f.Add(sendOrder, kfPost, "", "", kf1)
	f.Fuzz(func(t *testing.T, path, query, body, nonce, sign string) {
		r := postRequest(path, body)
		r.RawQuery = query
		r.Header.Set("APIKey", "kf-key")
		r.Header.Set("Authent", sign)
		if nonce != "" {
			r.Header.Set("Nonce", nonce)
		}
		out, err := NewVerifier().Verify(r, testKey(), time.Now())
		if err == nil && out.Header.Get("Authent") != "" {
			t.Errorf("Verify kept the signature")
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s, key := NewSigner(), testKey()
	r := postRequest(sendOrder, kfPost)
	now := time.UnixMilli(kf2Nonce)
	r.Scratch = exchange.NewSignScratch()
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		if err := s.Sign(r, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := postRequest(sendOrder, kfPost)
	r.Header.Set("APIKey", "kf-key")
	r.Header.Set("Authent", kf1)
	v, key := NewVerifier(), testKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, key, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := postRequest(sendOrder, kfPost)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
