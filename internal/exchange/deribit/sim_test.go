package deribit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

type simEnv struct {
	kit *sim.Kit
	srv *httptest.Server
	key *exchange.Credential
	now time.Time
}

func newSimEnv(t *testing.T, perms ...string) *simEnv {
	t.Helper()
	kit := sim.NewKit()
	now := time.UnixMilli(d2TS)
	kit.Now = func() time.Time { return now }
	key := cred("sim-client", "sim-secret-0123456789")
	p := map[string]bool{}
	for _, x := range perms {
		p[x] = true
	}
	kit.AddAccount(sim.Account{Key: *key, Permissions: p})
	kit.SetPrice("BTC-PERPETUAL", 50000)
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return &simEnv{kit: kit, srv: srv, key: key, now: now}
}

// do sends r (signed when key is set) and decodes the JSON-RPC answer.
func (e *simEnv) do(t *testing.T, r *exchange.Request, key *exchange.Credential) (int, map[string]any) {
	t.Helper()
	if key != nil {
		if err := (Signer{}).Sign(r, key, e.now); err != nil {
			t.Fatal(err)
		}
	}
	return e.send(t, r)
}

func (e *simEnv) send(t *testing.T, r *exchange.Request) (int, map[string]any) {
	t.Helper()
	u := e.srv.URL + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	hr, err := http.NewRequest(r.Method, u, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Header {
		hr.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, m
}

func errCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func TestSimulatorEndToEnd(t *testing.T) {
	e := newSimEnv(t, "read", "trade")
	get := func(path, q string) *exchange.Request {
		return &exchange.Request{Method: "GET", Path: path, RawQuery: q, Header: http.Header{}}
	}
	// public
	if st, m := e.do(t, get("/api/v2/public/get_time", ""), nil); st != 200 || m["result"] != float64(d2TS) {
		t.Errorf("get_time = %d %v, want 200 %d", st, m, d2TS)
	}
	if st, m := e.do(t, get("/api/v2/public/ticker", "instrument_name=BTC-PERPETUAL"), nil); st != 200 || m["result"].(map[string]any)["last_price"] != 50000.0 {
		t.Errorf("ticker = %d %v", st, m)
	}
	// read
	st, m := e.do(t, get("/api/v2/private/get_account_summary", "currency=BTC"), e.key)
	if st != 200 || m["result"].(map[string]any)["balance"] != 10.0 {
		t.Errorf("get_account_summary = %d %v", st, m)
	}
	// place, list, cancel over a JSON-RPC body
	body := `{"jsonrpc":"2.0","id":3,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":100,"price":49000,"label":"l1"}}`
	st, m = e.do(t, &exchange.Request{Method: "POST", Path: "/api/v2", Body: []byte(body), Header: http.Header{"Content-Type": {"application/json"}}}, e.key)
	if st != 200 {
		t.Fatalf("buy = %d %v", st, m)
	}
	order := m["result"].(map[string]any)["order"].(map[string]any)
	if order["order_state"] != "open" || order["direction"] != "buy" || m["id"] != 3.0 {
		t.Errorf("buy order = %v", m)
	}
	st, m = e.do(t, get("/api/v2/private/get_open_orders_by_instrument", "instrument_name=BTC-PERPETUAL"), e.key)
	if st != 200 || len(m["result"].([]any)) != 1 {
		t.Errorf("open orders = %d %v, want one", st, m)
	}
	st, m = e.do(t, get("/api/v2/private/cancel", "order_id="+order["order_id"].(string)), e.key)
	if st != 200 || m["result"].(map[string]any)["order_state"] != "cancelled" {
		t.Errorf("cancel = %d %v", st, m)
	}
	// withdraw without the permission
	st, m = e.do(t, get("/api/v2/private/withdraw", "currency=BTC&address=bc1q&amount=1"), e.key)
	if st != 403 || errCode(m) != codeScopeExceeded {
		t.Errorf("withdraw without permission = %d %v, want 403 %d", st, m, codeScopeExceeded)
	}
	// the oracle: every request logged, private ones with the key
	var verified int
	for _, l := range e.kit.Log() {
		if l.Verified {
			verified++
			if l.APIKey != e.key.APIKey {
				t.Errorf("logged key %q, want %q", l.APIKey, e.key.APIKey)
			}
		}
	}
	if n := len(e.kit.Log()); n != 7 || verified != 5 {
		t.Errorf("log has %d entries, %d verified, want 7 and 5", n, verified)
	}
}

func TestSimulatorWithdrawAndInspect(t *testing.T) {
	e := newSimEnv(t, "read", "withdraw")
	r := &exchange.Request{Method: "GET", Path: "/api/v2/private/withdraw", RawQuery: "currency=BTC&address=bc1qabc&amount=2", Header: http.Header{}}
	st, m := e.do(t, r, e.key)
	if st != 200 || m["result"].(map[string]any)["state"] != "unconfirmed" {
		t.Fatalf("withdraw = %d %v", st, m)
	}
	st, m = e.do(t, &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}, e.key)
	if st != 200 || m["result"].(map[string]any)["balance"] != 8.0 {
		t.Errorf("balance after withdraw = %v, want 8", m)
	}
	// key self-inspection through public/auth client_signature
	ir := Inspector{}.InspectRequest()
	if err := (Signer{}).Sign(ir, e.key, e.now); err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest("GET", e.srv.URL+ir.Path+"?"+ir.RawQuery, nil)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p, err := Inspector{}.ParsePosture(resp.StatusCode, b)
	if err != nil {
		t.Fatalf("ParsePosture(%s) = %v", b, err)
	}
	if !p.CanRead || p.CanTrade || !p.CanWithdraw || p.IPRestricted {
		t.Errorf("ParsePosture = %+v, want read and withdraw only", p)
	}
}

func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t, "read", "trade")
	signed := func(mut func(r *exchange.Request)) *exchange.Request {
		r := &exchange.Request{Method: "POST", Path: "/api/v2/private/buy", Body: []byte(`{"instrument_name":"BTC-PERPETUAL","amount":10,"price":1}`), Header: http.Header{}}
		if err := (Signer{}).Sign(r, e.key, e.now); err != nil {
			t.Fatal(err)
		}
		if mut != nil {
			mut(r)
		}
		return r
	}
	replayed := signed(nil)
	if st, m := e.send(t, replayed.Clone()); st != 200 {
		t.Fatalf("first send = %d %v", st, m)
	}
	tests := []struct {
		name   string
		req    *exchange.Request
		status int
		code   float64
	}{
		{"replayed nonce", replayed, 401, codeUnauthorized},
		{"tampered body", signed(func(r *exchange.Request) {
			r.Body = []byte(`{"instrument_name":"BTC-PERPETUAL","amount":99,"price":1}`)
		}), 401, codeUnauthorized},
		{"tampered query", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}
			_ = (Signer{}).Sign(r, e.key, e.now)
			r.RawQuery = "currency=ETH"
			return r
		}(), 401, codeUnauthorized},
		{"tampered signature", signed(func(r *exchange.Request) {
			h := r.Header.Get("Authorization")
			i := strings.Index(h, "sig=") + 4
			c := byte('0')
			if h[i] == '0' {
				c = '1'
			}
			r.Header.Set("Authorization", h[:i]+string(c)+h[i+1:])
		}), 401, codeUnauthorized},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}
			_ = (Signer{}).Sign(r, e.key, e.now.Add(-61*time.Second))
			return r
		}(), 401, codeUnauthorized},
		{"unknown key", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}
			_ = (Signer{}).Sign(r, cred("nobody", "x"), e.now)
			return r
		}(), 401, codeInvalidCredentials},
		{"wrong secret (Basic)", &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC",
			Header: http.Header{"Authorization": {"Basic c2ltLWNsaWVudDp3cm9uZw=="}}}, 401, codeInvalidCredentials},
		{"missing header", signed(func(r *exchange.Request) { r.Header.Del("Authorization") }), 401, codeUnauthorized},
		{"duplicated parameter", &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC&currency=ETH", Header: http.Header{}}, 400, codeInvalidParams},
		{"non-utf8 query", &exchange.Request{Method: "GET", Path: "/api/v2/public/ticker", RawQuery: "instrument_name=%ff", Header: http.Header{}}, 400, codeInvalidParams},
		{"oversized body", &exchange.Request{Method: "POST", Path: "/api/v2/private/buy", Body: bytes.Repeat([]byte(" "), maxSimBody+1), Header: http.Header{}}, 413, codeBadRequest},
		{"unknown method", &exchange.Request{Method: "GET", Path: "/api/v2/public/nope", Header: http.Header{}}, 400, codeMethodNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, m := e.send(t, tt.req)
			if st != tt.status || errCode(m) != tt.code || m["jsonrpc"] != "2.0" {
				t.Errorf("send(%s) = %d %v, want %d code %v", tt.name, st, m, tt.status, tt.code)
			}
		})
	}
	for _, l := range e.kit.Log()[1:] {
		if l.Verified || l.Error == "" {
			t.Errorf("rejected request logged as %+v", l)
		}
	}
}

