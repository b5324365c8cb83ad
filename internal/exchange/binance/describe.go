package binance

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Path prefixes each venue serves.
var (
	spotPrefixes = []string{"/api/", "/sapi/"}
	usdmPrefixes = []string{"/fapi/", "/futures/data/"}
)

// extractor fills c's orders or transfer from the request's parameters.
// An extractor takes the call by value and returns it filled: a pointer
// passed through the function value would move the call to the heap.
type extractor func(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error)

// route is one known endpoint.
type route struct {
	method, path string
	scope        exchange.Scope
	extract      extractor
	endpoint     string // method + " " + path, built once
}

// describer classifies Binance REST calls with a default-deny table keyed
// by (method, lower-cased canonical path): anything not in the table is
// ScopeAccountAdmin. Matching ignores case so that a case variant of a
// withdraw path cannot be classified as something milder. A describer is
// safe for concurrent use.
type describer struct {
	venue    string
	prefixes []string
	routes   map[routeKey]route
}

// routeKey finds a route: the method and the lower-cased path. A struct
// rather than a joined string, so that a lookup allocates nothing.
type routeKey struct{ method, path string }

func newDescriber(venue string, prefixes []string) *describer {
	d := &describer{venue: venue, prefixes: prefixes, routes: map[routeKey]route{}}
	for _, r := range routeTable() {
		r.endpoint = r.method + " " + r.path
		d.routes[routeKey{r.method, strings.ToLower(r.path)}] = r
	}
	return d
}

// Describe says what r does. The bot's auth parameters (signature,
// timestamp, recvWindow) and header are ignored.
func (d *describer) Describe(r *exchange.Request) (exchange.Call, error) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "unsupported method")
	}
	key, err := canonicalPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	ps, err := requestParams(r)
	if err != nil {
		return exchange.Call{}, err
	}
	c := exchange.Call{Venue: d.venue, Method: r.Method, Path: r.Path, Scope: exchange.ScopeAccountAdmin}
	served := false
	for _, p := range d.prefixes {
		if strings.HasPrefix(key, p) {
			served = true
			break
		}
	}
	rt, ok := d.routes[routeKey{r.Method, key}]
	if !served || !ok {
		// Built only here: a known route has its endpoint built once.
		c.Endpoint = r.Method + " " + r.Path
		return c, nil
	}
	c.Path = rt.path
	c.Endpoint = rt.endpoint
	c.Scope = rt.scope
	if rt.extract != nil {
		var e *exchange.Error
		if c, e = rt.extract(ps, c); e != nil {
			return exchange.Call{}, e
		}
	}
	return c, nil
}

// canonicalPath checks that p is in canonical form and returns it lower-
// cased. It rejects rather than normalizes: empty segments, dot segments, a
// trailing slash, percent-encoding and anything outside [A-Za-z0-9._-/].
func canonicalPath(p string) (string, *exchange.Error) {
	// The error is built only when it is returned: this runs on every call.
	bad := func() *exchange.Error { return exchange.Errorf(exchange.ErrBadRequest, "malformed request path") }
	if len(p) < 2 || len(p) > 256 || p[0] != '/' || p[len(p)-1] == '/' {
		return "", bad()
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			return "", bad()
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", bad()
		}
	}
	return strings.ToLower(p), nil
}

