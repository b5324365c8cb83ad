package kraken

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxPathLen bounds request paths; see exchange.CheckPath.
const maxPathLen = 256

// privateScopes classifies Kraken's private methods (spec §4c, §4e). Keys
// are lower case: method names are matched without regard to case, so a
// case variant of Withdraw is still a withdrawal. A method missing here is
// account-admin.
var privateScopes = map[string]exchange.Scope{
	"balance":                exchange.ScopeRead,
	"balanceex":              exchange.ScopeRead,
	"tradebalance":           exchange.ScopeRead,
	"openorders":             exchange.ScopeRead,
	"closedorders":           exchange.ScopeRead,
	"queryorders":            exchange.ScopeRead,
	"orderamends":            exchange.ScopeRead,
	"tradeshistory":          exchange.ScopeRead,
	"querytrades":            exchange.ScopeRead,
	"openpositions":          exchange.ScopeRead,
	"ledgers":                exchange.ScopeRead,
	"queryledgers":           exchange.ScopeRead,
	"tradevolume":            exchange.ScopeRead,
	"getapikeyinfo":          exchange.ScopeRead,
	"depositmethods":         exchange.ScopeRead,
	"depositaddresses":       exchange.ScopeRead,
	"depositstatus":          exchange.ScopeRead,
	"withdrawmethods":        exchange.ScopeRead,
	"withdrawaddresses":      exchange.ScopeRead,
	"withdrawinfo":           exchange.ScopeRead,
	"withdrawstatus":         exchange.ScopeRead,
	"exportstatus":           exchange.ScopeRead,
	"retrieveexport":         exchange.ScopeRead,
	"earn/strategies":        exchange.ScopeRead,
	"earn/allocations":       exchange.ScopeRead,
	"earn/allocatestatus":    exchange.ScopeRead,
	"earn/deallocatestatus":  exchange.ScopeRead,
	"addorder":               exchange.ScopeTrade,
	"addorderbatch":          exchange.ScopeTrade,
	"editorder":              exchange.ScopeTrade,
	"amendorder":             exchange.ScopeTrade,
	"cancelorder":            exchange.ScopeTrade,
	"cancelall":              exchange.ScopeTrade,
	"cancelallordersafter":   exchange.ScopeTrade,
	"cancelorderbatch":       exchange.ScopeTrade,
	"wallettransfer":         exchange.ScopeTransfer,
	"accounttransfer":        exchange.ScopeTransfer,
	"earn/allocate":          exchange.ScopeTransfer,
	"earn/deallocate":        exchange.ScopeTransfer,
	"withdraw":               exchange.ScopeWithdraw,
	"withdrawcancel":         exchange.ScopeWithdraw,
	"getwebsocketstoken":     exchange.ScopeAccountAdmin, // a WebSocket token can trade outside the gateway
	"createsubaccount":       exchange.ScopeAccountAdmin,
	"addexport":              exchange.ScopeRead,
	"removeexport":           exchange.ScopeRead,
	"earn/strategies/status": exchange.ScopeRead,
}

// describer classifies Kraken requests and extracts orders and transfers.
type describer struct{}

// authParams are the bot's auth fields, ignored by Describe.
var authParams = map[string]bool{"nonce": true, "otp": true}

