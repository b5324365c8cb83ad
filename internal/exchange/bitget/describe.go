package bitget

import (
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxBatch is the most orders Bitget accepts in one batch request.
const maxBatch = 50

// describer classifies Bitget v2 requests. It is safe for concurrent use.
type describer struct{}

// parseFunc fills c from a request's parsed JSON body (nil when empty).
type parseFunc func(body any, c *exchange.Call) error

type route struct {
	scope exchange.Scope
	parse parseFunc
}

// routes maps "METHOD /canonical/path" to what the call does. Anything not
// here and not matched by prefixes is account-admin.
var routes = map[string]route{
	"POST /api/v2/spot/trade/place-order":          {exchange.ScopeTrade, one(spotOrder)},
	"POST /api/v2/spot/trade/batch-orders":         {exchange.ScopeTrade, list("orderList", spotOrder)},
	"POST /api/v2/spot/trade/cancel-replace-order": {exchange.ScopeTrade, one(spotAmend)},
	"POST /api/v2/spot/trade/cancel-order":         {exchange.ScopeTrade, one(cancel)},
	"POST /api/v2/spot/trade/batch-cancel-order":   {exchange.ScopeTrade, list("orderList", cancel)},
	"POST /api/v2/spot/trade/cancel-symbol-order":  {exchange.ScopeTrade, nil},
	"POST /api/v2/spot/trade/place-plan-order":     {exchange.ScopeTrade, one(spotPlanOrder)},
	"POST /api/v2/spot/trade/modify-plan-order":    {exchange.ScopeTrade, one(spotPlanAmend)},
	"POST /api/v2/spot/trade/cancel-plan-order":    {exchange.ScopeTrade, one(cancel)},
	"POST /api/v2/mix/order/place-order":           {exchange.ScopeTrade, one(mixOrder)},
	"POST /api/v2/mix/order/batch-place-order":     {exchange.ScopeTrade, list("orderList", mixOrder)},
	"POST /api/v2/mix/order/modify-order":          {exchange.ScopeTrade, one(mixAmend)},
	"POST /api/v2/mix/order/cancel-order":          {exchange.ScopeTrade, one(cancel)},
	"POST /api/v2/mix/order/batch-cancel-orders":   {exchange.ScopeTrade, list("orderIdList", cancel)},
	"POST /api/v2/mix/order/cancel-all-orders":     {exchange.ScopeTrade, nil},
	"POST /api/v2/mix/order/close-positions":       {exchange.ScopeTrade, one(closePositions)},
	"POST /api/v2/mix/order/place-plan-order":      {exchange.ScopeTrade, one(mixOrder)},
	"POST /api/v2/mix/order/cancel-plan-order":     {exchange.ScopeTrade, nil},
	"POST /api/v2/mix/account/set-leverage":        {exchange.ScopeTrade, nil},
	"POST /api/v2/mix/account/set-margin":          {exchange.ScopeTrade, nil},
	"POST /api/v2/mix/account/set-margin-mode":     {exchange.ScopeTrade, nil},
	"POST /api/v2/mix/account/set-position-mode":   {exchange.ScopeTrade, nil},

	"POST /api/v2/spot/wallet/transfer":            {exchange.ScopeTransfer, one(transfer)},
	"POST /api/v2/spot/wallet/subaccount-transfer": {exchange.ScopeTransfer, one(subTransfer)},

	"POST /api/v2/spot/wallet/withdrawal":        {exchange.ScopeWithdraw, one(withdrawal)},
	"POST /api/v2/spot/wallet/cancel-withdrawal": {exchange.ScopeWithdraw, nil},
	"POST /api/v3/account/withdrawal":            {exchange.ScopeWithdraw, one(withdrawal)},
}

// prefixes classify the rest of the read-only GET surface.
var prefixes = []struct {
	method, prefix string
	scope          exchange.Scope
}{
	{http.MethodGet, "/api/v2/public/", exchange.ScopePublic},
	{http.MethodGet, "/api/v2/spot/public/", exchange.ScopePublic},
	{http.MethodGet, "/api/v2/spot/market/", exchange.ScopePublic},
	{http.MethodGet, "/api/v2/mix/market/", exchange.ScopePublic},
	{http.MethodGet, "/api/v2/spot/account/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/spot/trade/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/spot/wallet/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/mix/account/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/mix/order/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/mix/position/", exchange.ScopeRead},
	{http.MethodGet, "/api/v2/user/", exchange.ScopeRead},
	{http.MethodGet, "/api/v3/market/", exchange.ScopePublic},
	{http.MethodGet, "/api/v3/account/", exchange.ScopeRead},
	{http.MethodGet, "/api/v3/trade/", exchange.ScopeRead},
	{http.MethodGet, "/api/v3/position/", exchange.ScopeRead},
}

// lookup returns the route of method and canonical path.
func lookup(method, path string) route {
	if rt, ok := routes[method+" "+path]; ok {
		return rt
	}
	for _, p := range prefixes {
		if method == p.method && strings.HasPrefix(path, p.prefix) {
			return route{scope: p.scope}
		}
	}
	return route{scope: exchange.ScopeAccountAdmin}
}

// Describe says what r does. It reads only the method, path, query and
// body, never the ACCESS-* headers.
func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return exchange.Call{}, badRequest("invalid request method")
	}
	path, err := canonicalPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	if _, err := exchange.ParseQuery(r.RawQuery); err != nil {
		return exchange.Call{}, err
	}
	var body any
	if r.Method == http.MethodGet {
		if len(r.Body) > 0 {
			return exchange.Call{}, badRequest("GET request with a body")
		}
	} else {
		if r.RawQuery != "" {
			return exchange.Call{}, badRequest("query parameters on a POST request")
		}
		if len(r.Body) > 0 {
			if body, err = parseJSON(r.Body); err != nil {
				return exchange.Call{}, err
			}
			if _, ok := body.(map[string]any); !ok {
				return exchange.Call{}, badRequest("json body must be an object")
			}
		}
	}
	rt := lookup(r.Method, path)
	c := exchange.Call{
		Venue:    Name,
		Method:   r.Method,
		Path:     path,
		Endpoint: r.Method + " " + path,
		Scope:    rt.scope,
	}
	if rt.parse != nil {
		if err := rt.parse(body, &c); err != nil {
			return exchange.Call{}, err
		}
	}
	return c, nil
}