// requestParams returns the query and form-body parameters, without the
// auth parameters. A name may appear once across both, compared without
// case, so the policy and Binance can never read different values.
func requestParams(r *exchange.Request) (exchange.Params, *exchange.Error) {
	if e := formBody(r.Header, r.Body); e != nil {
		return nil, e
	}
	qp, bp, e := parseParams(r, nil, nil)
	if e != nil {
		return nil, e
	}
	// qp and bp are this call's own: when only one holds parameters, it
	// is checked and filtered in place instead of copied.
	all := bp
	switch {
	case len(bp) == 0:
		all = qp
	case len(qp) > 0:
		all = append(append(make(exchange.Params, 0, len(qp)+len(bp)), qp...), bp...)
	}
	for i, p := range all {
		for _, q := range all[:i] {
			if strings.EqualFold(p.Name, q.Name) {
				return nil, exchange.Errorf(exchange.ErrBadRequest, msgDuplicate, exchange.SafeName(p.Name))
			}
		}
	}
	out := all[:0]
	for _, p := range all {
		switch p.Name {
		case paramSignature, paramTimestamp, paramRecvWindow:
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// decimal parses a non-negative decimal as Binance accepts it; "" is 0.
func decimal(ps exchange.Params, name string) (float64, *exchange.Error) {
	v := ps.Get(name)
	if v == "" {
		return 0, nil
	}
	if !isDecimal(v) {
		return 0, exchange.Errorf(exchange.ErrBadRequest, msgIllegal, name, `^([0-9]{1,20})(\.[0-9]{1,20})?$`)
	}
	f := exchange.ParseFloat(v)
	if f == 0 {
		switch name {
		case "quantity", "quoteOrderQty", "price":
			// An order of nothing, or at no price, is never what a bot
			// means; Binance refuses it too.
			return 0, exchange.Errorf(exchange.ErrBadRequest, msgIllegal, name, "a value greater than 0")
		}
	}
	return f, nil
}

// isDecimal matches ^([0-9]{1,20})(\.[0-9]{1,20})?$, Binance's legal range.
func isDecimal(v string) bool {
	ip, fp, dot := strings.Cut(v, ".")
	if len(ip) == 0 || len(ip) > 20 || !allDigits(ip) {
		return false
	}
	return !dot || (len(fp) > 0 && len(fp) <= 20 && allDigits(fp))
}

func side(ps exchange.Params, name string) (exchange.Side, *exchange.Error) {
	switch v := ps.Get(name); strings.ToUpper(v) {
	case "":
		return "", nil
	case "BUY":
		return exchange.Buy, nil
	case "SELL":
		return exchange.Sell, nil
	default:
		return "", exchange.Errorf(exchange.ErrBadRequest, msgIllegal, name, "BUY, SELL")
	}
}

func mandatory(ps exchange.Params, names ...string) *exchange.Error {
	for _, n := range names {
		if ps.Get(n) == "" {
			return exchange.Errorf(exchange.ErrBadRequest, msgMandatory, n)
		}
	}
	return nil
}

// legNames names the parameters of one order (or one leg of an order list).
type legNames struct {
	side, typ, qty, price, quoteQty, clientID string
}

var plainOrder = legNames{side: "side", typ: "type", qty: "quantity", price: "price", quoteQty: "quoteOrderQty", clientID: "newClientOrderId"}

// order reads one order with the given parameter names.
func order(ps exchange.Params, a exchange.Action, n legNames) (exchange.Order, *exchange.Error) {
	o := exchange.Order{Action: a, Symbol: ps.Get("symbol")}
	var e *exchange.Error
	if o.Side, e = side(ps, n.side); e != nil {
		return o, e
	}
	if n.typ != "" {
		o.Type = strings.ToLower(ps.Get(n.typ))
	}
	if o.Quantity, e = decimal(ps, n.qty); e != nil {
		return o, e
	}
	o.QuantityText = ps.Get(n.qty)
	if n.price != "" {
		if o.Price, e = decimal(ps, n.price); e != nil {
			return o, e
		}
		o.PriceText = ps.Get(n.price)
	}
	if n.quoteQty != "" {
		if o.QuoteQuantity, e = decimal(ps, n.quoteQty); e != nil {
			return o, e
		}
	}
	if _, e = decimal(ps, "stopPrice"); e != nil {
		return o, e
	}
	switch {
	case o.Quantity > 0 && o.Price > 0:
		o.Notional = o.Quantity * o.Price
	case o.QuoteQuantity > 0:
		o.Notional = o.QuoteQuantity
	}
	o.ClientOrderID = ps.Get(n.clientID)
	o.ReduceOnly = strings.EqualFold(ps.Get("reduceOnly"), "true")
	return o, nil
}

func newOrder(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol", "side", "type"); e != nil {
		return c, e
	}
	o, e := order(ps, exchange.ActionNew, plainOrder)
	if e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, o)
	return c, nil
}

// futuresAmend is PUT /fapi/v1/order: a new quantity and price for an order.
func futuresAmend(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol"); e != nil {
		return c, e
	}
	o, e := order(ps, exchange.ActionAmend, legNames{side: "side", qty: "quantity", price: "price", clientID: "origClientOrderId"})
	if e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, o)
	return c, nil
}

// spotAmend is PUT /api/v3/order/amend/keepPriority (quantity only).
func spotAmend(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol", "newQty"); e != nil {
		return c, e
	}
	o, e := order(ps, exchange.ActionAmend, legNames{qty: "newQty", clientID: "origClientOrderId"})
	if e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, o)
	return c, nil
}

