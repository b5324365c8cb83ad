package coinbase

import (
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxPathLen bounds request paths; see exchange.CheckPath.
const maxPathLen = 512

// route is one known endpoint; "{x}" in pattern matches one path segment.
type route struct {
	method, pattern string
	scope           exchange.Scope
}

const brokerage = "/api/v3/brokerage/"

// routes classifies Coinbase endpoints (spec §3.3, §14.2; ccxt's endpoint
// list). Literal segments match without regard to case. A request matching
// nothing here is account-admin.
var routes = []route{
	{"GET", brokerage + "time", exchange.ScopePublic},
	{"GET", brokerage + "market/products", exchange.ScopePublic},
	{"GET", brokerage + "market/products/{id}", exchange.ScopePublic},
	{"GET", brokerage + "market/products/{id}/ticker", exchange.ScopePublic},
	{"GET", brokerage + "market/products/{id}/candles", exchange.ScopePublic},
	{"GET", brokerage + "market/product_book", exchange.ScopePublic},

	{"GET", brokerage + "accounts", exchange.ScopeRead},
	{"GET", brokerage + "accounts/{id}", exchange.ScopeRead},
	{"GET", brokerage + "orders/historical/batch", exchange.ScopeRead},
	{"GET", brokerage + "orders/historical/fills", exchange.ScopeRead},
	{"GET", brokerage + "orders/historical/{id}", exchange.ScopeRead},
	{"GET", brokerage + "products", exchange.ScopeRead},
	{"GET", brokerage + "products/{id}", exchange.ScopeRead},
	{"GET", brokerage + "products/{id}/ticker", exchange.ScopeRead},
	{"GET", brokerage + "products/{id}/candles", exchange.ScopeRead},
	{"GET", brokerage + "product_book", exchange.ScopeRead},
	{"GET", brokerage + "best_bid_ask", exchange.ScopeRead},
	{"GET", brokerage + "transaction_summary", exchange.ScopeRead},
	{"GET", brokerage + "portfolios", exchange.ScopeRead},
	{"GET", brokerage + "portfolios/{id}", exchange.ScopeRead},
	{"GET", brokerage + "key_permissions", exchange.ScopeRead},
	{"GET", brokerage + "payment_methods", exchange.ScopeRead},
	{"GET", brokerage + "payment_methods/{id}", exchange.ScopeRead},
	{"GET", brokerage + "convert/trade/{id}", exchange.ScopeRead},
	{"GET", brokerage + "cfm/balance_summary", exchange.ScopeRead},
	{"GET", brokerage + "cfm/positions", exchange.ScopeRead},
	{"GET", brokerage + "cfm/positions/{id}", exchange.ScopeRead},
	{"GET", brokerage + "cfm/sweeps", exchange.ScopeRead},
	{"GET", brokerage + "cfm/intraday/margin_setting", exchange.ScopeRead},
	{"GET", brokerage + "cfm/intraday/current_margin_window", exchange.ScopeRead},
	{"GET", brokerage + "intx/portfolio/{id}", exchange.ScopeRead},
	{"GET", brokerage + "intx/positions/{id}", exchange.ScopeRead},
	{"GET", brokerage + "intx/positions/{id}/{symbol}", exchange.ScopeRead},
	{"GET", brokerage + "intx/balances/{id}", exchange.ScopeRead},

	{"POST", brokerage + "orders", exchange.ScopeTrade},
	{"POST", brokerage + "orders/preview", exchange.ScopeTrade},
	{"POST", brokerage + "orders/batch_cancel", exchange.ScopeTrade},
	{"POST", brokerage + "orders/edit", exchange.ScopeTrade},
	{"POST", brokerage + "orders/edit_preview", exchange.ScopeTrade},
	{"POST", brokerage + "orders/close_position", exchange.ScopeTrade},
	{"POST", brokerage + "convert/quote", exchange.ScopeTrade},
	{"POST", brokerage + "convert/trade/{id}", exchange.ScopeTrade},
	{"POST", brokerage + "cfm/intraday/margin_setting", exchange.ScopeTrade},
	{"POST", brokerage + "intx/multi_asset_collateral", exchange.ScopeTrade},

	{"POST", brokerage + "portfolios/move_funds", exchange.ScopeTransfer},
	{"POST", brokerage + "cfm/sweeps/schedule", exchange.ScopeTransfer},
	{"DELETE", brokerage + "cfm/sweeps", exchange.ScopeTransfer},
	{"POST", brokerage + "intx/allocate", exchange.ScopeTransfer},

	{"GET", "/v2/time", exchange.ScopePublic},
	{"GET", "/v2/currencies", exchange.ScopePublic},
	{"GET", "/v2/currencies/crypto", exchange.ScopePublic},
	{"GET", "/v2/exchange-rates", exchange.ScopePublic},
	{"GET", "/v2/prices/{pair}/spot", exchange.ScopePublic},
	{"GET", "/v2/prices/{pair}/buy", exchange.ScopePublic},
	{"GET", "/v2/prices/{pair}/sell", exchange.ScopePublic},

	{"GET", "/v2/user", exchange.ScopeRead},
	{"GET", "/v2/user/auth", exchange.ScopeRead},
	{"GET", "/v2/accounts", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/addresses", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/addresses/{aid}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/addresses/{aid}/transactions", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/transactions", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/transactions/{tid}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/buys", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/buys/{bid}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/sells", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/sells/{sid}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/deposits", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/deposits/{did}", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/withdrawals", exchange.ScopeRead},
	{"GET", "/v2/accounts/{id}/withdrawals/{wid}", exchange.ScopeRead},
	{"GET", "/v2/payment-methods", exchange.ScopeRead},
	{"GET", "/v2/payment-methods/{id}", exchange.ScopeRead},

	{"POST", "/v2/accounts/{id}/buys", exchange.ScopeTrade},
	{"POST", "/v2/accounts/{id}/buys/{bid}/commit", exchange.ScopeTrade},
	{"POST", "/v2/accounts/{id}/sells", exchange.ScopeTrade},
	{"POST", "/v2/accounts/{id}/sells/{sid}/commit", exchange.ScopeTrade},
	{"POST", "/v2/accounts/{id}/addresses", exchange.ScopeTransfer},
	{"POST", "/v2/accounts/{id}/deposits", exchange.ScopeTransfer},
	{"POST", "/v2/accounts/{id}/deposits/{did}/commit", exchange.ScopeTransfer},
	{"POST", "/v2/accounts/{id}/withdrawals", exchange.ScopeWithdraw},
	{"POST", "/v2/accounts/{id}/withdrawals/{wid}/commit", exchange.ScopeWithdraw},
	// The scope of a transaction depends on its type: see describeBody.
	{"POST", "/v2/accounts/{id}/transactions", exchange.ScopeAccountAdmin},
}

// describer classifies Coinbase requests and extracts orders and transfers.
type describer struct{}

func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path, Scope: exchange.ScopeAccountAdmin}
	if err := exchange.CheckPath(r.Path, maxPathLen); err != nil {
		return call, err
	}
	lower := strings.ToLower(r.Path)
	if !strings.HasPrefix(lower, "/api/v3/") && !strings.HasPrefix(lower, "/v2/") {
		return call, exchange.Errorf(exchange.ErrNotFound, "unknown endpoint")
	}
	if _, err := exchange.ParseQuery(r.RawQuery); err != nil {
		return call, err
	}
	body, err := jsonBody(r.Body)
	if err != nil {
		return call, err
	}
	pattern := ""
	for _, rt := range routes {
		if rt.method == r.Method && matchPattern(rt.pattern, r.Path) {
			call.Scope, pattern = rt.scope, rt.pattern
			break
		}
	}
	if pattern == "" {
		call.Endpoint = r.Method + " " + lower
		return call, nil
	}
	call.Endpoint = r.Method + " " + pattern
	return describeBody(call, pattern, body)
}

