package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/vault"
)

// wsDial opens a WebSocket to the gateway at path.
func wsDial(t *testing.T, env *Env, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(env.URL, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func wsRead(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("read %s: %v", b, err)
	}
	return m
}

// wsCall sends a WS API request and reads its answer (skipping events).
func wsCall(t *testing.T, c *websocket.Conn, id, method string, params map[string]string) map[string]any {
	t.Helper()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		m := wsRead(t, c)
		if m["id"] == id {
			return m
		}
	}
}

// wsSigned returns params signed for the WS API with cred (apiKey and
// timestamp added), as a Binance client library does.
func wsSigned(t *testing.T, cred *exchange.Credential, params map[string]string) map[string]string {
	t.Helper()
	p := map[string]string{"apiKey": cred.APIKey, "timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)}
	for k, v := range params {
		p[k] = v
	}
	sig, err := binance.SignWSParams(p, cred)
	if err != nil {
		t.Fatal(err)
	}
	p["signature"] = sig
	return p
}

func wsStatus(m map[string]any) int {
	f, _ := m["status"].(float64)
	return int(f)
}

func wsErrorMsg(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["msg"].(string)
	return s
}

// TestWSMarketStreams: market streams, single and combined, pass through
// the gateway unchanged and without any credential.
func TestWSMarketStreams(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{})
	env.Sims["binance"].Kit.SetPrice("BTCUSDT", 50000)
	c := wsDial(t, env, "/binance/ws/btcusdt@trade")
	for range 3 {
		m := wsRead(t, c)
		if m["e"] != "trade" || m["s"] != "BTCUSDT" || m["p"] != "50000.00" {
			t.Fatalf("stream event %v, want a BTCUSDT trade at 50000.00", m)
		}
	}
	cs := wsDial(t, env, "/binance/stream?streams=btcusdt@trade/ethusdt@trade")
	seen := map[string]bool{}
	for range 4 {
		m := wsRead(t, cs)
		seen[m["stream"].(string)] = true
	}
	if !seen["btcusdt@trade"] || !seen["ethusdt@trade"] {
		t.Errorf("combined stream gave %v, want both streams", seen)
	}
	for _, bad := range []string{"/binance/ws/../ws-api/v3", "/nope/ws/x", "/binance/ws/a%2fb"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(env.URL, "http")+bad, nil)
		cancel()
		if err == nil || resp == nil || resp.StatusCode < 400 {
			t.Errorf("dial %s succeeded, want a refusal", bad)
		}
	}
}

