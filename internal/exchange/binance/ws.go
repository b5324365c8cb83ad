package binance

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// WebSocket hosts. The WS API of spot and USDⓈ-M futures runs on its own
// host; market and user-data streams on another (spec §2.1 f, §2.2 f).
const (
	WSStreamUpstream     = "wss://stream.binance.com:9443"
	WSAPIUpstream        = "wss://ws-api.binance.com:443"
	USDMWSStreamUpstream = "wss://fstream.binance.com"
	USDMWSAPIUpstream    = "wss://ws-fapi.binance.com"
)

// WS API paths.
const (
	WSAPIPath     = "/ws-api/v3"
	USDMWSAPIPath = "/ws-fapi/v1"
)

// wsPublic are WS API methods that need no key.
var wsPublic = map[string]bool{
	"ping": true, "time": true, "exchangeInfo": true, "depth": true, "trades.recent": true, "trades.historical": true,
	"trades.aggregate": true, "klines": true, "uiKlines": true, "avgPrice": true, "ticker.24hr": true,
	"ticker.tradingDay": true, "ticker": true, "ticker.price": true, "ticker.book": true,
}

// wsRead are WS API session and stream methods that only read.
var wsRead = map[string]bool{
	"session.logon": true, "session.status": true, "session.logout": true,
	"userDataStream.subscribe": true, "userDataStream.subscribe.signature": true, "userDataStream.unsubscribe": true,
}

// wsREST maps WS API methods to the REST endpoint that does the same, so
// they are described (and checked by policy) exactly like REST calls.
var (
	wsRESTSpot = map[string][2]string{
		"order.place": {"POST", "/api/v3/order"}, "order.test": {"POST", "/api/v3/order/test"},
		"order.cancel": {"DELETE", "/api/v3/order"}, "order.status": {"GET", "/api/v3/order"},
		"order.cancelReplace": {"POST", "/api/v3/order/cancelReplace"}, "order.amend.keepPriority": {"PUT", "/api/v3/order/amend/keepPriority"},
		"openOrders.status": {"GET", "/api/v3/openOrders"}, "openOrders.cancelAll": {"DELETE", "/api/v3/openOrders"},
		"allOrders": {"GET", "/api/v3/allOrders"}, "myTrades": {"GET", "/api/v3/myTrades"},
		"account.status": {"GET", "/api/v3/account"}, "account.commission": {"GET", "/api/v3/account/commission"},
		"account.rateLimits.orders": {"GET", "/api/v3/rateLimit/order"},
		"orderList.place.oco":       {"POST", "/api/v3/orderList/oco"}, "orderList.cancel": {"DELETE", "/api/v3/orderList"},
	}
	wsRESTUSDM = map[string][2]string{
		"order.place": {"POST", "/fapi/v1/order"}, "order.modify": {"PUT", "/fapi/v1/order"},
		"order.cancel": {"DELETE", "/fapi/v1/order"}, "order.status": {"GET", "/fapi/v1/order"},
		"account.balance": {"GET", "/fapi/v2/balance"}, "account.status": {"GET", "/fapi/v2/account"},
		"v2/account.balance": {"GET", "/fapi/v2/balance"}, "v2/account.status": {"GET", "/fapi/v2/account"},
		"account.position": {"GET", "/fapi/v2/positionRisk"},
	}
)

// WSAPI is the Binance WebSocket API (spot /ws-api/v3, or USDⓈ-M
// /ws-fapi/v1) as the WebSocket proxy handles it. Signed requests carry
// apiKey, timestamp and signature in params; the signature covers every
// other param sorted by name (spec §2.1 f). session.logon authenticates
// the connection; Binance accepts only Ed25519 keys for it, so the
// exchange key must be Ed25519 to log a session on.
type WSAPI struct {
	venue string
	rest  map[string][2]string
	desc  *describer
}

// NewWSAPI returns the WS API of the spot venue, or of USDⓈ-M futures.
func NewWSAPI(futures bool) *WSAPI {
	if futures {
		return &WSAPI{venue: USDMName, rest: wsRESTUSDM, desc: newDescriber(USDMName, usdmPrefixes)}
	}
	return &WSAPI{venue: SpotName, rest: wsRESTSpot, desc: newDescriber(SpotName, spotPrefixes)}
}

var _ exchange.WSAPI = (*WSAPI)(nil)

