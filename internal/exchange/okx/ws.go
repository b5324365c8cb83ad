package okx

import (
	"bytes"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/json"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// WebSocket host and paths (spec §6; OKX WebSocket API v5).
const (
	WSUpstream   = "wss://ws.okx.com:8443"
	WSPublic     = "/ws/v5/public"
	WSPrivate    = "/ws/v5/private"
	WSBusiness   = "/ws/v5/business"
	wsVerifyPath = "/users/self/verify"
)

// wsREST maps WebSocket trade ops to the REST endpoint with the same body,
// so they are described (and policy-checked) exactly like REST calls.
var wsREST = map[string]string{
	"order":               "/api/v5/trade/order",
	"batch-orders":        "/api/v5/trade/batch-orders",
	"cancel-order":        "/api/v5/trade/cancel-order",
	"batch-cancel-orders": "/api/v5/trade/cancel-batch-orders",
	"amend-order":         "/api/v5/trade/amend-order",
	"batch-amend-orders":  "/api/v5/trade/amend-batch-orders",
}

// wsSingle are the ops whose REST twin takes one object, not an array.
var wsSingle = map[string]bool{"order": true, "cancel-order": true, "amend-order": true}

// WSAPI is OKX's private WebSocket (/ws/v5/private, /ws/v5/business) as the
// WebSocket proxy handles it: login (HMAC-SHA256 over timestamp + "GET" +
// "/users/self/verify", Unix seconds, 30 s window, passphrase) is verified
// with the client credential and re-signed with the exchange key; trade
// ops are described as their REST twins; subscribe and unsubscribe read.
type WSAPI struct{}

// NewWSAPI returns the OKX WebSocket API.
func NewWSAPI() WSAPI { return WSAPI{} }

var _ exchange.WSAPI = WSAPI{}

type wsMsg struct {
	ID   json.RawMessage   `json:"id,omitempty"`
	Op   string            `json:"op"`
	Args []json.RawMessage `json:"args"`
	// Trade ops may carry expTime; kept as is.
	ExpTime string `json:"expTime,omitempty"`
}

type wsLogin struct {
	APIKey     string `json:"apiKey"`
	Passphrase string `json:"passphrase"`
	Timestamp  string `json:"timestamp"`
	Sign       string `json:"sign"`
}

func parseWSMsg(msg []byte) (*wsMsg, *exchange.Error) {
	if err := exchange.CheckJSON(msg, 8); err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	var m wsMsg
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Op == "" {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "a request is {\"op\", \"args\"[, \"id\"]}")
	}
	if len(m.Args) > 20 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "too many args")
	}
	return &m, nil
}

func parseLogin(m *wsMsg) (*wsLogin, *exchange.Error) {
	if len(m.Args) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "login takes one argument")
	}
	var l wsLogin
	dec := json.NewDecoder(bytes.NewReader(m.Args[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil || l.APIKey == "" || l.Sign == "" || l.Timestamp == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, "login needs apiKey, passphrase, timestamp and sign")
	}
	return &l, nil
}

// Parse reads one bot message.
func (WSAPI) Parse(msg []byte) (*exchange.WSMessage, error) {
	m, e := parseWSMsg(msg)
	if e != nil {
		return nil, e
	}
	out := &exchange.WSMessage{ID: m.ID, Op: m.Op}
	if m.Op == "login" {
		l, e := parseLogin(m)
		if e != nil {
			return out, e
		}
		out.Logon, out.ClientKey, out.Signature = true, l.APIKey, l.Sign
	}
	return out, nil
}

// wsSign is base64(HMAC-SHA256(secret, ts + "GET" + "/users/self/verify")).
func wsSign(secret []byte, ts string) []byte {
	return signature(nil, secret, ts, "GET", wsVerifyPath, "", nil)
}

