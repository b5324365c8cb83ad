package kucoin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

var simNow = time.UnixMilli(1700000000000)

func simKey(name string) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: name, Secret: exchange.Secret(name + "-secret"), Passphrase: exchange.Secret(name + "-pass")}
}

// newSim starts a simulator with a trader key (read, trade), a withdrawer
// key (read, withdraw) and a key restricted to another IP.
func newSim(t *testing.T) (*sim.Kit, *httptest.Server) {
	t.Helper()
	kit := sim.NewKit()
	kit.Now = func() time.Time { return simNow }
	kit.AddAccount(sim.Account{Key: *simKey("trader"), Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: *simKey("withdrawer"), Permissions: map[string]bool{"read": true, "withdraw": true}})
	kit.AddAccount(sim.Account{Key: *simKey("fenced"), Permissions: map[string]bool{"read": true}, IPs: []string{"192.0.2.1"}})
	kit.SetPrice("BTC-USDT", 30000)
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return kit, srv
}

type kcReply struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// send transmits r to the simulator byte for byte.
func send(t *testing.T, srv *httptest.Server, r *exchange.Request) (int, kcReply, http.Header) {
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
	var rep kcReply
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s %s: answer %q is not KuCoin JSON: %v", r.Method, r.Path, b, err)
	}
	return resp.StatusCode, rep, resp.Header
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

const orderBody = `{"clientOid":"c-1","side":"buy","symbol":"BTC-USDT","type":"limit","price":"30000","size":"0.01"}`

