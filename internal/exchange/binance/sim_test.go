package binance

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

var simNow = time.UnixMilli(1_700_000_000_000)

type simEnv struct {
	kit *sim.Kit
	srv *httptest.Server
	// keys by role
	trader, reader, withdrawer, unrestricted, ed, rsa *exchange.Credential
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	kit := sim.NewKit()
	kit.Now = func() time.Time { return simNow }
	e := &simEnv{kit: kit}
	e.trader = hmacCred("trader-key", "trader-secret")
	e.reader = hmacCred("reader-key", "reader-secret")
	e.withdrawer = hmacCred("withdraw-key", "withdraw-secret")
	e.unrestricted = hmacCred("noip-key", "noip-secret")
	e.ed = edCred(t, "ed-key", docEd25519PEM)
	e.rsa, _ = newRSACred(t, "rsa-key")
	all := map[string]bool{"read": true, "trade": true, "withdraw": true, "transfer": true}
	kit.AddAccount(sim.Account{Key: *e.trader, Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: *e.reader, Permissions: map[string]bool{"read": true}})
	kit.AddAccount(sim.Account{Key: *e.withdrawer, Permissions: all, IPs: []string{"127.0.0.1"}})
	kit.AddAccount(sim.Account{Key: *e.unrestricted, Permissions: all})
	// Asymmetric accounts hold only the private key, as Binance's simulator
	// must derive the registered public key itself.
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyEd25519, APIKey: "ed-key", PrivateKey: e.ed.PrivateKey}, Permissions: all})
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyRSA, APIKey: "rsa-key", PrivateKey: e.rsa.PrivateKey}, Permissions: all})
	e.srv = httptest.NewServer(NewSimulator(kit))
	t.Cleanup(e.srv.Close)
	return e
}

type simAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a simAnswer) apiError(t *testing.T) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e
}

func (e *simEnv) send(t *testing.T, r *exchange.Request) simAnswer {
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
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return simAnswer{resp.StatusCode, resp.Header, b}
}

func signed(t *testing.T, v exchange.Venue, r exchange.Request, key *exchange.Credential, now time.Time) *exchange.Request {
	t.Helper()
	c := r.Clone()
	if err := v.Signer.Sign(c, key, now); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSimulatorAccepts(t *testing.T) {
	e := newSimEnv(t)
	spot, usdm := Spot(nil), USDM(nil)
	for _, key := range []*exchange.Credential{e.trader, e.ed, e.rsa} {
		t.Run(string(key.Kind), func(t *testing.T) {
			e.kit.ResetLog()
			a := e.send(t, signed(t, spot, exchange.Request{Method: "GET", Path: "/api/v3/account"}, key, simNow))
			if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"asset":"USDT"`)) {
				t.Fatalf("GET /api/v3/account = %d %s, want 200 with balances", a.status, a.body)
			}
			log := e.kit.Log()
			if len(log) != 1 || !log[0].Verified || log[0].APIKey != key.APIKey {
				t.Errorf("kit.Log() = %+v, want one verified request by %q", log, key.APIKey)
			}
			if rl, ok := spot.Limits.RateLimit(a.header); !ok || rl.Used == 0 || rl.Window != time.Minute || rl.Limit != spotWeightLimit {
				t.Errorf("RateLimit(%v) = %+v, %v, want used weight per minute", a.header, rl, ok)
			}
		})
	}

	// Place, list and cancel on both venues.
	for _, tc := range []struct {
		v    exchange.Venue
		path string
	}{{spot, "/api/v3"}, {usdm, "/fapi/v1"}} {
		place := exchange.Request{Method: "POST", Path: tc.path + "/order",
			Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=100&newClientOrderId=abc" + tc.path[1:4])}
		a := e.send(t, signed(t, tc.v, place, e.trader, simNow))
		if a.status != http.StatusOK || a.header.Get("X-MBX-ORDER-COUNT-10S") == "" {
			t.Fatalf("POST %s/order = %d %s %v, want 200 with order counts", tc.path, a.status, a.body, a.header)
		}
		var placed struct {
			OrderID int64  `json:"orderId"`
			Status  string `json:"status"`
		}
		if err := json.Unmarshal(a.body, &placed); err != nil || placed.Status != "NEW" {
			t.Fatalf("POST %s/order body = %s (%v), want a NEW order", tc.path, a.body, err)
		}
		a = e.send(t, signed(t, tc.v, exchange.Request{Method: "GET", Path: tc.path + "/openOrders", RawQuery: "symbol=BTCUSDT"}, e.trader, simNow))
		if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"clientOrderId":"abc`)) {
			t.Errorf("GET %s/openOrders = %d %s, want the order", tc.path, a.status, a.body)
		}
		a = e.send(t, signed(t, tc.v, exchange.Request{Method: "DELETE", Path: tc.path + "/order",
			RawQuery: "symbol=BTCUSDT&origClientOrderId=abc" + tc.path[1:4]}, e.trader, simNow))
		if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"status":"CANCELED"`)) {
			t.Errorf("DELETE %s/order = %d %s, want CANCELED", tc.path, a.status, a.body)
		}
		a = e.send(t, signed(t, tc.v, exchange.Request{Method: "DELETE", Path: tc.path + "/order",
			RawQuery: "symbol=BTCUSDT&orderId=1"}, e.trader, simNow))
		if got := a.apiError(t); a.status != http.StatusBadRequest || got.Code != -2011 {
			t.Errorf("DELETE unknown order = %d %+v, want 400 -2011", a.status, got)
		}
	}

	e.kit.SetPrice("BTCUSDT", 43210.5)
	a := e.send(t, &exchange.Request{Method: "GET", Path: "/api/v3/ticker/price", RawQuery: "symbol=BTCUSDT"})
	if a.status != http.StatusOK || string(a.body) != `{"symbol":"BTCUSDT","price":"43210.50000000"}` {
		t.Errorf("GET ticker/price = %d %s", a.status, a.body)
	}
	for _, p := range []string{"/api/v3/time", "/fapi/v1/time"} {
		a = e.send(t, &exchange.Request{Method: "GET", Path: p})
		if want := `{"serverTime":1700000000000}`; a.status != http.StatusOK || string(a.body) != want {
			t.Errorf("GET %s = %d %s, want %s", p, a.status, a.body, want)
		}
	}
	a = e.send(t, signed(t, usdm, exchange.Request{Method: "GET", Path: "/fapi/v2/balance"}, e.trader, simNow))
	if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"asset":"USDT"`)) {
		t.Errorf("GET /fapi/v2/balance = %d %s", a.status, a.body)
	}
}

