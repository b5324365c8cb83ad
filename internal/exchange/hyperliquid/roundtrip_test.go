package hyperliquid

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

const orderAction = `{"type":"order","orders":[{"a":0,"b":true,"p":"50000","s":"0.01","r":false,"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"}`

func unsigned(action string, nonce int64) []byte {
	return fmt.Appendf(nil, `{"action":%s,"nonce":%d,"vaultAddress":null}`, action, nonce)
}

func genKey(t *testing.T) *eip712.PrivateKey {
	t.Helper()
	k, err := eip712.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// vaultCred is how the vault hands a wallet key to the Signer.
func vaultCred(k *eip712.PrivateKey, master eip712.Address) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: k.Address().Hex(), Secret: exchange.Secret(k.Hex()), Account: master.Hex()}
}

type simEnv struct {
	kit    *sim.Kit
	sim    *Simulator
	srv    *httptest.Server
	master *eip712.PrivateKey
	agent  *eip712.PrivateKey
}

func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	e := &simEnv{kit: sim.NewKit(), master: genKey(t), agent: genKey(t)}
	e.sim = NewSimulator(e.kit)
	e.kit.AddAccount(sim.Account{Key: exchange.Credential{APIKey: e.master.Address().Hex()}})
	if err := e.sim.ApproveAgent(e.master.Address(), e.agent.Address(), "bot"); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *simEnv) post(t *testing.T, path string, body []byte) map[string]any {
	t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return out
}

