package gate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

var simNow = time.Unix(1700000000, 0)

func simKey(name string) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret")}
}

func newSim(t *testing.T) (*sim.Kit, *httptest.Server) {
	t.Helper()
	kit := sim.NewKit()
	kit.Now = func() time.Time { return simNow }
	kit.AddAccount(sim.Account{Key: *simKey("trader"), Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: *simKey("withdrawer"), Permissions: map[string]bool{"read": true, "withdraw": true}})
	kit.AddAccount(sim.Account{Key: *simKey("fenced"), Permissions: map[string]bool{"read": true}, IPs: []string{"192.0.2.1"}})
	kit.SetPrice("BTC_USDT", 30000)
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return kit, srv
}

func send(t *testing.T, srv *httptest.Server, r *exchange.Request) (int, []byte, http.Header) {
	t.Helper()
	u := srv.URL + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	hr, err := http.NewRequest(r.Method, u, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header = r.Header.Clone()
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) && !(resp.StatusCode == http.StatusNoContent && len(b) == 0) {
		t.Fatalf("%s %s: answer %q is not JSON", r.Method, r.Path, b)
	}
	return resp.StatusCode, b, resp.Header
}

func signed(t *testing.T, key *exchange.Credential, method, path, query, body string) *exchange.Request {
	t.Helper()
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if body != "" {
		r.Body = []byte(body)
	}
	if err := (signer{}).Sign(r, key, simNow); err != nil {
		t.Fatal(err)
	}
	return r
}

const orderBody = `{"text":"t-1","currency_pair":"BTC_USDT","type":"limit","account":"spot","side":"buy","amount":"0.01","price":"30000"}`

func TestSimulatorAccepts(t *testing.T) {
	kit, srv := newSim(t)
	trader := simKey("trader")

	if status, b, _ := send(t, srv, &exchange.Request{Method: "GET", Path: "/api/v4/spot/time"}); status != 200 || string(b) != `{"server_time":1700000000000}` {
		t.Errorf("time = %d %s", status, b)
	}
	if status, b, _ := send(t, srv, &exchange.Request{Method: "GET", Path: "/api/v4/spot/tickers", RawQuery: "currency_pair=BTC_USDT"}); status != 200 || !strings.Contains(string(b), `"last":"30000"`) {
		t.Errorf("ticker = %d %s", status, b)
	}
	status, b, hdr := send(t, srv, signed(t, trader, "GET", "/api/v4/spot/accounts", "currency=USDT", ""))
	if status != 200 || !strings.Contains(string(b), `"available":"100000"`) {
		t.Errorf("accounts = %d %s", status, b)
	}
	if rl, ok := (limits{}).RateLimit(hdr); !ok || rl.Used != 1 || rl.Limit != simQuota {
		t.Errorf("RateLimit(sim headers) = %+v, %v, want 1 of %d", rl, ok, simQuota)
	}
	status, b, _ = send(t, srv, signed(t, trader, "POST", "/api/v4/spot/orders", "", orderBody))
	var placed struct{ ID, Text, Status string }
	if status != 201 || json.Unmarshal(b, &placed) != nil || placed.ID == "" || placed.Text != "t-1" || placed.Status != "open" {
		t.Fatalf("place order = %d %s", status, b)
	}
	if status, b, _ = send(t, srv, signed(t, trader, "GET", "/api/v4/spot/open_orders", "", "")); status != 200 || !strings.Contains(string(b), placed.ID) {
		t.Errorf("open orders = %d %s", status, b)
	}
	if status, b, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v4/spot/orders/"+placed.ID, "currency_pair=BTC_USDT", "")); status != 200 || !strings.Contains(string(b), `"cancelled"`) {
		t.Errorf("cancel = %d %s", status, b)
	}
	if status, _, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v4/spot/orders/"+placed.ID, "currency_pair=BTC_USDT", "")); status != 404 {
		t.Errorf("second cancel = %d, want 404", status)
	}
	status, b, _ = send(t, srv, signed(t, trader, "GET", "/api/v4/account/detail", "", ""))
	if p, err := (inspector{}).ParsePosture(status, b); err != nil || p.IPRestricted {
		t.Errorf("ParsePosture(sim detail) = %+v, %v", p, err)
	}
	status, b, _ = send(t, srv, signed(t, simKey("withdrawer"), "POST", "/api/v4/withdrawals", "", `{"currency":"USDT","address":"0xabc","amount":"100","chain":"ETH"}`))
	if status != 200 || !strings.Contains(string(b), `"status":"REQUEST"`) {
		t.Errorf("withdraw = %d %s", status, b)
	}
	if acc, _ := kit.Account("withdrawer"); acc.Balances["USDT"] != 99900 {
		t.Errorf("balance after withdraw = %v, want 99900", acc.Balances["USDT"])
	}
	// A query the bot percent-encoded is signed decoded and still accepted.
	if status, b, _ = send(t, srv, signed(t, trader, "GET", "/api/v4/spot/accounts", "currency=US%44T", "")); status != 200 {
		t.Errorf("encoded query = %d %s", status, b)
	}
	for _, l := range kit.Log() {
		if l.Path != "/api/v4/spot/time" && l.Path != "/api/v4/spot/tickers" && (!l.Verified || l.APIKey == "") {
			t.Errorf("log %s %s: Verified=%v APIKey=%q", l.Method, l.Path, l.Verified, l.APIKey)
		}
	}
}

