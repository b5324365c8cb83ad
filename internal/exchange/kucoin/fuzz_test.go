package kucoin

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", "/api/v1/hf/orders", "", `{"side":"buy","symbol":"BTC-USDT","price":"1","size":"1"}`)
	f.Add("POST", "/api/v1/hf/orders/multi", "", `{"orderList":[{"size":"1"}]}`)
	f.Add("POST", "/api/v1/orders/multi", "", `[{"size":1}]`)
	f.Add("DELETE", "/api/v1/hf/orders/client-order/x", "symbol=BTC-USDT", "")
	f.Add("POST", "/api/v3/withdrawals", "", `{"currency":"USDT","toAddress":"a","amount":"1","withdrawType":"UID"}`)
	f.Add("POST", "/api/v3/accounts/universal-transfer", "amount=1", `{"amount":"2"}`)
	f.Add("GET", "/api/v1/mark-price/X/current", "a=%zz", "")
	f.Add("GET", "/api/v1/../v3//withdrawals/", "", `{"a":{"a":[1,{"b":1,"b":2}]}}`)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body)}
		c, err := (describer{}).Describe(r)
		if err != nil {
			return
		}
		if c.Scope == "" {
			t.Errorf("Describe(%s %s) gave no scope", method, path)
		}
		if _, err := exchange.ParseScope(string(c.Scope)); err != nil {
			t.Errorf("Describe(%s %s) scope %q: %v", method, path, c.Scope, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("GET", "/api/v1/accounts", "currency=USDT", "", vectors[0].sign, "1700000000000", vecPassphrase, "2")
	f.Add("POST", "/api/v1/hf/orders", "", string(vectors[1].req.Body), vectors[1].sign, "1700000000000", vecPassphrase, "2")
	f.Add("GET", "/api/v1/accounts", "a=%ff", "", "", "99999999999999999999", "x", "3")
	f.Fuzz(func(t *testing.T, method, path, query, body, sign, ts, pass, ver string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
		r.Header.Set("KC-API-KEY", "kc-test-key")
		r.Header.Set("KC-API-SIGN", sign)
		r.Header.Set("KC-API-TIMESTAMP", ts)
		r.Header.Set("KC-API-PASSPHRASE", pass)
		r.Header.Set("KC-API-KEY-VERSION", ver)
		out, err := (verifier{}).Verify(r, vecKey, vecTime)
		if err != nil {
			return
		}
		for _, h := range authHeaders {
			if out.Header.Get(h) != "" {
				t.Errorf("Verify kept %s", h)
			}
		}
		// Describe must agree before and after Verify.
		c1, err1 := (describer{}).Describe(r)
		c2, err2 := (describer{}).Describe(out)
		if (err1 == nil) != (err2 == nil) || !cmp.Equal(c1, c2) {
			t.Errorf("Describe differs across Verify: %v %v / %v %v", c1, err1, c2, err2)
		}
	})
}
