package bitget

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", "/api/v2/spot/trade/place-order", "", []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"1","price":"2"}`))
	f.Add("POST", "/api/v2/spot/trade/batch-orders", "", []byte(`{"symbol":"BTCUSDT","orderList":[{"side":"buy","size":"1"}]}`))
	f.Add("POST", "/api/v2/spot/wallet/withdrawal", "", []byte(`{"coin":"USDT","size":"1","transferType":"on_chain","address":"x"}`))
	f.Add("GET", "/api/v2/spot/account/assets", "coin=BTC&x=%ff", []byte(nil))
	f.Add("POST", "/api/v2/../spot/wallet/withdrawal", "", []byte(`{"a":{"b":[1,2,{"c":null}]}}`))
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: body}
		c, err := describer{}.Describe(r)
		if err != nil {
			if exchange.AsError(err).Kind != exchange.ErrBadRequest {
				t.Fatalf("Describe error kind %v, want ErrBadRequest", exchange.AsError(err).Kind)
			}
			return
		}
		if c.Scope == "" {
			t.Fatalf("Describe(%q) has no scope", path)
		}
		// A canonical path describes to itself.
		r2 := r.Clone()
		r2.Path = c.Path
		c2, err := describer{}.Describe(r2)
		if err != nil || c2.Scope != c.Scope {
			t.Fatalf("Describe(canonical %q) = %v, %v; want scope %v", c.Path, c2.Scope, err, c.Scope)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("GET", "/api/v2/spot/account/assets", "coin=USDT", []byte(nil), "GHSVzqgUZty+MaMcqW97BkRqhyakND4ZHiqJ53PX8qY=", "1700000000000", "bg-pass-1")
	f.Add("GET", "/api/v2/spot/account/assets", "a=b%26c%3Dd&e=%C3%A9", []byte(nil), "", "17e11", "")
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, sig, ts, pass string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: body, Header: http.Header{
			hdrKey: {"bg-test-key"}, hdrSign: {sig}, hdrTimestamp: {ts}, hdrPassphrase: {pass},
		}}
		out, err := verifier{}.Verify(r, testKey(), vectorTime)
		if err != nil {
			if _, ok := err.(*exchange.Error); !ok {
				t.Fatalf("Verify error %T, want *exchange.Error", err)
			}
			return
		}
		for _, h := range authHeaders {
			if _, ok := out.Header[h]; ok {
				t.Fatalf("Verify kept %s", h)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	key := testKey()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01"}`)
	r := &exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order", Header: http.Header{}, Body: body, Scratch: exchange.NewSignScratch()}
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		if err := (signer{}).Sign(r, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := signedVector(b, 1)
	key := testKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (verifier{}).Verify(r, key, vectorTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := &exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order",
		Body: []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01","clientOid":"abc"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
