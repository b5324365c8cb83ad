package gate

import (
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// kind says which fields a route carries beyond its scope.
type kind int

const (
	plain          kind = iota
	spotOrder           // one spot order in the body
	spotBatch           // array of spot orders
	spotAmend           // PATCH spot/orders/{id}
	spotAmendBatch      // array of spot amendments
	spotCancel          // currency_pair in the query
	spotCancelList      // array of {currency_pair, id}
	spotTrigger         // spot price order: put + market
	futOrder            // one futures order: contract, signed size
	futBatch            // array of futures orders
	futAmend            // PUT futures/{settle}/orders/{id}
	futCancel           // contract in the query
	futCancelList       // array of order ids
	futTrigger          // futures price order: initial
	withdraw            // withdrawals
	withdrawPush        // withdrawals/push: to another Gate user
	walletXfer          // wallet/transfers
	subXfer             // wallet/sub_account_transfers
	subToSub            // wallet/sub_account_to_sub_account
)

type route struct {
	method string
	segs   []string // lower case; "{}" matches one segment
	scope  exchange.Scope
	kind   kind
}

func r(method, pattern string, scope exchange.Scope, k kind) route {
	return route{method, strings.Split(pattern, "/"), scope, k}
}

const (
	pub  = exchange.ScopePublic
	read = exchange.ScopeRead
	trd  = exchange.ScopeTrade
	xfer = exchange.ScopeTransfer
	wdr  = exchange.ScopeWithdraw
)

// routes lists Gate APIv4 endpoints by the path after /api/v4/. Gate's own
// permission model is "GET reads, everything else writes" per product
// group; keywarden still lists every endpoint and treats the unlisted ones
// as account-admin (default deny). {settle} covers futures and delivery
// settle currencies.
var routes = []route{
	r("GET", "spot/currencies", pub, plain),
	r("GET", "spot/currencies/{}", pub, plain),
	r("GET", "spot/currency_pairs", pub, plain),
	r("GET", "spot/currency_pairs/{}", pub, plain),
	r("GET", "spot/tickers", pub, plain),
	r("GET", "spot/order_book", pub, plain),
	r("GET", "spot/trades", pub, plain),
	r("GET", "spot/candlesticks", pub, plain),
	r("GET", "spot/time", pub, plain),
	r("GET", "margin/currency_pairs", pub, plain),
	r("GET", "margin/uni/currency_pairs", pub, plain),
	r("GET", "wallet/currency_chains", pub, plain),
	r("GET", "futures/{}/contracts", pub, plain),
	r("GET", "futures/{}/contracts/{}", pub, plain),
	r("GET", "futures/{}/order_book", pub, plain),
	r("GET", "futures/{}/trades", pub, plain),
	r("GET", "futures/{}/candlesticks", pub, plain),
	r("GET", "futures/{}/tickers", pub, plain),
	r("GET", "futures/{}/funding_rate", pub, plain),
	r("GET", "delivery/{}/contracts", pub, plain),
	r("GET", "delivery/{}/tickers", pub, plain),
	r("GET", "delivery/{}/order_book", pub, plain),

	r("GET", "account/detail", read, plain),
	r("GET", "account/rate_limit", read, plain),
	r("GET", "account/main_keys", read, plain),
	r("GET", "spot/accounts", read, plain),
	r("GET", "spot/account_book", read, plain),
	r("GET", "spot/open_orders", read, plain),
	r("GET", "spot/orders", read, plain),
	r("GET", "spot/orders/{}", read, plain),
	r("GET", "spot/my_trades", read, plain),
	r("GET", "spot/fee", read, plain),
	r("GET", "spot/batch_fee", read, plain),
	r("GET", "spot/price_orders", read, plain),
	r("GET", "spot/price_orders/{}", read, plain),
	r("GET", "margin/accounts", read, plain),
	r("GET", "margin/account_book", read, plain),
	r("GET", "margin/uni/loans", read, plain),
	r("GET", "unified/accounts", read, plain),
	r("GET", "wallet/deposit_address", read, plain),
	r("GET", "wallet/withdrawals", read, plain),
	r("GET", "wallet/deposits", read, plain),
	r("GET", "wallet/total_balance", read, plain),
	r("GET", "wallet/fee", read, plain),
	r("GET", "wallet/withdraw_status", read, plain),
	r("GET", "wallet/small_balance", read, plain),
	r("GET", "futures/{}/accounts", read, plain),
	r("GET", "futures/{}/account_book", read, plain),
	r("GET", "futures/{}/positions", read, plain),
	r("GET", "futures/{}/positions/{}", read, plain),
	r("GET", "futures/{}/orders", read, plain),
	r("GET", "futures/{}/orders/{}", read, plain),
	r("GET", "futures/{}/my_trades", read, plain),
	r("GET", "futures/{}/fee", read, plain),
	r("GET", "futures/{}/price_orders", read, plain),
	r("GET", "futures/{}/price_orders/{}", read, plain),
	r("GET", "delivery/{}/accounts", read, plain),
	r("GET", "delivery/{}/positions", read, plain),
	r("GET", "delivery/{}/orders", read, plain),
	r("GET", "delivery/{}/orders/{}", read, plain),
	r("GET", "delivery/{}/my_trades", read, plain),

	r("POST", "spot/orders", trd, spotOrder),
	r("POST", "spot/batch_orders", trd, spotBatch),
	r("PATCH", "spot/orders/{}", trd, spotAmend),
	r("POST", "spot/amend_batch_orders", trd, spotAmendBatch),
	r("DELETE", "spot/orders/{}", trd, spotCancel),
	r("DELETE", "spot/orders", trd, spotCancel),
	r("POST", "spot/cancel_batch_orders", trd, spotCancelList),
	r("POST", "spot/countdown_cancel_all", trd, plain),
	r("POST", "spot/price_orders", trd, spotTrigger),
	r("DELETE", "spot/price_orders", trd, spotCancel),
	r("DELETE", "spot/price_orders/{}", trd, spotCancel),
	r("POST", "margin/uni/loans", trd, plain),
	r("POST", "futures/{}/orders", trd, futOrder),
	r("POST", "futures/{}/batch_orders", trd, futBatch),
	r("PUT", "futures/{}/orders/{}", trd, futAmend),
	r("DELETE", "futures/{}/orders/{}", trd, futCancel),
	r("DELETE", "futures/{}/orders", trd, futCancel),
	r("POST", "futures/{}/batch_cancel_orders", trd, futCancelList),
	r("POST", "futures/{}/countdown_cancel_all", trd, plain),
	r("POST", "futures/{}/price_orders", trd, futTrigger),
	r("DELETE", "futures/{}/price_orders", trd, futCancel),
	r("DELETE", "futures/{}/price_orders/{}", trd, futCancel),
	r("POST", "futures/{}/positions/{}/leverage", trd, plain),
	r("POST", "futures/{}/positions/{}/margin", trd, plain),
	r("POST", "futures/{}/positions/{}/risk_limit", trd, plain),
	r("POST", "futures/{}/dual_mode", trd, plain),
	r("POST", "delivery/{}/orders", trd, futOrder),
	r("DELETE", "delivery/{}/orders/{}", trd, futCancel),
	r("DELETE", "delivery/{}/orders", trd, futCancel),
	r("POST", "wallet/small_balance", trd, plain),

	r("POST", "wallet/transfers", xfer, walletXfer),
	r("POST", "wallet/sub_account_transfers", xfer, subXfer),
	r("POST", "wallet/sub_account_to_sub_account", xfer, subToSub),
	r("POST", "earn/uni/lends", xfer, plain),

	r("POST", "withdrawals", wdr, withdraw),
	r("POST", "withdrawals/push", wdr, withdrawPush),
	r("DELETE", "withdrawals/{}", wdr, plain),
}

// find returns the listed route for method and the lower-case segments
// after /api/v4, preferring the one with the fewest parameters (so
// spot/orders beats spot/{...}).
func find(method string, tail []string) (route, bool) {
	best, bestParams := route{}, -1
	for _, rt := range routes {
		if rt.method != method || len(rt.segs) != len(tail) {
			continue
		}
		params, ok := 0, true
		for i, s := range rt.segs {
			if s == "{}" {
				params++
			} else if s != tail[i] {
				ok = false
				break
			}
		}
		if ok && (bestParams < 0 || params < bestParams) {
			best, bestParams = rt, params
		}
	}
	return best, bestParams >= 0
}

// describer classifies Gate APIv4 requests.
type describer struct{}

var _ exchange.Describer = describer{}

// Describe classifies r by (method, canonical path) and extracts its orders
// or transfer. Auth headers are ignored.
func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	segs, err := exchange.SplitPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	switch r.Method {
	case "GET", "POST", "DELETE", "PUT", "PATCH":
	default:
		return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "unsupported method")
	}
	query, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return exchange.Call{}, err
	}
	var body any
	if len(r.Body) > 0 {
		if body, err = decodeJSON(r.Body); err != nil {
			return exchange.Call{}, err
		}
	}
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path, Scope: exchange.ScopeAccountAdmin,
		Endpoint: r.Method + " " + r.Path}
	if len(segs) < 3 || segs[0] != "api" || segs[1] != "v4" {
		return call, nil
	}
	tail := make([]string, len(segs)-2)
	for i, s := range segs[2:] {
		tail[i] = strings.ToLower(s)
	}
	rt, ok := find(r.Method, tail)
	if !ok {
		return call, nil
	}
	call.Scope = rt.scope
	call.Endpoint = r.Method + " /api/v4/" + strings.Join(rt.segs, "/")
	obj, isObj := body.(map[string]any)
	list, isList := body.([]any)
	wantList := rt.kind == spotBatch || rt.kind == spotAmendBatch || rt.kind == spotCancelList || rt.kind == futBatch || rt.kind == futCancelList
	if body != nil && ((wantList && !isList) || (!wantList && !isObj)) {
		return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "unexpected JSON body shape")
	}
	f := exchange.Fields{Body: obj, Query: query}
	switch rt.kind {
	case spotOrder:
		var o exchange.Order
		o, err = spotNew(f)
		call.Orders = []exchange.Order{o}
	case spotBatch, spotAmendBatch, spotCancelList, futBatch, futCancelList:
		call.Orders, err = expand(rt.kind, list, query)
	case spotAmend:
		var o exchange.Order
		o, err = spotAmendOrder(f)
		call.Orders = []exchange.Order{o}
	case spotCancel:
		call.Orders, err = cancelBy(f, "currency_pair", "market")
	case spotTrigger:
		call.Orders, err = spotTriggerOrder(obj)
	case futOrder:
		var o exchange.Order
		o, err = futNew(f, exchange.ActionNew)
		call.Orders = []exchange.Order{o}
	case futAmend:
		var o exchange.Order
		o, err = futNew(f, exchange.ActionAmend)
		o.Type = ""
		call.Orders = []exchange.Order{o}
	case futCancel:
		call.Orders, err = cancelBy(f, "contract", "")
	case futTrigger:
		call.Orders, err = futTriggerOrder(obj)
	case withdraw, withdrawPush, walletXfer, subXfer, subToSub:
		call.Transfer, err = transfer(f, rt.kind)
	}
	if err != nil {
		return exchange.Call{}, err
	}
	return call, nil
}