func TestSimulatorAccepts(t *testing.T) {
	kit, srv := newSim(t)
	trader := simKey("trader")

	status, rep, _ := send(t, srv, &exchange.Request{Method: "GET", Path: "/api/v1/timestamp"})
	if status != 200 || string(rep.Data) != "1700000000000" {
		t.Errorf("timestamp = %d %s, want 200 1700000000000", status, rep.Data)
	}
	status, rep, _ = send(t, srv, &exchange.Request{Method: "GET", Path: "/api/v1/market/orderbook/level1", RawQuery: "symbol=BTC-USDT"})
	if status != 200 || !strings.Contains(string(rep.Data), `"price":"30000"`) {
		t.Errorf("ticker = %d %s, want price 30000", status, rep.Data)
	}

	status, rep, hdr := send(t, srv, signed(t, trader, "GET", "/api/v1/accounts", "currency=USDT", ""))
	if status != 200 || rep.Code != "200000" || !strings.Contains(string(rep.Data), `"balance":"100000"`) {
		t.Errorf("accounts = %d %+v, want USDT balance", status, rep)
	}
	if rl, ok := (limits{}).RateLimit(hdr); !ok || rl.Used != 1 || rl.Limit != simQuota {
		t.Errorf("RateLimit(sim headers) = %+v, %v, want 1 of %d", rl, ok, simQuota)
	}

	status, rep, _ = send(t, srv, signed(t, trader, "POST", "/api/v1/hf/orders", "", orderBody))
	var placed struct{ OrderID, ClientOid string }
	if status != 200 || json.Unmarshal(rep.Data, &placed) != nil || placed.OrderID == "" || placed.ClientOid != "c-1" {
		t.Fatalf("place order = %d %+v", status, rep)
	}
	status, rep, _ = send(t, srv, signed(t, trader, "GET", "/api/v1/hf/orders/active", "symbol=BTC-USDT", ""))
	if status != 200 || !strings.Contains(string(rep.Data), placed.OrderID) {
		t.Errorf("open orders = %d %s, want order %s", status, rep.Data, placed.OrderID)
	}
	status, rep, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v1/hf/orders/"+placed.OrderID, "symbol=BTC-USDT", ""))
	if status != 200 || !strings.Contains(string(rep.Data), placed.OrderID) {
		t.Errorf("cancel = %d %+v", status, rep)
	}
	status, _, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v1/hf/orders/"+placed.OrderID, "symbol=BTC-USDT", ""))
	if status != 400 {
		t.Errorf("second cancel status = %d, want 400", status)
	}

	status, rep, _ = send(t, srv, signed(t, trader, "GET", "/api/v1/user/api-key", "", ""))
	if status != 200 {
		t.Fatalf("api-key = %d %+v", status, rep)
	}
	body, _ := json.Marshal(map[string]any{"code": rep.Code, "data": rep.Data})
	p, err := (inspector{}).ParsePosture(status, body)
	if err != nil || !p.CanRead || !p.CanTrade || p.CanWithdraw || p.IPRestricted {
		t.Errorf("ParsePosture(sim api-key) = %+v, %v, want read+trade", p, err)
	}

	w := simKey("withdrawer")
	status, rep, _ = send(t, srv, signed(t, w, "POST", "/api/v3/withdrawals", "", `{"currency":"USDT","toAddress":"TXabc","amount":"100","chain":"trx"}`))
	if status != 200 || !strings.Contains(string(rep.Data), "withdrawalId") {
		t.Errorf("withdraw = %d %+v", status, rep)
	}
	acc, _ := kit.Account("withdrawer")
	if acc.Balances["USDT"] != 99900 {
		t.Errorf("balance after withdraw = %v, want 99900", acc.Balances["USDT"])
	}

	// The log is the oracle: every private call was verified for its key.
	for _, l := range kit.Log() {
		private := strings.Contains(l.Path, "accounts") || strings.Contains(l.Path, "orders") || strings.Contains(l.Path, "withdrawals") || strings.Contains(l.Path, "api-key")
		if private && (!l.Verified || l.APIKey == "") {
			t.Errorf("log %s %s: Verified=%v APIKey=%q, want verified", l.Method, l.Path, l.Verified, l.APIKey)
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
		code   string
	}{
		{"tampered body", func() *exchange.Request {
			r := signed(t, trader, "POST", "/api/v1/hf/orders", "", orderBody)
			r.Body = bytes.Replace(r.Body, []byte("0.01"), []byte("9.99"), 1)
			return r
		}, 401, "400005"},
		{"tampered query", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v1/accounts", "currency=USDT", "")
			r.RawQuery = "currency=BTC"
			return r
		}, 401, "400005"},
		{"tampered signature", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v1/accounts", "", "")
			r.Header.Set("KC-API-SIGN", "x"+r.Header.Get("KC-API-SIGN")[1:])
			return r
		}, 401, "400005"},
		{"stale timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: "/api/v1/accounts", Header: http.Header{}}
			if err := (signer{}).Sign(r, trader, simNow.Add(-6*time.Second)); err != nil {
				t.Fatal(err)
			}
			return r
		}, 401, "400002"},
		{"wrong passphrase", func() *exchange.Request {
			k := *trader
			k.Passphrase = exchange.Secret("nope")
			return signed(t, &k, "GET", "/api/v1/accounts", "", "")
		}, 401, "400004"},
		{"unknown key", func() *exchange.Request {
			return signed(t, simKey("stranger"), "GET", "/api/v1/accounts", "", "")
		}, 401, "400003"},
		{"missing header", func() *exchange.Request {
			r := signed(t, trader, "GET", "/api/v1/accounts", "", "")
			r.Header.Del("KC-API-PASSPHRASE")
			return r
		}, 401, "400001"},
		{"duplicated parameter", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v1/accounts", "currency=USDT&currency=BTC", "")
		}, 400, "400100"},
		{"duplicated JSON key", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":"1","size":"100"}`)
		}, 400, "400100"},
		{"oversized body", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v1/hf/orders", "", `{"remark":"`+strings.Repeat("a", maxSimBody)+`"}`)
		}, 413, "400100"},
		{"non-UTF-8 query", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v1/accounts", "currency=%ff%fe", "")
		}, 400, "400100"},
		{"no permission to withdraw", func() *exchange.Request {
			return signed(t, trader, "POST", "/api/v3/withdrawals", "", `{"currency":"USDT","toAddress":"a","amount":"1"}`)
		}, 403, "400007"},
		{"no permission to trade", func() *exchange.Request {
			return signed(t, simKey("withdrawer"), "POST", "/api/v1/hf/orders", "", orderBody)
		}, 403, "400007"},
		{"ip not whitelisted", func() *exchange.Request {
			return signed(t, simKey("fenced"), "GET", "/api/v1/accounts", "", "")
		}, 403, "400006"},
		{"unknown path", func() *exchange.Request {
			return signed(t, trader, "GET", "/api/v1/nothing", "", "")
		}, 404, "404000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kit.ResetLog()
			status, rep, _ := send(t, srv, tt.req())
			if status != tt.status || rep.Code != tt.code {
				t.Errorf("%s: answer = %d %+v, want %d code %s", tt.name, status, rep, tt.status, tt.code)
			}
			for _, l := range kit.Log() {
				if l.Verified && tt.code != "400007" {
					t.Errorf("%s: log says verified", tt.name)
				}
			}
		})
	}
	if n := len(kit.Orders("trader")); n != 0 {
		t.Errorf("rejected requests placed %d orders", n)
	}
}

