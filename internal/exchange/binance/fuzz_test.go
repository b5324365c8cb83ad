package binance

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func fuzzSeeds(f *testing.F) {
	f.Add("POST", "/api/v3/order", "", "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=2&timestamp=1700000000000&signature=00")
	f.Add("GET", "/api/v3/account", "timestamp=1700000000000&recvWindow=6000.5&signature=ab", "")
	f.Add("POST", "/fapi/v1/batchOrders", "", `batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1"}]`)
	f.Add("DELETE", "/fapi/v1/batchOrders", `symbol=X&orderIdList=%5B1%2C2%5D`, "")
	f.Add("POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC", "address=x&amount=1&signature=%2B%2F")
	f.Add("POST", "/SAPI/v1/../capital//withdraw/apply/", "%ff=1&a=%zz", "\x00")
	f.Add("PUT", "/api/v3/order/amend/keepPriority", "symbol=A", "newQty=1e9&Symbol=B")
}

// FuzzDescribe: Describe must never panic, and must ignore auth params.
func FuzzDescribe(f *testing.F) {
	fuzzSeeds(f)
	spot, usdm := Spot(nil).Describer, USDM(nil).Describer
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		for _, d := range []exchange.Describer{spot, usdm} {
			r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body)}
			c, err := d.Describe(r)
			if err != nil {
				continue
			}
			if _, err := exchange.ParseScope(string(c.Scope)); err != nil {
				t.Fatalf("Describe() scope %q: %v", c.Scope, err)
			}
			// Adding auth params must not change the description.
			sep := ""
			if query != "" {
				sep = "&"
			}
			r.RawQuery = query + sep + "timestamp=1&signature=ab"
			c2, err := d.Describe(r)
			if err == nil && !cmp.Equal(c, c2) && !strings.Contains(query+body, "ignature") && !strings.Contains(query+body, "imestamp") {
				t.Fatalf("Describe() changed with auth params:\n%s", cmp.Diff(c, c2))
			}
		}
	})
}

// FuzzVerify: Verify and ClientKey must never panic on any input, and a
// request they accept must describe the same before and after.
func FuzzVerify(f *testing.F) {
	fuzzSeeds(f)
	key := hmacCred("k", "s")
	now := time.UnixMilli(1_700_000_000_000)
	spot := Spot(nil)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{"X-Mbx-Apikey": {"k"}}, Body: []byte(body)}
		_, _ = spot.Verifier.ClientKey(r)
		_, _ = spot.Verifier.Verify(r, key, now)
		// A validly signed variant exercises the stripping path.
		s := r.Clone()
		s.RawQuery = exchange.RemoveParams(query, paramSignature, paramTimestamp, paramRecvWindow)
		s.Body = []byte(exchange.RemoveParams(body, paramSignature, paramTimestamp, paramRecvWindow))
		if err := spot.Signer.Sign(s, key, now); err != nil {
			t.Fatal(err)
		}
		out, err := spot.Verifier.Verify(s, key, now)
		if err != nil {
			return
		}
		before, err1 := spot.Describer.Describe(s)
		after, err2 := spot.Describer.Describe(out)
		if (err1 == nil) != (err2 == nil) || !cmp.Equal(before, after) {
			t.Fatalf("Describe differs after Verify: %v %v\n%s", err1, err2, cmp.Diff(before, after))
		}
	})
}

// FuzzSimulator: the simulator answers every input without panicking.
func FuzzSimulator(f *testing.F) {
	fuzzSeeds(f)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	kit.AddAccount(sim.Account{Key: *hmacCred("k", "s"), Permissions: map[string]bool{"read": true, "trade": true}})
	s := NewSimulator(kit)
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path+query, " \r\n\t\x00#") {
			return
		}
		r, err := http.NewRequest(http.MethodPost, "http://sim"+path+"?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		if method == "GET" || method == "DELETE" || method == "PUT" {
			r.Method = method
		}
		r.Header.Set("X-MBX-APIKEY", "k")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code == 0 {
			t.Fatal("no status")
		}
		kit.ResetLog()
	})
}

// FuzzParamScanBytes holds the body scanners that avoid a string copy to the
// string versions they replace: for any input, the same answers.
func FuzzParamScanBytes(f *testing.F) {
	for _, s := range []string{"", "&", "=", "signature", "a=1&signature=2", "a=1&sig%6Eature=2", "signature=1&a=2",
		"a=1&signat%zzure=2", "a&signature", "sign+ature=1", "%73ignature", "a=1&&signature=", "x=%GG&signature=ab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, name := range []string{paramSignature, "a", "sign ature"} {
			if got, want := mentionsParamBytes([]byte(raw), name), mentionsParam(raw, name); got != want {
				t.Errorf("mentionsParamBytes(%q, %q) = %v, mentionsParam says %v", raw, name, got, want)
			}
			n, ok := cutLastParamBytes([]byte(raw), name)
			rest, wantOK := cutLastParam(raw, name)
			if ok != wantOK || (ok && n != len(rest)) {
				t.Errorf("cutLastParamBytes(%q, %q) = %d, %v; cutLastParam gives %q, %v", raw, name, n, ok, rest, wantOK)
			}
		}
	})
}