func side(f exchange.Fields) (exchange.Side, error) {
	s, err := f.Field("side")
	if err != nil {
		return "", err
	}
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "buy":
		return exchange.Buy, nil
	case "sell":
		return exchange.Sell, nil
	}
	return "", exchange.Errorf(exchange.ErrBadRequest, "invalid side")
}

// spotNew reads a spot order. Gate orders are limit unless type says
// otherwise; a market buy's amount is in the quote currency.
func spotNew(f exchange.Fields) (exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionNew}
	var err error
	if o.Symbol, err = f.Field("currency_pair"); err != nil {
		return o, err
	}
	if o.Side, err = side(f); err != nil {
		return o, err
	}
	typ, err := f.Field("type")
	if err != nil {
		return o, err
	}
	o.Type = strings.ToLower(typ)
	if o.Type == "" {
		o.Type = "limit"
	}
	amount, err := f.Decimal("amount")
	if err != nil {
		return o, err
	}
	if o.Price, err = f.Decimal("price"); err != nil {
		return o, err
	}
	if o.ClientOrderID, err = f.Field("text"); err != nil {
		return o, err
	}
	switch {
	case o.Type == "market" && o.Side == exchange.Buy:
		o.QuoteQuantity, o.Notional = amount, amount
	case o.Type == "market":
		o.Quantity = amount
	default:
		o.Quantity = amount
		o.Notional = amount * o.Price
	}
	return o, nil
}