func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path}
	kind, method, err := splitPath(r.Path)
	if err != nil {
		return call, err
	}
	params, err := requestParams(r)
	if err != nil {
		return call, err
	}
	if kind == "public" {
		call.Scope = exchange.ScopePublic
		call.Endpoint = "public/" + method
		return call, nil
	}
	call.Endpoint = "private/" + method
	scope, ok := privateScopes[strings.ToLower(method)]
	if !ok {
		scope = exchange.ScopeAccountAdmin
	}
	call.Scope = scope
	switch strings.ToLower(method) {
	case "addorder":
		o, err := orderFrom(params, params.str("pair"))
		if err != nil {
			return call, err
		}
		call.Orders = []exchange.Order{o}
	case "editorder":
		o := exchange.Order{Action: exchange.ActionAmend, Symbol: params.str("pair"), ClientOrderID: params.str("cl_ord_id")}
		o.Quantity = params.float("volume")
		o.Price = priceOf(params.str("price"))
		o.Notional = o.Quantity * o.Price
		call.Orders = []exchange.Order{o}
	case "amendorder":
		o := exchange.Order{Action: exchange.ActionAmend, ClientOrderID: params.str("cl_ord_id")}
		o.Quantity = params.float("order_qty")
		o.Price = priceOf(params.str("limit_price"))
		o.Notional = o.Quantity * o.Price
		call.Orders = []exchange.Order{o}
	case "addorderbatch":
		orders, err := params.list("orders")
		if err != nil {
			return call, err
		}
		if len(orders) == 0 {
			return call, exchange.Errorf(exchange.ErrBadRequest, "AddOrderBatch needs orders")
		}
		for _, raw := range orders {
			o, err := orderFrom(raw, params.str("pair"))
			if err != nil {
				return call, err
			}
			call.Orders = append(call.Orders, o)
		}
	case "cancelorder":
		call.Orders = []exchange.Order{{Action: exchange.ActionCancel, ClientOrderID: params.str("cl_ord_id")}}
	case "cancelorderbatch":
		orders, err := params.list("orders")
		if err != nil {
			return call, err
		}
		ids, err := params.list("cl_ord_ids")
		if err != nil {
			return call, err
		}
		for range orders {
			call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel})
		}
		for _, id := range ids {
			call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel, ClientOrderID: id.str("")})
		}
	case "cancelall":
		call.Orders = []exchange.Order{{Action: exchange.ActionCancel}}
	case "withdraw":
		call.Transfer = &exchange.Transfer{
			Asset:       params.str("asset"),
			Amount:      params.float("amount"),
			Address:     params.str("address"),
			Destination: params.str("key"),
		}
	case "wallettransfer", "accounttransfer":
		call.Transfer = &exchange.Transfer{
			Asset:       params.str("asset"),
			Amount:      params.float("amount"),
			Destination: params.str("to"),
		}
	case "earn/allocate", "earn/deallocate":
		call.Transfer = &exchange.Transfer{Amount: params.float("amount"), Destination: params.str("strategy_id")}
	}
	return call, nil
}

// splitPath checks that path is /0/public/<Method> or /0/private/<Method>
// with nothing that could alias another method: no dot segments, no empty
// segments, no percent-encoding, no trailing slash.
func splitPath(path string) (kind, method string, err error) {
	if err := exchange.CheckPath(path, maxPathLen); err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(path, "/0/")
	if !ok {
		return "", "", exchange.Errorf(exchange.ErrNotFound, "unknown endpoint")
	}
	kind, method, _ = strings.Cut(rest, "/")
	switch strings.ToLower(kind) {
	case "public":
		kind = "public"
	case "private":
		kind = "private"
	default:
		return "", "", exchange.Errorf(exchange.ErrNotFound, "unknown endpoint")
	}
	if method == "" {
		return "", "", exchange.Errorf(exchange.ErrNotFound, "unknown endpoint")
	}
	return kind, method, nil
}

// fields is a request's parameters: decoded form values are strings, JSON
// values keep their JSON types.
type fields map[string]any

func (f fields) str(name string) string {
	s, _ := exchange.JSONString(f[name])
	return s
}

func (f fields) float(name string) float64 { return exchange.ParseFloat(f.str(name)) }

// list returns the array field name as fields (objects) or single values
// (a non-object value v is wrapped as {"": v}).
func (f fields) list(name string) ([]fields, error) {
	v, ok := f[name]
	if !ok {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s is not a list", name)
	}
	out := make([]fields, 0, len(a))
	for _, e := range a {
		switch t := e.(type) {
		case map[string]any:
			out = append(out, fields(t))
		case string, json.Number:
			out = append(out, fields{"": t})
		default:
			return nil, exchange.Errorf(exchange.ErrBadRequest, "malformed %s entry", name)
		}
	}
	return out, nil
}

