package krakenfutures

import (
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxPathLen bounds request paths; see exchange.CheckPath.
const maxPathLen = 256

// route is one known endpoint: method and path pattern below
// /derivatives/api/v3 ("{x}" matches one segment).
type route struct {
	method, pattern string
	scope           exchange.Scope
}

// routes classifies Kraken Futures v3 endpoints (spec §5e, §14.2; ccxt's
// endpoint list). Anything else below /derivatives/api is account-admin.
var routes = []route{
	{"GET", "feeschedules", exchange.ScopePublic},
	{"GET", "instruments", exchange.ScopePublic},
	{"GET", "instruments/status", exchange.ScopePublic},
	{"GET", "instruments/{symbol}/status", exchange.ScopePublic},
	{"GET", "orderbook", exchange.ScopePublic},
	{"GET", "tickers", exchange.ScopePublic},
	{"GET", "tickers/{symbol}", exchange.ScopePublic},
	{"GET", "history", exchange.ScopePublic},
	{"GET", "historicalfundingrates", exchange.ScopePublic},

	{"GET", "feeschedules/volumes", exchange.ScopeRead},
	{"GET", "openpositions", exchange.ScopeRead},
	{"GET", "notifications", exchange.ScopeRead},
	{"GET", "accounts", exchange.ScopeRead},
	{"GET", "openorders", exchange.ScopeRead},
	{"GET", "recentorders", exchange.ScopeRead},
	{"GET", "fills", exchange.ScopeRead},
	{"GET", "transfers", exchange.ScopeRead},
	{"GET", "leveragepreferences", exchange.ScopeRead},
	{"GET", "pnlpreferences", exchange.ScopeRead},
	{"GET", "assignmentprogram/current", exchange.ScopeRead},
	{"GET", "assignmentprogram/history", exchange.ScopeRead},
	{"GET", "orders/status", exchange.ScopeRead},
	{"POST", "orders/status", exchange.ScopeRead},
	{"GET", "unwindqueue", exchange.ScopeRead},
	{"GET", "self-trade-strategy", exchange.ScopeRead},
	{"GET", "subaccounts", exchange.ScopeRead},
	{"GET", "subaccount/{uid}/trading-enabled", exchange.ScopeRead},
	{"GET", "rfq-assignment/max-leverage", exchange.ScopeRead},
	{"GET", "initialmargin", exchange.ScopeRead},
	{"GET", "initialmargin/maxordersize", exchange.ScopeRead},

	{"POST", "sendorder", exchange.ScopeTrade},
	{"POST", "editorder", exchange.ScopeTrade},
	{"POST", "cancelorder", exchange.ScopeTrade},
	{"POST", "batchorder", exchange.ScopeTrade},
	{"POST", "cancelallorders", exchange.ScopeTrade},
	{"POST", "cancelallordersafter", exchange.ScopeTrade},
	{"PUT", "leveragepreferences", exchange.ScopeTrade},
	{"PUT", "pnlpreferences", exchange.ScopeTrade},
	{"PUT", "self-trade-strategy", exchange.ScopeTrade},

	{"POST", "transfer", exchange.ScopeTransfer},
	{"POST", "transfer/subaccount", exchange.ScopeTransfer},
	// withdrawal moves funds from the futures wallet to the spot wallet; it
	// is the venue's withdrawal permission, so it is scoped as one.
	{"POST", "withdrawal", exchange.ScopeWithdraw},
}

// describer classifies Kraken Futures requests and extracts orders and
// transfers.
type describer struct{}

func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path}
	if err := exchange.CheckPath(r.Path, maxPathLen); err != nil {
		return call, err
	}
	params, err := requestParams(r)
	if err != nil {
		return call, err
	}
	lower := strings.ToLower(r.Path)
	switch {
	case strings.HasPrefix(lower, "/derivatives/api/v3/"):
		ep := r.Path[len("/derivatives/api/v3/"):]
		call.Endpoint = r.Method + " /derivatives/api/v3/" + strings.ToLower(ep)
		call.Scope = exchange.ScopeAccountAdmin
		name := ""
		for _, rt := range routes {
			if rt.method == r.Method && matchPattern(rt.pattern, ep) {
				call.Scope, name = rt.scope, rt.pattern
				break
			}
		}
		return describeParams(call, name, params)
	case lower == keyCheckPath:
		call.Endpoint = r.Method + " " + keyCheckPath
		call.Scope = exchange.ScopeRead
		if r.Method != "GET" {
			call.Scope = exchange.ScopeAccountAdmin
		}
	case strings.HasPrefix(lower, "/api/auth/"):
		call.Endpoint = r.Method + " " + lower
		call.Scope = exchange.ScopeAccountAdmin
	case strings.HasPrefix(lower, "/api/charts/"):
		call.Endpoint = r.Method + " " + lower
		call.Scope = exchange.ScopePublic
		if r.Method != "GET" {
			call.Scope = exchange.ScopeAccountAdmin
		}
	case strings.HasPrefix(lower, "/api/history/"):
		call.Endpoint = r.Method + " " + lower
		call.Scope = exchange.ScopeRead
		if strings.Contains(lower, "/market/") {
			call.Scope = exchange.ScopePublic
		}
		if r.Method != "GET" {
			call.Scope = exchange.ScopeAccountAdmin
		}
	default:
		return call, exchange.Errorf(exchange.ErrNotFound, "unknown endpoint")
	}
	return call, nil
}