func signWith(t *testing.T, k *eip712.PrivateKey, body []byte) []byte {
	t.Helper()
	b, err := SignBody(k, body, Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSimulator: the simulator accepts actions signed by the master or its
// agent, and refuses unknown signers, agents signing fund movements, reused
// nonces, tampered bodies and a re-approved agent address.
func TestSimulator(t *testing.T) {
	e := newSimEnv(t)
	now := time.Now().UnixMilli()
	stranger := genKey(t)
	withdraw := fmt.Sprintf(`{"type":"withdraw3","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"0x5e9ee1089755c3435139848e47e6635505d5a13a","amount":"10","time":%d}`, now+5)
	tampered := signWith(t, e.agent, unsigned(orderAction, now+6))
	tampered = bytes.Replace(tampered, []byte(`"0.01"`), []byte(`"10.0"`), 1)
	tests := []struct {
		name string
		body []byte
		want string // "ok" or a substring of the error
	}{
		{"agent order", signWith(t, e.agent, unsigned(orderAction, now)), "ok"},
		{"master order", signWith(t, e.master, unsigned(orderAction, now+1)), "ok"},
		{"nonce reused", signWith(t, e.agent, unsigned(orderAction, now)), "already used"},
		{"stranger", signWith(t, stranger, unsigned(orderAction, now+2)), "does not exist"},
		{"agent withdraw", signWith(t, e.agent, unsigned(withdraw, now+5)), "master"},
		{"master withdraw", signWith(t, e.master, unsigned(withdraw, now+5)), "ok"},
		{"tampered", tampered, "does not exist"},
		{"stale nonce", signWith(t, e.agent, unsigned(orderAction, now-3*24*3600*1000)), "within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := e.post(t, "/exchange", tt.body)
			if tt.want == "ok" {
				if out["status"] != "ok" {
					t.Fatalf("answer %v, want ok", out)
				}
				return
			}
			if msg, _ := out["response"].(string); out["status"] != "err" || !strings.Contains(msg, tt.want) {
				t.Fatalf("answer %v, want an error containing %q", out, tt.want)
			}
		})
	}
	if n := len(e.kit.Orders(e.master.Address().Hex())); n != 2 {
		t.Errorf("simulator holds %d orders, want 2", n)
	}
	if got := e.kit.Balances(e.master.Address().Hex())["USDC"]; got != 100000-10 {
		t.Errorf("USDC balance = %v, want %v", got, 100000-10)
	}
	// Rotation: approving the same address again is refused.
	if err := e.sim.ApproveAgent(e.master.Address(), e.agent.Address(), "bot"); err == nil {
		t.Errorf("re-approving a used agent address succeeded")
	}
}

// TestGatewayPath runs the venue's Verifier, Describer and Signer as the
// gateway does and forwards to the simulator: the bot signs with its client
// key, keywarden re-signs with the vault's agent key.
func TestGatewayPath(t *testing.T) {
	e := newSimEnv(t)
	v := New(nil)
	clientSecret := exchange.Secret("kwclientsecretXYZ0123456789")
	botKey, err := ClientPrivateKey(clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kwBOT", Secret: clientSecret}
	now := time.Now()
	body := signWith(t, botKey, unsigned(orderAction, now.UnixMilli()))
	in := &exchange.Request{Method: "POST", Path: "/kwBOT/exchange", Header: http.Header{}, Body: body}
	id, err := v.Verifier.ClientKey(in)
	if err != nil || id != "kwBOT" {
		t.Fatalf("ClientKey = %q, %v, want kwBOT", id, err)
	}
	out, err := v.Verifier.Verify(in, client, now)
	if err != nil {
		t.Fatal(err)
	}
	if out.Path != "/exchange" || bytes.Contains(out.Body, []byte("signature")) {
		t.Fatalf("Verify left path %q body %s, want /exchange without the bot's signature", out.Path, out.Body)
	}
	call, err := v.Describer.Describe(out)
	if err != nil {
		t.Fatal(err)
	}
	want := exchange.Call{Method: "POST", Path: "/exchange", Endpoint: "order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
		Action: exchange.ActionNew, Symbol: "0", Side: exchange.Buy, Type: "limit", Quantity: 0.01, Price: 50000, Notional: 500,
		QuantityText: "0.01", PriceText: "50000",
	}}}
	if d := cmp.Diff(want, call); d != "" {
		t.Errorf("Describe (-want +got):\n%s", d)
	}
	if err := v.Signer.Sign(out, vaultCred(e.agent, e.master.Address()), now); err != nil {
		t.Fatal(err)
	}
	if res := e.post(t, "/exchange", out.Body); res["status"] != "ok" {
		t.Fatalf("simulator answered %v to the re-signed order", res)
	}
	// The same signed body again is a replay, even with other spacing.
	if _, err := v.Verifier.Verify(&exchange.Request{Method: "POST", Path: "/kwBOT/exchange", Body: append([]byte(" "), body...)}, client, now); exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("replayed body: Verify error %v, want a timestamp/replay error", err)
	}
	// Another wallet's signature, a stale nonce, and no id in the path.
	other := signWith(t, genKey(t), unsigned(orderAction, now.UnixMilli()+1))
	if _, err := v.Verifier.Verify(&exchange.Request{Method: "POST", Path: "/kwBOT/exchange", Body: other}, client, now); exchange.AsError(err).Kind != exchange.ErrAuth {
		t.Errorf("foreign signer: Verify error %v, want ErrAuth", err)
	}
	stale := signWith(t, botKey, unsigned(orderAction, now.Add(-time.Minute).UnixMilli()))
	if _, err := v.Verifier.Verify(&exchange.Request{Method: "POST", Path: "/kwBOT/exchange", Body: stale}, client, now); exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("stale nonce: Verify error %v, want ErrTimestamp", err)
	}
	if _, err := v.Verifier.ClientKey(&exchange.Request{Method: "POST", Path: "/exchange", Body: body}); exchange.AsError(err).Kind != exchange.ErrAuth {
		t.Errorf("ClientKey without id: %v, want ErrAuth", err)
	}
	if id, err := v.Verifier.ClientKey(&exchange.Request{Method: "POST", Path: "/info", Body: []byte(`{"type":"allMids"}`)}); id != "" || err != nil {
		t.Errorf("ClientKey(/info) = %q, %v, want public", id, err)
	}
}

