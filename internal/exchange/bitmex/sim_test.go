package bitmex

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

func newSimEnv(t *testing.T, ips []string, perms ...string) *simEnv {
	t.Helper()
	kit := sim.NewKit()
	now := time.Unix(1700000000, 0)
	kit.Now = func() time.Time { return now }
	key := cred("simKey0123456789", "simSecret0123456789abcdefghij")
	p := map[string]bool{}
	for _, x := range perms {
		p[x] = true
	}
	kit.AddAccount(sim.Account{Key: *key, Permissions: p, IPs: ips})
	kit.SetPrice("XBTUSD", 60000)
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return &simEnv{kit: kit, srv: srv, key: key, now: now}
}

func (e *simEnv) send(t *testing.T, r *exchange.Request) (*http.Response, any) {
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
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer %q is not JSON", b)
	}
	return resp, v
}

func (e *simEnv) do(t *testing.T, method, path, query, body string) (*http.Response, any) {
	t.Helper()
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if err := (Signer{}).Sign(r, e.key, e.now); err != nil {
		t.Fatal(err)
	}
	return e.send(t, r)
}

func errMsg(v any) string {
	m, _ := v.(map[string]any)
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func TestSimulatorEndToEnd(t *testing.T) {
	e := newSimEnv(t, nil, "trade")
	resp, v := e.send(t, &exchange.Request{Method: "GET", Path: "/api/v1/instrument", RawQuery: "symbol=XBTUSD"})
	if resp.StatusCode != 200 || v.([]any)[0].(map[string]any)["lastPrice"] != 60000.0 {
		t.Errorf("instrument = %d %v", resp.StatusCode, v)
	}
	resp, v = e.do(t, "GET", "/api/v1/user/wallet", "currency=XBt", "")
	if resp.StatusCode != 200 || v.(map[string]any)["amount"] != 1e9 {
		t.Errorf("wallet = %d %v", resp.StatusCode, v)
	}
	if rl, ok := (RateLimits{}).RateLimit(resp.Header); !ok || rl.Limit != simRateLimit || rl.Used != 1 {
		t.Errorf("RateLimit(sim headers) = %+v, %v, want 1 of %d used", rl, ok, simRateLimit)
	}
	resp, v = e.do(t, "POST", "/api/v1/order", "", `{"symbol":"XBTUSD","side":"Buy","orderQty":100,"price":59000,"clOrdID":"c1"}`)
	if resp.StatusCode != 200 || v.(map[string]any)["ordStatus"] != "New" {
		t.Fatalf("order = %d %v", resp.StatusCode, v)
	}
	resp, v = e.do(t, "GET", "/api/v1/order", "filter=%7B%22open%22%3A+true%7D", "")
	if resp.StatusCode != 200 || len(v.([]any)) != 1 {
		t.Errorf("open orders = %d %v", resp.StatusCode, v)
	}
	resp, v = e.do(t, "DELETE", "/api/v1/order", "", `{"clOrdID":"c1"}`)
	if resp.StatusCode != 200 || v.([]any)[0].(map[string]any)["ordStatus"] != "Canceled" {
		t.Errorf("cancel = %d %v", resp.StatusCode, v)
	}
	resp, v = e.do(t, "POST", "/api/v1/user/requestWithdrawal", "", `{"currency":"XBt","network":"btc","amount":1000,"address":"bc1q"}`)
	if resp.StatusCode != 403 || !strings.HasPrefix(errMsg(v), "Access Denied") {
		t.Errorf("withdraw without permission = %d %v", resp.StatusCode, v)
	}
	var verified int
	for _, l := range e.kit.Log() {
		if l.Verified {
			verified++
		}
	}
	if n := len(e.kit.Log()); n != 6 || verified != 5 {
		t.Errorf("log has %d entries, %d verified, want 6 and 5", n, verified)
	}
}

func TestSimulatorWithdrawAndInspect(t *testing.T) {
	e := newSimEnv(t, []string{"127.0.0.1"}, "withdraw")
	resp, v := e.do(t, "POST", "/api/v1/user/requestWithdrawal", "", `{"currency":"XBt","network":"btc","amount":100000000,"address":"bc1qabc"}`)
	if resp.StatusCode != 200 || v.(map[string]any)["transactStatus"] != "Pending" {
		t.Fatalf("withdraw = %d %v", resp.StatusCode, v)
	}
	ir := Inspector{}.InspectRequest()
	if err := (Signer{}).Sign(ir, e.key, e.now); err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(ir.Method, e.srv.URL+ir.Path, nil)
	hr.Header = ir.Header
	resp2, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	p, err := Inspector{}.ParsePosture(resp2.StatusCode, b)
	if err != nil {
		t.Fatalf("ParsePosture(%s) = %v", b, err)
	}
	want := exchange.KeyPosture{
		Permissions: []string{"withdraw"}, CanRead: true, CanWithdraw: true, CanTransfer: true, CanFutures: true,
		IPRestricted: true, IPs: []string{"127.0.0.1/32"}, Created: e.now.UTC(),
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("ParsePosture mismatch (-want +got):\n%s", diff)
	}
}

func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t, nil, "trade")
	signed := func(method, path, query, body string, mut func(r *exchange.Request)) *exchange.Request {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if err := (Signer{}).Sign(r, e.key, e.now); err != nil {
			t.Fatal(err)
		}
		if mut != nil {
			mut(r)
		}
		return r
	}
	order := `{"symbol":"XBTUSD","side":"Buy","orderQty":100,"price":1}`
	legacy := func(nonce string) *exchange.Request {
		r := &exchange.Request{Method: "GET", Path: "/api/v1/user/wallet", Header: http.Header{}}
		var sig [64]byte
		signature(sig[:], e.key.Secret, r, []byte(nonce))
		r.Header.Set("api-key", e.key.APIKey)
		r.Header.Set("api-nonce", nonce)
		r.Header.Set("api-signature", string(sig[:]))
		return r
	}
	if resp, v := e.send(t, legacy("1000")); resp.StatusCode != 200 {
		t.Fatalf("legacy nonce = %d %v", resp.StatusCode, v)
	}
	tests := []struct {
		name   string
		req    *exchange.Request
		status int
		msg    string
	}{
		{"tampered body", signed("POST", "/api/v1/order", "", order, func(r *exchange.Request) { r.Body = bytes.Replace(r.Body, []byte("100"), []byte("900"), 1) }), 401, "Signature not valid."},
		{"tampered query", signed("GET", "/api/v1/user/wallet", "currency=XBt", "", func(r *exchange.Request) { r.RawQuery = "currency=USDt" }), 401, "Signature not valid."},
		{"tampered signature", signed("GET", "/api/v1/user/wallet", "", "", func(r *exchange.Request) {
			s := []byte(r.Header.Get("api-signature"))
			s[0] ^= 1
			r.Header.Set("api-signature", string(s))
		}), 401, "Signature not valid."},
		{"expired", signed("GET", "/api/v1/user/wallet", "", "", func(r *exchange.Request) {
			var sig [64]byte
			exp := strconv.FormatInt(e.now.Unix(), 10)
			signature(sig[:], e.key.Secret, r, []byte(exp))
			r.Header.Set("api-expires", exp)
			r.Header.Set("api-signature", string(sig[:]))
		}), 401, "This request has expired"},
		{"unknown key", signed("GET", "/api/v1/user/wallet", "", "", func(r *exchange.Request) { r.Header.Set("api-key", "nobody") }), 401, "Invalid API Key."},
		{"missing signature", signed("GET", "/api/v1/user/wallet", "", "", func(r *exchange.Request) { r.Header.Del("api-signature") }), 401, "missing api-signature"},
		{"no auth on private", &exchange.Request{Method: "GET", Path: "/api/v1/user/wallet"}, 401, "Missing API key."},
		{"replayed legacy nonce", legacy("1000"), 401, "Nonce is not increasing"},
		{"duplicated parameter", signed("GET", "/api/v1/user/wallet", "currency=XBt&currency=USDt", "", nil), 400, "duplicate parameter"},
		{"non-utf8 query", &exchange.Request{Method: "GET", Path: "/api/v1/instrument", RawQuery: "symbol=%ff"}, 400, "not valid UTF-8"},
		{"oversized body", &exchange.Request{Method: "POST", Path: "/api/v1/order", Body: bytes.Repeat([]byte(" "), maxSimBody+1)}, 413, "Request body too large."},
		{"unknown path", &exchange.Request{Method: "GET", Path: "/nope"}, 404, "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, v := e.send(t, tt.req)
			if resp.StatusCode != tt.status || !strings.Contains(errMsg(v), tt.msg) {
				t.Errorf("send(%s) = %d %v, want %d %q", tt.name, resp.StatusCode, v, tt.status, tt.msg)
			}
		})
	}
	for _, l := range e.kit.Log()[1:] {
		if l.Verified || l.Error == "" {
			t.Errorf("rejected request logged as %+v", l)
		}
	}
}

