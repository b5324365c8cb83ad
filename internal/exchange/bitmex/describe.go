package bitmex

import (
	"encoding/json"
	"errors"
	"math"
	"mime"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// apiPrefix starts every REST path.
const apiPrefix = "/api/v1"

type kind int

const (
	kNone kind = iota
	kNew
	kAmend
	kCancel
	kCancelAll
	kBulkNew
	kBulkAmend
	kClosePosition
	kWithdraw
	kWalletTransfer
	kAddress
)

type endpoint struct {
	path  string // canonical spelling
	scope exchange.Scope
	kind  kind
}

// endpoints classifies every route keywarden knows, keyed by method and
// lower-cased path (BitMEX routes paths case-insensitively). Anything else
// is account-admin.
var endpoints = func() map[string]endpoint {
	m := map[string]endpoint{}
	add := func(method string, scope exchange.Scope, k kind, paths ...string) {
		for _, p := range paths {
			m[method+" "+strings.ToLower(apiPrefix+p)] = endpoint{apiPrefix + p, scope, k}
		}
	}
	add("GET", exchange.ScopePublic, kNone, "", "/announcement", "/chat", "/chat/channels", "/chat/connected",
		"/funding", "/instrument", "/instrument/active", "/instrument/activeAndIndices", "/instrument/activeIntervals",
		"/instrument/compositeIndex", "/instrument/indices", "/instrument/usdVolume", "/insurance", "/leaderboard",
		"/liquidation", "/orderBook/L2", "/quote", "/quote/bucketed", "/schema", "/schema/websocketHelp",
		"/settlement", "/stats", "/stats/history", "/stats/historyUSD", "/trade", "/trade/bucketed",
		"/wallet/assets", "/wallet/networks", "/user/checkReferralCode", "/user/minWithdrawalFee")
	add("GET", exchange.ScopeRead, kNone, "/announcement/urgent", "/apiKey", "/execution", "/execution/tradeHistory",
		"/globalNotification", "/leaderboard/name", "/order", "/position", "/user", "/user/affiliateStatus",
		"/user/commission", "/user/depositAddress", "/user/executionHistory", "/user/margin", "/user/quoteFillRatio",
		"/user/quoteValueRatio", "/user/tradingVolume", "/user/wallet", "/user/walletHistory", "/user/walletSummary",
		"/userEvent", "/address", "/userAffiliates", "/user/preferences", "/user/staking", "/user/stakingInstruments",
		"/user/stakingTiers", "/user/unstakingRequests")
	add("POST", exchange.ScopeTrade, kNew, "/order")
	add("PUT", exchange.ScopeTrade, kAmend, "/order")
	add("DELETE", exchange.ScopeTrade, kCancel, "/order")
	add("DELETE", exchange.ScopeTrade, kCancelAll, "/order/all")
	add("POST", exchange.ScopeTrade, kBulkNew, "/order/bulk")
	add("PUT", exchange.ScopeTrade, kBulkAmend, "/order/bulk")
	add("POST", exchange.ScopeTrade, kClosePosition, "/order/closePosition")
	add("POST", exchange.ScopeTrade, kNone, "/order/cancelAllAfter", "/position/isolate", "/position/leverage",
		"/position/riskLimit", "/position/transferMargin", "/position/crossLeverage")
	add("POST", exchange.ScopeTransfer, kWalletTransfer, "/user/walletTransfer")
	add("POST", exchange.ScopeTransfer, kNone, "/user/cancelWithdrawal")
	add("POST", exchange.ScopeWithdraw, kWithdraw, "/user/requestWithdrawal")
	add("POST", exchange.ScopeWithdraw, kNone, "/user/confirmWithdrawal")
	// Address-book entries are what withdrawals may go to.
	add("POST", exchange.ScopeWithdraw, kAddress, "/address")
	return m
}()

// Describer classifies BitMEX requests. Its zero value is ready and safe for
// concurrent use.
type Describer struct{}

// Describe says what r does. BitMEX auth lives in headers only, so the Call
// is the same before and after Verify.
func (Describer) Describe(r *exchange.Request) (exchange.Call, error) {
	path, err := canonicalPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	ps, err := parseParams(r)
	if err != nil {
		return exchange.Call{}, err
	}
	method := strings.ToUpper(r.Method)
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path, Scope: exchange.ScopeAccountAdmin}
	ep, known := endpoints[method+" "+path]
	if known {
		call.Scope = ep.scope
		call.Endpoint = method + " " + ep.path
	} else {
		call.Endpoint = method + " " + path
	}
	p := params(ps)
	switch ep.kind {
	case kNew:
		call.Orders = append(call.Orders, p.order(exchange.ActionNew))
	case kAmend:
		call.Orders = append(call.Orders, p.order(exchange.ActionAmend))
	case kBulkNew, kBulkAmend:
		a := exchange.ActionNew
		if ep.kind == kBulkAmend {
			a = exchange.ActionAmend
		}
		for _, o := range p.list("orders") {
			om, ok := o.(map[string]any)
			if !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed orders")
			}
			call.Orders = append(call.Orders, params(om).order(a))
		}
	case kCancel:
		for _, id := range p.list("orderID") {
			if _, ok := id.(string); !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed orderID")
			}
			call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel})
		}
		for _, id := range p.list("clOrdID") {
			s, ok := id.(string)
			if !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed clOrdID")
			}
			call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel, ClientOrderID: s})
		}
	case kCancelAll:
		call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: p.str("symbol")})
	case kClosePosition:
		o := exchange.Order{Action: exchange.ActionNew, Symbol: p.str("symbol"), Price: p.num("price"), ReduceOnly: true, Type: "market"}
		if o.Price > 0 {
			o.Type = "limit"
		}
		call.Orders = append(call.Orders, o)
	case kWithdraw:
		t := &exchange.Transfer{
			Asset: p.str("currency"), Amount: p.num("amount"), Address: p.str("address"),
			Network: p.str("network"), Memo: p.str("memo"),
		}
		switch {
		case p.str("targetUserId") != "":
			t.Destination = "user:" + p.str("targetUserId")
		case p.str("addressId") != "":
			t.Destination = "addressId:" + p.str("addressId")
		}
		call.Transfer = t
	case kWalletTransfer:
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Amount: p.num("amount"), Destination: p.str("targetAccountId")}
	case kAddress:
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Address: p.str("address"), Network: p.str("network"), Memo: p.str("memo")}
	}
	return call, nil
}