// TestGatewayRoundTrip plays the gateway: a bot signs with its client
// credential, the verifier checks and strips it, the describer classifies
// it and the signer re-signs with the exchange key the simulator knows.
func TestGatewayRoundTrip(t *testing.T) {
	kit, srv := newSim(t)
	client := simKey("bot-client")
	bot := signed(t, client, "POST", "/api/v1/hf/orders", "", orderBody)
	clean, err := (verifier{}).Verify(bot, client, simNow)
	if err != nil {
		t.Fatal(err)
	}
	call, err := (describer{}).Describe(clean)
	if err != nil || call.Scope != exchange.ScopeTrade || len(call.Orders) != 1 {
		t.Fatalf("Describe = %+v, %v", call, err)
	}
	if err := (signer{}).Sign(clean, simKey("trader"), simNow); err != nil {
		t.Fatal(err)
	}
	if status, rep, _ := send(t, srv, clean); status != 200 {
		t.Fatalf("forwarded order = %d %+v", status, rep)
	}
	if n := len(kit.Orders("trader")); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	if u, _ := url.Parse(DefaultUpstream); New(u).Upstream.Host != "api.kucoin.com" {
		t.Errorf("New upstream host = %q", New(u).Upstream.Host)
	}
}

// TestSimulatorVectors checks the simulator's own verification against
// vectors K1-K3 (spec §8b).
func TestSimulatorVectors(t *testing.T) {
	kit := sim.NewKit()
	kit.Now = func() time.Time { return vecTime }
	kit.AddAccount(sim.Account{Key: *vecKey, Permissions: map[string]bool{"read": true}})
	s := NewSimulator(kit)
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			acc, err := s.authenticate(signedVector(tt.req, tt.sign), "127.0.0.1:9")
			if err != nil || acc == nil || acc.Key.APIKey != "kc-test-key" {
				t.Errorf("authenticate(%s) = %v, %v, want the vector key", tt.name, acc, err)
			}
			bad := signedVector(tt.req, tt.sign)
			bad.Header.Set("KC-API-PASSPHRASE", "4vLi5ZyAZK89HGxtp452p/eH4VWJoGGaUXkbEvin9vA=")
			if _, err := s.authenticate(bad, "127.0.0.1:9"); err == nil || err.code != "400004" {
				t.Errorf("authenticate(%s, wrong passphrase) = %v, want 400004", tt.name, err)
			}
		})
	}
}

