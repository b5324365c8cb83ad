package okx

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
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
	kit.SetPrice("BTC-USDT", 50000)
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

type okxAnswer struct {
	Code string            `json:"code"`
	Msg  string            `json:"msg"`
	Data []json.RawMessage `json:"data"`
}

// send sends r to the simulator as a bot would, bytes unchanged.
func (e *simEnv) send(t *testing.T, r *exchange.Request) (int, okxAnswer) {
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
	var a okxAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s %s: answer %q is not OKX json: %v", r.Method, r.Path, b, err)
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

func withdrawer() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "withdrawer", Secret: exchange.Secret("w-secret"), Passphrase: exchange.Secret("w-pass")}
}

func TestSimulatorAccepts(t *testing.T) {
	e := newSimEnv(t)
	const order = `{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"40000","clOrdId":"kw1"}`
	const withdrawal = `{"ccy":"USDT","amt":"10","dest":"4","toAddr":"TXabc","chain":"USDT-TRC20"}`
	tests := []struct {
		name   string
		req    *exchange.Request
		expect string // a substring of the first data entry
	}{
		{"server time", &exchange.Request{Method: "GET", Path: "/api/v5/public/time"}, `"ts":"`},
		{"ticker", &exchange.Request{Method: "GET", Path: "/api/v5/market/ticker", RawQuery: "instId=BTC-USDT"}, `"last":"50000"`},
		{"balance", e.signed(t, testKey(), "GET", "/api/v5/account/balance", "ccy=BTC", ""), `"ccy":"BTC"`},
		{"config", e.signed(t, testKey(), "GET", "/api/v5/account/config", "", ""), `"perm":"read_only,trade"`},
		{"place order", e.signed(t, testKey(), "POST", "/api/v5/trade/order", "", order), `"sCode":"0"`},
		{"open orders", e.signed(t, testKey(), "GET", "/api/v5/trade/orders-pending", "", ""), `"clOrdId":"kw1"`},
		{"cancel", e.signed(t, testKey(), "POST", "/api/v5/trade/cancel-order", "", `{"instId":"BTC-USDT","clOrdId":"kw1"}`), `"sCode":"0"`},
		{"withdraw with permission", e.signed(t, withdrawer(), "POST", "/api/v5/asset/withdrawal", "", withdrawal), `"wdId"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a := e.send(t, tt.req)
			if status != http.StatusOK || a.Code != "0" || len(a.Data) == 0 {
				t.Fatalf("%s = %d %+v, want 200 code 0 with data", tt.name, status, a)
			}
			if !strings.Contains(string(a.Data[0]), tt.expect) {
				t.Errorf("%s data = %s, want it to contain %s", tt.name, a.Data[0], tt.expect)
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
	if verified != 6 {
		t.Errorf("simulator logged %d verified requests, want 6", verified)
	}
}

func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t)
	order := `{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"40000"}`
	tests := []struct {
		name   string
		req    func() *exchange.Request
		status int
		code   string
	}{
		{"tampered body", func() *exchange.Request {
			r := e.signed(t, testKey(), "POST", "/api/v5/trade/order", "", order)
			r.Body = bytes.Replace(r.Body, []byte(`"0.1"`), []byte(`"100"`), 1)
			return r
		}, 401, "50113"},
		{"tampered query", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v5/account/balance", "ccy=BTC", "")
			r.RawQuery = "ccy=ETH"
			return r
		}, 401, "50113"},
		{"tampered signature", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v5/account/balance", "", "")
			r.Header.Set(hdrSign, "A"+r.Header.Get(hdrSign)[1:])
			return r
		}, 401, "50113"},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v5/account/balance", Header: http.Header{}}
			_ = (signer{}).Sign(r, testKey(), e.now.Add(-time.Minute))
			return r
		}, 401, "50102"},
		{"wrong passphrase", func() *exchange.Request {
			k := testKey()
			k.Passphrase = exchange.Secret("guess")
			return e.signed(t, k, "GET", "/api/v5/account/balance", "", "")
		}, 401, "50105"},
		{"missing signature header", func() *exchange.Request {
			r := e.signed(t, testKey(), "GET", "/api/v5/account/balance", "", "")
			r.Header.Del(hdrSign)
			return r
		}, 401, "50106"},
		{"missing key header", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/api/v5/account/balance", Header: http.Header{}}
		}, 401, "50103"},
		{"unknown key", func() *exchange.Request {
			k := testKey()
			k.APIKey = "nobody"
			return e.signed(t, k, "GET", "/api/v5/account/balance", "", "")
		}, 401, "50111"},
		{"duplicated parameter", func() *exchange.Request {
			return e.signed(t, testKey(), "GET", "/api/v5/account/balance", "ccy=BTC&ccy=ETH", "")
		}, 400, "51000"},
		{"non-utf8 query", func() *exchange.Request {
			return e.signed(t, testKey(), "GET", "/api/v5/account/balance", "ccy=%ff%fe", "")
		}, 400, "51000"},
		{"oversized body", func() *exchange.Request {
			big := `{"instId":"BTC-USDT","pad":"` + strings.Repeat("x", maxSimBody) + `"}`
			return e.signed(t, testKey(), "POST", "/api/v5/trade/order", "", big)
		}, 400, "51000"},
		{"duplicate json key", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/api/v5/trade/order", "", `{"sz":"1","sz":"2"}`)
		}, 400, "51000"},
		{"withdraw without permission", func() *exchange.Request {
			return e.signed(t, testKey(), "POST", "/api/v5/asset/withdrawal", "", `{"ccy":"USDT","amt":"1","dest":"4","toAddr":"x"}`)
		}, 401, "50120"},
		{"ip not allowed", func() *exchange.Request {
			k := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "ip-bound", Secret: exchange.Secret("i-secret"), Passphrase: exchange.Secret("i-pass")}
			return e.signed(t, k, "GET", "/api/v5/account/balance", "", "")
		}, 401, "50110"},
		{"unknown path", func() *exchange.Request {
			return e.signed(t, testKey(), "GET", "/api/v5/nothing", "", "")
		}, 404, "50115"},
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
	resp, err := e.srv.Client().Get(e.srv.URL + "/api/v5/public/time")
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
		{"BTC-USDT", 50000},
		{"ETH-USDT", 1234.5},
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
	if _, err := (prices{}).ParsePrice("BTC-USDT", 500, []byte(`{}`)); err == nil {
		t.Errorf("ParsePrice(500) = nil error, want error")
	}
}

// TestGatewayFlow runs a bot's request through keywarden's steps: verify it
// against the client credential, describe it, re-sign it with the exchange
// key and forward it. The simulator must see only the exchange key.
func TestGatewayFlow(t *testing.T) {
	e := newSimEnv(t)
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kw-client-1", Secret: exchange.Secret("client-secret"), Passphrase: exchange.Secret("client-pass")}
	bot := e.signed(t, client, "POST", "/api/v5/trade/order", "", `{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"40000"}`)
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
	if status, a := e.send(t, out); status != http.StatusOK || a.Code != "0" {
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
			if status != 200 || a.Code != "0" {
				t.Errorf("simulator(%s) = %d %+v, want 200 code 0", tt.name, status, a)
			}
			if l := kit.Log(); len(l) != 1 || !l[0].Verified {
				t.Errorf("simulator log = %+v, want one verified request", l)
			}
		})
	}
}

// TestSimulatorKeyManagement: a master key creates a sub-account key with
// the package's own key-management requests, the new key works with the
// asked permissions and IPs, only its maker can delete it, and once
// deleted it is refused.
func TestSimulatorKeyManagement(t *testing.T) {
	e := newSimEnv(t)
	master := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "master", Secret: exchange.Secret("m-secret"), Passphrase: exchange.Secret("m-pass")}
	e.kit.AddAccount(sim.Account{Key: *master, Permissions: map[string]bool{"read": true, "admin": true}})
	km := keyManager{}
	send := func(r *exchange.Request, key *exchange.Credential) (int, okxAnswer, []byte) {
		t.Helper()
		if r.Header == nil {
			r.Header = http.Header{}
		}
		if err := (signer{}).Sign(r, key, e.now); err != nil {
			t.Fatal(err)
		}
		status, a := e.send(t, r)
		raw, _ := json.Marshal(a)
		return status, a, raw
	}
	spec := exchange.KeySpec{Label: "kw-rotated", Permissions: []string{"read_only", "trade"}, IPs: []string{"127.0.0.1"}, SubAccount: "bot1"}
	req, err := km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A key without the admin permission cannot create keys.
	if _, a, _ := send(&exchange.Request{Method: req.Method, Path: req.Path, Body: req.Body}, testKey()); a.Code == "0" {
		t.Fatalf("a trading key created a sub-account key: %+v", a)
	}
	status, _, raw := send(req, master)
	nk, err := km.ParseCreatedKey(status, raw)
	if err != nil {
		t.Fatalf("ParseCreatedKey(%d, %s) = %v", status, raw, err)
	}
	if nk.Account != "bot1" || len(nk.Passphrase) == 0 {
		t.Errorf("new key = account %q, passphrase set %v; want bot1 and a passphrase", nk.Account, len(nk.Passphrase) > 0)
	}
	insp := inspector{}
	status, _, raw = send(insp.InspectRequest(), nk)
	pos, err := insp.ParsePosture(status, raw)
	if err != nil {
		t.Fatalf("inspect the new key: %v", err)
	}
	if !slices.Contains(pos.Permissions, "trade") || slices.Contains(pos.Permissions, "withdraw") || strings.Join(pos.IPs, ",") != "127.0.0.1" {
		t.Errorf("new key posture = %+v, want trade, no withdraw, ip 127.0.0.1", pos)
	}
	del, err := km.DeleteKeyRequest(nk.APIKey, spec)
	if err != nil {
		t.Fatal(err)
	}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "other-master", Secret: exchange.Secret("o-secret"), Passphrase: exchange.Secret("o-pass")}
	e.kit.AddAccount(sim.Account{Key: *other, Permissions: map[string]bool{"read": true, "admin": true}})
	if _, a, _ := send(&exchange.Request{Method: del.Method, Path: del.Path, Body: del.Body}, other); a.Code == "0" {
		t.Fatalf("another master deleted the key: %+v", a)
	}
	if _, a, _ := send(del, master); a.Code != "0" {
		t.Fatalf("delete = %+v, want code 0", a)
	}
	if _, a, _ := send(insp.InspectRequest(), nk); a.Code == "0" {
		t.Errorf("the deleted key still works: %+v", a)
	}
	if _, a, _ := send(&exchange.Request{Method: del.Method, Path: del.Path, Body: del.Body}, master); a.Code != "59509" {
		t.Errorf("second delete = %+v, want 59509", a)
	}
}