// matchPattern matches an endpoint against a pattern, literal segments
// without regard to case.
func matchPattern(pattern, ep string) bool {
	ps, es := strings.Split(pattern, "/"), strings.Split(ep, "/")
	if len(ps) != len(es) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			continue
		}
		if !strings.EqualFold(ps[i], es[i]) {
			return false
		}
	}
	return true
}

func describeParams(call exchange.Call, name string, p fields) (exchange.Call, error) {
	switch name {
	case "sendorder":
		o, err := orderFrom(p)
		if err != nil {
			return call, err
		}
		call.Orders = []exchange.Order{o}
	case "editorder":
		o := exchange.Order{Action: exchange.ActionAmend, ClientOrderID: p.str("cliOrdId"), Quantity: p.float("size"), Price: p.float("limitPrice")}
		o.Notional = o.Quantity * o.Price
		call.Orders = []exchange.Order{o}
	case "cancelorder":
		call.Orders = []exchange.Order{{Action: exchange.ActionCancel, ClientOrderID: p.str("cliOrdId")}}
	case "cancelallorders":
		call.Orders = []exchange.Order{{Action: exchange.ActionCancel, Symbol: p.str("symbol")}}
	case "batchorder":
		raw := p.str("json")
		if raw == "" {
			return call, exchange.Errorf(exchange.ErrBadRequest, "batchorder needs json")
		}
		v, err := exchange.DecodeJSON([]byte(raw), exchange.MaxJSONDepth)
		if err != nil {
			return call, exchange.Errorf(exchange.ErrBadRequest, "invalid batchorder json")
		}
		obj, _ := v.(map[string]any)
		list, ok := obj["batchOrder"].([]any)
		if !ok || len(list) == 0 {
			return call, exchange.Errorf(exchange.ErrBadRequest, "batchorder needs batchOrder")
		}
		for _, e := range list {
			instr, ok := e.(map[string]any)
			if !ok {
				return call, exchange.Errorf(exchange.ErrBadRequest, "malformed batchOrder entry")
			}
			f := fields(instr)
			switch f.str("order") {
			case "send":
				o, err := orderFrom(f)
				if err != nil {
					return call, err
				}
				call.Orders = append(call.Orders, o)
			case "edit":
				o := exchange.Order{Action: exchange.ActionAmend, ClientOrderID: f.str("cliOrdId"), Quantity: f.float("size"), Price: f.float("limitPrice")}
				o.Notional = o.Quantity * o.Price
				call.Orders = append(call.Orders, o)
			case "cancel":
				call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel, ClientOrderID: f.str("cliOrdId")})
			default:
				return call, exchange.Errorf(exchange.ErrBadRequest, "unknown batchOrder instruction")
			}
		}
	case "withdrawal":
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Amount: p.float("amount"), Destination: "spot"}
	case "transfer":
		call.Transfer = &exchange.Transfer{Asset: p.str("unit"), Amount: p.float("amount"), Destination: p.str("toAccount")}
	case "transfer/subaccount":
		dest := p.str("toUser")
		if acc := p.str("toAccount"); acc != "" {
			dest = strings.TrimPrefix(dest+"/"+acc, "/")
		}
		call.Transfer = &exchange.Transfer{Asset: p.str("unit"), Amount: p.float("amount"), Destination: dest}
	}
	return call, nil
}

// orderFrom reads one sendorder-shaped order (spec §5e): orderType, symbol,
// side, size, limitPrice, cliOrdId, reduceOnly. Inverse contracts (PI_, FI_)
// are sized in USD, so their size is the notional.
func orderFrom(p fields) (exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionNew, Symbol: p.str("symbol"), Type: strings.ToLower(p.str("orderType")), ClientOrderID: p.str("cliOrdId")}
	switch strings.ToLower(p.str("side")) {
	case "buy":
		o.Side = exchange.Buy
	case "sell":
		o.Side = exchange.Sell
	default:
		return o, exchange.Errorf(exchange.ErrBadRequest, "side must be buy or sell")
	}
	o.ReduceOnly = p.str("reduceOnly") == "true"
	size := p.float("size")
	o.Price = p.float("limitPrice")
	sym := strings.ToUpper(o.Symbol)
	if strings.HasPrefix(sym, "PI_") || strings.HasPrefix(sym, "FI_") {
		o.QuoteQuantity, o.Notional = size, size
		return o, nil
	}
	o.Quantity = size
	if o.Type != "mkt" {
		o.Notional = size * o.Price
	}
	return o, nil
}

// fields is a request's decoded parameters (JSON values keep their types).
type fields map[string]any

func (f fields) str(name string) string {
	s, _ := exchange.JSONString(f[name])
	return s
}

func (f fields) float(name string) float64 { return exchange.ParseFloat(f.str(name)) }

// requestParams decodes r's query and form body strictly; a name in both is
// refused.
func requestParams(r *exchange.Request) (fields, error) {
	out := fields{}
	for _, raw := range []string{r.RawQuery, string(r.Body)} {
		ps, err := exchange.ParseQuery(raw)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if _, dup := out[p.Name]; dup {
				return nil, exchange.Errorf(exchange.ErrBadRequest, "parameter %q in query and body", exchange.SafeName(p.Name))
			}
			out[p.Name] = p.Value
		}
	}
	return out, nil
}