// wsRequest is a parsed WS API request.
type wsRequest struct {
	ID     json.RawMessage
	Method string
	// Params as raw JSON values and as the text the signature covers;
	// scalar is false when a value is an array or object.
	Raw    map[string]json.RawMessage
	Text   map[string]string
	scalar bool
}

const maxWSParams = 64

func parseWS(msg []byte) (*wsRequest, *exchange.Error) {
	if err := exchange.CheckJSON(msg, 8); err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	var top struct {
		ID     json.RawMessage            `json:"id"`
		Method string                     `json:"method"`
		Params map[string]json.RawMessage `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&top); err != nil || top.Method == "" {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "a request is {\"id\", \"method\", \"params\"}")
	}
	if len(top.Params) > maxWSParams {
		return nil, exchange.Errorf(exchange.ErrBadRequest, msgTooMany)
	}
	r := &wsRequest{ID: top.ID, Method: top.Method, Raw: top.Params, Text: map[string]string{}, scalar: true}
	if r.Raw == nil {
		r.Raw = map[string]json.RawMessage{}
	}
	for k, v := range r.Raw {
		t, ok := scalarText(v)
		if !ok {
			r.scalar = false
			continue
		}
		r.Text[k] = t
	}
	return r, nil
}

// scalarText is the text a signature covers for a JSON scalar: a string's
// value, a number's literal, true or false.
func scalarText(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		return string(v), string(v) == "true" || string(v) == "false"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(v, &n) != nil {
			return "", false
		}
		return string(n), true
	}
	return "", false
}

// Parse reads one bot message.
func (a *WSAPI) Parse(msg []byte) (*exchange.WSMessage, error) {
	r, e := parseWS(msg)
	if e != nil {
		return nil, e
	}
	m := &exchange.WSMessage{ID: r.ID, Op: r.Method}
	_, hasSig := r.Raw[paramSignature]
	m.Logon = r.Method == "session.logon"
	m.Signed = hasSig && !m.Logon
	m.ClientKey = r.Text["apiKey"]
	m.Public = wsPublic[r.Method] && !hasSig
	m.Signature = r.Text[paramSignature]
	if (hasSig || m.Logon) && m.ClientKey == "" {
		return m, exchange.Errorf(exchange.ErrAuth, msgKeyFormat)
	}
	return m, nil
}

// Verify checks the signature over the sorted params with the client
// credential, and Binance's timestamp and recvWindow rule.
func (a *WSAPI) Verify(msg []byte, m *exchange.WSMessage, client *exchange.Credential, now time.Time) error {
	r, e := parseWS(msg)
	if e != nil {
		return e
	}
	if !r.scalar {
		return exchange.Errorf(exchange.ErrBadRequest, "signed requests take scalar params only")
	}
	if err := wsCheckWindow(r.Text, now); err != nil {
		return err
	}
	if !wsCheckSignature(r.Text, client) {
		return exchange.Errorf(exchange.ErrAuth, msgBadSignature)
	}
	return nil
}

func wsCheckWindow(p map[string]string, now time.Time) *exchange.Error {
	ts, ok := parseTimestamp(p[paramTimestamp])
	if !ok {
		return exchange.Errorf(exchange.ErrBadRequest, msgMandatory, paramTimestamp)
	}
	rw := defaultRecvWindow
	if s, ok := p[paramRecvWindow]; ok {
		d, ok := parseRecvWindow(s)
		if !ok {
			return exchange.Errorf(exchange.ErrBadRequest, msgMandatory, paramRecvWindow)
		}
		if d > maxRecvWindow {
			return exchange.Errorf(exchange.ErrBadRequest, msgRecvWindowMax)
		}
		rw = d
	}
	if !ts.Before(now.Add(maxAhead)) {
		return exchange.Errorf(exchange.ErrTimestamp, msgAhead)
	}
	if now.Sub(ts) > rw {
		return exchange.Errorf(exchange.ErrTimestamp, msgOutsideWindow)
	}
	return nil
}

// wsCheckSignature verifies p's signature with cred in constant time.
func wsCheckSignature(p map[string]string, cred *exchange.Credential) bool {
	sig := p[paramSignature]
	if cred == nil || sig == "" {
		return false
	}
	payload := []byte(WSPayload(p))
	switch cred.Kind {
	case exchange.KeyHMAC:
		got, err := hex.DecodeString(sig)
		if err != nil || len(got) != sha256.Size || len(cred.Secret) == 0 {
			return false
		}
		return hmac.Equal(got, exchange.HMACSHA256(nil, cred.Secret, payload))
	case exchange.KeyEd25519:
		pub, ok := cred.PublicKey.(ed25519.PublicKey)
		raw, err := base64.StdEncoding.Strict().DecodeString(sig)
		return ok && err == nil && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, payload, raw)
	case exchange.KeyRSA:
		pub, ok := cred.PublicKey.(*rsa.PublicKey)
		raw, err := base64.StdEncoding.Strict().DecodeString(sig)
		if !ok || err != nil {
			return false
		}
		d := sha256.Sum256(payload)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], raw) == nil
	}
	return false
}

// Describe maps the method to its REST twin and describes that. Public
// methods are public, session and user-data-stream methods read, and any
// other method account-admin.
func (a *WSAPI) Describe(msg []byte, m *exchange.WSMessage) (exchange.Call, error) {
	c := exchange.Call{Venue: a.venue, Method: "WS", Path: m.Op, Endpoint: "ws " + m.Op}
	switch {
	case wsPublic[m.Op]:
		c.Scope = exchange.ScopePublic
		return c, nil
	case wsRead[m.Op]:
		c.Scope = exchange.ScopeRead
		return c, nil
	}
	rest, ok := a.rest[m.Op]
	if !ok {
		c.Scope = exchange.ScopeAccountAdmin
		return c, nil
	}
	r, e := parseWS(msg)
	if e != nil {
		return c, e
	}
	if !r.scalar {
		return c, exchange.Errorf(exchange.ErrBadRequest, "order requests take scalar params only")
	}
	names := make([]string, 0, len(r.Text))
	for k := range r.Text {
		switch k {
		case "apiKey", paramSignature, paramTimestamp, paramRecvWindow:
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var q bytes.Buffer
	for i, k := range names {
		if i > 0 {
			q.WriteByte('&')
		}
		q.WriteString(url.QueryEscape(k))
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(r.Text[k]))
	}
	call, err := a.desc.Describe(&exchange.Request{Method: rest[0], Path: rest[1], RawQuery: q.String()})
	if err != nil {
		return c, err
	}
	call.Venue = a.venue
	return call, nil
}

// Sign replaces the bot's apiKey, timestamp and signature with the exchange
// key's (keeping recvWindow), for signed and logon messages.
func (a *WSAPI) Sign(msg []byte, m *exchange.WSMessage, key *exchange.Credential, now time.Time) ([]byte, error) {
	if !m.Signed && !m.Logon {
		return msg, nil
	}
	if m.Logon && key.Kind != exchange.KeyEd25519 {
		return nil, exchange.Errorf(exchange.ErrUnavailable, "session.logon needs an Ed25519 exchange key")
	}
	r, e := parseWS(msg)
	if e != nil {
		return nil, e
	}
	r.Text["apiKey"] = key.APIKey
	r.Text[paramTimestamp] = strconv.FormatInt(now.UnixMilli(), 10)
	delete(r.Text, paramSignature)
	sig, err := SignWSParams(r.Text, key)
	if err != nil {
		return nil, err
	}
	r.Raw["apiKey"] = mustJSON(key.APIKey)
	r.Raw[paramTimestamp] = json.RawMessage(r.Text[paramTimestamp])
	r.Raw[paramSignature] = mustJSON(sig)
	return json.Marshal(struct {
		ID     json.RawMessage            `json:"id"`
		Method string                     `json:"method"`
		Params map[string]json.RawMessage `json:"params"`
	}{wsID(r.ID), r.Method, r.Raw})
}

func wsID(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Refuse answers {"id", "status", "error": {"code", "msg"}} with Binance's
// status and code for e.
func (a *WSAPI) Refuse(m *exchange.WSMessage, e *exchange.Error) []byte {
	status, code := errorCode(e)
	var id json.RawMessage
	if m != nil {
		id = m.ID
	}
	b, _ := json.Marshal(struct {
		ID     json.RawMessage `json:"id"`
		Status int             `json:"status"`
		Error  apiError        `json:"error"`
	}{wsID(id), status, apiError{Code: code, Msg: e.Message}})
	return b
}

// Answer reads {"id", "status", ...}; events have no status.
func (a *WSAPI) Answer(msg []byte) (json.RawMessage, bool, bool) {
	var ans struct {
		ID     json.RawMessage `json:"id"`
		Status *int            `json:"status"`
	}
	if json.Unmarshal(msg, &ans) != nil || ans.Status == nil || len(ans.ID) == 0 {
		return nil, false, false
	}
	return ans.ID, *ans.Status == 200, true
}