func TestSimulatorIP(t *testing.T) {
	e := newSimEnv(t, []string{"10.1.1.1"}, "trade")
	resp, v := e.do(t, "GET", "/api/v1/user/wallet", "", "")
	if resp.StatusCode != 401 || !strings.Contains(errMsg(v), "IP address") {
		t.Errorf("wrong IP = %d %v", resp.StatusCode, v)
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		kind   exchange.ErrorKind
		status int
		msg    string // exactly, as clients match on it
	}{
		{exchange.ErrAuth, 401, "Signature not valid."},
		{exchange.ErrTimestamp, 401, "This request has expired - `expires` is in the past."},
		{exchange.ErrPermission, 403, "Access Denied"},
		{exchange.ErrIP, 403, "Access Denied"},
		{exchange.ErrRateLimit, 429, "Rate limit exceeded, retry in 2 seconds."},
		{exchange.ErrBadRequest, 400, "Invalid request."},
		{exchange.ErrNotFound, 404, "Not Found"},
		{exchange.ErrUnavailable, 503, "The system is currently overloaded. Please try again later."},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		ErrorWriter{}.WriteError(w, &exchange.Error{Kind: tt.kind, Message: "rule no-withdraw", RetryAfter: 1200 * time.Millisecond})
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		msg := errMsg(v)
		detail, _ := v.(map[string]any)["error"].(map[string]any)["detail"].(string)
		if w.Code != tt.status || msg != tt.msg || detail != "rule no-withdraw" {
			t.Errorf("WriteError(kind %d) = %d %q detail %q, want %d %q detail naming the rule", tt.kind, w.Code, msg, detail, tt.status, tt.msg)
		}
		if tt.kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "2" {
			t.Errorf("WriteError(rate limit) Retry-After = %q, want 2", w.Header().Get("Retry-After"))
		}
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want exchange.RateLimit
		ok   bool
	}{
		{"present", http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"100"}}, exchange.RateLimit{Used: 20, Limit: 120, Window: time.Minute}, true},
		{"absent", http.Header{}, exchange.RateLimit{}, false},
		{"inconsistent", http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"100"}}, exchange.RateLimit{}, false},
	}
	for _, tt := range tests {
		got, ok := (RateLimits{}).RateLimit(tt.h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RateLimit(%s) = %+v, %v, want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParsePostureSeveralKeys(t *testing.T) {
	body := `[{"id":"a","permissions":["order"],"cidrs":["1.2.3.4/32"],"enabled":true,"created":"2024-01-02T00:00:00.000Z"},
	{"id":"b","permissions":["withdraw"],"cidr":"0.0.0.0/0","enabled":true,"created":"2023-01-02T00:00:00.000Z"},
	{"id":"c","permissions":["orderCancel"],"enabled":false}]`
	p, err := Inspector{}.ParsePosture(200, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := exchange.KeyPosture{
		Permissions: []string{"order", "withdraw"}, CanRead: true, CanTrade: true, CanWithdraw: true, CanTransfer: true,
		CanFutures: true, Created: time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("ParsePosture mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `{}`, `x`} {
		if _, err := (Inspector{}).ParsePosture(200, []byte(bad)); err == nil {
			t.Errorf("ParsePosture(%s) = nil error", bad)
		}
	}
}
