package bitget

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

type simEnv struct {
	kit *sim.Kit
	srv *httptest.Server
	now time.Time
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	kit := sim.NewKit()
	kit.Now = func() time.Time { return now }
	kit.SetPrice("BTCUSDT", 50000)
	kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "withdrawer",
		Secret: exchange.Secret("w-secret"), Passphrase: exchange.Secret("w-pass")},
		Permissions: map[string]bool{"read": true, "withdraw": true}})
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-bound",
		Secret: exchange.Secret("i-secret"), Passphrase: exchange.Secret("i-pass")},
		Permissions: map[string]bool{"read": true}, IPs: []string{"192.0.2.1"}})
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return &simEnv{kit: kit, srv: srv, now: now}
}

type answer struct {
	Code        string          `json:"code"`
	Msg         string          `json:"msg"`
	RequestTime int64           `json:"requestTime"`
	Data        json.RawMessage `json:"data"`
}

// send sends r to the simulator as a bot would, bytes unchanged.
func (e *simEnv) send(t *testing.T, r *exchange.Request) (int, answer) {
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
		t.Fatalf("%s %s: answer %q is not Bitget json: %v", r.Method, r.Path, b, err)
	}
	return resp.StatusCode, a
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

// rawSigned signs a GET of the assets endpoint over the raw query bytes, as a
// bot could, even when the signer would refuse the query.
func (e *simEnv) rawSigned(t *testing.T, query string) *exchange.Request {
	t.Helper()
	r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: query, Header: http.Header{}}
	ts := strconv.FormatInt(e.now.UnixMilli(), 10)
	r.Header.Set(hdrKey, "bg-test-key")
	r.Header.Set(hdrSign, string(hmacSignature(nil, []byte("bg-test-secret"), ts, r.Method, r.Path, query, nil)))
	r.Header.Set(hdrTimestamp, ts)
	r.Header.Set(hdrPassphrase, "bg-pass-1")
	return r
}

func withdrawer() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "withdrawer", Secret: exchange.Secret("w-secret"), Passphrase: exchange.Secret("w-pass")}
}

