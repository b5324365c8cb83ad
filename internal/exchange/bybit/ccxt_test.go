package bybit

import (
	"bytes"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
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

// TestCCXTCrossCheck has ccxt 4.5.84 sign random Bybit v5 requests with its
// clock frozen, with HMAC secrets and with RSA private keys (ccxt signs with
// RSA when the secret is a PEM key), then checks that the verifier accepts
// ccxt's wire output and that the signer, given the same request without
// auth and the same time, produces ccxt's signature byte for byte (RSA
// PKCS#1 v1.5 is deterministic). ccxt adds "Referer: CCXT" to POSTs, which
// passes through.
func TestCCXTCrossCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var rsaKeys []*rsa.PrivateKey
	for range 2 {
		k, err := rsa.GenerateKey(crand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaKeys = append(rsaKeys, k)
	}
	type job struct {
		key    *exchange.Credential
		client *exchange.Credential
		now    time.Time
		ccxt   ccxtJob
	}
	var jobs []job
	for i := range 40 {
		key := &exchange.Credential{
			Kind:   exchange.KeyHMAC,
			APIKey: randString(rng, alnum, 18),
			Secret: exchange.Secret(randString(rng, alnum, 36)),
		}
		client := key
		secret := string(key.Secret)
		if i%4 == 3 {
			priv := rsaKeys[i%2]
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			secret = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
			key = &exchange.Credential{Kind: exchange.KeyRSA, APIKey: key.APIKey, PrivateKey: priv}
			client = &exchange.Credential{Kind: exchange.KeyRSA, APIKey: key.APIKey, PublicKey: &priv.PublicKey}
		}
		nowMs := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() + rng.Int64N(10*365*24*3600*1000)
		var path, method string
		var params map[string]any
		switch i % 5 {
		case 0:
			path, method = "v5/account/wallet-balance", "GET"
			params = map[string]any{"accountType": "UNIFIED", "coin": "BTC,USDT"}
		case 1:
			path, method = "v5/order/realtime", "GET"
			params = map[string]any{"category": "linear", "symbol": "BTCUSDT", "limit": fmt.Sprint(1 + rng.IntN(50))}
		case 2:
			path, method = "v5/order/create", "POST"
			params = map[string]any{"category": "spot", "symbol": "ETHUSDT", "side": "Sell", "orderType": "Limit",
				"qty": fmt.Sprintf("%d.%03d", rng.IntN(10), rng.IntN(1000)), "price": fmt.Sprint(1000 + rng.IntN(3000)),
				"orderLinkId": randString(rng, alnum, 16)}
		case 3:
			path, method = "v5/order/create-batch", "POST"
			params = map[string]any{"category": "linear", "request": []any{
				map[string]any{"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01", "price": "30000"},
				map[string]any{"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.02", "price": "29000"},
			}}
		case 4:
			path, method = "v5/asset/withdraw/create", "POST"
			params = map[string]any{"coin": "USDT", "chain": "TRX", "address": "T" + randString(rng, alnum, 33),
				"amount": fmt.Sprint(rng.IntN(500) + 1), "timestamp": nowMs, "forceChain": 1, "accountType": "FUND"}
		}
		jobs = append(jobs, job{key: key, client: client, now: time.UnixMilli(nowMs), ccxt: ccxtJob{
			Exchange:    "bybit",
			Credentials: map[string]string{"apiKey": key.APIKey, "secret": secret},
			NowMs:       nowMs, Path: path, API: "private", Method: method, Params: params,
		}})
	}
	ccxtJobs := make([]ccxtJob, len(jobs))
	for i, j := range jobs {
		ccxtJobs[i] = j.ccxt
	}
	results := runCCXT(t, ccxtJobs)
	for i, res := range results {
		j := jobs[i]
		t.Run(fmt.Sprintf("%d-%s-%s", i, j.ccxt.Method, j.ccxt.Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in := fromCCXT(t, res)
			for _, d := range []time.Duration{0, 5 * time.Second, -999 * time.Millisecond} {
				if _, err := (verifier{}).Verify(in, j.client, j.now.Add(d)); err != nil {
					t.Fatalf("Verify(ccxt %s %s) at %v = %v, want nil", res.Method, res.URL, d, err)
				}
			}
			stripped, _ := verifier{}.Verify(in, j.client, j.now)
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
			if got, want := out.Header.Get(hdrSign), res.Headers["X-BAPI-SIGN"]; got != want {
				t.Errorf("Sign(%s %s) = %q, want ccxt's %q", res.Method, res.URL, got, want)
			}
			if got, want := out.Header.Get(hdrTimestamp), res.Headers["X-BAPI-TIMESTAMP"]; got != want {
				t.Errorf("Sign() timestamp = %q, want ccxt's %q", got, want)
			}
		})
	}
}

// ccxtJob is exchangetest.CCXTJob with params of any JSON shape: OKX's
// batch endpoints take an array, which sign.js passes to ccxt unchanged.
type ccxtJob struct {
	Exchange    string            `json:"exchange"`
	Credentials map[string]string `json:"credentials"`
	Sandbox     bool              `json:"sandbox,omitempty"`
	NowMs       int64             `json:"nowMs"`
	Path        string            `json:"path"`
	API         any               `json:"api"`
	Method      string            `json:"method"`
	Params      any               `json:"params,omitempty"`
}

// runCCXT runs jobs through exchangetest's ccxt sign.js in one node process.
func runCCXT(t *testing.T, jobs []ccxtJob) []exchangetest.CCXTResult {
	t.Helper()
	exchangetest.CCXT(t, []exchangetest.CCXTJob{}) // skips or fails when ccxt is not installed
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	dir := exchangetest.CCXTDir()
	cmd := exec.Command("node", filepath.Join(dir, "sign.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt sign.js: %v: %s", err, stderr.String())
	}
	var res []exchangetest.CCXTResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("ccxt sign.js output (%d results for %d jobs): %v", len(res), len(jobs), err)
	}
	return res
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