// canonicalPath checks path and returns it lower-cased. Anything that could
// alias another route (dot segments, empty segments, escapes, a trailing
// slash) is rejected rather than normalized.
func canonicalPath(path string) (string, error) {
	bad := exchange.Errorf(exchange.ErrBadRequest, "malformed path")
	if path == apiPrefix || path == apiPrefix+"/" {
		return strings.ToLower(apiPrefix), nil
	}
	if len(path) > 128 || !strings.HasPrefix(strings.ToLower(path), apiPrefix+"/") {
		return "", exchange.Errorf(exchange.ErrNotFound, "unknown path")
	}
	rest := path[len(apiPrefix)+1:]
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" {
			return "", bad
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
				return "", bad
			}
		}
	}
	return strings.ToLower(path), nil
}

// parseParams merges the query and the body (JSON or form) strictly: no
// duplicate names within either, and no name in both.
func parseParams(r *exchange.Request) (map[string]any, error) {
	qs, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(qs))
	for _, p := range qs {
		out[p.Name] = p.Value
	}
	body := trimSpace(r.Body)
	if len(body) == 0 {
		return out, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var bodyParams map[string]any
	switch {
	case ct == "application/json" || (ct == "" && (body[0] == '{' || body[0] == '[')):
		v, err := exchange.DecodeJSON(body, exchange.MaxJSONDepth)
		if errors.Is(err, exchange.ErrJSONDuplicateKey) {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "duplicate key in JSON body")
		}
		if err != nil {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "body is not valid JSON")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "body must be a JSON object")
		}
		bodyParams = obj
	case ct == "application/x-www-form-urlencoded" || ct == "":
		fs, err := exchange.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		bodyParams = make(map[string]any, len(fs))
		for _, p := range fs {
			bodyParams[p.Name] = p.Value
		}
	default:
		return nil, exchange.Errorf(exchange.ErrBadRequest, "unsupported content type")
	}
	for k, v := range bodyParams {
		if _, dup := out[k]; dup {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q in both query and body", exchange.SafeName(k))
		}
		out[k] = v
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// params reads parameters that came as JSON values or as strings.
type params map[string]any

func (p params) str(k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

func (p params) num(k string) float64 { return exchange.ParseFloat(p.str(k)) }

// list returns an array parameter given as JSON, as a JSON string (form and
// query), or as a single value; a value that is present always yields at
// least one element, so nothing is silently ignored.
func (p params) list(k string) []any {
	switch v := p[k].(type) {
	case nil:
		return nil
	case []any:
		return v
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "[") || strings.HasPrefix(strings.TrimSpace(v), "{") {
			parsed, err := exchange.DecodeJSON([]byte(v), exchange.MaxJSONDepth)
			if err != nil {
				return []any{0} // malformed: callers reject non-strings and non-objects
			}
			if a, ok := parsed.([]any); ok {
				return a
			}
			return []any{parsed}
		}
		return []any{v}
	default:
		return []any{v}
	}
}

// order reads one order's fields. BitMEX takes the side from "side" or,
// when absent, from the sign of orderQty.
func (p params) order(a exchange.Action) exchange.Order {
	qty := p.num("orderQty")
	if qty == 0 && a == exchange.ActionAmend {
		qty = p.num("leavesQty")
	}
	o := exchange.Order{
		Action:        a,
		Symbol:        p.str("symbol"),
		Quantity:      math.Abs(qty),
		Price:         p.num("price"),
		Type:          strings.ToLower(p.str("ordType")),
		ClientOrderID: p.str("clOrdID"),
	}
	switch strings.ToLower(p.str("side")) {
	case "buy":
		o.Side = exchange.Buy
	case "sell":
		o.Side = exchange.Sell
	case "":
		if a == exchange.ActionNew && qty > 0 {
			o.Side = exchange.Buy
		} else if qty < 0 {
			o.Side = exchange.Sell
		}
	}
	if o.ClientOrderID == "" && a == exchange.ActionAmend {
		o.ClientOrderID = p.str("origClOrdID")
	}
	if o.Type == "" && a == exchange.ActionNew {
		switch {
		case p.str("stopPx") != "" && o.Price > 0:
			o.Type = "stoplimit"
		case p.str("stopPx") != "":
			o.Type = "stop"
		case o.Price > 0:
			o.Type = "limit"
		default:
			o.Type = "market"
		}
	}
	inst := p.str("execInst")
	o.ReduceOnly = strings.Contains(inst, "ReduceOnly") || strings.Contains(inst, "Close")
	if inverse(o.Symbol) && o.Quantity > 0 {
		// XBTUSD-style contracts are worth 1 USD each: the quantity is the
		// notional itself, and the base (XBT) quantity depends on the fill
		// price, so it is left at zero rather than mistaken for one.
		o.QuoteQuantity, o.Notional, o.Quantity = o.Quantity, o.Quantity, 0
	} else if o.Quantity > 0 {
		// Linear and quanto contracts are worth the instrument's multiplier.
		o.Contracts = true
	}
	return o
}

// inverse says whether symbol is a bitcoin-margined contract sized in USD:
// XBTUSD or a dated XBT future such as XBTZ24. Linear and quanto contracts
// need the instrument's multiplier, so their orders are marked Contracts.
func inverse(symbol string) bool {
	if symbol == "XBTUSD" {
		return true
	}
	if len(symbol) != 6 || !strings.HasPrefix(symbol, "XBT") {
		return false
	}
	return strings.ContainsRune("FGHJKMNQUVXZ", rune(symbol[3])) &&
		'0' <= symbol[4] && symbol[4] <= '9' && '0' <= symbol[5] && symbol[5] <= '9'
}