func spotAmendOrder(f exchange.Fields) (exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionAmend}
	var err error
	if o.Symbol, err = f.Field("currency_pair"); err != nil {
		return o, err
	}
	if o.Quantity, err = f.Decimal("amount"); err != nil {
		return o, err
	}
	if o.Price, err = f.Decimal("price"); err != nil {
		return o, err
	}
	if o.ClientOrderID, err = f.Field("amend_text"); err != nil {
		return o, err
	}
	o.Notional = o.Quantity * o.Price
	return o, nil
}

func spotTriggerOrder(obj map[string]any) ([]exchange.Order, error) {
	put, ok := obj["put"].(map[string]any)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "price order needs put")
	}
	m := map[string]any{}
	for k, v := range put {
		m[k] = v
	}
	m["currency_pair"] = obj["market"]
	o, err := spotNew(exchange.Fields{Body: m})
	if err != nil {
		return nil, err
	}
	return []exchange.Order{o}, nil
}

// futNew reads a futures order: size is a signed number of contracts,
// positive to buy and negative to sell; price "0" with tif ioc is a market
// order. The notional needs the contract multiplier, so it stays zero.
func futNew(f exchange.Fields, action exchange.Action) (exchange.Order, error) {
	o := exchange.Order{Action: action, Contracts: true}
	var err error
	if o.Symbol, err = f.Field("contract"); err != nil {
		return o, err
	}
	size, err := f.Field("size")
	if err != nil {
		return o, err
	}
	if size != "" {
		if !exchange.PlainDecimal(size, true) || strings.Contains(size, ".") {
			return o, exchange.Errorf(exchange.ErrBadRequest, "field \"size\" is not an integer")
		}
		q := exchange.ParseFloat(size)
		switch {
		case q > 0:
			o.Side, o.Quantity = exchange.Buy, q
		case q < 0:
			o.Side, o.Quantity = exchange.Sell, -q
		}
	}
	if o.Price, err = f.Decimal("price"); err != nil {
		return o, err
	}
	tif, err := f.Field("tif")
	if err != nil {
		return o, err
	}
	o.Type = "limit"
	if o.Price == 0 && (strings.EqualFold(tif, "ioc") || strings.EqualFold(tif, "fok")) {
		o.Type = "market"
	}
	if o.ClientOrderID, err = f.Field("text"); err != nil {
		return o, err
	}
	ro, err := f.Field("reduce_only")
	if err != nil {
		return o, err
	}
	cl, err := f.Field("close")
	if err != nil {
		return o, err
	}
	o.ReduceOnly = ro == "true" || cl == "true"
	return o, nil
}