func TestSimulatorRejects(t *testing.T) {
	kit, srv := newSim(t)
	trader := simKey("trader")
	tests := []struct {
		name   string
		req    func() *exchange.Request
		status int
		label  string
	}{
		{"tampered body", func() *exchange.Request {
			r := signed(t, trader, "POST", "/api/v4/spot/orders", "", orderBody)
			r.Body = bytes.Replace(r.Body, []byte("0.01"), []byte("9.99"), 1)
			return r
		}, 401, "INVALID_SIGNATURE"},
		{"tampered query", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v4/spot/accounts", "currency=USDT", "")
			r.RawQuery = "currency=BTC"
			return r
		}, 401, "INVALID_SIGNATURE"},
		{"tampered signature", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v4/spot/accounts", "", "")
			r.Header.Set("SIGN", "0"+r.Header.Get("SIGN")[1:])
			return r
		}, 401, "INVALID_SIGNATURE"},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v4/spot/accounts", Header: http.Header{}}
			if err := (signer{}).Sign(r, trader, simNow.Add(-61*time.Second)); err != nil {
				t.Fatal(err)
			}
			return r
		}, 401, "REQUEST_EXPIRED"},
		{"unknown key", func() *exchange.Request {
			return signed(t, simKey("stranger"), "GET", "/api/v4/spot/accounts", "", "")
		}, 401, "INVALID_KEY"},
		{"missing header", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v4/spot/accounts", "", "")
			r.Header.Del("Timestamp")
			return r
		}, 401, "MISSING_REQUIRED_HEADER"},
		{"duplicated parameter", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v4/spot/accounts", "currency=USDT&currency=BTC", "")
		}, 400, "INVALID_PARAM_VALUE"},
		{"duplicated JSON key", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","amount":"1","amount":"100"}`)
		}, 400, "INVALID_REQUEST_BODY"},
		{"oversized body", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v4/spot/orders", "", `{"text":"`+strings.Repeat("a", maxSimBody)+`"}`)
		}, 413, "INVALID_REQUEST_BODY"},
		{"non-UTF-8 query", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v4/spot/accounts", "currency=%ff", "")
		}, 400, "INVALID_PARAM_VALUE"},
		{"no permission to withdraw", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v4/withdrawals", "", `{"currency":"USDT","address":"a","amount":"1"}`)
		}, 403, "FORBIDDEN"},
		{"no permission to trade", func() *exchange.Request {
			return signed(t, simKey("withdrawer"), "POST", "/api/v4/spot/orders", "", orderBody)
		}, 403, "FORBIDDEN"},
		{"ip not whitelisted", func() *exchange.Request {
			return signed(t, simKey("fenced"), "GET", "/api/v4/spot/accounts", "", "")
		}, 403, "IP_FORBIDDEN"},
		{"unknown path", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v4/nothing", "", "")
		}, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b, _ := send(t, srv, tt.req())
			var e struct{ Label, Message string }
			if err := json.Unmarshal(b, &e); err != nil || status != tt.status || e.Label != tt.label || e.Message == "" {
				t.Errorf("%s: answer = %d %s, want %d %s", tt.name, status, b, tt.status, tt.label)
			}
		})
	}
	if n := len(kit.Orders("trader")); n != 0 {
		t.Errorf("rejected requests placed %d orders", n)
	}
}

