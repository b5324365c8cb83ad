package hyperliquid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

func postMsg(id int, kind string, payload []byte) []byte {
	return fmt.Appendf(nil, `{"method":"post","id":%d,"request":{"type":"%s","payload":%s}}`, id, kind, payload)
}

// TestWSAPI: messages are classified, a post action is verified with the
// client key (replays refused, also after the same signature came over
// REST), described as POST /exchange and re-signed with the vault key; the
// simulator accepts the re-signed post; refusals and answers use
// Hyperliquid's post shapes.
func TestWSAPI(t *testing.T) {
	e := newSimEnv(t)
	venue := New(nil)
	base, err := NewWSAPI(venue)
	if err != nil {
		t.Fatal(err)
	}
	api, ok := base.ForClient("kwBOT")
	if !ok {
		t.Fatal("ForClient refused a well-formed id")
	}
	if _, ok := base.ForClient("kw BOT"); ok {
		t.Error("ForClient accepted an id with a space")
	}
	secret := exchange.Secret("kwclientsecretXYZ0123456789")
	botKey, _ := ClientPrivateKey(secret)
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kwBOT", Secret: secret}
	now := time.Now()
	signed := signWith(t, botKey, unsigned(orderAction, now.UnixMilli()))

	tests := []struct {
		msg    string
		op     string
		public bool
		kind   exchange.ErrorKind // of Parse's error
	}{
		{`{"method":"ping"}`, "ping", true, 0},
		{`{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}`, "subscribe", true, 0},
		{`{"method":"unsubscribe","subscription":{"type":"l2Book","coin":"ETH"}}`, "unsubscribe", true, 0},
		{string(postMsg(3, "info", []byte(`{"type":"allMids"}`))), "post info allMids", true, 0},
		{string(postMsg(4, "action", signed)), "post order", false, 0},
		{`{"method":"subscribe","subscription":{"type":"trades"},"x":1}`, "", false, exchange.ErrBadRequest},
		{`{"method":"post","id":-1,"request":{"type":"info","payload":{}}}`, "post", false, exchange.ErrBadRequest},
		{`{"method":"post","id":1,"request":{"type":"other","payload":{}}}`, "post", false, exchange.ErrBadRequest},
		{`{"method":"post","id":1}`, "post", false, exchange.ErrBadRequest},
		{`{"method":"shell"}`, "", false, exchange.ErrBadRequest},
		{string(postMsg(5, "action", unsigned(orderAction, now.UnixMilli()))), "post order", false, exchange.ErrAuth},
	}
	for _, tt := range tests {
		m, err := api.Parse([]byte(tt.msg))
		var kind exchange.ErrorKind
		if err != nil {
			kind = exchange.AsError(err).Kind
		}
		if kind != tt.kind || m.Op != tt.op || (err == nil && m.Public != tt.public) {
			t.Errorf("Parse(%s) = %+v, kind %d (%v), want op %q public %v kind %d", tt.msg, m, kind, err, tt.op, tt.public, tt.kind)
		}
	}
	if _, err := base.Parse(postMsg(4, "action", signed)); exchange.AsError(err).Kind != exchange.ErrAuth || !strings.Contains(err.Error(), "/hyperliquid/c/") {
		t.Errorf("action on a socket without a client: %v, want ErrAuth naming the client path", err)
	}

	msg := postMsg(4, "action", signed)
	m, err := api.Parse(msg)
	if err != nil || !m.Signed || m.ClientKey != "kwBOT" || string(m.ID) != "4" {
		t.Fatalf("Parse = %+v, %v", m, err)
	}
	if sig := signed[bytes.Index(signed, []byte(`"signature":`))+12 : bytes.Index(signed, []byte(`,"vaultAddress"`))]; m.Signature != string(sig) {
		t.Errorf("Signature = %s, want the whole signature object %s (redacted from the audit)", m.Signature, sig)
	}
	spaced := []byte(`{"method":"post", "id":4, "request":{"type":"action", "payload":{"signature" : {"r":"0x1","s":"0x2","v":27}, "action":{"type":"noop"},"nonce":1}}}`)
	if sm, err := api.Parse(spaced); err != nil || sm.Signature != `{"r":"0x1","s":"0x2","v":27}` {
		t.Errorf("Parse(spaced).Signature = %q, %v", sm.Signature, err)
	}
	if err := api.Verify(msg, m, client, now); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if err := api.Verify(msg, m, client, now); exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("second Verify = %v, want a replay refusal", err)
	}
	// A signature first seen over REST is a replay over the WebSocket.
	viaREST := signWith(t, botKey, unsigned(orderAction, now.UnixMilli()+1))
	if _, err := venue.Verifier.Verify(&exchange.Request{Method: "POST", Path: "/c/kwBOT/exchange", Body: viaREST}, client, now); err != nil {
		t.Fatal(err)
	}
	if err := api.Verify(postMsg(6, "action", viaREST), m, client, now); exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("WS replay of a REST signature: %v, want a replay refusal", err)
	}
	call, err := api.Describe(msg, m)
	if err != nil || call.Endpoint != "order" || call.Scope != exchange.ScopeTrade || len(call.Orders) != 1 || call.Orders[0].Notional != 500 {
		t.Errorf("Describe = %+v, %v, want one trade order of notional 500", call, err)
	}
	out, err := api.Sign(msg, m, vaultCred(e.agent, e.master.Address()), now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, signed[bytes.Index(signed, []byte(`"signature"`)):]) || !bytes.HasPrefix(out, []byte(`{"method":"post","id":4,"request":{"type":"action","payload":{"action":`)) {
		t.Errorf("Sign = %s, want a post with keywarden's signature only", out)
	}
	_, p, err := parseWS(out)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(json.RawMessage(out[bytes.Index(out, []byte(`"payload":`))+10 : len(out)-2]))
	if res := e.post(t, "/exchange", payload); res["status"] != "ok" || p.id != 4 {
		t.Errorf("simulator answered %v to the re-signed payload", res)
	}

	refusal := api.Refuse(m, exchange.Errorf(exchange.ErrPermission, "denied"))
	if want := `{"channel":"post","data":{"id":4,"response":{"payload":{"response":"denied","status":"err"},"type":"action"}}}`; string(refusal) != want {
		t.Errorf("Refuse = %s, want %s", refusal, want)
	}
	if got := string(api.Refuse(nil, exchange.Errorf(exchange.ErrBadRequest, "bad"))); got != `{"channel":"error","data":"bad"}` {
		t.Errorf("Refuse(nil) = %s", got)
	}
	answers := []struct {
		msg         string
		id          string
		success, ok bool
	}{
		{`{"channel":"post","data":{"id":4,"response":{"type":"action","payload":{"status":"ok","response":{"type":"order"}}}}}`, "4", true, true},
		{`{"channel":"post","data":{"id":5,"response":{"type":"action","payload":{"status":"err","response":"no"}}}}`, "5", false, true},
		{`{"channel":"post","data":{"id":6,"response":{"type":"error","payload":"bad"}}}`, "6", false, true},
		{`{"channel":"post","data":{"id":7,"response":{"type":"info","payload":{"type":"allMids","data":{}}}}}`, "7", true, true},
		{`{"channel":"trades","data":[]}`, "", false, false},
		{`{"channel":"pong"}`, "", false, false},
	}
	for _, a := range answers {
		id, success, ok := api.Answer([]byte(a.msg))
		if d := cmp.Diff([]any{a.id, a.success, a.ok}, []any{string(id), success, ok}); d != "" {
			t.Errorf("Answer(%s) (-want +got):\n%s", a.msg, d)
		}
	}
}

