package hyperliquid

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

// WSPath is Hyperliquid's WebSocket path (wss://api.hyperliquid.xyz/ws):
// subscriptions, ping and the post method share one socket.
const WSPath = "/ws"

// WSAPI is Hyperliquid's WebSocket as keywarden's WebSocket proxy handles
// it, message by message (spec §13f):
//
//   - {"method":"subscribe"|"unsubscribe","subscription":{...}} and
//     {"method":"ping"} pass unchanged: user-data subscriptions are keyed
//     by address and need no authentication at Hyperliquid either;
//   - {"method":"post","id":N,"request":{"type":"info","payload":{...}}}
//     passes unchanged, like POST /info;
//   - {"method":"post","id":N,"request":{"type":"action","payload":{...}}}
//     is the /exchange body of REST: verified with the client credential
//     named in the socket's path (/hyperliquid/c/<client id>/ws), described
//     as POST /exchange, and re-signed with the vault key under a fresh
//     nonce.
//
// A WSAPI shares its venue's verifier (one replay memory: a signed action
// is accepted once, over REST or WebSocket) and Signer (one nonce sequence
// per signing key). It is safe for concurrent use.
type WSAPI struct {
	v      *verifier
	s      *Signer
	client string // the socket's client credential id; "" for none
}

var _ exchange.WSAPI = (*WSAPI)(nil)

// NewWSAPI returns the WebSocket API of venue, a Venue from New or
// NewNetwork.
func NewWSAPI(venue exchange.Venue) (*WSAPI, error) {
	v, ok1 := venue.Verifier.(*verifier)
	s, ok2 := venue.Signer.(*Signer)
	if !ok1 || !ok2 {
		return nil, errors.New("hyperliquid: NewWSAPI needs a venue built by hyperliquid.New")
	}
	return &WSAPI{v: v, s: s}, nil
}

// ForClient returns the WSAPI of a socket opened for client credential id
// (the path /c/<id>/ws); false when id is malformed.
func (a *WSAPI) ForClient(id string) (exchange.WSAPI, bool) {
	if !exchange.ValidKeyID(id) {
		return nil, false
	}
	c := *a
	c.client = id
	return &c, true
}

// wsPost is a parsed post message.
type wsPost struct {
	id      uint64
	typ     string // "info" or "action"
	payload *eip712.Object
}

func parseWS(msg []byte) (method string, p *wsPost, err error) {
	v, err := eip712.DecodeOrdered(msg)
	if err != nil {
		return "", nil, err
	}
	top, ok := v.(*eip712.Object)
	if !ok {
		return "", nil, errors.New("message must be a JSON object")
	}
	method, ok = stringMember(top, "method")
	if !ok {
		return "", nil, errors.New("method missing")
	}
	switch method {
	case "ping":
		if len(top.Keys) != 1 {
			return "", nil, errors.New("ping takes no other member")
		}
		return method, nil, nil
	case "subscribe", "unsubscribe":
		for _, k := range top.Keys {
			if k != "method" && k != "subscription" {
				return "", nil, errors.New("unexpected member " + exchange.SafeName(k))
			}
		}
		if s, _ := top.Get("subscription"); s == nil {
			return "", nil, errors.New("subscription missing")
		} else if _, ok := s.(*eip712.Object); !ok {
			return "", nil, errors.New("subscription must be an object")
		}
		return method, nil, nil
	case "post":
	default:
		return "", nil, errors.New("unknown method " + exchange.SafeName(method))
	}
	p = &wsPost{}
	for i, k := range top.Keys {
		switch k {
		case "method":
		case "id":
			if p.id, err = uintOf(top.Values[i]); err != nil {
				return method, nil, errors.New("post id must be an unsigned integer")
			}
		case "request":
			req, ok := top.Values[i].(*eip712.Object)
			if !ok || len(req.Keys) != 2 {
				return method, nil, errors.New("request must be {type, payload}")
			}
			p.typ, _ = stringMember(req, "type")
			pl, _ := req.Get("payload")
			if p.payload, ok = pl.(*eip712.Object); !ok || (p.typ != "info" && p.typ != "action") {
				return method, nil, errors.New(`request must be {"type":"info"|"action","payload":{...}}`)
			}
		default:
			return method, nil, errors.New("unexpected member " + exchange.SafeName(k))
		}
	}
	if _, ok := top.Get("id"); !ok || p.payload == nil {
		return method, nil, errors.New("post needs id and request")
	}
	return method, p, nil
}

