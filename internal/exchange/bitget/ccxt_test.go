package bitget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestCCXTCrossCheck has ccxt 4.5.84 sign random Bitget requests with its
// clock frozen, then checks that the verifier accepts ccxt's wire output and
// that the signer, given the same request without auth and the same time,
// produces ccxt's signature byte for byte. ccxt sorts GET parameters, sends
// them percent-encoded and signs them decoded (spec §9 a); it adds
// X-CHANNEL-API-CODE and, in sandbox mode, PAPTRADING (spec §15.8), which
// pass through.
func TestCCXTCrossCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2))
	type job struct {
		key  *exchange.Credential
		now  time.Time
		ccxt ccxtJob
	}
	var jobs []job
	for i := range 40 {
		key := &exchange.Credential{
			Kind:       exchange.KeyHMAC,
			APIKey:     "bg_" + randString(rng, "0123456789abcdef", 32),
			Secret:     exchange.Secret(randString(rng, "0123456789abcdef", 64)),
			Passphrase: exchange.Secret(randString(rng, alnum, 10)),
		}
		nowMs := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() + rng.Int64N(10*365*24*3600*1000)
		var path, method string
		var params any
		switch i % 5 {
		case 0:
			path, method = "v2/spot/account/assets", "GET"
			params = map[string]any{"coin": randString(rng, "ABCDEFGH", 4)}
		case 1:
			path, method = "v2/spot/trade/history-orders", "GET"
			params = map[string]any{"symbol": "BTCUSDT", "startTime": fmt.Sprint(nowMs - 86400000), "limit": "100",
				"idLessThan": fmt.Sprint(rng.IntN(1e9)), "note": "a b/" + []string{"é", "ü", ",", ":"}[rng.IntN(4)] + "ü"}
		case 2:
			path, method = "v2/spot/trade/place-order", "POST"
			params = map[string]any{"symbol": "ETHUSDT", "side": "sell", "orderType": "limit", "force": "gtc",
				"size": fmt.Sprintf("%d.%03d", rng.IntN(10), rng.IntN(1000)), "price": fmt.Sprint(1000 + rng.IntN(3000)),
				"clientOid": randString(rng, alnum, 16)}
		case 3:
			path, method = "v2/mix/order/place-order", "POST"
			params = map[string]any{"symbol": "BTCUSDT", "productType": "USDT-FUTURES", "marginMode": "crossed",
				"marginCoin": "USDT", "size": "0.01", "price": "30000", "side": "buy", "tradeSide": "open",
				"orderType": "limit", "force": "gtc", "reduceOnly": "NO"}
		case 4:
			path, method = "v2/spot/wallet/withdrawal", "POST"
			params = map[string]any{"coin": "USDT", "transferType": "on_chain", "address": "T" + randString(rng, alnum, 33),
				"chain": "TRC20", "size": fmt.Sprint(rng.IntN(500) + 1)}
		}
		jobs = append(jobs, job{key: key, now: time.UnixMilli(nowMs), ccxt: ccxtJob{
			Exchange:    "bitget",
			Credentials: map[string]string{"apiKey": key.APIKey, "secret": string(key.Secret), "password": string(key.Passphrase)},
			Sandbox:     i%3 == 0,
			NowMs:       nowMs, Path: path, API: []string{"private", "spot"}, Method: method, Params: params,
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
			if got, want := out.Header.Get(hdrSign), res.Headers["ACCESS-SIGN"]; got != want {
				t.Errorf("Sign(%s %s) = %q, want ccxt's %q", res.Method, res.URL, got, want)
			}
			if got, want := out.Header.Get(hdrTimestamp), res.Headers["ACCESS-TIMESTAMP"]; got != want {
				t.Errorf("Sign() timestamp = %q, want ccxt's %q", got, want)
			}
			if out.RawQuery != in.RawQuery {
				t.Errorf("Sign() query = %q, want ccxt's %q", out.RawQuery, in.RawQuery)
			}
			if (in.Header.Get("Paptrading") == "1") != j.ccxt.Sandbox || out.Header.Get("Paptrading") != in.Header.Get("Paptrading") {
				t.Errorf("paptrading header: ccxt sent %q, signed request has %q", in.Header.Get("Paptrading"), out.Header.Get("Paptrading"))
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

// TestCCXTKeyManagement has ccxt 4.5.84 sign the virtual sub-account key
// calls the key manager builds (ccxt's implicit methods
// privateUserPostV2UserCreateVirtualSubaccountApikey,
// privateUserPostV2UserModifyVirtualSubaccountApikey and
// privateUserGetV2UserVirtualSubaccountApikeyList) with the same
// parameters, in the same order, and checks that ccxt sends the same path,
// query and body bytes, and that the signer's signature equals ccxt's.
func TestCCXTKeyManagement(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 4))
	type job struct {
		key  *exchange.Credential
		now  time.Time
		req  *exchange.Request
		ccxt ccxtJob
	}
	var jobs []job
	for i := range 24 {
		key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_" + randString(rng, "0123456789abcdef", 32),
			Secret: exchange.Secret(randString(rng, "0123456789abcdef", 64)), Passphrase: exchange.Secret(randString(rng, alnum, 12))}
		nowMs := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() + rng.Int64N(5*365*24*3600*1000)
		sub := fmt.Sprint(1e9 + rng.IntN(9e9))
		km := newKeyManager()
		var req *exchange.Request
		var err error
		switch i % 3 {
		case 0:
			perms := [][]string{{"read"}, {"spot_trade"}, {"spot_trade", "contract_trade"}}[rng.IntN(3)]
			var ips []string
			for range rng.IntN(3) {
				ips = append(ips, fmt.Sprintf("203.0.113.%d", rng.IntN(255)))
			}
			req, err = km.CreateKeyRequest(exchange.KeySpec{Label: "keywarden-bot" + fmt.Sprint(i) + "-" + fmt.Sprint(nowMs/1000), SubAccount: sub,
				Permissions: perms, IPs: ips})
		case 1:
			req, err = km.DeleteKeyRequest("bg_"+randString(rng, "0123456789abcdef", 32), exchange.KeySpec{SubAccount: sub,
				Passphrase: exchange.Secret(randString(rng, alnum, 28))})
		case 2:
			req = ListKeysRequest(sub)
		}
		if err != nil {
			t.Fatal(err)
		}
		cj := ccxtJob{Exchange: "bitget", Credentials: map[string]string{"apiKey": key.APIKey, "secret": string(key.Secret), "password": string(key.Passphrase)},
			NowMs: nowMs, Path: strings.TrimPrefix(req.Path, "/api/"), API: []string{"private", "user"}, Method: req.Method}
		if req.Method == http.MethodGet {
			q, err := url.ParseQuery(req.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			cj.Params = map[string]string{"subAccountUid": q.Get("subAccountUid")}
		} else {
			cj.Params = json.RawMessage(req.Body) // ccxt keeps the members' order
		}
		jobs = append(jobs, job{key: key, now: time.UnixMilli(nowMs), req: req, ccxt: cj})
	}
	ccxtJobs := make([]ccxtJob, len(jobs))
	for i, j := range jobs {
		ccxtJobs[i] = j.ccxt
	}
	results := runCCXT(t, ccxtJobs)
	for i, res := range results {
		j := jobs[i]
		t.Run(fmt.Sprintf("%d-%s-%s", i, j.req.Method, j.req.Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in := fromCCXT(t, res)
			if in.Path != j.req.Path || in.RawQuery != j.req.RawQuery || string(in.Body) != string(j.req.Body) {
				t.Errorf("ccxt sends %s?%s %s, the key manager %s?%s %s", in.Path, in.RawQuery, in.Body, j.req.Path, j.req.RawQuery, j.req.Body)
			}
			if _, err := (verifier{}).Verify(in, j.key, j.now); err != nil {
				t.Errorf("Verify(ccxt request) = %v", err)
			}
			out := j.req.Clone()
			if err := (signer{}).Sign(out, j.key, j.now); err != nil {
				t.Fatal(err)
			}
			if got, want := out.Header.Get(hdrSign), res.Headers["ACCESS-SIGN"]; got != want {
				t.Errorf("Sign(key manager request) = %q, want ccxt's %q", got, want)
			}
			want := exchange.ScopeAccountAdmin // key management is never a bot's call
			if j.req.Method == http.MethodGet {
				want = exchange.ScopeRead
			}
			if call, err := (describer{}).Describe(in); err != nil || call.Scope != want {
				t.Errorf("Describe(ccxt request) = %+v, %v, want scope %s", call, err, want)
			}
		})
	}
}