// Verify checks a login's signature, passphrase and 30 s window.
func (WSAPI) Verify(msg []byte, _ *exchange.WSMessage, client *exchange.Credential, now time.Time) error {
	m, e := parseWSMsg(msg)
	if e != nil {
		return e
	}
	l, e := parseLogin(m)
	if e != nil {
		return e
	}
	secs, err := strconv.ParseInt(l.Timestamp, 10, 64)
	if err != nil || len(l.Timestamp) > 12 {
		return exchange.Errorf(exchange.ErrTimestamp, "invalid timestamp")
	}
	if d := now.Sub(time.Unix(secs, 0)); d > Window || d < -Window {
		return exchange.Errorf(exchange.ErrTimestamp, "timestamp request expired")
	}
	if client == nil || len(client.Secret) == 0 || !hmac.Equal([]byte(l.Sign), wsSign(client.Secret, l.Timestamp)) {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	if len(client.Passphrase) == 0 || subtle.ConstantTimeCompare([]byte(l.Passphrase), client.Passphrase) != 1 {
		return exchange.Errorf(exchange.ErrPassphrase, "passphrase incorrect")
	}
	return nil
}

// Describe: login, subscribe and unsubscribe read; trade ops as their REST
// twins; anything else account-admin.
func (WSAPI) Describe(msg []byte, wm *exchange.WSMessage) (exchange.Call, error) {
	c := exchange.Call{Venue: Name, Method: "WS", Path: wm.Op, Endpoint: "ws " + wm.Op}
	switch wm.Op {
	case "login", "subscribe", "unsubscribe":
		c.Scope = exchange.ScopeRead
		return c, nil
	}
	path, ok := wsREST[wm.Op]
	if !ok {
		c.Scope = exchange.ScopeAccountAdmin
		return c, nil
	}
	m, e := parseWSMsg(msg)
	if e != nil {
		return c, e
	}
	var body []byte
	if wsSingle[wm.Op] {
		if len(m.Args) != 1 {
			return c, exchange.Errorf(exchange.ErrBadRequest, "%s takes one argument", wm.Op)
		}
		body = m.Args[0]
	} else {
		body, _ = json.Marshal(m.Args)
	}
	call, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: path, Body: body, Header: map[string][]string{"Content-Type": {"application/json"}}})
	if err != nil {
		return c, err
	}
	call.Venue = Name
	return call, nil
}

// Sign rebuilds a login with the exchange key; other messages go unchanged
// (the upstream session is logged on with the exchange key).
func (WSAPI) Sign(msg []byte, wm *exchange.WSMessage, key *exchange.Credential, now time.Time) ([]byte, error) {
	if !wm.Logon {
		return msg, nil
	}
	if key == nil || key.Kind != exchange.KeyHMAC || len(key.Secret) == 0 || len(key.Passphrase) == 0 {
		return nil, exchange.Errorf(exchange.ErrUnavailable, "okx login needs an hmac key with a passphrase")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	l := wsLogin{APIKey: key.APIKey, Passphrase: string(key.Passphrase), Timestamp: ts, Sign: string(wsSign(key.Secret, ts))}
	arg, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wsMsg{ID: wm.ID, Op: "login", Args: []json.RawMessage{arg}})
}

// Refuse answers a login with {"event":"error","code","msg"} and other ops
// with {"id","op","code","msg","data":[]}, with OKX's codes.
func (WSAPI) Refuse(wm *exchange.WSMessage, e *exchange.Error) []byte {
	_, code := errorCode(e)
	if wm != nil && wm.Logon && (e.Kind == exchange.ErrAuth || e.Kind == exchange.ErrPassphrase || e.Kind == exchange.ErrTimestamp) {
		code = "60009" // Login failed.
	}
	if wm == nil || wm.Op == "login" || wm.Op == "subscribe" || wm.Op == "unsubscribe" {
		b, _ := json.Marshal(map[string]string{"event": "error", "code": code, "msg": e.Message})
		return b
	}
	b, _ := json.Marshal(map[string]any{"id": idString(wm.ID), "op": wm.Op, "code": code, "msg": e.Message, "data": []any{}})
	return b
}

func idString(id json.RawMessage) any {
	if len(id) == 0 {
		return ""
	}
	return id
}

// Answer reads {"id","op","code"} answers to trade ops.
func (WSAPI) Answer(msg []byte) (json.RawMessage, bool, bool) {
	var a struct {
		ID   json.RawMessage `json:"id"`
		Op   string          `json:"op"`
		Code *string         `json:"code"`
	}
	if json.Unmarshal(msg, &a) != nil || a.Code == nil || a.Op == "" || len(a.ID) == 0 {
		return nil, false, false
	}
	return a.ID, *a.Code == "0", true
}