// Parse reads one bot message.
func (a *WSAPI) Parse(msg []byte) (*exchange.WSMessage, error) {
	method, p, err := parseWS(msg)
	m := &exchange.WSMessage{Op: method}
	if p != nil {
		m.ID = json.RawMessage(strconv.FormatUint(p.id, 10))
	}
	if err != nil {
		return m, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	if p == nil || p.typ == "info" {
		m.Public = true
		if p != nil {
			t, _ := stringMember(p.payload, "type")
			m.Op = "post info " + exchange.SafeName(t)
		}
		return m, nil
	}
	var t string
	if act, ok := p.payload.Get("action"); ok {
		if o, ok := act.(*eip712.Object); ok {
			t, _ = stringMember(o, "type")
		}
	}
	m.Op = "post " + exchange.SafeName(t)
	if a.client == "" {
		return m, exchange.Errorf(exchange.ErrAuth, "signed posts need the client credential in the socket's path: connect to /hyperliquid/c/<client credential id>/ws")
	}
	m.Signed, m.ClientKey = true, a.client
	// The signature object exactly as the message spells it, so the proxy
	// redacts all of it from the audited message.
	if raw, ok := rawMember(msg, "request", "payload", "signature"); ok && len(raw) > 2 {
		m.Signature = string(raw)
	}
	if m.Signature == "" {
		return m, exchange.Errorf(exchange.ErrAuth, "signature missing")
	}
	return m, nil
}

// rawMember returns the bytes of the value at path (member names of
// nested objects) exactly as msg spells them.
func rawMember(msg []byte, path ...string) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(msg))
	for i, want := range path {
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil, false
		}
		for {
			t, err := dec.Token()
			if err != nil {
				return nil, false
			}
			k, ok := t.(string)
			if !ok {
				return nil, false // the object ended without the member
			}
			if k == want {
				break
			}
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return nil, false
			}
		}
		if i == len(path)-1 {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil || !bytes.Contains(msg, raw) {
				return nil, false
			}
			return raw, true
		}
	}
	return nil, false
}

// actionPayload returns the /exchange body a post action carries.
func actionPayload(msg []byte) (*wsPost, []byte, error) {
	_, p, err := parseWS(msg)
	if err != nil {
		return nil, nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	if p == nil || p.typ != "action" {
		return nil, nil, exchange.Errorf(exchange.ErrBadRequest, "not a post action")
	}
	b, err := eip712.MarshalJSON(p.payload)
	if err != nil {
		return nil, nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	return p, b, nil
}

// Verify checks a post action's signature with the client credential, as
// REST /exchange does (same replay memory).
func (a *WSAPI) Verify(msg []byte, m *exchange.WSMessage, client *exchange.Credential, now time.Time) error {
	_, body, err := actionPayload(msg)
	if err != nil {
		return err
	}
	_, err = a.v.verifyBody(body, client, now)
	return err
}

// Describe says what a message does: subscriptions, ping and info posts
// are public; a post action is described as its REST twin POST /exchange.
func (a *WSAPI) Describe(msg []byte, m *exchange.WSMessage) (exchange.Call, error) {
	if m.Public {
		return exchange.Call{Method: "WS", Path: WSPath, Endpoint: m.Op, Scope: exchange.ScopePublic}, nil
	}
	_, body, err := actionPayload(msg)
	if err != nil {
		return exchange.Call{}, err
	}
	return describer{}.Describe(&exchange.Request{Method: "POST", Path: "/exchange", Body: body})
}

// Sign returns a post action re-signed with key under a fresh nonce, the
// bot's signature removed; other messages unchanged.
func (a *WSAPI) Sign(msg []byte, m *exchange.WSMessage, key *exchange.Credential, now time.Time) ([]byte, error) {
	if !m.Signed {
		return msg, nil
	}
	p, body, err := actionPayload(msg)
	if err != nil {
		return nil, err
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	env.Sig = nil
	unsigned, err := env.encode()
	if err != nil {
		return nil, err
	}
	r := &exchange.Request{Method: "POST", Path: "/exchange", Body: unsigned}
	if err := a.s.Sign(r, key, now); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(r.Body)+64)
	out = append(out, `{"method":"post","id":`...)
	out = strconv.AppendUint(out, p.id, 10)
	out = append(out, `,"request":{"type":"action","payload":`...)
	out = append(out, r.Body...)
	out = append(out, "}}"...)
	return out, nil
}

// Refuse is Hyperliquid's answer to a refused action: for a post with an
// id, the action answer {"status":"err","response":msg} that /exchange
// gives, wrapped as a post answer (SDKs and ccxt raise it as an error);
// {"channel":"error","data":msg} otherwise.
func (a *WSAPI) Refuse(m *exchange.WSMessage, e *exchange.Error) []byte {
	if m != nil && len(m.ID) > 0 {
		b, _ := json.Marshal(map[string]any{"channel": "post", "data": map[string]any{"id": m.ID,
			"response": map[string]any{"type": "action", "payload": map[string]any{"status": "err", "response": e.Message}}}})
		return b
	}
	b, _ := json.Marshal(map[string]any{"channel": "error", "data": e.Message})
	return b
}

// Answer reads a post answer: its id, and success when an action's
// payload says "ok" (info answers succeed). Other channels are events.
func (a *WSAPI) Answer(msg []byte) (json.RawMessage, bool, bool) {
	var ans struct {
		Channel string `json:"channel"`
		Data    struct {
			ID       *uint64 `json:"id"`
			Response struct {
				Type    string          `json:"type"`
				Payload json.RawMessage `json:"payload"`
			} `json:"response"`
		} `json:"data"`
	}
	if json.Unmarshal(msg, &ans) != nil || ans.Channel != "post" || ans.Data.ID == nil {
		return nil, false, false
	}
	id := json.RawMessage(strconv.FormatUint(*ans.Data.ID, 10))
	switch ans.Data.Response.Type {
	case "info":
		return id, true, true
	case "action":
		var st struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(ans.Data.Response.Payload, &st)
		return id, st.Status == "ok", true
	}
	return id, false, true
}