func TestSimulatorAccepts(t *testing.T) {
	e := newSimEnv(t)
	const order = `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"40000","size":"0.1","clientOid":"kw1"}`
	const withdrawal = `{"coin":"USDT","transferType":"on_chain","address":"TXabc","chain":"TRC20","size":"10"}`
	tests := []struct {
		name   string
		req    *exchange.Request
		expect string
	}{
		{"server time", &exchange.Request{Method: "GET", Path: "/api/v2/public/time"}, `"serverTime":"`},
		{"ticker", &exchange.Request{Method: "GET", Path: "/api/v2/spot/market/tickers", RawQuery: "symbol=BTCUSDT"}, `"lastPr":"50000"`},
		{"assets", e.signed(t, testKey(), "GET", "/api/v2/spot/account/assets", "coin=BTC", ""), `"coin":"BTC"`},
		{"assets with encoded query", e.signed(t, testKey(), "GET", "/api/v2/spot/account/assets", "coin=BTC&note=a%20b", ""), `"coin":"BTC"`},
		{"info", e.signed(t, testKey(), "GET", "/api/v2/spot/account/info", "", ""), `"authorities":["stor","stow"]`},
		{"place order", e.signed(t, testKey(), "POST", "/api/v2/spot/trade/place-order", "", order), `"clientOid":"kw1"`},
		{"open orders", e.signed(t, testKey(), "GET", "/api/v2/spot/trade/unfilled-orders", "symbol=BTCUSDT", ""), `"clientOid":"kw1"`},
		{"cancel", e.signed(t, testKey(), "POST", "/api/v2/spot/trade/cancel-order", "", `{"symbol":"BTCUSDT","clientOid":"kw1"}`), `"clientOid":"kw1"`},
		{"withdraw with permission", e.signed(t, withdrawer(), "POST", "/api/v2/spot/wallet/withdrawal", "", withdrawal), `"orderId"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a := e.send(t, tt.req)
			if status != http.StatusOK || a.Code != "00000" {
				t.Fatalf("%s = %d %+v, want 200 code 00000", tt.name, status, a)
			}
			if !strings.Contains(string(a.Data), tt.expect) {
				t.Errorf("%s data = %s, want it to contain %s", tt.name, a.Data, tt.expect)
			}
		})
	}
	var verified int
	for _, l := range e.kit.Log() {
		if l.Verified {
			verified++
			if l.APIKey == "" {
				t.Errorf("logged %s %s verified without an API key", l.Method, l.Path)
			}
		}
	}
	if verified != 7 {
		t.Errorf("simulator logged %d verified requests, want 7", verified)
	}
}

func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t)
	order := `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"0.1","price":"40000"}`
	tests := []struct {
		name   string
		req    func() *exchange.Request
		status int
		code   string
	}{
		{"tampered body", func() *exchange.Request {
			r := e.signed(t, testKey(), "POST", "/api/v2/spot/trade/place-order", "", order)
			r.Body = bytes.Replace(r.Body, []byte(`"0.1"`), []byte(`"100"`), 1)
			return r
		}, 401, "40009"},
		{"tampered query", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v2/spot/account/assets", "coin=BTC", "")
			r.RawQuery = "coin=ETH"
			return r
		}, 401, "40009"},
		{"tampered signature", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v2/spot/account/assets", "", "")
			r.Header.Set(hdrSign, "A"+r.Header.Get(hdrSign)[1:])
			return r
		}, 401, "40009"},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", Header: http.Header{}}
			_ = (signer{}).Sign(r, testKey(), e.now.Add(-time.Minute))
			return r
		}, 401, "40008"},
		{"wrong passphrase", func() *exchange.Request {
			k := testKey()
			k.Passphrase = exchange.Secret("guess")
			return e.signed(t, k, "GET", "/api/v2/spot/account/assets", "", "")
		}, 401, "40012"},
		{"missing signature header", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v2/spot/account/assets", "", "")
			r.Header.Del(hdrSign)
			return r
		}, 401, "40003"},
		{"missing key header", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", Header: http.Header{}}
		}, 401, "40001"},
		{"unknown key", func() *exchange.Request {
			k := testKey()
			k.APIKey = "nobody"
			return e.signed(t, k, "GET", "/api/v2/spot/account/assets", "", "")
		}, 401, "40006"},
		{"duplicated parameter", func() *exchange.Request {
			return e.rawSigned(t, "coin=BTC&coin=ETH")
		}, 400, "40017"},
		{"non-utf8 query", func() *exchange.Request {
			return e.rawSigned(t, "coin=%ff%fe")
		}, 400, "40017"},
		{"oversized body", func() *exchange.Request {
			big := `{"symbol":"BTCUSDT","pad":"` + strings.Repeat("x", maxSimBody) + `"}`
			return e.signed(t, testKey(), "POST", "/api/v2/spot/trade/place-order", "", big)
		}, 400, "40017"},
		{"duplicate json key", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/api/v2/spot/trade/place-order", "", `{"sz":"1","sz":"2"}`)
		}, 400, "40017"},
		{"withdraw without permission", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/api/v2/spot/wallet/withdrawal", "", `{"coin":"USDT","transferType":"on_chain","address":"x","size":"1"}`)
		}, 403, "40014"},
		{"ip not allowed", func() *exchange.Request {
			k := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-bound", Secret: exchange.Secret("i-secret"), Passphrase: exchange.Secret("i-pass")}
			return e.signed(t, k, "GET", "/api/v2/spot/account/assets", "", "")
		}, 403, "40018"},
		{"unknown path", func() *exchange.Request {
			return e.signed(t, testKey(), "GET", "/api/v2/nothing", "", "")
		}, 404, "40404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.kit.ResetLog()
			status, a := e.send(t, tt.req())
			if status != tt.status || a.Code != tt.code {
				t.Errorf("%s = %d code %s (%s), want %d code %s", tt.name, status, a.Code, a.Msg, tt.status, tt.code)
			}
			for _, l := range e.kit.Log() {
				if l.Verified {
					t.Errorf("%s: simulator logged the request as verified", tt.name)
				}
			}
			if len(e.kit.Log()) != 1 {
				t.Errorf("%s: simulator logged %d requests, want 1", tt.name, len(e.kit.Log()))
			}
		})
	}
}

// TestSimulatorFaults checks the simulator serves through the kit's faults.
func TestSimulatorFaults(t *testing.T) {
	e := newSimEnv(t)
	e.kit.Inject(sim.Fault{Status: 429, RetryAfter: 2 * time.Second, Count: 1})
	resp, err := e.srv.Client().Get(e.srv.URL + "/api/v2/public/time")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("faulted GET = %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
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
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kw-client-1", Secret: exchange.Secret("client-secret"), Passphrase: exchange.Secret("client-pass")}
	bot := e.signed(t, client, "POST", "/api/v2/spot/trade/place-order", "", `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"40000","size":"0.1"}`)
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
	if status, a := e.send(t, out); status != http.StatusOK || a.Code != "00000" {
		t.Fatalf("forwarded order = %d %+v, want success", status, a)
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
			kit.Now = func() time.Time { return vectorTime }
			kit.AddAccount(sim.Account{Key: *testKey(), Permissions: map[string]bool{"read": true, "trade": true}})
			srv := httptest.NewServer(NewSimulator(kit))
			defer srv.Close()
			e := &simEnv{kit: kit, srv: srv}
			status, a := e.send(t, signedVector(t, i))
			if status != 200 || a.Code != "00000" {
				t.Errorf("simulator(%s) = %d %+v, want 200 code 00000", tt.name, status, a)
			}
			if l := kit.Log(); len(l) != 1 || !l[0].Verified {
				t.Errorf("simulator log = %+v, want one verified request", l)
			}
		})
	}
}
