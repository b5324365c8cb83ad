package kucoin

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randString(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rng.IntN(len(alnum))]
	}
	return string(b)
}

// ccxtCall is one request shape fed to ccxt's kucoin sign().
type ccxtCall struct {
	path, api, method string
	params            func(rng *rand.Rand) map[string]any
}

var ccxtCalls = []ccxtCall{
	{"accounts", "private", "GET", func(rng *rand.Rand) map[string]any {
		return map[string]any{"currency": []string{"USDT", "BTC", "ETH"}[rng.IntN(3)], "type": "trade"}
	}},
	{"user/api-key", "private", "GET", func(*rand.Rand) map[string]any { return nil }},
	{"hf/orders", "private", "POST", func(rng *rand.Rand) map[string]any {
		return map[string]any{"clientOid": randString(rng, 24), "side": []string{"buy", "sell"}[rng.IntN(2)],
			"symbol": "BTC-USDT", "type": "limit", "price": fmt.Sprint(20000 + rng.IntN(50000)), "size": fmt.Sprintf("0.%03d", 1+rng.IntN(999))}
	}},
	{"hf/orders/{orderId}", "private", "DELETE", func(rng *rand.Rand) map[string]any {
		return map[string]any{"orderId": randString(rng, 24), "symbol": "ETH-USDT"}
	}},
	{"hf/orders/active", "private", "GET", func(*rand.Rand) map[string]any {
		return map[string]any{"symbol": "BTC-USDT"}
	}},
	{"withdrawals", "private", "POST", func(rng *rand.Rand) map[string]any {
		return map[string]any{"currency": "USDT", "toAddress": "T" + randString(rng, 33), "amount": fmt.Sprint(1 + rng.IntN(900)),
			"chain": "trx", "withdrawType": "ADDRESS", "version": "v3"}
	}},
	{"orders", "futuresPrivate", "POST", func(rng *rand.Rand) map[string]any {
		return map[string]any{"clientOid": randString(rng, 20), "side": "sell", "symbol": "XBTUSDTM", "type": "market",
			"leverage": 5, "size": 1 + rng.IntN(20), "reduceOnly": rng.IntN(2) == 0}
	}},
}

// TestCCXT has ccxt 4.5.84 sign random requests with random credentials and
// a frozen clock, then checks that the verifier accepts ccxt's output and
// that the signer, given the same request without auth and the same time,
// reproduces ccxt's signature and passphrase (spec §0.3, §15.8: ccxt adds
// KC-API-PARTNER* headers, which the verifier strips).
func TestCCXT(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'k', 'u', 'c', 'o', 'i', 'n'}))
	type caseT struct {
		cred *exchange.Credential
		now  time.Time
	}
	var jobs []exchangetest.CCXTJob
	var cases []caseT
	for i := range 42 {
		c := ccxtCalls[i%len(ccxtCalls)]
		cred := &exchange.Credential{
			Kind:       exchange.KeyHMAC,
			APIKey:     randString(rng, 24),
			Secret:     exchange.Secret(fmt.Sprintf("%s-%s-%s", randString(rng, 8), randString(rng, 4), randString(rng, 12))),
			Passphrase: exchange.Secret(randString(rng, 7+rng.IntN(20))),
		}
		nowMs := int64(1577836800000 + rng.Int64N(315360000000))
		jobs = append(jobs, exchangetest.CCXTJob{
			Exchange:    "kucoin",
			Credentials: map[string]string{"apiKey": cred.APIKey, "secret": string(cred.Secret), "password": string(cred.Passphrase)},
			NowMs:       nowMs,
			Path:        c.path,
			API:         c.api,
			Method:      c.method,
			Params:      c.params(rng),
		})
		cases = append(cases, caseT{cred, time.UnixMilli(nowMs)})
	}
	results := exchangetest.CCXT(t, jobs)
	for i, res := range results {
		t.Run(fmt.Sprintf("%d_%s_%s", i, jobs[i].Method, jobs[i].Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in, err := requestFromCCXT(res)
			if err != nil {
				t.Fatal(err)
			}
			if in.Header.Get("KC-API-PARTNER") == "" {
				t.Errorf("ccxt sent no partner header; the cross-check no longer covers it")
			}
			tc := cases[i]
			// Verify ccxt's request a little later, within KuCoin's window.
			out, err := (verifier{}).Verify(in, tc.cred, tc.now.Add(3*time.Second))
			if err != nil {
				t.Fatalf("Verify(ccxt %s %s) = %v, want nil", in.Method, in.Path, err)
			}
			// Describe gives the same Call before and after Verify.
			c1, err1 := (describer{}).Describe(in)
			c2, err2 := (describer{}).Describe(out)
			if err1 != nil || err2 != nil {
				t.Errorf("Describe before/after Verify errors = %v / %v, want nil", err1, err2)
			}
			if d := cmp.Diff(c1, c2); d != "" {
				t.Errorf("Describe after Verify differs (-before +after):\n%s", d)
			}
			if err := (signer{}).Sign(out, tc.cred, tc.now); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"KC-API-SIGN", "KC-API-PASSPHRASE", "KC-API-TIMESTAMP", "KC-API-KEY", "KC-API-KEY-VERSION"} {
				if got, want := out.Header.Get(h), res.Headers[h]; got != want {
					t.Errorf("Sign(%s %s) %s = %q, want ccxt's %q", out.Method, out.Path, h, got, want)
				}
			}
		})
	}
}

// requestFromCCXT turns ccxt's sign() output into a wire request.
func requestFromCCXT(res exchangetest.CCXTResult) (*exchange.Request, error) {
	u, err := url.Parse(res.URL)
	if err != nil {
		return nil, fmt.Errorf("ccxt url %q: %w", res.URL, err)
	}
	r := &exchange.Request{Method: res.Method, Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: http.Header{}}
	for k, v := range res.Headers {
		r.Header.Set(k, v)
	}
	if res.Body != nil {
		r.Body = []byte(*res.Body)
	}
	return r, nil
}
