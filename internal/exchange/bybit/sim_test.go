package bybit

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

type simEnv struct {
	kit *sim.Kit
	srv *httptest.Server
	now time.Time
	rsa *rsa.PrivateKey
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return now }
	kit.SetPrice("BTCUSDT", 50000)
	kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: *withdrawer(), Permissions: map[string]bool{"read": true, "withdraw": true}})
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-bound", Secret: exchange.Secret("i-secret")},
		Permissions: map[string]bool{"read": true}, IPs: []string{"192.0.2.1"}})
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyRSA, APIKey: "rsa-key", PublicKey: &priv.PublicKey},
		Permissions: map[string]bool{"read": true}})
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return &simEnv{kit: kit, srv: srv, now: now, rsa: priv}
}

func withdrawer() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "withdrawer", Secret: exchange.Secret("w-secret")}
}

type answer struct {
	RetCode int             `json:"retCode"`
	RetMsg  string          `json:"retMsg"`
	Result  json.RawMessage `json:"result"`
	Time    int64           `json:"time"`
}

func (e *simEnv) send(t *testing.T, r *exchange.Request) (*http.Response, answer) {
	t.Helper()
	u := e.srv.URL + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	req, err := http.NewRequest(r.Method, u, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s %s: answer %q is not Bybit json: %v", r.Method, r.Path, b, err)
	}
	return resp, a
}