// TestSimulatorCCXTProbes covers what ccxt calls besides the HF endpoints:
// the unified-account and HF-migration probes, balances by account type,
// and the classic order endpoints.
func TestSimulatorCCXTProbes(t *testing.T) {
	tests := []struct {
		name, method, path, query, body string
		status                          int
		data                            string
	}{
		{name: "account mode", method: "GET", path: "/api/ua/v1/account/mode", status: 200, data: `{"selfAccountMode":"CLASSIC"}`},
		{name: "hf opened", method: "GET", path: "/api/v1/hf/accounts/opened", status: 200, data: `true`},
		{name: "trade_hf balances", method: "GET", path: "/api/v1/accounts", query: "currency=USDT&type=trade_hf", status: 200,
			data: `[{"available":"100000","balance":"100000","currency":"USDT","holds":"0","id":"5004","type":"trade_hf"}]`},
		{name: "main account is empty", method: "GET", path: "/api/v1/accounts", query: "type=main", status: 200, data: `[]`},
		{name: "unknown account type", method: "GET", path: "/api/v1/accounts", query: "type=bogus", status: 400},
		{name: "other unified path", method: "GET", path: "/api/ua/v1/account/balance", status: 404},
	}
	_, srv := newSim(t)
	trader := simKey("trader")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, rep, _ := send(t, srv, signed(t, trader, tt.method, tt.path, tt.query, tt.body))
			if status != tt.status {
				t.Fatalf("%s %s = %d %+v, want %d", tt.method, tt.path, status, rep, tt.status)
			}
			if tt.data != "" && string(rep.Data) != tt.data {
				t.Errorf("%s %s data = %s, want %s", tt.method, tt.path, rep.Data, tt.data)
			}
		})
	}
}

func TestSimulatorClassicOrders(t *testing.T) {
	kit, srv := newSim(t)
	trader := simKey("trader")
	status, rep, _ := send(t, srv, signed(t, trader, "POST", "/api/v1/orders", "", orderBody))
	var placed struct{ OrderID string }
	if status != 200 || json.Unmarshal(rep.Data, &placed) != nil || placed.OrderID == "" {
		t.Fatalf("POST /api/v1/orders = %d %+v, want an order id", status, rep)
	}
	// The classic cancel needs no symbol and lists the canceled ids.
	status, rep, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v1/orders/"+placed.OrderID, "", ""))
	want := `{"cancelledOrderIds":["` + placed.OrderID + `"]}`
	if status != 200 || string(rep.Data) != want {
		t.Errorf("DELETE /api/v1/orders/%s = %d %s, want 200 %s", placed.OrderID, status, rep.Data, want)
	}
	if os := kit.Orders("trader"); len(os) != 1 || os[0].Status != "CANCELED" {
		t.Errorf("orders after cancel = %+v, want one CANCELED", os)
	}
	status, rep, _ = send(t, srv, signed(t, trader, "DELETE", "/api/v1/orders/"+placed.OrderID, "", ""))
	if status != 400 || rep.Msg != "order_not_exist_or_not_allow_to_cancel" {
		t.Errorf("second cancel = %d %+v, want 400 order_not_exist_or_not_allow_to_cancel", status, rep)
	}
}

func TestSimulatorUnifiedOrders(t *testing.T) {
	kit, srv := newSim(t)
	trader := simKey("trader")
	body := `{"tradeType":"SPOT","clientOid":"u1","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","sizeUnit":"BASECCY","size":"0.5","price":"100"}`
	status, rep, _ := send(t, srv, signed(t, trader, "POST", "/api/ua/v1/unified/order/place", "", body))
	var placed struct{ OrderID, ClientOid, TradeType string }
	if status != 200 || json.Unmarshal(rep.Data, &placed) != nil || placed.OrderID == "" || placed.ClientOid != "u1" || placed.TradeType != "SPOT" {
		t.Fatalf("unified place = %d %+v, want an order id, u1 and SPOT", status, rep)
	}
	if os := kit.Orders("trader"); len(os) != 1 || os[0].Quantity != 0.5 || os[0].Price != 100 || os[0].Side != "buy" {
		t.Fatalf("orders after unified place = %+v, want one buy of 0.5 at 100", os)
	}
	// A cancel names the symbol and exactly one of orderId and clientOid.
	for _, bad := range []string{`{"symbol":"BTC-USDT"}`, `{"symbol":"BTC-USDT","orderId":"` + placed.OrderID + `","clientOid":"u1"}`, `{"orderId":"` + placed.OrderID + `"}`} {
		if status, _, _ := send(t, srv, signed(t, trader, "POST", "/api/ua/v1/unified/order/cancel", "", bad)); status != 400 {
			t.Errorf("unified cancel %s = %d, want 400", bad, status)
		}
	}
	status, rep, _ = send(t, srv, signed(t, trader, "POST", "/api/ua/v1/unified/order/cancel", "", `{"tradeType":"SPOT","symbol":"BTC-USDT","clientOid":"u1"}`))
	var canceled struct{ OrderID string }
	if status != 200 || json.Unmarshal(rep.Data, &canceled) != nil || canceled.OrderID != placed.OrderID {
		t.Errorf("unified cancel = %d %+v, want order %s", status, rep, placed.OrderID)
	}
	if os := kit.Orders("trader"); len(os) != 1 || os[0].Status != "CANCELED" {
		t.Errorf("orders after unified cancel = %+v, want one CANCELED", os)
	}
}