// TestSignerKeys: an agent key refuses user-signed actions, a master key
// signs them, nonces per key never repeat, and a key whose id is not its
// address is refused.
func TestSignerKeys(t *testing.T) {
	e := newSimEnv(t)
	s := NewSigner(Mainnet)
	now := time.Now()
	usd := `{"type":"usdSend","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"0x5e9ee1089755c3435139848e47e6635505d5a13a","amount":"1","time":1}`
	r := &exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned(usd, 1)}
	if err := s.Sign(r, vaultCred(e.agent, e.master.Address()), now); err == nil || !strings.Contains(err.Error(), "master") {
		t.Errorf("agent signing usdSend: %v, want a refusal naming the master wallet", err)
	}
	if err := s.Sign(r, vaultCred(e.master, e.master.Address()), now); err != nil {
		t.Fatal(err)
	}
	if res := e.post(t, "/exchange", r.Body); res["status"] != "ok" {
		t.Errorf("simulator answered %v to the master's usdSend", res)
	}
	var last uint64
	for i := range 5 {
		r := &exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned(orderAction, 1)}
		if err := s.Sign(r, vaultCred(e.agent, e.master.Address()), now); err != nil {
			t.Fatal(err)
		}
		env, err := parseEnvelope(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if env.Nonce <= last {
			t.Fatalf("signature %d nonce %d, not above %d", i, env.Nonce, last)
		}
		last = env.Nonce
		if res := e.post(t, "/exchange", r.Body); res["status"] != "ok" {
			t.Fatalf("simulator answered %v", res)
		}
	}
	bad := vaultCred(e.agent, e.master.Address())
	bad.APIKey = e.master.Address().Hex()
	if err := s.Sign(&exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned(orderAction, 1)}, bad, now); err == nil {
		t.Errorf("a key whose id is another address signed")
	}
}

// TestRotation approves a fresh agent through the signer and the
// simulator; the new agent trades, and its address can never be drawn or
// approved again.
func TestRotation(t *testing.T) {
	e := newSimEnv(t)
	used := &MemoryUsedAgents{}
	ctx := context.Background()
	now := time.Now()
	k, req, err := NewAgent(ctx, used, "bot", Mainnet, now)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	if seen, _ := used.Used(ctx, k.Address()); !seen {
		t.Errorf("the new agent's address is not recorded as used")
	}
	if err := NewSigner(Mainnet).Sign(req, vaultCred(e.master, e.master.Address()), now); err != nil {
		t.Fatal(err)
	}
	if res := e.post(t, "/exchange", req.Body); res["status"] != "ok" {
		t.Fatalf("approveAgent answered %v", res)
	}
	if got, want := e.sim.Agents(e.master.Address()), []string{k.Address().Hex()}; !cmp.Equal(got, want) {
		t.Errorf("agents = %v, want only the new one %v (same name replaces)", got, want)
	}
	order := signWith(t, k, unsigned(orderAction, now.UnixMilli()))
	if res := e.post(t, "/exchange", order); res["status"] != "ok" {
		t.Errorf("new agent's order answered %v", res)
	}
	old := signWith(t, e.agent, unsigned(orderAction, now.UnixMilli()+1))
	if res := e.post(t, "/exchange", old); res["status"] != "err" {
		t.Errorf("replaced agent's order answered %v, want an error", res)
	}
	// Replaying the approval for the old address is refused by the simulator.
	again, err := ApproveAgentRequest(k.Address(), "bot2", Mainnet, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewSigner(Mainnet).Sign(again, vaultCred(e.master, e.master.Address()), now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if res := e.post(t, "/exchange", again.Body); res["status"] != "err" {
		t.Errorf("re-approving a used address answered %v, want an error", res)
	}
}

// TestDescribe classifies actions by scope.
func TestDescribe(t *testing.T) {
	tests := []struct {
		action string
		scope  exchange.Scope
	}{
		{`{"type":"cancel","cancels":[{"a":0,"o":1}]}`, exchange.ScopeTrade},
		{`{"type":"updateLeverage","asset":0,"isCross":true,"leverage":5}`, exchange.ScopeTrade},
		{`{"type":"usdClassTransfer","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","amount":"1","toPerp":true,"nonce":1}`, exchange.ScopeTransfer},
		{`{"type":"subAccountTransfer","subAccountUser":"0x1d9470d4b963f552e6f671a81619d395877bf409","isDeposit":true,"usd":10}`, exchange.ScopeTransfer},
		{`{"type":"withdraw3","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"0x5e9ee1089755c3435139848e47e6635505d5a13a","amount":"1","time":1}`, exchange.ScopeWithdraw},
		{`{"type":"usdSend","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"0x5e9ee1089755c3435139848e47e6635505d5a13a","amount":"1","time":1}`, exchange.ScopeWithdraw},
		{`{"type":"approveAgent","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","agentAddress":"0x5e9ee1089755c3435139848e47e6635505d5a13a","agentName":"x","nonce":1}`, exchange.ScopeAccountAdmin},
		{`{"type":"createSubAccount","name":"example"}`, exchange.ScopeAccountAdmin},
		{`{"type":"somethingNew"}`, exchange.ScopeAccountAdmin},
	}
	for _, tt := range tests {
		c, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned(tt.action, 1)})
		if err != nil {
			t.Errorf("Describe(%s): %v", tt.action, err)
			continue
		}
		if c.Scope != tt.scope {
			t.Errorf("Describe(%s).Scope = %s, want %s", tt.action, c.Scope, tt.scope)
		}
	}
	c, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned(tests[4].action, 1)})
	if err != nil || c.Transfer == nil || c.Transfer.Address != "0x5e9ee1089755c3435139848e47e6635505d5a13a" || c.Transfer.Amount != 1 {
		t.Errorf("withdraw3 transfer = %+v, %v", c.Transfer, err)
	}
	for _, bad := range []string{
		`{"action":{"type":"order"},"nonce":1,"nonce":2}`,
		`{"action":{"type":"order","orders":[{"a":0,"b":true,"p":"1e3","s":"1","r":false,"t":{}}],"grouping":"na"},"nonce":1}`,
		`{"action":{"type":"order"},"nonce":1,"extra":1}`,
		`{"nonce":1}`,
	} {
		if _, err := (describer{}).Describe(&exchange.Request{Method: "POST", Path: "/exchange", Body: []byte(bad)}); err == nil {
			t.Errorf("Describe(%s) accepted a malformed body", bad)
		}
	}
}