// requestParams merges r's query and body parameters; a name present in both
// is refused, as is any duplicate, invalid UTF-8 or invalid JSON.
func requestParams(r *exchange.Request) (fields, error) {
	out := fields{}
	qs, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return nil, err
	}
	for _, p := range qs {
		if !authParams[p.Name] {
			out[p.Name] = p.Value
		}
	}
	if len(r.Body) == 0 {
		return out, nil
	}
	if isJSON(r.Header) {
		v, err := exchange.DecodeJSON(r.Body, exchange.MaxJSONDepth)
		if err != nil {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid JSON body")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "body is not a JSON object")
		}
		for k, v := range obj {
			if authParams[k] {
				continue
			}
			if _, dup := out[k]; dup {
				return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q in query and body", exchange.SafeName(k))
			}
			out[k] = v
		}
		return out, nil
	}
	ps, err := exchange.ParseQuery(string(r.Body))
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if authParams[p.Name] {
			continue
		}
		if _, dup := out[p.Name]; dup {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q in query and body", exchange.SafeName(p.Name))
		}
		out[p.Name] = p.Value
	}
	return nestForm(out)
}

// nestForm turns form names like orders[0][type] into a list of objects
// under "orders", the way Kraken (and ccxt's urlencodeNested) spell nested
// parameters in a form body.
func nestForm(f fields) (fields, error) {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := f[k]
		base, idx, sub, ok := splitNested(k)
		if !ok {
			continue
		}
		delete(f, k)
		list, _ := f[base].([]any)
		if _, exists := f[base]; exists && list == nil {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q given twice", exchange.SafeName(base))
		}
		if idx > 1000 {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "too many entries in %q", exchange.SafeName(base))
		}
		for len(list) <= idx {
			list = append(list, nil)
		}
		if sub == "" {
			if list[idx] != nil {
				return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q given twice", exchange.SafeName(k))
			}
			list[idx] = v
		} else {
			obj, _ := list[idx].(map[string]any)
			if obj == nil {
				if list[idx] != nil {
					return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q given twice", exchange.SafeName(k))
				}
				obj = map[string]any{}
			}
			obj[sub] = v
			list[idx] = obj
		}
		f[base] = list
	}
	for k, v := range f {
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if e == nil {
					return nil, exchange.Errorf(exchange.ErrBadRequest, "gap in %q", exchange.SafeName(k))
				}
			}
		}
	}
	return f, nil
}

// splitNested splits "orders[3][volume]" into ("orders", 3, "volume") and
// "orders[3]" into ("orders", 3, "").
func splitNested(k string) (base string, idx int, sub string, ok bool) {
	base, rest, found := strings.Cut(k, "[")
	if !found || base == "" {
		return "", 0, "", false
	}
	num, rest, found := strings.Cut(rest, "]")
	if !found {
		return "", 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return "", 0, "", false
	}
	if rest == "" {
		return base, n, "", true
	}
	if len(rest) < 3 || rest[0] != '[' || rest[len(rest)-1] != ']' || strings.ContainsAny(rest[1:len(rest)-1], "[]") {
		return "", 0, "", false
	}
	return base, n, rest[1 : len(rest)-1], true
}

// orderFrom reads one AddOrder-shaped order (spec §14.3): pair, type
// (buy/sell), ordertype, volume, price; oflags=viqc sizes the order in the
// quote currency.
func orderFrom(p fields, pair string) (exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionNew, Symbol: p.str("pair"), Type: strings.ToLower(p.str("ordertype"))}
	if o.Symbol == "" {
		o.Symbol = pair
	}
	switch strings.ToLower(p.str("type")) {
	case "buy":
		o.Side = exchange.Buy
	case "sell":
		o.Side = exchange.Sell
	default:
		return o, exchange.Errorf(exchange.ErrBadRequest, "order type must be buy or sell")
	}
	o.ClientOrderID = p.str("cl_ord_id")
	if o.ClientOrderID == "" {
		o.ClientOrderID = p.str("userref")
	}
	o.ReduceOnly = p.str("reduce_only") == "true"
	volume := p.float("volume")
	if volume == 0 {
		volume = p.float("displayvol")
	}
	if strings.Contains(p.str("oflags"), "viqc") {
		o.QuoteQuantity = volume
		o.Notional = volume
	} else {
		o.Quantity = volume
	}
	if o.Type != "market" {
		o.Price = priceOf(p.str("price"))
		if o.Notional == 0 {
			o.Notional = o.Quantity * o.Price
		}
	}
	return o, nil
}

// priceOf reads an absolute price; relative prices (+, -, # prefixes or a %
// suffix) need a reference price and read as 0.
func priceOf(s string) float64 {
	if s == "" || strings.ContainsAny(s[:1], "+-#") || strings.HasSuffix(s, "%") {
		return 0
	}
	return exchange.ParseFloat(s)
}