func TestSimulatorInspectAndWithdraw(t *testing.T) {
	e := newSimEnv(t)
	spot := Spot(nil)
	tests := []struct {
		name string
		key  *exchange.Credential
		want exchange.KeyPosture
	}{
		{"reader", e.reader, exchange.KeyPosture{Permissions: []string{"enableReading"}, CanRead: true}},
		{"withdrawer", e.withdrawer, exchange.KeyPosture{
			Permissions: []string{"enableReading", "enableSpotAndMarginTrading", "enableFutures", "enableInternalTransfer", "permitsUniversalTransfer", "enableWithdrawals"},
			CanRead:     true, CanTrade: true, CanTransfer: true, CanWithdraw: true, CanFutures: true, IPRestricted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.send(t, signed(t, spot, *spot.Inspector.InspectRequest(), tt.key, simNow))
			got, err := spot.Inspector.ParsePosture(a.status, a.body)
			if err != nil {
				t.Fatalf("ParsePosture(%d, %s) = %v", a.status, a.body, err)
			}
			tt.want.Created = simNow.UTC()
			if !equalPosture(got, tt.want) {
				t.Errorf("ParsePosture() = %+v, want %+v", got, tt.want)
			}
		})
	}

	wd := exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply",
		Body: []byte("coin=USDT&network=TRX&address=TXYZ&amount=250.5")}
	withdrawTests := []struct {
		name   string
		key    *exchange.Credential
		status int
		code   int
	}{
		{"allowed", e.withdrawer, http.StatusOK, 0},
		{"no withdraw permission", e.trader, http.StatusUnauthorized, -2015},
		{"not ip restricted", e.unrestricted, http.StatusUnauthorized, -2015},
	}
	for _, tt := range withdrawTests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.send(t, signed(t, spot, wd, tt.key, simNow))
			if a.status != tt.status {
				t.Fatalf("withdraw = %d %s, want %d", a.status, a.body, tt.status)
			}
			if tt.code != 0 {
				if got := a.apiError(t); got.Code != tt.code {
					t.Errorf("withdraw code = %d, want %d", got.Code, tt.code)
				}
				return
			}
			acc, _ := e.kit.Account(tt.key.APIKey)
			if got := acc.Balances["USDT"]; got != 100000-250.5 {
				t.Errorf("USDT balance after withdraw = %v, want %v", got, 100000-250.5)
			}
		})
	}
}