func (e *simEnv) signed(t *testing.T, key *exchange.Credential, method, path, query, body string) *exchange.Request {
	t.Helper()
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if body != "" {
		r.Body = []byte(body)
	}
	if err := (signer{}).Sign(r, key, e.now); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSimulatorAccepts(t *testing.T) {
	e := newSimEnv(t)
	const order = `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"40000","orderLinkId":"kw1"}`
	const withdrawal = `{"coin":"USDT","chain":"TRX","address":"TXabc","amount":"10","timestamp":1772366400000,"forceChain":1}`
	rsaKey := &exchange.Credential{Kind: exchange.KeyRSA, APIKey: "rsa-key", PrivateKey: e.rsa}
	tests := []struct {
		name    string
		req     *exchange.Request
		expect  string
		limited bool
	}{
		{"server time", &exchange.Request{Method: "GET", Path: "/v5/market/time"}, `"timeSecond":"1772366400"`, false},
		{"ticker", &exchange.Request{Method: "GET", Path: "/v5/market/tickers", RawQuery: "category=spot&symbol=BTCUSDT"}, `"lastPrice":"50000"`, false},
		{"wallet balance", e.signed(t, testKey(), "GET", "/v5/account/wallet-balance", "accountType=UNIFIED", ""), `"coin":"BTC"`, true},
		{"wallet balance with rsa key", e.signed(t, rsaKey, "GET", "/v5/account/wallet-balance", "accountType=UNIFIED", ""), `"coin":"BTC"`, true},
		{"query api", e.signed(t, testKey(), "GET", "/v5/user/query-api", "", ""), `"Spot":["SpotTrade"]`, true},
		{"place order", e.signed(t, testKey(), "POST", "/v5/order/create", "", order), `"orderLinkId":"kw1"`, true},
		{"open orders", e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot&symbol=BTCUSDT", ""), `"orderLinkId":"kw1"`, true},
		{"cancel", e.signed(t, testKey(), "POST", "/v5/order/cancel", "", `{"category":"spot","symbol":"BTCUSDT","orderLinkId":"kw1"}`), `"orderLinkId":"kw1"`, true},
		{"withdraw with permission", e.signed(t, withdrawer(), "POST", "/v5/asset/withdraw/create", "", withdrawal), `"id"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, a := e.send(t, tt.req)
			if resp.StatusCode != http.StatusOK || a.RetCode != 0 {
				t.Fatalf("%s = %d %+v, want 200 retCode 0", tt.name, resp.StatusCode, a)
			}
			if !strings.Contains(string(a.Result), tt.expect) {
				t.Errorf("%s result = %s, want it to contain %s", tt.name, a.Result, tt.expect)
			}
			if got := resp.Header.Get("X-Bapi-Limit") != ""; got != tt.limited {
				t.Errorf("%s X-Bapi-Limit present = %v, want %v", tt.name, got, tt.limited)
			}
			if tt.limited {
				if rl, ok := (rateLimits{}).RateLimit(resp.Header); !ok || rl.Limit != simLimit || rl.Used < 1 {
					t.Errorf("%s RateLimit(headers) = %+v, %v", tt.name, rl, ok)
				}
			}
		})
	}
	var verified int
	for _, l := range e.kit.Log() {
		if l.Verified {
			verified++
		}
	}
	if verified != 7 {
		t.Errorf("simulator logged %d verified requests, want 7", verified)
	}
}

func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t)
	order := `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"40000"}`
	rawSigned := func(query string) *exchange.Request {
		r := &exchange.Request{Method: "GET", Path: "/v5/order/realtime", RawQuery: query, Header: http.Header{}}
		ts := strconv.FormatInt(e.now.UnixMilli(), 10)
		r.Header.Set(hdrKey, "bybit-test-key")
		r.Header.Set(hdrSign, string(hmacSignature(nil, []byte("bybit-test-secret"), ts, "bybit-test-key", "5000", []byte(query))))
		r.Header.Set(hdrTimestamp, ts)
		r.Header.Set(hdrRecvWindow, "5000")
		return r
	}
	tests := []struct {
		name   string
		req    func() *exchange.Request
		status int
		code   int
	}{
		{"tampered body", func() *exchange.Request {
			r := e.signed(t, testKey(), "POST", "/v5/order/create", "", order)
			r.Body = bytes.Replace(r.Body, []byte(`"0.1"`), []byte(`"100"`), 1)
			return r
		}, 401, 10004},
		{"tampered query", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", "")
			r.RawQuery = "category=linear"
			return r
		}, 401, 10004},
		{"tampered signature", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", "")
			sig := r.Header.Get(hdrSign)
			flip := "0"
			if sig[0] == '0' {
				flip = "1"
			}
			r.Header.Set(hdrSign, flip+sig[1:])
			return r
		}, 401, 10004},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/v5/order/realtime", RawQuery: "category=spot", Header: http.Header{}}
			_ = (signer{}).Sign(r, testKey(), e.now.Add(-6*time.Second))
			return r
		}, 401, 10002},
		{"timestamp from the future", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/v5/order/realtime", RawQuery: "category=spot", Header: http.Header{}}
			_ = (signer{}).Sign(r, testKey(), e.now.Add(2*time.Second))
			return r
		}, 401, 10002},
		{"missing signature header", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", "")
			r.Header.Del(hdrSign)
			return r
		}, 401, 10004},
		{"missing key header", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", "")
			r.Header.Del(hdrKey)
			return r
		}, 401, 10007},
		{"unknown key", func() *exchange.Request {
			k := testKey()
			k.APIKey = "nobody"
			return e.signed(t, k, "GET", "/v5/order/realtime", "category=spot", "")
		}, 401, 10003},
		{"duplicated parameter", func() *exchange.Request { return rawSigned("category=spot&category=linear") }, 400, 10001},
		{"non-utf8 query", func() *exchange.Request { return rawSigned("symbol=%ff") }, 400, 10001},
		{"oversized body", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/v5/order/create", "", `{"pad":"`+strings.Repeat("x", maxSimBody)+`"}`)
		}, 400, 10001},
		{"duplicate json key", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/v5/order/create", "", `{"qty":"1","qty":"2"}`)
		}, 400, 10001},
		{"withdraw without permission", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/v5/asset/withdraw/create", "", `{"coin":"USDT","address":"x","amount":"1"}`)
		}, 403, 10005},
		{"ip not allowed", func() *exchange.Request {
			return e.signed(t, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-bound", Secret: exchange.Secret("i-secret")},
				"GET", "/v5/account/wallet-balance", "accountType=UNIFIED", "")
		}, 403, 10010},
		{"rsa key signed with hmac", func() *exchange.Request {
			return e.signed(t, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "rsa-key", Secret: exchange.Secret("guess")},
				"GET", "/v5/account/wallet-balance", "accountType=UNIFIED", "")
		}, 401, 10004},
		{"unknown path", func() *exchange.Request { return e.signed(t, testKey(), "GET", "/v5/nothing", "", "") }, 404, 10017},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.kit.ResetLog()
			resp, a := e.send(t, tt.req())
			if resp.StatusCode != tt.status || a.RetCode != tt.code {
				t.Errorf("%s = %d retCode %d (%s), want %d retCode %d", tt.name, resp.StatusCode, a.RetCode, a.RetMsg, tt.status, tt.code)
			}
			log := e.kit.Log()
			if len(log) != 1 || log[0].Verified {
				t.Errorf("%s: simulator log = %+v, want one unverified entry", tt.name, log)
			}
		})
	}
}

func TestSimulatorFaults(t *testing.T) {
	e := newSimEnv(t)
	e.kit.Inject(sim.Fault{Status: 503, Count: 1})
	resp, err := e.srv.Client().Get(e.srv.URL + "/v5/market/time")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("faulted GET = %d, want 503", resp.StatusCode)
	}
}

// TestPriceReader reads a price from the simulator through the venue's
// PriceReader, as the gateway values market orders.
func TestPriceReader(t *testing.T) {
	e := newSimEnv(t)
	for _, tt := range []struct {
		symbol string
		price  float64
	}{
		{"BTCUSDT", 50000},
		{"ETHUSDT", 1234.5},
	} {
		e.kit.SetPrice(tt.symbol, tt.price)
		r := prices{}.TickerRequest(tt.symbol)
		req, err := http.NewRequest(r.Method, e.srv.URL+r.Path+"?"+r.RawQuery, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got, err := prices{}.ParsePrice(tt.symbol, resp.StatusCode, body)
		if err != nil || got != tt.price {
			t.Errorf("ParsePrice(%s) = %v, %v; want %v", tt.symbol, got, err, tt.price)
		}
		if _, err := (prices{}).ParsePrice("OTHER-SYMBOL", resp.StatusCode, body); err == nil {
			t.Errorf("ParsePrice(wrong symbol) = nil error, want error")
		}
	}
	if _, err := (prices{}).ParsePrice("BTCUSDT", 500, []byte(`{}`)); err == nil {
		t.Errorf("ParsePrice(500) = nil error, want error")
	}
}

// TestGatewayFlow runs a bot's request through keywarden's steps: verify it
// against the client credential, describe it, re-sign it with the exchange
// key and forward it. The simulator must see only the exchange key.
func TestGatewayFlow(t *testing.T) {
	e := newSimEnv(t)
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kw-client-1", Secret: exchange.Secret("client-secret")}
	bot := e.signed(t, client, "POST", "/v5/order/create", "", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"40000"}`)
	in, err := verifier{}.Verify(bot, client, e.now)
	if err != nil {
		t.Fatalf("Verify(bot request) = %v", err)
	}
	call, err := describer{}.Describe(in)
	if err != nil || call.Scope != exchange.ScopeTrade || len(call.Orders) != 1 {
		t.Fatalf("Describe(verified) = %+v, %v; want one trade order", call, err)
	}
	out := in.Clone()
	if err := (signer{}).Sign(out, testKey(), e.now); err != nil {
		t.Fatal(err)
	}
	e.kit.ResetLog()
	if resp, a := e.send(t, out); resp.StatusCode != http.StatusOK || a.RetCode != 0 {
		t.Fatalf("forwarded order = %d %+v, want success", resp.StatusCode, a)
	}
	log := e.kit.Log()
	if len(log) != 1 || !log[0].Verified || log[0].APIKey != testKey().APIKey {
		t.Fatalf("simulator log = %+v, want one verified request by %s", log, testKey().APIKey)
	}
	for _, v := range log[0].Header {
		for _, s := range v {
			if s == client.APIKey {
				t.Errorf("forwarded request carries the client key id in a header")
			}
		}
	}
}

// TestSimulatorVectors sends the spec's vectors, exactly as signed there, to
// the simulator with its clock at the vector's time: it must accept them.
func TestSimulatorVectors(t *testing.T) {
	for i, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			kit := sim.NewKit()
			kit.Now = func() time.Time { return time.UnixMilli(tt.ms) }
			kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true}})
			srv := httptest.NewServer(NewSimulator(kit))
			defer srv.Close()
			e := &simEnv{kit: kit, srv: srv}
			resp, a := e.send(t, signedVector(t, i))
			if resp.StatusCode != 200 || a.RetCode != 0 {
				t.Errorf("simulator(%s) = %d %+v, want 200 retCode 0", tt.name, resp.StatusCode, a)
			}
			if l := kit.Log(); len(l) != 1 || !l[0].Verified {
				t.Errorf("simulator log = %+v, want one verified request", l)
			}
		})
	}
}

