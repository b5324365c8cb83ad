package bybit

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// WebSocket host and paths (spec §7 f).
const (
	WSUpstream  = "wss://stream.bybit.com"
	WSPrivate   = "/v5/private"
	WSTrade     = "/v5/trade"
	wsMaxExpiry = 60 * time.Second
)

// wsREST maps trade ops to the REST endpoint taking the same body.
var wsREST = map[string]string{
	"order.create": "/v5/order/create", "order.amend": "/v5/order/amend", "order.cancel": "/v5/order/cancel",
	"order.create-batch": "/v5/order/create-batch", "order.amend-batch": "/v5/order/amend-batch",
	"order.cancel-batch": "/v5/order/cancel-batch",
}

// WSAPI is Bybit's private and trade WebSocket (/v5/private, /v5/trade) as
// the WebSocket proxy handles it: auth (hex HMAC-SHA256 over "GET/realtime"
// + expires) is verified with the client credential, with expires in the
// future and at most 60 s ahead, and re-signed with the exchange key; trade
// ops are described as their REST twins; ping is passed through.
type WSAPI struct{}

// NewWSAPI returns the Bybit WebSocket API.
func NewWSAPI() WSAPI { return WSAPI{} }

var _ exchange.WSAPI = WSAPI{}

type wsMsg struct {
	ReqID  json.RawMessage   `json:"reqId,omitempty"`
	ReqID2 json.RawMessage   `json:"req_id,omitempty"`
	Header map[string]string `json:"header,omitempty"`
	Op     string            `json:"op"`
	Args   []json.RawMessage `json:"args,omitempty"`
}

func (m *wsMsg) id() json.RawMessage {
	if len(m.ReqID) > 0 {
		return m.ReqID
	}
	return m.ReqID2
}

func parseWSMsg(msg []byte) (*wsMsg, *exchange.Error) {
	if err := exchange.CheckJSON(msg, 8); err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	var m wsMsg
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || m.Op == "" || len(m.Args) > 20 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "a request is {\"op\", \"args\"[, \"reqId\"]}")
	}
	return &m, nil
}

// wsAuth reads auth args: api key, expires (ms), signature.
func wsAuth(m *wsMsg) (key string, expires int64, sig string, e *exchange.Error) {
	bad := exchange.Errorf(exchange.ErrAuth, "auth takes [api key, expires, signature]")
	if len(m.Args) != 3 || json.Unmarshal(m.Args[0], &key) != nil || json.Unmarshal(m.Args[2], &sig) != nil || key == "" {
		return "", 0, "", bad
	}
	var n json.Number
	if json.Unmarshal(m.Args[1], &n) != nil {
		var s string
		if json.Unmarshal(m.Args[1], &s) != nil {
			return "", 0, "", bad
		}
		n = json.Number(s)
	}
	exp, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return "", 0, "", bad
	}
	return key, exp, sig, nil
}

// WSSignature is hex(HMAC-SHA256(secret, "GET/realtime" + expires)).
func WSSignature(secret []byte, expires int64) string {
	return hex.EncodeToString(exchange.HMACSHA256(nil, secret, []byte("GET/realtime"+strconv.FormatInt(expires, 10))))
}

// Parse reads one bot message.
func (WSAPI) Parse(msg []byte) (*exchange.WSMessage, error) {
	m, e := parseWSMsg(msg)
	if e != nil {
		return nil, e
	}
	out := &exchange.WSMessage{ID: m.id(), Op: m.Op, Public: m.Op == "ping" || m.Op == "pong"}
	if m.Op == "auth" {
		key, _, sig, e := wsAuth(m)
		if e != nil {
			return out, e
		}
		out.Logon, out.ClientKey, out.Signature = true, key, sig
	}
	return out, nil
}