func cancelOrder(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol"); e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: ps.Get("symbol"), ClientOrderID: ps.Get("origClientOrderId")})
	return c, nil
}

func cancelOrderList(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol"); e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: ps.Get("symbol"), ClientOrderID: ps.Get("listClientOrderId")})
	return c, nil
}

func cancelAll(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol"); e != nil {
		return c, e
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: ps.Get("symbol")})
	return c, nil
}

// cancelReplace is POST /api/v3/order/cancelReplace: a cancel and a new order.
func cancelReplace(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol", "side", "type"); e != nil {
		return c, e
	}
	o, e := order(ps, exchange.ActionNew, plainOrder)
	if e != nil {
		return c, e
	}
	c.Orders = append(c.Orders,
		exchange.Order{Action: exchange.ActionCancel, Symbol: o.Symbol, ClientOrderID: ps.Get("cancelOrigClientOrderId")},
		o)
	return c, nil
}

// legacyOCO is POST /api/v3/order/oco: a limit maker and a stop leg.
func legacyOCO(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol", "side", "quantity"); e != nil {
		return c, e
	}
	limit, e := order(ps, exchange.ActionNew, legNames{side: "side", qty: "quantity", price: "price", clientID: "limitClientOrderId"})
	if e != nil {
		return c, e
	}
	limit.Type = "limit_maker"
	stop, e := order(ps, exchange.ActionNew, legNames{side: "side", qty: "quantity", price: "stopLimitPrice", clientID: "stopClientOrderId"})
	if e != nil {
		return c, e
	}
	stop.Type = "stop_loss"
	if stop.Price > 0 {
		stop.Type = "stop_loss_limit"
	}
	c.Orders = append(c.Orders, limit, stop)
	return c, nil
}

// orderList handles POST /api/v3/orderList/{oco,oto,otoco,opo,opoco}: each
// leg is read with its own parameter prefix.
func orderList(legs ...legNames) extractor {
	return func(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
		if e := mandatory(ps, "symbol"); e != nil {
			return c, e
		}
		for _, n := range legs {
			o, e := order(ps, exchange.ActionNew, n)
			if e != nil {
				return c, e
			}
			c.Orders = append(c.Orders, o)
		}
		return c, nil
	}
}

func leg(sidePrm, qty, prefix string) legNames {
	return legNames{side: sidePrm, typ: prefix + "Type", qty: qty, price: prefix + "Price", clientID: prefix + "ClientOrderId"}
}

const maxBatch = 10

// jsonObjects parses a batch parameter: a strict JSON array of at most max
// flat objects, whose values are strings, numbers or booleans.
func jsonObjects(raw, name string, max int) ([]exchange.Params, *exchange.Error) {
	bad := exchange.Errorf(exchange.ErrBadRequest, msgMandatory, name)
	if raw == "" || checkStrictJSON([]byte(raw)) != nil {
		return nil, bad
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var objs []json.RawMessage
	if err := dec.Decode(&objs); err != nil || len(objs) == 0 || len(objs) > max {
		return nil, bad
	}
	out := make([]exchange.Params, 0, len(objs))
	for _, raw := range objs {
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil || m == nil {
			return nil, bad
		}
		ps := make(exchange.Params, 0, len(m))
		for k, v := range m {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case json.Number:
				s = v.String()
			case bool:
				s = "false"
				if v {
					s = "true"
				}
			default:
				return nil, bad
			}
			for _, q := range ps {
				if strings.EqualFold(q.Name, k) {
					return nil, exchange.Errorf(exchange.ErrBadRequest, msgDuplicate, exchange.SafeName(k))
				}
			}
			ps = append(ps, exchange.Param{Name: k, Value: s})
		}
		out = append(out, ps)
	}
	return out, nil
}

// batchOrders handles POST and PUT /fapi/v1/batchOrders (at most 5 orders).
func batchOrders(a exchange.Action) extractor {
	return func(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
		objs, e := jsonObjects(ps.Get("batchOrders"), "batchOrders", 5)
		if e != nil {
			return c, e
		}
		for _, o := range objs {
			var (
				ord exchange.Order
				e   *exchange.Error
			)
			if a == exchange.ActionAmend {
				e = mandatory(o, "symbol")
				if e == nil {
					ord, e = order(o, a, legNames{side: "side", qty: "quantity", price: "price", clientID: "origClientOrderId"})
				}
			} else {
				e = mandatory(o, "symbol", "side", "type")
				if e == nil {
					ord, e = order(o, a, plainOrder)
				}
			}
			if e != nil {
				return c, e
			}
			c.Orders = append(c.Orders, ord)
		}
		return c, nil
	}
}