// jsonBody parses a request body strictly; an empty body is an empty
// object. Coinbase takes JSON only, so anything else is refused.
func jsonBody(b []byte) (fields, error) {
	if len(b) == 0 {
		return fields{}, nil
	}
	v, err := exchange.DecodeJSON(b, exchange.MaxJSONDepth)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "body is not valid JSON")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "body is not a JSON object")
	}
	return fields(obj), nil
}

func describeBody(call exchange.Call, pattern string, b fields) (exchange.Call, error) {
	switch strings.TrimPrefix(pattern, brokerage) {
	case "orders", "orders/preview":
		o, err := orderFrom(b)
		if err != nil {
			return call, err
		}
		call.Orders = []exchange.Order{o}
	case "orders/edit", "orders/edit_preview":
		o := exchange.Order{Action: exchange.ActionAmend, Quantity: b.float("size"), Price: b.float("price")}
		o.Notional = o.Quantity * o.Price
		call.Orders = []exchange.Order{o}
	case "orders/close_position":
		call.Orders = []exchange.Order{{
			Action: exchange.ActionNew, Symbol: b.str("product_id"), Type: "market",
			Quantity: b.float("size"), ClientOrderID: b.str("client_order_id"), ReduceOnly: true,
		}}
	case "orders/batch_cancel":
		ids, ok := b["order_ids"].([]any)
		if !ok || len(ids) == 0 {
			return call, exchange.Errorf(exchange.ErrBadRequest, "batch_cancel needs order_ids")
		}
		for range ids {
			call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel})
		}
	case "convert/quote":
		call.Orders = []exchange.Order{{
			Action: exchange.ActionNew, Type: "convert", Side: exchange.Sell,
			Symbol: b.str("from_account") + "-" + b.str("to_account"), Quantity: b.float("amount"),
		}}
	case "portfolios/move_funds":
		funds := b.obj("funds")
		call.Transfer = &exchange.Transfer{Asset: funds.str("currency"), Amount: funds.float("value"), Destination: b.str("target_portfolio_uuid")}
	case "/v2/accounts/{id}/transactions":
		// One endpoint, three meanings (spec §3.3e): a send leaves
		// Coinbase, a transfer moves between the user's own accounts.
		switch strings.ToLower(b.str("type")) {
		case "send":
			call.Scope = exchange.ScopeWithdraw
			call.Transfer = &exchange.Transfer{
				Asset: b.str("currency"), Amount: b.float("amount"), Address: b.str("to"),
				Network: b.str("network"), Memo: b.str("destination_tag"),
			}
		case "transfer":
			call.Scope = exchange.ScopeTransfer
			call.Transfer = &exchange.Transfer{Asset: b.str("currency"), Amount: b.float("amount"), Destination: b.str("to")}
		}
	case "/v2/accounts/{id}/withdrawals":
		call.Transfer = &exchange.Transfer{Asset: b.str("currency"), Amount: b.float("amount"), Destination: b.str("payment_method")}
	case "/v2/accounts/{id}/buys", "/v2/accounts/{id}/sells":
		side := exchange.Buy
		if strings.HasSuffix(pattern, "sells") {
			side = exchange.Sell
		}
		o := exchange.Order{Action: exchange.ActionNew, Type: "market", Side: side, Symbol: b.str("currency")}
		if b.str("total") != "" {
			o.QuoteQuantity = b.float("total")
			o.Notional = o.QuoteQuantity
		} else {
			o.Quantity = b.float("amount")
		}
		call.Orders = []exchange.Order{o}
	}
	return call, nil
}