// TestWSAPISignedRequests: signed WS API requests are verified with the
// client credential, checked by the same policy as REST, audited, re-signed
// with the exchange key and answered with that key scrubbed; replays,
// forgeries, session-less requests and over-cap orders are refused and
// never reach the simulator.
func TestWSAPISignedRequests(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["binance"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	key := env.AddKey("binance", "main", "read", "trade")
	iss := env.Issue("binance", "main", "trader")
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}
	c := wsDial(t, env, "/binance/ws-api/v3")

	if m := wsCall(t, c, "t", "time", nil); wsStatus(m) != 200 {
		t.Errorf("time: %v", m)
	}
	order := wsSigned(t, cred, map[string]string{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "49000"})
	m := wsCall(t, c, "o1", "order.place", order)
	if wsStatus(m) != 200 {
		t.Fatalf("order.place: %v", m)
	}
	res, _ := m["result"].(map[string]any)
	orders := kit.Orders(key.APIKey)
	if len(orders) != 1 || fmt.Sprint(res["orderId"]) != orders[0].ID || orders[0].Quantity != 0.01 || orders[0].Price != 49000 {
		t.Errorf("order answer %v, simulator orders %+v: want one 0.01 BTCUSDT buy at 49000", res, orders)
	}
	steps := []struct {
		name, id, method string
		params           map[string]string
		status           int
		msg              string
	}{
		{"replay", "o2", "order.place", order, 400, "replayed"},
		{"over the cap", "o3", "order.place", wsSigned(t, cred, map[string]string{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "49000"}), 401, "rule max_order_notional"},
		{"other symbol", "o4", "order.place", wsSigned(t, cred, map[string]string{"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "2000"}), 401, "rule symbol"},
		{"forged", "o5", "order.place", func() map[string]string {
			p := wsSigned(t, cred, map[string]string{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "49000"})
			p["quantity"] = "0.02"
			return p
		}(), 401, "invalid API key or signature"},
		{"no session", "a1", "account.status", map[string]string{"timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)}, 401, "session.logon"},
		{"stale", "o6", "order.place", func() map[string]string {
			p := map[string]string{"apiKey": iss.ID, "timestamp": strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10),
				"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "49000"}
			p["signature"], _ = binance.SignWSParams(p, cred)
			return p
		}(), 400, "recvWindow"},
	}
	for _, s := range steps {
		m := wsCall(t, c, s.id, s.method, s.params)
		if wsStatus(m) != s.status || !strings.Contains(wsErrorMsg(m), s.msg) {
			t.Errorf("%s: %v, want status %d with %q", s.name, m, s.status, s.msg)
		}
	}
	if m := wsCall(t, c, "s1", "account.status", wsSigned(t, cred, nil)); wsStatus(m) != 200 {
		t.Errorf("signed account.status: %v", m)
	}
	var got []string
	for _, l := range kit.Log() {
		if l.Path == "/api/v3/ticker/price" {
			continue // the policy's reference price
		}
		got = append(got, l.Method+" "+l.Path)
		if l.APIKey != key.APIKey || !l.Verified {
			t.Errorf("simulator saw %s %s with key %q verified=%v, want the exchange key", l.Method, l.Path, l.APIKey, l.Verified)
		}
		env.AssertNoSecretIn("forwarded message", string(l.Body), iss.ID, string(iss.Secret))
	}
	if d := cmp.Diff([]string{"WS order.place", "WS account.status"}, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(key.Secret, string(iss.Secret)))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/timestamp": 2, "denied/deny/max_order_notional": 1,
		"denied/deny/symbol": 1, "denied/deny/auth": 1}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}

// ed25519Client returns a bot key pair and its PKIX PEM public key.
func ed25519Client(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// addEd25519Key stores an Ed25519 exchange key in the vault and at the
// simulator, as Binance's session.logon needs.
func addEd25519Key(t *testing.T, env *Env, name string, perms ...string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	apiKey := "EXKEY" + randHex(12)
	p := map[string]bool{}
	for _, x := range perms {
		p[x] = true
	}
	env.Sims["binance"].Kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyEd25519, APIKey: apiKey, PublicKey: pub}, Permissions: p})
	if _, err := env.Vault.AddKey(context.Background(), vault.KeyInput{Exchange: "binance", Name: name, APIKey: apiKey, Kind: exchange.KeyEd25519,
		Secret: exchange.Secret(base64.StdEncoding.EncodeToString(priv.Seed()))}); err != nil {
		t.Fatal(err)
	}
	return apiKey
}

// TestWSAPISession: a bot logs its socket on with its Ed25519 client key;
// keywarden logs the upstream session on with the Ed25519 exchange key,
// then checks and audits every unsigned request on the session; the
// exchange key never reaches the bot; a user-data subscription delivers
// events; revoking the credential closes the socket with 1008.
func TestWSAPISession(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["binance"].Kit
	exKey := addEd25519Key(t, env, "ed", "read", "trade")
	botKey, pubPEM := ed25519Client(t)
	iss, err := env.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: "ed", Policy: "trader", TTL: time.Hour,
		Kind: exchange.KeyEd25519, PublicKeyPEM: pubPEM})
	if err != nil {
		t.Fatal(err)
	}
	cred := &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: iss.ID, PrivateKey: botKey}
	c := wsDial(t, env, "/binance/ws-api/v3")
	m := wsCall(t, c, "l", "session.logon", wsSigned(t, cred, nil))
	if wsStatus(m) != 200 {
		t.Fatalf("session.logon: %v", m)
	}
	if res, _ := m["result"].(map[string]any); res["apiKey"] != iss.ID {
		t.Errorf("logon answer apiKey %v, want the client id (the exchange key scrubbed)", res["apiKey"])
	}
	ts := func() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }
	m = wsCall(t, c, "o", "order.place", map[string]string{"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
		"quantity": "0.001", "price": "60000", "timestamp": ts()})
	if wsStatus(m) != 200 || len(kit.Orders(exKey)) != 1 {
		t.Errorf("order.place on the session: %v; simulator orders %d", m, len(kit.Orders(exKey)))
	}
	m = wsCall(t, c, "big", "order.place", map[string]string{"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
		"quantity": "1", "price": "60000", "timestamp": ts()})
	if wsStatus(m) != 401 || !strings.Contains(wsErrorMsg(m), "max_order_notional") {
		t.Errorf("over-cap order on the session: %v", m)
	}
	m = wsCall(t, c, "st", "session.status", map[string]string{})
	if b, _ := json.Marshal(m); strings.Contains(string(b), exKey) {
		t.Errorf("session.status leaked the exchange key: %s", b)
	}
	if m = wsCall(t, c, "u", "userDataStream.subscribe", map[string]string{}); wsStatus(m) != 200 {
		t.Errorf("userDataStream.subscribe: %v", m)
	}
	if ev := wsRead(t, c); ev["event"] == nil {
		t.Errorf("user data event %v, want an event", ev)
	}
	if err := env.Clients.Revoke(context.Background(), "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err = c.Read(ctx); err != nil {
			break
		}
	}
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Errorf("after revocation the socket ended with %v (code %d), want 1008", err, code)
	}
	var got []string
	for _, l := range kit.Log() {
		if l.Path != "/api/v3/ticker/price" {
			got = append(got, l.Path)
		}
	}
	want := []string{"session.logon", "order.place", "session.status", "userDataStream.subscribe"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
}