// TestSimulatorKeyManagement: a master key creates a sub-account key with
// the package's own key-management requests; the key works with what it
// was given; deleting it needs its maker, its sub-account and its
// passphrase; once deleted it is refused.
func TestSimulatorKeyManagement(t *testing.T) {
	kit, srv := newSim(t)
	master := simKey("master")
	kit.AddAccount(sim.Account{Key: *master, Permissions: map[string]bool{"read": true, "admin": true}})
	kit.AddAccount(sim.Account{Key: *simKey("other"), Permissions: map[string]bool{"read": true, "admin": true}})
	km := keyManager{}
	do := func(r *exchange.Request, key *exchange.Credential) (int, []byte, kcReply) {
		t.Helper()
		r = &exchange.Request{Method: r.Method, Path: r.Path, RawQuery: r.RawQuery, Body: r.Body, Header: r.Header.Clone()}
		if err := (signer{}).Sign(r, key, simNow); err != nil {
			t.Fatal(err)
		}
		status, rep, _ := send(t, srv, r)
		raw, _ := json.Marshal(rep)
		return status, raw, rep
	}
	spec := exchange.KeySpec{Label: "kw-rotated", Permissions: []string{"General", "Spot"}, IPs: []string{"127.0.0.1"}, SubAccount: "bot1"}
	create, err := km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, rep := do(create, simKey("trader")); rep.Code == "200000" {
		t.Fatalf("a trading key created a key: %+v", rep)
	}
	status, raw, _ := do(create, master)
	nk, err := km.ParseCreatedKey(status, raw)
	if err != nil {
		t.Fatalf("ParseCreatedKey(%d, %s) = %v", status, raw, err)
	}
	status, raw, _ = do(inspector{}.InspectRequest(), nk)
	pos, err := inspector{}.ParsePosture(status, []byte(raw))
	if err != nil || !pos.CanTrade || pos.CanWithdraw {
		t.Fatalf("new key posture = %+v, %v; want trade without withdraw", pos, err)
	}
	spec.Passphrase = nk.Passphrase
	del, err := km.DeleteKeyRequest(nk.APIKey, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, rep := do(del, simKey("other")); rep.Code == "200000" {
		t.Fatalf("another master deleted the key: %+v", rep)
	}
	wrong := spec
	wrong.Passphrase = exchange.Secret("not-the-passphrase")
	bad, _ := km.DeleteKeyRequest(nk.APIKey, wrong)
	if _, _, rep := do(bad, master); rep.Code != "400004" {
		t.Fatalf("delete with a wrong passphrase = %+v, want 400004", rep)
	}
	if _, _, rep := do(del, master); rep.Code != "200000" {
		t.Fatalf("delete = %+v, want 200000", rep)
	}
	if _, _, rep := do(inspector{}.InspectRequest(), nk); rep.Code == "200000" {
		t.Errorf("the deleted key still works: %+v", rep)
	}
}
