package gate

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

func FuzzDescribe(f *testing.F) {
	f.Add("POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","side":"buy","amount":"1","price":"1"}`)
	f.Add("POST", "/api/v4/spot/batch_orders", "", `[{"amount":"1"}]`)
	f.Add("POST", "/api/v4/futures/usdt/batch_cancel_orders", "", `["1"]`)
	f.Add("PUT", "/api/v4/futures/usdt/orders/1", "", `{"size":-5}`)
	f.Add("POST", "/api/v4/spot/price_orders", "", `{"put":{"amount":"1"},"market":"A_B"}`)
	f.Add("POST", "/api/v4/withdrawals/push", "amount=2", `{"amount":"1","receive_uid":1}`)
	f.Add("DELETE", "/api/v4/spot/orders", "currency_pair=%zz", "")
	f.Add("GET", "/api/v4/../v4//x/", "", `[[[[{"a":1,"a":2}]]]]`)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body)}
		c, err := (describer{}).Describe(r)
		if err != nil {
			return
		}
		if _, err := exchange.ParseScope(string(c.Scope)); err != nil {
			t.Errorf("Describe(%s %s) scope %q: %v", method, path, c.Scope, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", "", vectors[0].sign, "1541993715")
	f.Add("POST", "/api/v4/futures/orders", "", string(vectors[1].req.Body), vectors[1].sign, "1541993715")
	f.Add("GET", "/api/v4/x", "a=%ff", "", "", "1e10")
	f.Fuzz(func(t *testing.T, method, path, query, body, sign, ts string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
		r.Header.Set("KEY", "key")
		r.Header.Set("SIGN", sign)
		r.Header.Set("Timestamp", ts)
		out, err := (verifier{}).Verify(r, vecKey, vecTime)
		if err != nil {
			return
		}
		for _, h := range authHeaders {
			if out.Header.Get(h) != "" {
				t.Errorf("Verify kept %s", h)
			}
		}
		c1, err1 := (describer{}).Describe(r)
		c2, err2 := (describer{}).Describe(out)
		if (err1 == nil) != (err2 == nil) || !cmp.Equal(c1, c2) {
			t.Errorf("Describe differs across Verify: %v %v / %v %v", c1, err1, c2, err2)
		}
	})
}
