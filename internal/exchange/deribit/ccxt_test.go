package deribit

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// TestCCXTCrossCheck has ccxt 4.5.84 (an independent implementation) sign
// random requests with its clock frozen, then checks that our Verifier
// accepts them and that our Signer, given the same time and nonce (ccxt
// uses the millisecond clock as nonce), produces the same header.
func TestCCXTCrossCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 84))
	type call struct {
		api    string
		path   string
		params map[string]any
	}
	randWord := func(n int) string {
		const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var jobs []exchangetest.CCXTJob
	var calls []call
	for i := 0; i < 40; i++ {
		var c call
		switch i % 5 {
		case 0:
			c = call{"private", "get_account_summary", map[string]any{"currency": []string{"BTC", "ETH", "USDC"}[rng.IntN(3)], "extended": "true"}}
		case 1:
			c = call{"private", []string{"buy", "sell"}[rng.IntN(2)], map[string]any{
				"instrument_name": "BTC-PERPETUAL", "amount": strconv.Itoa(10 * (1 + rng.IntN(100))),
				"type": "limit", "price": strconv.FormatFloat(20000+rng.Float64()*50000, 'f', 1, 64),
				"label": "bot " + randWord(6) + "/x", // needs percent-encoding
			}}
		case 2:
			c = call{"private", "withdraw", map[string]any{"currency": "BTC", "address": "bc1q" + randWord(30), "amount": "0.5"}}
		case 3:
			c = call{"private", "get_open_orders_by_instrument", nil}
		case 4:
			c = call{"public", "ticker", map[string]any{"instrument_name": "ETH-PERPETUAL"}}
		}
		calls = append(calls, c)
		jobs = append(jobs, exchangetest.CCXTJob{
			Exchange:    "deribit",
			Credentials: map[string]string{"apiKey": randWord(8), "secret": randWord(43)},
			NowMs:       1_600_000_000_000 + rng.Int64N(200_000_000_000),
			Path:        c.path, API: c.api, Method: "GET", Params: c.params,
		})
	}
	res := exchangetest.CCXT(t, jobs)
	for i, r := range res {
		job := jobs[i]
		t.Run(fmt.Sprintf("%d-%s", i, job.Path), func(t *testing.T) {
			if r.Error != "" {
				t.Fatalf("ccxt: %s", r.Error)
			}
			u, err := url.Parse(r.URL)
			if err != nil {
				t.Fatal(err)
			}
			req := &exchange.Request{Method: r.Method, Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: http.Header{}}
			for k, v := range r.Headers {
				req.Header.Set(k, v)
			}
			if r.Body != nil {
				req.Body = []byte(*r.Body)
			}
			now := time.UnixMilli(job.NowMs)
			key := cred(job.Credentials["apiKey"], job.Credentials["secret"])
			v := NewVerifier()
			id, err := v.ClientKey(req)
			if err != nil {
				t.Fatalf("ClientKey(ccxt) = %v", err)
			}
			if calls[i].api == "public" {
				if id != "" {
					t.Errorf("ClientKey(public ccxt) = %q, want \"\"", id)
				}
				return
			}
			if id != key.APIKey {
				t.Errorf("ClientKey(ccxt) = %q, want %q", id, key.APIKey)
			}
			before, err := Describer{}.Describe(req)
			if err != nil {
				t.Fatalf("Describe(ccxt) = %v", err)
			}
			stripped, err := v.Verify(req, key, now)
			if err != nil {
				t.Fatalf("Verify(ccxt %s) = %v", r.URL, err)
			}
			after, err := Describer{}.Describe(stripped)
			if err != nil || after.Endpoint != before.Endpoint || after.Scope != before.Scope {
				t.Errorf("Describe after Verify = %+v, %v, want %+v", after, err, before)
			}
			if err := signWith(stripped, key, job.NowMs, []byte(strconv.FormatInt(job.NowMs, 10))); err != nil {
				t.Fatal(err)
			}
			if got, want := stripped.Header.Get("Authorization"), r.Headers["Authorization"]; got != want {
				t.Errorf("Sign = %q, ccxt = %q", got, want)
			}
		})
	}
}