// objFunc reads one order-like JSON object into c; parent holds the batch
// request's shared fields (nil for single requests).
type objFunc func(o, parent objFields, c *exchange.Call) error

// one accepts a body that is a single object.
func one(f objFunc) parseFunc {
	return func(body any, c *exchange.Call) error {
		o, ok := body.(map[string]any)
		if !ok {
			return badRequest("body must be a json object")
		}
		return f(o, nil, c)
	}
}

// list accepts an object whose field name is an array of 1..maxBatch
// objects, each read with f; shared fields (symbol, productType) come from
// the outer object when an entry lacks them.
func list(name string, f objFunc) parseFunc {
	return func(body any, c *exchange.Call) error {
		o, ok := body.(map[string]any)
		if !ok {
			return badRequest("body must be a json object")
		}
		a, ok := o[name].([]any)
		if !ok {
			return badRequest("parameter %s must be an array", name)
		}
		if len(a) == 0 || len(a) > maxBatch {
			return badRequest("%s must hold 1 to %d entries", name, maxBatch)
		}
		for _, e := range a {
			eo, ok := e.(map[string]any)
			if !ok {
				return badRequest("%s entries must be json objects", name)
			}
			if err := f(eo, o, c); err != nil {
				return err
			}
		}
		return nil
	}
}

// field reads name from o, falling back to parent. When both carry it they
// must agree: which one Bitget uses depends on the batch mode, and the call
// must not be described with the other.
func field(o, parent objFields, name string) (string, error) {
	s, err := o.Str(name)
	if err != nil || parent == nil {
		return s, err
	}
	p, err := parent.Str(name)
	if err != nil {
		return "", err
	}
	switch {
	case s == "":
		return p, nil
	case p != "" && p != s:
		return "", badRequest("parameter %s differs between the batch and its entry", exchange.SafeName(name))
	}
	return s, nil
}

func side(s string) (exchange.Side, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "buy":
		return exchange.Buy, nil
	case "sell":
		return exchange.Sell, nil
	}
	return "", badRequest("parameter side error")
}

// common reads symbol, side, orderType, clientOid and reduceOnly.
func common(o, parent objFields) (exchange.Order, error) {
	var ord exchange.Order
	sym, err := field(o, parent, "symbol")
	if err != nil {
		return ord, err
	}
	s, err := getStrings(o, "side", "orderType", "clientOid", "reduceOnly")
	if err != nil {
		return ord, err
	}
	sd, err := side(s[0])
	if err != nil {
		return ord, err
	}
	ord = exchange.Order{Action: exchange.ActionNew, Symbol: sym, Side: sd, Type: strings.ToLower(s[1]), ClientOrderID: s[2]}
	switch strings.ToUpper(s[3]) {
	case "", "NO", "FALSE":
	case "YES", "TRUE":
		ord.ReduceOnly = true
	default:
		return ord, badRequest("parameter reduceOnly error")
	}
	return ord, nil
}