func TestSimulatorIPAndFaults(t *testing.T) {
	kit := sim.NewKit()
	key := cred("ip-client", "s")
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true}, IPs: []string{"10.9.9.9"}})
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	e := &simEnv{kit: kit, srv: srv, key: key, now: time.Now()}
	st, m := e.do(t, &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}, key)
	if st != 403 || errCode(m) != codeForbidden {
		t.Errorf("wrong IP = %d %v, want 403 %d", st, m, codeForbidden)
	}
	kit.Inject(sim.Fault{Status: 429, RetryAfter: 2 * time.Second, Count: 1})
	resp, err := http.Get(srv.URL + "/api/v2/public/get_time")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("fault = %d %q, want 429 with Retry-After 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		kind   exchange.ErrorKind
		status int
		code   float64
	}{
		{exchange.ErrAuth, 401, codeUnauthorized},
		{exchange.ErrTimestamp, 401, codeUnauthorized},
		{exchange.ErrPermission, 403, codeForbidden},
		{exchange.ErrIP, 403, codeForbidden},
		{exchange.ErrRateLimit, 429, codeTooManyRequests},
		{exchange.ErrBadRequest, 400, codeBadRequest},
		{exchange.ErrNotFound, 400, codeMethodNotFound},
		{exchange.ErrUnavailable, 503, codeRetry},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		ErrorWriter{}.WriteError(w, &exchange.Error{Kind: tt.kind, Message: "rule max-notional denied", RetryAfter: 1500 * time.Millisecond})
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if w.Code != tt.status || errCode(m) != tt.code {
			t.Errorf("WriteError(kind %d) = %d %v, want %d %v", tt.kind, w.Code, m, tt.status, tt.code)
		}
		reason := m["error"].(map[string]any)["data"].(map[string]any)["reason"]
		if reason != "rule max-notional denied" {
			t.Errorf("WriteError(kind %d) reason = %v, want the message", tt.kind, reason)
		}
		if tt.kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "2" {
			t.Errorf("WriteError(rate limit) Retry-After = %q, want 2", w.Header().Get("Retry-After"))
		}
	}
}