// Verify checks an auth's signature and expiry.
func (WSAPI) Verify(msg []byte, _ *exchange.WSMessage, client *exchange.Credential, now time.Time) error {
	m, e := parseWSMsg(msg)
	if e != nil {
		return e
	}
	_, exp, sig, e := wsAuth(m)
	if e != nil {
		return e
	}
	t := time.UnixMilli(exp)
	if !t.After(now) || t.After(now.Add(wsMaxExpiry)) {
		return exchange.Errorf(exchange.ErrTimestamp, "expires must be in the future, at most %s ahead", wsMaxExpiry)
	}
	if client == nil || len(client.Secret) == 0 || !hmac.Equal([]byte(sig), []byte(WSSignature(client.Secret, exp))) {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	return nil
}

// Describe: auth, subscribe, unsubscribe read; ping public; trade ops as
// their REST twins; anything else account-admin.
func (WSAPI) Describe(msg []byte, wm *exchange.WSMessage) (exchange.Call, error) {
	c := exchange.Call{Venue: Name, Method: "WS", Path: wm.Op, Endpoint: "ws " + wm.Op}
	switch wm.Op {
	case "ping", "pong":
		c.Scope = exchange.ScopePublic
		return c, nil
	case "auth", "subscribe", "unsubscribe":
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
	if len(m.Args) != 1 {
		return c, exchange.Errorf(exchange.ErrBadRequest, "%s takes one argument", wm.Op)
	}
	call, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: path, Body: m.Args[0],
		Header: map[string][]string{"Content-Type": {"application/json"}}})
	if err != nil {
		return c, err
	}
	call.Venue = Name
	return call, nil
}

// Sign rebuilds an auth with the exchange key (expires 5 s ahead); other
// messages go unchanged on the authenticated socket.
func (WSAPI) Sign(msg []byte, wm *exchange.WSMessage, key *exchange.Credential, now time.Time) ([]byte, error) {
	if !wm.Logon {
		return msg, nil
	}
	if key == nil || key.Kind != exchange.KeyHMAC || len(key.Secret) == 0 {
		return nil, exchange.Errorf(exchange.ErrUnavailable, "bybit auth needs an hmac key")
	}
	m, e := parseWSMsg(msg)
	if e != nil {
		return nil, e
	}
	exp := now.Add(5 * time.Second).UnixMilli()
	k, _ := json.Marshal(key.APIKey)
	s, _ := json.Marshal(WSSignature(key.Secret, exp))
	m.Args = []json.RawMessage{k, json.RawMessage(strconv.FormatInt(exp, 10)), s}
	return json.Marshal(m)
}

// Refuse answers in Bybit's shape: {"success":false,"ret_msg","op","req_id"}
// for auth and subscriptions, {"reqId","retCode","retMsg","op"} for trade ops.
func (WSAPI) Refuse(wm *exchange.WSMessage, e *exchange.Error) []byte {
	_, code := errorCode(e)
	if wm == nil || !isTradeOp(wm.Op) {
		out := map[string]any{"success": false, "ret_msg": e.Message}
		if wm != nil {
			out["op"] = wm.Op
			if len(wm.ID) > 0 {
				out["req_id"] = wm.ID
			}
		}
		b, _ := json.Marshal(out)
		return b
	}
	out := map[string]any{"retCode": code, "retMsg": e.Message, "op": wm.Op, "data": map[string]any{}}
	if len(wm.ID) > 0 {
		out["reqId"] = wm.ID
	}
	b, _ := json.Marshal(out)
	return b
}

func isTradeOp(op string) bool { _, ok := wsREST[op]; return ok }

// Answer reads answers that carry a request id.
func (WSAPI) Answer(msg []byte) (json.RawMessage, bool, bool) {
	var a struct {
		ReqID   json.RawMessage `json:"reqId"`
		ReqID2  json.RawMessage `json:"req_id"`
		RetCode *int            `json:"retCode"`
		Success *bool           `json:"success"`
	}
	if json.Unmarshal(msg, &a) != nil {
		return nil, false, false
	}
	id := a.ReqID
	if len(id) == 0 {
		id = a.ReqID2
	}
	switch {
	case len(id) == 0:
		return nil, false, false
	case a.RetCode != nil:
		return id, *a.RetCode == 0, true
	case a.Success != nil:
		return id, *a.Success, true
	}
	return nil, false, false
}
