package okx

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

func randString(rng *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// TestCCXTCrossCheck has ccxt 4.5.84 sign random OKX requests with its clock
// frozen, then checks that the verifier accepts ccxt's wire output and that
// the signer, given the same request without auth and the same time,
// produces ccxt's signature byte for byte. ccxt injects clOrdId/tag into
// batch orders (spec §0.3, §15.8); we sign whatever body ccxt sent.
func TestCCXTCrossCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 14))
	type job struct {
		key  *exchange.Credential
		now  time.Time
		ccxt exchangetest.CCXTJob
	}
	var jobs []job
	for i := range 40 {
		key := &exchange.Credential{
			Kind:       exchange.KeyHMAC,
			APIKey:     randString(rng, "0123456789abcdef", 8) + "-" + randString(rng, "0123456789abcdef", 12),
			Secret:     exchange.Secret(randString(rng, "0123456789ABCDEF", 32)),
			Passphrase: exchange.Secret(randString(rng, alnum+"!@#", 12)),
		}
		nowMs := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() + rng.Int64N(10*365*24*3600*1000)
		var path, method string
		var params any
		switch i % 5 {
		case 0:
			path, method = "account/balance", "GET"
			params = map[string]any{"ccy": "BTC," + randString(rng, "ABCDEFGH", 3)}
		case 1:
			path, method = "trade/orders-history", "GET"
			params = map[string]any{"instType": "SPOT", "instId": "BTC-USDT", "after": fmt.Sprint(rng.IntN(1e9)), "limit": "50"}
		case 2:
			path, method = "trade/order", "POST"
			params = map[string]any{"instId": "ETH-USDT", "tdMode": "cash", "side": "sell", "ordType": "limit",
				"sz": fmt.Sprintf("%d.%03d", rng.IntN(10), rng.IntN(1000)), "px": fmt.Sprint(1000 + rng.IntN(3000)),
				"clOrdId": randString(rng, alnum, 16)}
		case 3:
			path, method = "trade/batch-orders", "POST"
			params = []any{
				map[string]any{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.01", "px": "30000"},
				map[string]any{"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.02", "px": "29000"},
			}
		case 4:
			path, method = "asset/withdrawal", "POST"
			params = map[string]any{"ccy": "USDT", "amt": fmt.Sprint(rng.IntN(500) + 1), "dest": "4",
				"toAddr": "T" + randString(rng, alnum, 33), "chain": "USDT-TRC20"}
		}
		jobs = append(jobs, job{key: key, now: time.UnixMilli(nowMs), ccxt: exchangetest.CCXTJob{
			Exchange:    "okx",
			Credentials: map[string]string{"apiKey": key.APIKey, "secret": string(key.Secret), "password": string(key.Passphrase)},
			NowMs:       nowMs, Path: path, API: "private", Method: method, Params: params,
		}})
	}
	ccxtJobs := make([]exchangetest.CCXTJob, len(jobs))
	for i, j := range jobs {
		ccxtJobs[i] = j.ccxt
	}
	results := exchangetest.CCXT(t, ccxtJobs)
	for i, res := range results {
		j := jobs[i]
		t.Run(fmt.Sprintf("%d-%s-%s", i, j.ccxt.Method, j.ccxt.Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in := fromCCXT(t, res)
			for _, d := range []time.Duration{0, 29 * time.Second, -29 * time.Second} {
				if _, err := (verifier{}).Verify(in, j.key, j.now.Add(d)); err != nil {
					t.Fatalf("Verify(ccxt %s %s) at %v = %v, want nil", res.Method, res.URL, d, err)
				}
			}
			stripped, _ := verifier{}.Verify(in, j.key, j.now)
			before, err := describer{}.Describe(in)
			if err != nil {
				t.Fatalf("Describe(ccxt request) = %v", err)
			}
			after, err := describer{}.Describe(stripped)
			if err != nil {
				t.Fatalf("Describe(verified request) = %v", err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Describe differs before and after Verify:\n%s", diff)
			}
			out := stripped.Clone()
			if err := (signer{}).Sign(out, j.key, j.now); err != nil {
				t.Fatal(err)
			}
			if got, want := out.Header.Get(hdrSign), res.Headers["OK-ACCESS-SIGN"]; got != want {
				t.Errorf("Sign(%s %s) = %q, want ccxt's %q", res.Method, res.URL, got, want)
			}
			if got, want := out.Header.Get(hdrTimestamp), res.Headers["OK-ACCESS-TIMESTAMP"]; got != want {
				t.Errorf("Sign() timestamp = %q, want ccxt's %q", got, want)
			}
		})
	}
}

// fromCCXT turns ccxt's sign() output into the request a bot would send.
func fromCCXT(t *testing.T, res exchangetest.CCXTResult) *exchange.Request {
	t.Helper()
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := &exchange.Request{Method: res.Method, Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: http.Header{}}
	for k, v := range res.Headers {
		r.Header.Set(k, v)
	}
	if res.Body != nil {
		r.Body = []byte(*res.Body)
	}
	return r
}