// spotOrder reads a spot order. Bitget sizes spot market buys in the quote
// coin and everything else in the base coin.
func spotOrder(o, parent objFields, c *exchange.Call) error {
	ord, err := common(o, parent)
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	price, err := num(o, "price")
	if err != nil {
		return err
	}
	if ord.Type == "market" && ord.Side == exchange.Buy {
		ord.QuoteQuantity, ord.Notional = size, size
	} else {
		ord.Quantity = size
		if ord.Type != "market" {
			ord.Price = price
			ord.Notional = size * price
			ord.QuantityText, _ = o.Str("size")
			ord.PriceText, _ = o.Str("price")
		}
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func spotAmend(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "newClientOid", "clientOid")
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	price, err := num(o, "price")
	if err != nil {
		return err
	}
	id := s[1]
	if id == "" {
		id = s[2]
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: id,
		Quantity: size, Price: price, Notional: size * price})
	return nil
}

func spotPlanOrder(o, parent objFields, c *exchange.Call) error {
	ord, err := common(o, parent)
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	price, err := num(o, "executePrice")
	if err != nil {
		return err
	}
	if ord.Type == "market" && ord.Side == exchange.Buy {
		ord.QuoteQuantity, ord.Notional = size, size
	} else {
		ord.Quantity, ord.Price = size, price
		ord.Notional = size * price
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func spotPlanAmend(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "clientOid")
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	price, err := num(o, "executePrice")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: s[1],
		Quantity: size, Price: price, Notional: size * price})
	return nil
}

// mixOrder reads a futures order; size is in the base coin.
func mixOrder(o, parent objFields, c *exchange.Call) error {
	ord, err := common(o, parent)
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	price, err := num(o, "price")
	if err != nil {
		return err
	}
	ord.Quantity = size
	if ord.Type != "market" {
		ord.Price = price
		ord.Notional = size * price
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func mixAmend(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "newClientOid", "clientOid")
	if err != nil {
		return err
	}
	size, err := num(o, "newSize")
	if err != nil {
		return err
	}
	price, err := num(o, "newPrice")
	if err != nil {
		return err
	}
	id := s[1]
	if id == "" {
		id = s[2]
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: id,
		Quantity: size, Price: price, Notional: size * price})
	return nil
}

func cancel(o, parent objFields, c *exchange.Call) error {
	sym, err := field(o, parent, "symbol")
	if err != nil {
		return err
	}
	id, err := o.Str("clientOid")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: sym, ClientOrderID: id})
	return nil
}

func closePositions(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "holdSide")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionNew, Symbol: s[0], Type: "market", ReduceOnly: true})
	return nil
}

// transfer reads POST /api/v2/spot/wallet/transfer between the caller's
// own account types.
func transfer(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "toType")
	if err != nil {
		return err
	}
	amt, err := num(o, "amount")
	if err != nil {
		return err
	}
	c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: s[1]}
	return nil
}

// subTransfer reads a transfer between master and sub-account user ids.
func subTransfer(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "toUserId", "toType")
	if err != nil {
		return err
	}
	amt, err := num(o, "amount")
	if err != nil {
		return err
	}
	dest := "user:" + s[1]
	if s[1] == "" {
		dest = s[2]
	}
	c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: dest}
	return nil
}

// withdrawal reads a withdrawal. transferType internal_transfer sends to
// another Bitget user named by address (uid, email or phone per
// innerToType), so the address is also the destination.
func withdrawal(o, parent objFields, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "address", "chain", "tag", "transferType", "innerToType")
	if err != nil {
		return err
	}
	size, err := num(o, "size")
	if err != nil {
		return err
	}
	t := &exchange.Transfer{Asset: s[0], Amount: size, Address: s[1], Network: s[2], Memo: s[3]}
	switch s[4] {
	case "on_chain":
	case "internal_transfer":
		t.Destination = s[1]
		if s[5] != "" {
			t.Destination = s[5] + ":" + s[1]
		}
	default:
		return badRequest("parameter transferType error")
	}
	c.Transfer = t
	return nil
}