func TestKeyManager(t *testing.T) {
	km := KeyManager{}
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "bot 1", Permissions: []string{"account:read", "trade:read_write"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "max_scope=account%3Aread+trade%3Aread_write&name=bot+1"; r.Path != "/api/v2/private/create_api_key" || r.RawQuery != want {
		t.Errorf("CreateKeyRequest = %s?%s, want query %s", r.Path, r.RawQuery, want)
	}
	if c, _ := (Describer{}).Describe(r); c.Scope != exchange.ScopeAccountAdmin {
		t.Errorf("Describe(create_api_key) scope = %s, want account-admin", c.Scope)
	}
	for _, bad := range []exchange.KeySpec{{}, {Permissions: []string{"everything"}}, {Permissions: []string{"trade:read"}, IPs: []string{"1.2.3.4"}}} {
		if _, err := km.CreateKeyRequest(bad); err == nil {
			t.Errorf("CreateKeyRequest(%+v) = nil error", bad)
		}
	}
	c, err := km.ParseCreatedKey(200, []byte(`{"jsonrpc":"2.0","result":{"id":7,"client_id":"cid","client_secret":"csec","max_scope":"trade:read_write"}}`))
	if err != nil || c.APIKey != "cid" || string(c.Secret) != "csec" || c.Account != "7" {
		t.Errorf("ParseCreatedKey = %v, %v", c, err)
	}
	if _, err := km.ParseCreatedKey(400, []byte(`{"error":{"code":13403,"message":"scope_exceeded"}}`)); err == nil {
		t.Error("ParseCreatedKey(error) = nil error")
	}
	d, err := km.DeleteKeyRequest("7", exchange.KeySpec{})
	if err != nil || d.RawQuery != "id=7" {
		t.Errorf("DeleteKeyRequest = %v, %v", d, err)
	}
	if _, err := km.DeleteKeyRequest("cid&x=1", exchange.KeySpec{}); err == nil {
		t.Error("DeleteKeyRequest(non-numeric) = nil error")
	}
}

func TestPostureFromScope(t *testing.T) {
	p := postureFromScope("account:read trade:read_write wallet:none block_trade:read ip:10.0.0.1 connection expires:900")
	want := exchange.KeyPosture{
		Permissions: []string{"account:read", "trade:read_write", "block_trade:read"},
		CanRead:     true, CanTrade: true, CanFutures: true, IPRestricted: true, IPs: []string{"10.0.0.1"},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("postureFromScope mismatch (-want +got):\n%s", diff)
	}
}

func TestSimulatorConcurrent(t *testing.T) {
	e := newSimEnv(t, "read")
	const n = 16
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			r := &exchange.Request{Method: "GET", Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}}
			if err := (Signer{}).Sign(r, e.key, e.now); err != nil {
				errs <- err.Error()
				return
			}
			hr, _ := http.NewRequest(r.Method, e.srv.URL+r.Path+"?"+r.RawQuery, nil)
			hr.Header = r.Header
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprintf("status %d", resp.StatusCode)
				return
			}
			errs <- ""
		}()
	}
	for i := 0; i < n; i++ {
		if msg := <-errs; msg != "" {
			t.Errorf("concurrent request: %s", msg)
		}
	}
}