// TestBaseURLForms: the ccxt-style base /c/<client id> serves /info
// (public, forwarded to /info) and /exchange (signed, the id names the
// credential), next to the older forms; anything else under /c is refused.
func TestBaseURLForms(t *testing.T) {
	v := New(nil)
	pp, ok := v.Verifier.(interface{ PublicPath(string) string })
	if !ok {
		t.Fatal("the verifier does not map public paths")
	}
	tests := []struct {
		path       string
		id         string
		kind       exchange.ErrorKind // of ClientKey's error; 0 for none
		public     string             // PublicPath
		describeOK bool               // Describe of an info body succeeds as public
	}{
		{path: "/info", public: "/info", describeOK: true},
		{path: "/c/kwBOT/info", public: "/info", describeOK: true},
		{path: "/c/kwBOT/exchange", id: "kwBOT", public: "/c/kwBOT/exchange"},
		{path: "/kwBOT/exchange", id: "kwBOT", public: "/kwBOT/exchange"},
		{path: "/c/exchange", id: "c", public: "/c/exchange"}, // a credential named "c", older form
		{path: "/exchange", kind: exchange.ErrAuth, public: "/exchange"},
		{path: "/c/kw\x7fBOT/info", kind: exchange.ErrBadRequest, public: "/c/kw\x7fBOT/info"},
		{path: "/c/kwBOT/info/x", public: "/c/kwBOT/info/x"},
		{path: "/c/kwBOT/other", public: "/c/kwBOT/other"},
		{path: "/x/kwBOT/exchange", public: "/x/kwBOT/exchange"},
		{path: "/c/a/b/exchange", public: "/c/a/b/exchange"},
	}
	for _, tt := range tests {
		r := &exchange.Request{Method: "POST", Path: tt.path, Body: []byte(`{"type":"allMids"}`)}
		id, err := v.Verifier.ClientKey(r)
		var kind exchange.ErrorKind
		if err != nil {
			kind = exchange.AsError(err).Kind
		}
		if id != tt.id || kind != tt.kind {
			t.Errorf("ClientKey(%q) = %q, kind %d, want %q, kind %d", tt.path, id, kind, tt.id, tt.kind)
		}
		if got := pp.PublicPath(tt.path); got != tt.public {
			t.Errorf("PublicPath(%q) = %q, want %q", tt.path, got, tt.public)
		}
		call, err := v.Describer.Describe(r)
		if ok := err == nil && call.Scope == exchange.ScopePublic; ok != tt.describeOK {
			t.Errorf("Describe(%q) = %+v, %v; public ok = %v, want %v", tt.path, call, err, ok, tt.describeOK)
		}
	}
}