// FuzzWSPost: no message makes parsing panic, and the /exchange body a
// post action yields is stable: decoding and re-encoding it gives the same
// bytes, so the body verified is the body described and re-signed.
func FuzzWSPost(f *testing.F) {
	f.Add(postMsg(1, "action", []byte(`{"action":`+orderAction+`,"nonce":7,"signature":{"r":"0x1","s":"0x2","v":27},"vaultAddress":null}`)))
	f.Add(postMsg(2, "info", []byte(`{"type":"allMids"}`)))
	f.Add([]byte(`{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}`))
	f.Add([]byte(`{"method":"post","id":3,"request":{"type":"action","payload":{"a":1e400,"b":"\u00e9","c":[1,{"d":null}]}}}`))
	api := &WSAPI{v: newVerifier(Mainnet), s: NewSigner(Mainnet), client: "kwBOT"}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, perr := api.Parse(msg)
		_, p, err := parseWS(msg)
		if err != nil || p == nil || p.typ != "action" {
			return
		}
		if perr == nil && (!m.Signed || m.ClientKey != "kwBOT") {
			t.Fatalf("Parse(%s) = %+v: a post action must be signed by the socket's client", msg, m)
		}
		_, body, err := actionPayload(msg)
		if err != nil {
			t.Fatalf("actionPayload of a parsed post: %v", err)
		}
		v, err := eip712.DecodeOrdered(body)
		if err != nil {
			t.Fatalf("payload %s does not decode: %v", body, err)
		}
		again, err := eip712.MarshalJSON(v)
		if err != nil || !bytes.Equal(body, again) {
			t.Fatalf("payload %s re-encodes as %s (%v)", body, again, err)
		}
	})
}