// batchCancel handles DELETE /fapi/v1/batchOrders: orderIdList or
// origClientOrderIdList, JSON arrays of at most 10 ids.
func batchCancel(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "symbol"); e != nil {
		return c, e
	}
	sym := ps.Get("symbol")
	n := 0
	for _, name := range []string{"orderIdList", "origClientOrderIdList"} {
		raw := ps.Get(name)
		if raw == "" {
			continue
		}
		bad := exchange.Errorf(exchange.ErrBadRequest, msgMandatory, name)
		if checkStrictJSON([]byte(raw)) != nil {
			return c, bad
		}
		d := json.NewDecoder(strings.NewReader(raw))
		d.UseNumber()
		var ids []any
		if err := d.Decode(&ids); err != nil || len(ids) == 0 || len(ids) > maxBatch {
			return c, bad
		}
		for _, id := range ids {
			o := exchange.Order{Action: exchange.ActionCancel, Symbol: sym}
			switch v := id.(type) {
			case string:
				if name == "origClientOrderIdList" {
					o.ClientOrderID = v
				}
			case json.Number:
			default:
				return c, bad
			}
			c.Orders = append(c.Orders, o)
			n++
		}
	}
	if n == 0 {
		return c, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "orderIdList")
	}
	return c, nil
}

// withdraw reads a withdrawal to an address.
func withdraw(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
	if e := mandatory(ps, "coin", "address", "amount"); e != nil {
		return c, e
	}
	amt, e := decimal(ps, "amount")
	if e != nil {
		return c, e
	}
	c.Transfer = &exchange.Transfer{Asset: ps.Get("coin"), Amount: amt, Address: ps.Get("address"), Network: ps.Get("network"), Memo: ps.Get("addressTag")}
	return c, nil
}

// transfer reads an internal transfer; dest names its destination from the
// parameters.
func transfer(assetName, amountName string, dest func(ps exchange.Params) string) extractor {
	return func(ps exchange.Params, c exchange.Call) (exchange.Call, *exchange.Error) {
		if e := mandatory(ps, assetName, amountName); e != nil {
			return c, e
		}
		amt, e := decimal(ps, amountName)
		if e != nil {
			return c, e
		}
		c.Transfer = &exchange.Transfer{Asset: ps.Get(assetName), Amount: amt, Destination: dest(ps)}
		return c, nil
	}
}

func param(name string) func(exchange.Params) string {
	return func(ps exchange.Params) string { return ps.Get(name) }
}

func fixed(s string) func(exchange.Params) string {
	return func(exchange.Params) string { return s }
}

// account names a sub-account by email, or the master account.
func account(email string) string {
	if email == "" {
		return "master"
	}
	return email
}

// futuresTransferDest names the wallet a /sapi/v1/futures/transfer type
// moves funds to: 1 spot to USDⓈ-M, 2 USDⓈ-M to spot, 3 spot to COIN-M,
// 4 COIN-M to spot.
func futuresTransferDest(ps exchange.Params) string {
	switch ps.Get("type") {
	case "1":
		return "UMFUTURE"
	case "3":
		return "CMFUTURE"
	case "2", "4":
		return "MAIN"
	}
	return "type " + ps.Get("type")
}

