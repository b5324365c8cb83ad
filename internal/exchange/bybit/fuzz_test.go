package bybit

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", "/v5/order/create", "", []byte(`{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"2"}`))
	f.Add("POST", "/v5/order/create-batch", "", []byte(`{"category":"linear","request":[{"symbol":"BTCUSDT","side":"Buy","qty":"1"}]}`))
	f.Add("POST", "/v5/asset/withdraw/create", "", []byte(`{"coin":"USDT","amount":"1","address":"x","forceChain":2}`))
	f.Add("GET", "/v5/order/realtime", "category=spot&x=%ff", []byte(nil))
	f.Add("POST", "/v5/../asset/withdraw/create", "", []byte(`{"a":{"b":[1,2,{"c":null}]}}`))
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
	f.Add("GET", "/v5/order/realtime", "category=option&symbol=BTC-29JUL22-25000-C", []byte(nil), "957706307943ca5f3b98fb191220f4d846f72eb19ea3bbc68537df0d3a58fa55", "1658384314791", "5000")
	f.Add("POST", "/v5/order/create", "", []byte(`{}`), "", "-1", "99999999999999999999")
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, sig, ts, recv string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: body, Header: http.Header{
			hdrKey: {"bybit-test-key"}, hdrSign: {sig}, hdrTimestamp: {ts}, hdrRecvWindow: {recv},
		}}
		out, err := verifier{}.Verify(r, testKey(), time.UnixMilli(1658384314791))
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
	body := []byte(`{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000"}`)
	r := &exchange.Request{Method: "POST", Path: "/v5/order/create", Header: http.Header{}, Body: body, Scratch: exchange.NewSignScratch()}
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
		if _, err := (verifier{}).Verify(r, key, time.UnixMilli(vectors[1].ms)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := &exchange.Request{Method: "POST", Path: "/v5/order/create",
		Body: []byte(`{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000","orderLinkId":"abc"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