func futTriggerOrder(obj map[string]any) ([]exchange.Order, error) {
	initial, ok := obj["initial"].(map[string]any)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "price order needs initial")
	}
	o, err := futNew(exchange.Fields{Body: initial}, exchange.ActionNew)
	if err != nil {
		return nil, err
	}
	return []exchange.Order{o}, nil
}

// expand reads the array bodies of batch endpoints, one Order per entry.
func expand(k kind, list []any, query exchange.Params) ([]exchange.Order, error) {
	if len(list) == 0 || len(list) > 100 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "batch must hold 1 to 100 entries")
	}
	out := make([]exchange.Order, 0, len(list))
	for _, item := range list {
		if k == futCancelList {
			id, ok := item.(string)
			if !ok {
				return nil, exchange.Errorf(exchange.ErrBadRequest, "batch cancel entries must be order ids")
			}
			_ = id
			out = append(out, exchange.Order{Action: exchange.ActionCancel})
			continue
		}
		m, ok := item.(map[string]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "batch entries must be objects")
		}
		f := exchange.Fields{Body: m}
		var o exchange.Order
		var err error
		switch k {
		case spotBatch:
			o, err = spotNew(f)
		case spotAmendBatch:
			o, err = spotAmendOrder(f)
		case spotCancelList:
			var os []exchange.Order
			os, err = cancelBy(f, "currency_pair", "")
			if err == nil {
				o = os[0]
			}
		case futBatch:
			o, err = futNew(f, exchange.ActionNew)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func cancelBy(f exchange.Fields, symbolField, alt string) ([]exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionCancel}
	var err error
	if o.Symbol, err = f.Field(symbolField); err != nil {
		return nil, err
	}
	if o.Symbol == "" && alt != "" {
		if o.Symbol, err = f.Field(alt); err != nil {
			return nil, err
		}
	}
	if o.Side, err = side(f); err != nil {
		return nil, err
	}
	return []exchange.Order{o}, nil
}

func transfer(f exchange.Fields, k kind) (*exchange.Transfer, error) {
	t := &exchange.Transfer{}
	var err error
	if t.Asset, err = f.Field("currency"); err != nil {
		return nil, err
	}
	if t.Amount, err = f.Decimal("amount"); err != nil {
		return nil, err
	}
	get := func(names ...string) (string, error) {
		parts := make([]string, 0, len(names))
		for _, n := range names {
			v, err := f.Field(n)
			if err != nil {
				return "", err
			}
			if v != "" {
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, ":"), nil
	}
	switch k {
	case withdraw:
		if t.Address, err = f.Field("address"); err != nil {
			return nil, err
		}
		if t.Memo, err = f.Field("memo"); err != nil {
			return nil, err
		}
		t.Network, err = f.Field("chain")
	case withdrawPush:
		// a transfer to another Gate user by UID: funds leave the account
		var uid string
		if uid, err = f.Field("receive_uid"); err == nil {
			t.Destination = "uid:" + uid
		}
	case walletXfer:
		t.Destination, err = get("to", "currency_pair", "settle")
	case subXfer:
		t.Destination, err = get("direction", "sub_account", "sub_account_type")
	case subToSub:
		t.Destination, err = get("sub_account_to", "sub_account_to_type")
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}