// routeTable is every endpoint keywarden knows, with its scope.
func routeTable() []route {
	var t []route
	add := func(method string, scope exchange.Scope, x extractor, paths ...string) {
		for _, p := range paths {
			t = append(t, route{method: method, path: p, scope: scope, extract: x})
		}
	}
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	pub, read, trade := exchange.ScopePublic, exchange.ScopeRead, exchange.ScopeTrade
	xfer, wd := exchange.ScopeTransfer, exchange.ScopeWithdraw

	// Spot market data (security type NONE or MARKET_DATA).
	add(get, pub, nil, "/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/depth",
		"/api/v3/trades", "/api/v3/historicalTrades", "/api/v3/aggTrades", "/api/v3/klines",
		"/api/v3/uiKlines", "/api/v3/avgPrice", "/api/v3/ticker/24hr", "/api/v3/ticker/tradingDay",
		"/api/v3/ticker/price", "/api/v3/ticker/bookTicker", "/api/v3/ticker", "/sapi/v1/system/status")
	// Spot account reads.
	add(get, read, nil, "/api/v3/account", "/api/v3/order", "/api/v3/openOrders", "/api/v3/allOrders",
		"/api/v3/myTrades", "/api/v3/rateLimit/order", "/api/v3/orderList", "/api/v3/allOrderList",
		"/api/v3/openOrderList", "/api/v3/myPreventedMatches", "/api/v3/myAllocations",
		"/api/v3/account/commission", "/api/v3/order/amendments",
		"/sapi/v1/account/apiRestrictions", "/sapi/v1/account/status", "/sapi/v1/account/apiTradingStatus",
		"/sapi/v1/accountSnapshot", "/sapi/v1/capital/config/getall", "/sapi/v1/capital/deposit/hisrec",
		"/sapi/v1/capital/withdraw/history", "/sapi/v1/capital/deposit/address",
		"/sapi/v1/capital/withdraw/address/list", "/sapi/v1/asset/transfer", "/sapi/v1/asset/assetDetail",
		"/sapi/v1/asset/tradeFee", "/sapi/v1/asset/assetDividend", "/sapi/v1/sub-account/list",
		"/sapi/v1/sub-account/universalTransfer", "/sapi/v1/futures/transfer")
	add(post, read, nil, "/sapi/v3/asset/getUserAsset", "/sapi/v1/asset/get-funding-asset")
	add(post, read, nil, "/api/v3/userDataStream")
	add(put, read, nil, "/api/v3/userDataStream")
	add(del, read, nil, "/api/v3/userDataStream")
	// Spot trading.
	add(post, trade, newOrder, "/api/v3/order", "/api/v3/order/test", "/api/v3/sor/order", "/api/v3/sor/order/test")
	add(del, trade, cancelOrder, "/api/v3/order")
	add(del, trade, cancelAll, "/api/v3/openOrders")
	add(del, trade, cancelOrderList, "/api/v3/orderList")
	add(post, trade, cancelReplace, "/api/v3/order/cancelReplace")
	add(put, trade, spotAmend, "/api/v3/order/amend/keepPriority")
	add(post, trade, legacyOCO, "/api/v3/order/oco")
	add(post, trade, orderList(leg("side", "quantity", "above"), leg("side", "quantity", "below")), "/api/v3/orderList/oco")
	add(post, trade, orderList(leg("workingSide", "workingQuantity", "working"), leg("pendingSide", "pendingQuantity", "pending")),
		"/api/v3/orderList/oto", "/api/v3/orderList/opo")
	add(post, trade, orderList(leg("workingSide", "workingQuantity", "working"),
		leg("pendingSide", "pendingQuantity", "pendingAbove"), leg("pendingSide", "pendingQuantity", "pendingBelow")),
		"/api/v3/orderList/otoco", "/api/v3/orderList/opoco")
	// Wallet transfers between the owner's own wallets and sub-accounts.
	add(post, xfer, transfer("asset", "amount", func(ps exchange.Params) string {
		if s := ps.Get("toSymbol"); s != "" {
			return ps.Get("type") + "/" + s
		}
		return ps.Get("type")
	}), "/sapi/v1/asset/transfer")
	add(post, xfer, transfer("asset", "amount", func(ps exchange.Params) string {
		return account(ps.Get("toEmail")) + "/" + ps.Get("toAccountType")
	}), "/sapi/v1/sub-account/universalTransfer")
	add(post, xfer, transfer("asset", "amount", param("toEmail")), "/sapi/v1/sub-account/transfer/subToSub",
		"/sapi/v1/sub-account/futures/internalTransfer")
	add(post, xfer, transfer("asset", "amount", fixed("master")), "/sapi/v1/sub-account/transfer/subToMaster")
	add(post, xfer, transfer("asset", "amount", func(ps exchange.Params) string {
		return ps.Get("email") + "/futures type " + ps.Get("type")
	}), "/sapi/v1/sub-account/futures/transfer")
	add(post, xfer, transfer("asset", "amount", func(ps exchange.Params) string {
		return ps.Get("email") + "/margin type " + ps.Get("type")
	}), "/sapi/v1/sub-account/margin/transfer")
	add(post, xfer, transfer("asset", "amount", futuresTransferDest), "/sapi/v1/futures/transfer")
	// Funds leaving the account: withdrawals, and gift cards (a code anyone
	// holding it can redeem is a withdrawal in a transfer's clothing).
	add(post, wd, withdraw, "/sapi/v1/capital/withdraw/apply", "/sapi/v1/localentity/withdraw/apply")
	add(post, wd, transfer("token", "amount", fixed("giftcard")), "/sapi/v1/giftcard/createCode")
	add(post, wd, transfer("baseToken", "baseTokenAmount", fixed("giftcard")), "/sapi/v1/giftcard/buyCode")

	// USDⓈ-M futures market data.
	add(get, pub, nil, "/fapi/v1/ping", "/fapi/v1/time", "/fapi/v1/exchangeInfo", "/fapi/v1/depth",
		"/fapi/v1/trades", "/fapi/v1/historicalTrades", "/fapi/v1/aggTrades", "/fapi/v1/klines",
		"/fapi/v1/continuousKlines", "/fapi/v1/indexPriceKlines", "/fapi/v1/markPriceKlines",
		"/fapi/v1/premiumIndexKlines", "/fapi/v1/premiumIndex", "/fapi/v1/fundingRate", "/fapi/v1/fundingInfo",
		"/fapi/v1/ticker/24hr", "/fapi/v1/ticker/price", "/fapi/v2/ticker/price", "/fapi/v1/ticker/bookTicker",
		"/fapi/v1/openInterest", "/fapi/v1/indexInfo", "/fapi/v1/assetIndex", "/fapi/v1/constituents",
		"/futures/data/openInterestHist", "/futures/data/topLongShortAccountRatio",
		"/futures/data/topLongShortPositionRatio", "/futures/data/globalLongShortAccountRatio",
		"/futures/data/takerlongshortRatio", "/futures/data/basis")
	// USDⓈ-M account reads.
	add(get, read, nil, "/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/balance", "/fapi/v3/balance",
		"/fapi/v1/order", "/fapi/v1/openOrder", "/fapi/v1/openOrders", "/fapi/v1/allOrders",
		"/fapi/v2/positionRisk", "/fapi/v3/positionRisk", "/fapi/v1/userTrades", "/fapi/v1/income",
		"/fapi/v1/leverageBracket", "/fapi/v1/positionSide/dual", "/fapi/v1/multiAssetsMargin",
		"/fapi/v1/commissionRate", "/fapi/v1/apiTradingStatus", "/fapi/v1/rateLimit/order",
		"/fapi/v1/adlQuantile", "/fapi/v1/forceOrders", "/fapi/v1/accountConfig", "/fapi/v1/symbolConfig",
		"/fapi/v1/positionMargin/history", "/fapi/v1/orderAmendment", "/fapi/v1/feeBurn")
	add(post, read, nil, "/fapi/v1/listenKey")
	add(put, read, nil, "/fapi/v1/listenKey")
	add(del, read, nil, "/fapi/v1/listenKey")
	// USDⓈ-M trading. Leverage and margin settings change exposure, so they
	// are trade scope.
	add(post, trade, newOrder, "/fapi/v1/order", "/fapi/v1/order/test")
	add(put, trade, futuresAmend, "/fapi/v1/order")
	add(del, trade, cancelOrder, "/fapi/v1/order")
	add(del, trade, cancelAll, "/fapi/v1/allOpenOrders")
	add(post, trade, batchOrders(exchange.ActionNew), "/fapi/v1/batchOrders")
	add(put, trade, batchOrders(exchange.ActionAmend), "/fapi/v1/batchOrders")
	add(del, trade, batchCancel, "/fapi/v1/batchOrders")
	add(post, trade, nil, "/fapi/v1/countdownCancelAll", "/fapi/v1/leverage", "/fapi/v1/marginType",
		"/fapi/v1/positionMargin", "/fapi/v1/positionSide/dual", "/fapi/v1/multiAssetsMargin")
	return t
}

// maxJSONDepth bounds the nesting of JSON parameters such as batchOrders.
const maxJSONDepth = 16

// checkStrictJSON reports an error unless data is exactly one strict JSON
// value (see exchange.DecodeJSON) nested at most maxJSONDepth deep.
func checkStrictJSON(data []byte) error { return exchange.CheckJSON(data, maxJSONDepth) }