// orderTypes maps order_configuration keys to keywarden's lower-case order
// types; unknown configurations keep their own key as the type.
var orderTypes = map[string]string{
	"market_market_ioc":         "market",
	"market_market_fok":         "market",
	"sor_limit_ioc":             "limit",
	"limit_limit_gtc":           "limit",
	"limit_limit_gtd":           "limit",
	"limit_limit_fok":           "limit",
	"twap_limit_gtd":            "twap_limit",
	"stop_limit_stop_limit_gtc": "stop_limit",
	"stop_limit_stop_limit_gtd": "stop_limit",
	"trigger_bracket_gtc":       "bracket",
	"trigger_bracket_gtd":       "bracket",
}

// orderFrom reads a create-order body (spec §3.3e, §14.3): product_id, side
// BUY/SELL and exactly one order_configuration with base_size or quote_size
// and limit_price.
func orderFrom(b fields) (exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionNew, Symbol: b.str("product_id"), ClientOrderID: b.str("client_order_id")}
	switch strings.ToUpper(b.str("side")) {
	case "BUY":
		o.Side = exchange.Buy
	case "SELL":
		o.Side = exchange.Sell
	default:
		return o, exchange.Errorf(exchange.ErrBadRequest, "side must be BUY or SELL")
	}
	cfg, ok := b["order_configuration"].(map[string]any)
	if !ok || len(cfg) != 1 {
		return o, exchange.Errorf(exchange.ErrBadRequest, "order_configuration must hold exactly one order type")
	}
	for name, v := range cfg {
		params, ok := v.(map[string]any)
		if !ok {
			return o, exchange.Errorf(exchange.ErrBadRequest, "malformed order_configuration")
		}
		o.Type = orderTypes[name]
		if o.Type == "" {
			o.Type = strings.ToLower(exchange.SafeName(name))
		}
		p := fields(params)
		o.Quantity = p.float("base_size")
		o.QuoteQuantity = p.float("quote_size")
		o.Price = p.float("limit_price")
		o.ReduceOnly = p.str("reduce_only") == "true"
	}
	switch {
	case o.QuoteQuantity > 0:
		o.Notional = o.QuoteQuantity
	case o.Price > 0:
		o.Notional = o.Quantity * o.Price
	}
	return o, nil
}

// matchPattern matches a path against a pattern, literal segments without
// regard to case.
func matchPattern(pattern, path string) bool {
	ps, es := strings.Split(pattern, "/"), strings.Split(path, "/")
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

// fields is a decoded JSON object.
type fields map[string]any

func (f fields) str(name string) string {
	s, _ := exchange.JSONString(f[name])
	return s
}

func (f fields) float(name string) float64 { return exchange.ParseFloat(f.str(name)) }

func (f fields) obj(name string) fields {
	m, _ := f[name].(map[string]any)
	return fields(m)
}