// TestSimulatorRateLimit spends a key's per-second budget with enforcement
// on: the next request is refused with Bybit's 10006 and Retry-After, and
// the next second the budget is back.
func TestSimulatorRateLimit(t *testing.T) {
	var offset atomic.Int64
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return start.Add(time.Duration(offset.Load())) }
	kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true}})
	s := NewSimulator(kit)
	s.EnforceBudget()
	srv := httptest.NewServer(s)
	defer srv.Close()
	e := &simEnv{kit: kit, srv: srv, now: start}
	for i := range simLimit {
		resp, a := e.send(t, e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", ""))
		if resp.StatusCode != 200 || a.RetCode != 0 || resp.Header.Get("X-Bapi-Limit-Status") != strconv.Itoa(simLimit-i-1) {
			t.Fatalf("request %d = %d retCode %d status header %q", i, resp.StatusCode, a.RetCode, resp.Header.Get("X-Bapi-Limit-Status"))
		}
	}
	resp, a := e.send(t, e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", ""))
	if resp.StatusCode != http.StatusTooManyRequests || a.RetCode != 10006 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("request over budget = %d retCode %d Retry-After %q, want 429 10006 1", resp.StatusCode, a.RetCode, resp.Header.Get("Retry-After"))
	}
	offset.Store(int64(time.Second))
	if l := kit.Log(); len(l) != simLimit+1 || l[simLimit].Verified || l[simLimit].Error == "" {
		t.Errorf("simulator logged %d requests, the last %+v; want %d with the last refused", len(l), l[len(l)-1], simLimit+1)
	}
	e.now = start.Add(time.Second)
	if resp, a := e.send(t, e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", "")); resp.StatusCode != 200 || a.RetCode != 0 {
		t.Errorf("request in the next second = %d retCode %d, want 200 0", resp.StatusCode, a.RetCode)
	}
}

// TestSimulatorBudgetReportedOnly checks that by default the budget is
// reported but not enforced, so load tests through the simulator are not
// throttled.
func TestSimulatorBudgetReportedOnly(t *testing.T) {
	e := newSimEnv(t)
	var resp *http.Response
	for range simLimit + 5 {
		var a answer
		resp, a = e.send(t, e.signed(t, testKey(), "GET", "/v5/order/realtime", "category=spot", ""))
		if resp.StatusCode != 200 || a.RetCode != 0 {
			t.Fatalf("request = %d retCode %d, want 200 0", resp.StatusCode, a.RetCode)
		}
	}
	if got := resp.Header.Get("X-Bapi-Limit-Status"); got != "0" {
		t.Errorf("X-Bapi-Limit-Status over budget = %q, want 0", got)
	}
}
