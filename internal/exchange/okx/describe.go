package okx

import (
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxBatch is the most orders OKX accepts in one batch request.
const maxBatch = 20

// describer classifies OKX v5 requests. It is safe for concurrent use.
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
	"GET /api/v5/account/config":  {exchange.ScopeRead, nil},
	"GET /api/v5/account/balance": {exchange.ScopeRead, nil},

	"POST /api/v5/trade/order":                     {exchange.ScopeTrade, one(newOrder)},
	"POST /api/v5/trade/batch-orders":              {exchange.ScopeTrade, batch(newOrder)},
	"POST /api/v5/trade/amend-order":               {exchange.ScopeTrade, one(amendOrder)},
	"POST /api/v5/trade/amend-batch-orders":        {exchange.ScopeTrade, batch(amendOrder)},
	"POST /api/v5/trade/cancel-order":              {exchange.ScopeTrade, one(cancelOrder)},
	"POST /api/v5/trade/cancel-batch-orders":       {exchange.ScopeTrade, batch(cancelOrder)},
	"POST /api/v5/trade/order-algo":                {exchange.ScopeTrade, one(algoOrder)},
	"POST /api/v5/trade/amend-algos":               {exchange.ScopeTrade, one(amendAlgo)},
	"POST /api/v5/trade/cancel-algos":              {exchange.ScopeTrade, batch(cancelAlgo)},
	"POST /api/v5/trade/close-position":            {exchange.ScopeTrade, one(closePosition)},
	"POST /api/v5/trade/mass-cancel":               {exchange.ScopeTrade, nil},
	"POST /api/v5/trade/cancel-all-after":          {exchange.ScopeTrade, nil},
	"POST /api/v5/account/set-leverage":            {exchange.ScopeTrade, nil},
	"POST /api/v5/account/set-position-mode":       {exchange.ScopeTrade, nil},
	"POST /api/v5/account/position/margin-balance": {exchange.ScopeTrade, nil},

	"POST /api/v5/asset/transfer":            {exchange.ScopeTransfer, transfer},
	"POST /api/v5/asset/subaccount/transfer": {exchange.ScopeTransfer, subTransfer},

	"POST /api/v5/asset/withdrawal":           {exchange.ScopeWithdraw, withdrawal},
	"POST /api/v5/asset/withdrawal-lightning": {exchange.ScopeWithdraw, lightning},
	"POST /api/v5/asset/cancel-withdrawal":    {exchange.ScopeWithdraw, nil},
	"POST /api/v5/fiat/create-withdrawal":     {exchange.ScopeWithdraw, fiatWithdrawal},
}

// prefixes classify the rest of the read-only GET surface.
var prefixes = []struct {
	method, prefix string
	scope          exchange.Scope
}{
	{http.MethodGet, "/api/v5/market/", exchange.ScopePublic},
	{http.MethodGet, "/api/v5/public/", exchange.ScopePublic},
	{http.MethodGet, "/api/v5/system/", exchange.ScopePublic},
	{http.MethodGet, "/api/v5/rubik/", exchange.ScopePublic},
	{http.MethodGet, "/api/v5/account/", exchange.ScopeRead},
	{http.MethodGet, "/api/v5/trade/", exchange.ScopeRead},
	{http.MethodGet, "/api/v5/asset/", exchange.ScopeRead},
	{http.MethodGet, "/api/v5/users/", exchange.ScopeRead},
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
// body, never the OK-ACCESS-* headers.
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
			switch body.(type) {
			case map[string]any, []any:
			default:
				return exchange.Call{}, badRequest("json body must be an object or an array")
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

// objFunc reads one JSON object into c.
type objFunc func(o objFields, c *exchange.Call) error

// one accepts a body that is a single object.
func one(f objFunc) parseFunc {
	return func(body any, c *exchange.Call) error {
		o, ok := body.(map[string]any)
		if !ok {
			return badRequest("body must be a json object")
		}
		return f(o, c)
	}
}

// batch accepts a body that is an array of 1..maxBatch objects.
func batch(f objFunc) parseFunc {
	return func(body any, c *exchange.Call) error {
		a, ok := body.([]any)
		if !ok {
			return badRequest("body must be a json array")
		}
		if len(a) == 0 || len(a) > maxBatch {
			return badRequest("batch must hold 1 to %d entries", maxBatch)
		}
		for _, e := range a {
			o, ok := e.(map[string]any)
			if !ok {
				return badRequest("batch entries must be json objects")
			}
			if err := f(o, c); err != nil {
				return err
			}
		}
		return nil
	}
}

// isSpot says whether instId names a spot/margin pair (BASE-QUOTE) rather
// than a swap, future or option, whose sz counts contracts.
func isSpot(instID string) bool {
	return strings.Count(instID, "-") == 1
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

func reduceOnly(o objFields) (bool, error) {
	s, err := o.Str("reduceOnly")
	if err != nil {
		return false, err
	}
	switch s {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badRequest("parameter reduceOnly error")
}

func newOrder(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "side", "ordType", "clOrdId", "tgtCcy", "tdMode")
	if err != nil {
		return err
	}
	sd, err := side(s[1])
	if err != nil {
		return err
	}
	sz, err := num(o, "sz")
	if err != nil {
		return err
	}
	px, err := num(o, "px")
	if err != nil {
		return err
	}
	ro, err := reduceOnly(o)
	if err != nil {
		return err
	}
	ord := exchange.Order{
		Action:        exchange.ActionNew,
		Symbol:        s[0],
		Side:          sd,
		Type:          strings.ToLower(s[2]),
		Price:         px,
		ClientOrderID: s[3],
		ReduceOnly:    ro,
	}
	tgt := s[4]
	if tgt != "" && tgt != "base_ccy" && tgt != "quote_ccy" {
		return badRequest("parameter tgtCcy error")
	}
	spot := isSpot(ord.Symbol)
	switch {
	case spot && ord.Type == "market" && (tgt == "quote_ccy" || tgt == "" && s[5] == "cash" && sd == exchange.Buy):
		// OKX sizes spot market buys in the quote currency by default.
		ord.QuoteQuantity = sz
		ord.Notional = sz
	default:
		ord.Quantity = sz
		ord.Contracts = !spot
		if spot && px > 0 && ord.Type != "market" {
			ord.Notional = sz * px
			ord.QuantityText, _ = o.Str("sz")
			ord.PriceText, _ = o.Str("px")
		}
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func amendOrder(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "clOrdId")
	if err != nil {
		return err
	}
	sz, err := num(o, "newSz")
	if err != nil {
		return err
	}
	px, err := num(o, "newPx")
	if err != nil {
		return err
	}
	ord := exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: s[1], Quantity: sz, Price: px}
	if isSpot(s[0]) {
		ord.Notional = sz * px
	} else {
		ord.Contracts = true
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func cancelOrder(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "clOrdId")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: s[0], ClientOrderID: s[1]})
	return nil
}

// algoPrice reads an algo order price, where "-1" means "at market".
func algoPrice(o objFields, name string) (float64, error) {
	s, err := o.Str(name)
	if err != nil || s == "-1" {
		return 0, err
	}
	return decimal(name, s)
}

func algoOrder(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "side", "ordType", "algoClOrdId", "tgtCcy")
	if err != nil {
		return err
	}
	sd, err := side(s[1])
	if err != nil {
		return err
	}
	sz, err := num(o, "sz")
	if err != nil {
		return err
	}
	px, err := algoPrice(o, "orderPx")
	if err != nil {
		return err
	}
	ro, err := reduceOnly(o)
	if err != nil {
		return err
	}
	ord := exchange.Order{
		Action: exchange.ActionNew, Symbol: s[0], Side: sd, Type: strings.ToLower(s[2]),
		Price: px, ClientOrderID: s[3], ReduceOnly: ro,
	}
	if s[4] == "quote_ccy" {
		ord.QuoteQuantity = sz
		ord.Notional = sz
	} else {
		ord.Quantity = sz
		if isSpot(s[0]) && px > 0 {
			ord.Notional = sz * px
		}
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func amendAlgo(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "algoClOrdId")
	if err != nil {
		return err
	}
	sz, err := num(o, "newSz")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: s[1], Quantity: sz})
	return nil
}