// TestWSUserDataStreamAndPanic: a listenKey created through the REST
// gateway opens a user-data stream through the WebSocket proxy; the panic
// switch closes every open socket with 1013 and refuses new ones.
func TestWSUserDataStreamAndPanic(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	env.AddKey("binance", "main", "read")
	iss := env.Issue("binance", "main", "reader")
	// USER_STREAM calls carry the API key alone, as at Binance: keywarden
	// checks it against the credential and sends the exchange key's id,
	// unsigned. Creating twice in a row is no replay.
	listenKey := func(apiKey string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", env.URL+"/binance/api/v3/userDataStream", nil)
		req.Header.Set("X-MBX-APIKEY", apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lk struct {
			ListenKey string `json:"listenKey"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&lk)
		return resp.StatusCode, lk.ListenKey
	}
	if st, _ := listenKey("kwNoSuchClientKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); st != http.StatusUnauthorized {
		t.Errorf("listenKey with an unknown key = %d, want 401", st)
	}
	st, first := listenKey(iss.ID)
	if st != 200 || first == "" {
		t.Fatalf("listenKey through the gateway: %d", st)
	}
	st, second := listenKey(iss.ID)
	if st != 200 || second == "" {
		t.Fatalf("second listenKey through the gateway: %d", st)
	}
	for _, l := range env.Sims["binance"].Kit.Log() {
		if l.Path == "/api/v3/userDataStream" && (strings.Contains(l.RawQuery, "signature") || l.Header.Get("X-MBX-APIKEY") == iss.ID) {
			t.Errorf("the venue got %q with key header %q; want the exchange key and no signature", l.RawQuery, l.Header.Get("X-MBX-APIKEY"))
		}
	}
	lk := struct{ ListenKey string }{first}
	var err error
	c := wsDial(t, env, "/binance/ws/"+lk.ListenKey)
	if m := wsRead(t, c); m["e"] != "outboundAccountPosition" {
		t.Errorf("user data event %v, want outboundAccountPosition", m)
	}
	market := wsDial(t, env, "/binance/ws/btcusdt@trade")
	wsRead(t, market)
	env.Server.Gateway.Stop()
	for _, s := range []*websocket.Conn{c, market} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for {
			if _, _, err = s.Read(ctx); err != nil {
				break
			}
		}
		cancel()
		if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
			t.Errorf("after the panic switch a socket ended with %v, want 1013", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(env.URL, "http")+"/binance/ws/btcusdt@trade", nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("dial while stopped: %v, want 503", err)
	}
	// The proxy finishes each socket's upstream close handshake (bounded
	// by the library's timeouts) before it forgets it.
	for deadline := time.Now().Add(15 * time.Second); env.Server.WS.Open() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := env.Server.WS.Open(); n != 0 {
		t.Errorf("%d sockets still open after the panic", n)
	}
}