func equalPosture(a, b exchange.KeyPosture) bool {
	return strings.Join(a.Permissions, ",") == strings.Join(b.Permissions, ",") &&
		a.CanRead == b.CanRead && a.CanTrade == b.CanTrade && a.CanTransfer == b.CanTransfer &&
		a.CanWithdraw == b.CanWithdraw && a.CanFutures == b.CanFutures && a.IPRestricted == b.IPRestricted &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

// TestSimulatorRejects sends hostile and broken requests; each must get
// Binance's own error shape and code, and be logged as not verified.
// Binance keys have no passphrase, so there is no wrong-passphrase case.
func TestSimulatorRejects(t *testing.T) {
	e := newSimEnv(t)
	spot := Spot(nil)
	order := exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=10")}
	get := exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=BTCUSDT"}
	tests := []struct {
		name   string
		req    func() *exchange.Request
		status int
		code   int
	}{
		{"tampered body", func() *exchange.Request {
			r := signed(t, spot, order, e.trader, simNow)
			r.Body = bytes.Replace(r.Body, []byte("quantity=1"), []byte("quantity=9"), 1)
			return r
		}, 400, -1022},
		{"tampered query", func() *exchange.Request {
			r := signed(t, spot, get, e.trader, simNow)
			r.RawQuery = strings.Replace(r.RawQuery, "BTCUSDT", "ETHUSDT", 1)
			return r
		}, 400, -1022},
		{"tampered signature", func() *exchange.Request {
			r := signed(t, spot, get, e.trader, simNow)
			last := "0"
			if strings.HasSuffix(r.RawQuery, "0") {
				last = "1"
			}
			r.RawQuery = r.RawQuery[:len(r.RawQuery)-1] + last
			return r
		}, 400, -1022},
		{"tampered ed25519 signature", func() *exchange.Request {
			r := signed(t, spot, get, e.ed, simNow)
			i := strings.Index(r.RawQuery, "signature=") + len("signature=")
			b := []byte(r.RawQuery)
			b[i] ^= 1
			r.RawQuery = string(b)
			return r
		}, 400, -1022},
		{"signed with another secret", func() *exchange.Request {
			return signed(t, spot, get, hmacCred("trader-key", "wrong"), simNow)
		}, 400, -1022},
		{"stale timestamp", func() *exchange.Request {
			return signed(t, spot, get, e.trader, simNow.Add(-6*time.Second))
		}, 400, -1021},
		{"timestamp ahead", func() *exchange.Request {
			return signed(t, spot, get, e.trader, simNow.Add(time.Second))
		}, 400, -1021},
		{"recvWindow too large", func() *exchange.Request {
			r := get.Clone()
			s := &signer{recvWindow: 70000, macs: newMACPool()}
			if err := s.Sign(r, e.trader, simNow); err != nil {
				t.Fatal(err)
			}
			return r
		}, 400, -1131},
		{"missing api key header", func() *exchange.Request {
			r := signed(t, spot, get, e.trader, simNow)
			r.Header.Del("X-MBX-APIKEY")
			return r
		}, 401, -2014},
		{"unknown api key", func() *exchange.Request {
			return signed(t, spot, get, hmacCred("nobody", "x"), simNow)
		}, 401, -2015},
		{"missing signature", func() *exchange.Request {
			r := signed(t, spot, get, e.trader, simNow)
			r.RawQuery = exchange.RemoveParams(r.RawQuery, "signature")
			return r
		}, 400, -1102},
		{"signature not last", func() *exchange.Request {
			r := signed(t, spot, get, e.trader, simNow)
			r.RawQuery += "&x=1"
			return r
		}, 400, -1022},
		{"duplicated parameter", func() *exchange.Request {
			return signed(t, spot, exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=BTCUSDT&symbol=ETHUSDT"}, e.trader, simNow)
		}, 400, -1101},
		{"parameter in query and body", func() *exchange.Request {
			return signed(t, spot, exchange.Request{Method: "POST", Path: "/api/v3/order", RawQuery: "quantity=100",
				Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=10")}, e.trader, simNow)
		}, 400, -1101},
		{"non-UTF-8 query", func() *exchange.Request {
			return signed(t, spot, exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=%FF%FE"}, e.trader, simNow)
		}, 400, -1102},
		{"json body", func() *exchange.Request {
			r := signed(t, spot, order, e.trader, simNow)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 400, -1100},
		{"read-only key places an order", func() *exchange.Request {
			return signed(t, spot, order, e.reader, simNow)
		}, 401, -2015},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.kit.ResetLog()
			a := e.send(t, tt.req())
			got := a.apiError(t)
			if a.status != tt.status || got.Code != tt.code || got.Msg == "" {
				t.Errorf("send() = %d %s, want %d with code %d", a.status, a.body, tt.status, tt.code)
			}
			for _, l := range e.kit.Log() {
				if l.Verified && tt.code != -2015 {
					t.Errorf("kit.Log() has a verified entry %+v for a rejected request", l)
				}
				if l.Error == "" {
					t.Errorf("kit.Log() entry %+v has no error", l)
				}
			}
			if len(e.kit.Orders("trader-key"))+len(e.kit.Orders("reader-key")) != 0 {
				t.Errorf("rejected request placed an order")
			}
		})
	}

	t.Run("oversized body", func(t *testing.T) {
		r := signed(t, spot, exchange.Request{Method: "POST", Path: "/api/v3/order",
			Body: []byte("symbol=BTCUSDT&pad=" + strings.Repeat("a", maxSimBody))}, e.trader, simNow)
		a := e.send(t, r)
		if a.status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body = %d %s, want 413", a.status, a.body)
		}
	})
	t.Run("ip not allowed", func(t *testing.T) {
		e.kit.AddAccount(sim.Account{Key: *hmacCred("far-key", "far-secret"), Permissions: map[string]bool{"read": true}, IPs: []string{"10.1.2.3"}})
		a := e.send(t, signed(t, spot, get, hmacCred("far-key", "far-secret"), simNow))
		if got := a.apiError(t); a.status != 401 || got.Code != -2015 {
			t.Errorf("request from a non-allowed IP = %d %s, want 401 -2015", a.status, a.body)
		}
	})
	t.Run("fault injection", func(t *testing.T) {
		e.kit.Inject(sim.Fault{Status: 429, RetryAfter: 2 * time.Second, Count: 1})
		a := e.send(t, signed(t, spot, get, e.trader, simNow))
		if a.status != 429 || a.header.Get("Retry-After") != "2" {
			t.Errorf("injected 429 = %d %v, want 429 with Retry-After 2", a.status, a.header)
		}
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		a := e.send(t, &exchange.Request{Method: "GET", Path: "/api/v3/nothing"})
		if a.status != 404 {
			t.Errorf("unknown endpoint = %d, want 404", a.status)
		}
	})
}

// TestSimulatorKeyManagement: a master key creates a sub-account key with
// the package's own key-management requests; the key works with what it
// was given; only its maker deletes it; then it is refused.
func TestSimulatorKeyManagement(t *testing.T) {
	e := newSimEnv(t)
	v := Spot(nil)
	master, other := hmacCred("master-key", "master-secret"), hmacCred("other-key", "other-secret")
	e.kit.AddAccount(sim.Account{Key: *master, Permissions: map[string]bool{"read": true, "admin": true}})
	e.kit.AddAccount(sim.Account{Key: *other, Permissions: map[string]bool{"read": true, "admin": true}})
	km := keyManager{}
	spec := exchange.KeySpec{Label: "kw-rotated", Permissions: []string{"canTrade"}, IPs: []string{"127.0.0.1"}, SubAccount: "bot1@example.com"}
	create, err := km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.send(t, signed(t, v, *create, e.trader, simNow)); a.status == http.StatusOK {
		t.Fatalf("a trading key created a key: %s", a.body)
	}
	a := e.send(t, signed(t, v, *create, master, simNow))
	nk, err := km.ParseCreatedKey(a.status, a.body)
	if err != nil {
		t.Fatalf("ParseCreatedKey(%d, %s) = %v", a.status, a.body, err)
	}
	a = e.send(t, signed(t, v, *inspector{}.InspectRequest(), nk, simNow))
	pos, err := inspector{}.ParsePosture(a.status, a.body)
	if err != nil || !pos.CanTrade || pos.CanWithdraw || !pos.IPRestricted {
		t.Fatalf("new key posture = %+v, %v; want trade, no withdraw, IP-restricted", pos, err)
	}
	del, err := km.DeleteKeyRequest(nk.APIKey, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.send(t, signed(t, v, *del, other, simNow)); a.status == http.StatusOK {
		t.Fatalf("another master deleted the key: %s", a.body)
	}
	if a := e.send(t, signed(t, v, *del, master, simNow)); a.status != http.StatusOK {
		t.Fatalf("delete = %d %s, want 200", a.status, a.body)
	}
	if a := e.send(t, signed(t, v, *inspector{}.InspectRequest(), nk, simNow)); a.status == http.StatusOK {
		t.Errorf("the deleted key still works: %s", a.body)
	}
}