func cancelAlgo(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "algoClOrdId")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: s[0], ClientOrderID: s[1]})
	return nil
}

func closePosition(o objFields, c *exchange.Call) error {
	s, err := getStrings(o, "instId", "clOrdId")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{
		Action: exchange.ActionNew, Symbol: s[0], Type: "market", ClientOrderID: s[1], ReduceOnly: true,
	})
	return nil
}

// transfer reads POST /api/v5/asset/transfer: between the caller's own
// accounts (type 0) or between master and sub-accounts (types 1-4).
func transfer(body any, c *exchange.Call) error {
	return one(func(o objFields, c *exchange.Call) error {
		s, err := getStrings(o, "ccy", "to", "subAcct")
		if err != nil {
			return err
		}
		amt, err := num(o, "amt")
		if err != nil {
			return err
		}
		dest := s[1]
		if s[2] != "" {
			dest = "subaccount:" + s[2]
		}
		c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: dest}
		return nil
	})(body, c)
}

func subTransfer(body any, c *exchange.Call) error {
	return one(func(o objFields, c *exchange.Call) error {
		s, err := getStrings(o, "ccy", "toSubAccount")
		if err != nil {
			return err
		}
		amt, err := num(o, "amt")
		if err != nil {
			return err
		}
		c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: "subaccount:" + s[1]}
		return nil
	})(body, c)
}

// withdrawal reads POST /api/v5/asset/withdrawal. dest 4 is on-chain to
// toAddr; dest 3 is an internal transfer to another OKX user named by
// toAddr (email, phone or UID), so toAddr is both address and destination.
func withdrawal(body any, c *exchange.Call) error {
	return one(func(o objFields, c *exchange.Call) error {
		s, err := getStrings(o, "ccy", "toAddr", "chain", "dest")
		if err != nil {
			return err
		}
		amt, err := num(o, "amt")
		if err != nil {
			return err
		}
		t := &exchange.Transfer{Asset: s[0], Amount: amt, Address: s[1], Network: s[2]}
		switch s[3] {
		case "4":
		case "3":
			t.Destination = s[1]
		default:
			return badRequest("parameter dest error")
		}
		c.Transfer = t
		return nil
	})(body, c)
}

func lightning(body any, c *exchange.Call) error {
	return one(func(o objFields, c *exchange.Call) error {
		s, err := getStrings(o, "ccy", "invoice", "memo")
		if err != nil {
			return err
		}
		c.Transfer = &exchange.Transfer{Asset: s[0], Address: s[1], Memo: s[2], Network: "lightning"}
		return nil
	})(body, c)
}

func fiatWithdrawal(body any, c *exchange.Call) error {
	return one(func(o objFields, c *exchange.Call) error {
		s, err := getStrings(o, "ccy", "paymentAcctId", "paymentMethod")
		if err != nil {
			return err
		}
		amt, err := num(o, "amt")
		if err != nil {
			return err
		}
		c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: s[1], Network: s[2]}
		return nil
	})(body, c)
}