// TestGatewayRoundTrip plays the gateway: verify the bot, describe, re-sign
// with the exchange key and forward to the simulator.
func TestGatewayRoundTrip(t *testing.T) {
	kit, srv := newSim(t)
	client := simKey("bot-client")
	bot := signed(t, client, "POST", "/api/v4/spot/orders", "", orderBody)
	clean, err := (verifier{}).Verify(bot, client, simNow)
	if err != nil {
		t.Fatal(err)
	}
	call, err := (describer{}).Describe(clean)
	if err != nil || call.Scope != exchange.ScopeTrade || len(call.Orders) != 1 || call.Orders[0].Notional != 300 {
		t.Fatalf("Describe = %+v, %v", call, err)
	}
	if err := (signer{}).Sign(clean, simKey("trader"), simNow); err != nil {
		t.Fatal(err)
	}
	if status, b, _ := send(t, srv, clean); status != 201 {
		t.Fatalf("forwarded order = %d %s", status, b)
	}
	if n := len(kit.Orders("trader")); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
}

// TestSimulatorVectors checks the simulator's own verification against
// vectors GT1-GT3 (spec §10b).
func TestSimulatorVectors(t *testing.T) {
	kit := sim.NewKit()
	kit.Now = func() time.Time { return vecTime }
	kit.AddAccount(sim.Account{Key: *vecKey, Permissions: map[string]bool{"read": true}})
	s := NewSimulator(kit)
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			acc, err := s.authenticate(signedVector(tt.req, tt.sign, "1541993715"), "127.0.0.1:9")
			if err != nil || acc == nil || acc.Key.APIKey != "key" {
				t.Errorf("authenticate(%s) = %v, %v, want the vector key", tt.name, acc, err)
			}
			bad := signedVector(tt.req, tt.sign, "1541993716")
			if _, err := s.authenticate(bad, "127.0.0.1:9"); err == nil || err.label != "INVALID_SIGNATURE" {
				t.Errorf("authenticate(%s, other timestamp) = %v, want INVALID_SIGNATURE", tt.name, err)
			}
		})
	}
}

// TestSimulatorKeyManagement: a master key creates a sub-account key with
// the package's own key-management requests; the key works with what it
// was given; only its maker deletes it, with 204; then it is refused.
func TestSimulatorKeyManagement(t *testing.T) {
	kit, srv := newSim(t)
	master := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "master", Secret: exchange.Secret("master-secret")}
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "other", Secret: exchange.Secret("other-secret")}
	kit.AddAccount(sim.Account{Key: *master, Permissions: map[string]bool{"read": true, "admin": true}})
	kit.AddAccount(sim.Account{Key: *other, Permissions: map[string]bool{"read": true, "admin": true}})
	km := keyManager{}
	do := func(r *exchange.Request, key *exchange.Credential) (int, []byte) {
		t.Helper()
		r = &exchange.Request{Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Body: r.Body, Header: r.Header.Clone()}
		if err := (signer{}).Sign(r, key, simNow); err != nil {
			t.Fatal(err)
		}
		status, body, _ := send(t, srv, r)
		return status, body
	}
	spec := exchange.KeySpec{Label: "kw-rotated", Permissions: []string{"spot", "wallet:read"}, IPs: []string{"127.0.0.1"}, SubAccount: "10000002"}
	create, err := km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := do(create, simKey("trader")); status == http.StatusOK {
		t.Fatalf("a trading key created a key")
	}
	status, raw := do(create, master)
	nk, err := km.ParseCreatedKey(status, raw)
	if err != nil {
		t.Fatalf("ParseCreatedKey(%d, %s) = %v", status, raw, err)
	}
	if status, raw := do(inspector{}.InspectRequest(), nk); status != http.StatusOK {
		t.Fatalf("the new key is refused: %d %s", status, raw)
	}
	del, err := km.DeleteKeyRequest(nk.APIKey, spec)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := do(del, other); status != http.StatusNotFound {
		t.Fatalf("another master's delete = %d, want 404", status)
	}
	if status, raw := do(del, master); status != http.StatusNoContent {
		t.Fatalf("delete = %d %s, want 204", status, raw)
	}
	if status, _ := do(inspector{}.InspectRequest(), nk); status != http.StatusUnauthorized {
		t.Errorf("the deleted key = %d, want 401", status)
	}
}
