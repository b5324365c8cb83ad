package bybit

import (
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxBatch is the most orders Bybit accepts in one batch request.
const maxBatch = 20

// describer classifies Bybit v5 requests. It is safe for concurrent use.
type describer struct{}

// parseFunc fills c from a request's parameters: the query of a GET or the
// JSON object body of a POST.
type parseFunc func(f fields, raw map[string]any, c *exchange.Call) error

type route struct {
	scope exchange.Scope
	parse parseFunc
}

// routes maps "METHOD /canonical/path" to what the call does. Anything not
// here and not matched by prefixes is account-admin.
var routes = map[string]route{
	"POST /v5/order/create":                  {exchange.ScopeTrade, one(newOrder)},
	"POST /v5/order/create-batch":            {exchange.ScopeTrade, batch(newOrder)},
	"POST /v5/order/amend":                   {exchange.ScopeTrade, one(amendOrder)},
	"POST /v5/order/amend-batch":             {exchange.ScopeTrade, batch(amendOrder)},
	"POST /v5/order/cancel":                  {exchange.ScopeTrade, one(cancelOrder)},
	"POST /v5/order/cancel-batch":            {exchange.ScopeTrade, batch(cancelOrder)},
	"POST /v5/order/cancel-all":              {exchange.ScopeTrade, nil},
	"POST /v5/order/disconnected-cancel-all": {exchange.ScopeTrade, nil},
	"POST /v5/position/set-leverage":         {exchange.ScopeTrade, nil},
	"POST /v5/position/switch-isolated":      {exchange.ScopeTrade, nil},
	"POST /v5/position/switch-mode":          {exchange.ScopeTrade, nil},
	"POST /v5/position/trading-stop":         {exchange.ScopeTrade, nil},
	"POST /v5/position/set-auto-add-margin":  {exchange.ScopeTrade, nil},
	"POST /v5/position/add-margin":           {exchange.ScopeTrade, nil},
	"POST /v5/account/set-margin-mode":       {exchange.ScopeTrade, nil},

	"POST /v5/asset/transfer/inter-transfer":     {exchange.ScopeTransfer, interTransfer},
	"POST /v5/asset/transfer/universal-transfer": {exchange.ScopeTransfer, universalTransfer},

	"POST /v5/asset/withdraw/create": {exchange.ScopeWithdraw, withdraw},
	"POST /v5/asset/withdraw/cancel": {exchange.ScopeWithdraw, nil},
}

// prefixes classify the rest of the read-only GET surface.
var prefixes = []struct {
	method, prefix string
	scope          exchange.Scope
}{
	{http.MethodGet, "/v5/market/", exchange.ScopePublic},
	{http.MethodGet, "/v5/announcements/", exchange.ScopePublic},
	{http.MethodGet, "/v5/account/", exchange.ScopeRead},
	{http.MethodGet, "/v5/order/", exchange.ScopeRead},
	{http.MethodGet, "/v5/position/", exchange.ScopeRead},
	{http.MethodGet, "/v5/execution/", exchange.ScopeRead},
	{http.MethodGet, "/v5/asset/", exchange.ScopeRead},
	{http.MethodGet, "/v5/user/", exchange.ScopeRead},
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
// body, never the X-BAPI-* headers.
func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return exchange.Call{}, badRequest("request path not found or request method is invalid")
	}
	path, err := canonicalPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	q, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return exchange.Call{}, err
	}
	var f fields = queryFields(q)
	var obj map[string]any
	if r.Method == http.MethodGet {
		if len(r.Body) > 0 {
			return exchange.Call{}, badRequest("GET request with a body")
		}
	} else {
		if r.RawQuery != "" {
			return exchange.Call{}, badRequest("query parameters on a POST request")
		}
		obj = map[string]any{}
		if len(r.Body) > 0 {
			body, err := parseJSON(r.Body)
			if err != nil {
				return exchange.Call{}, err
			}
			o, ok := body.(map[string]any)
			if !ok {
				return exchange.Call{}, badRequest("json body must be an object")
			}
			obj = o
		}
		f = objFields(obj)
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
		if err := rt.parse(f, obj, &c); err != nil {
			return exchange.Call{}, err
		}
	}
	return c, nil
}

// orderFunc reads one order object; category comes from the request (batch
// requests carry it once, outside the list).
type orderFunc func(o fields, category string, c *exchange.Call) error

func one(f orderFunc) parseFunc {
	return func(p fields, _ map[string]any, c *exchange.Call) error {
		cat, err := p.Str("category")
		if err != nil {
			return err
		}
		return f(p, cat, c)
	}
}

// batch reads {"category": ..., "request": [ ... ]}.
func batch(f orderFunc) parseFunc {
	return func(p fields, raw map[string]any, c *exchange.Call) error {
		cat, err := p.Str("category")
		if err != nil {
			return err
		}
		list, ok := raw["request"].([]any)
		if !ok {
			return badRequest("parameter request must be an array")
		}
		if len(list) == 0 || len(list) > maxBatch {
			return badRequest("request must hold 1 to %d entries", maxBatch)
		}
		for _, e := range list {
			o, ok := e.(map[string]any)
			if !ok {
				return badRequest("request entries must be json objects")
			}
			// Bybit reads the category once, outside the list; an entry
			// naming another one would be described under the wrong rules.
			if s, err := objFields(o).Str("category"); err != nil {
				return err
			} else if s != "" && s != cat {
				return badRequest("request entry category %q differs from the batch category", exchange.SafeName(s))
			}
			if err := f(objFields(o), cat, c); err != nil {
				return err
			}
		}
		return nil
	}
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
	return "", badRequest("params error: side invalid")
}

func boolField(o fields, name string) (bool, error) {
	s, err := o.Str(name)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, badRequest("params error: %s invalid", name)
}

// notionalCategory says whether qty*price is a quote-currency notional:
// spot and linear contracts are sized in the base coin; inverse contracts
// count USD and options price a premium.
func notionalCategory(cat string) bool {
	return cat == "spot" || cat == "linear"
}

func newOrder(o fields, cat string, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "side", "orderType", "orderLinkId", "marketUnit")
	if err != nil {
		return err
	}
	sd, err := side(s[1])
	if err != nil {
		return err
	}
	qty, err := num(o, "qty")
	if err != nil {
		return err
	}
	price, err := num(o, "price")
	if err != nil {
		return err
	}
	ro, err := boolField(o, "reduceOnly")
	if err != nil {
		return err
	}
	ord := exchange.Order{Action: exchange.ActionNew, Symbol: s[0], Side: sd, Type: strings.ToLower(s[2]),
		ClientOrderID: s[3], ReduceOnly: ro}
	unit := s[4]
	if unit != "" && unit != "baseCoin" && unit != "quoteCoin" {
		return badRequest("params error: marketUnit invalid")
	}
	// Spot market buys are sized in the quote coin unless marketUnit says
	// otherwise; any order with marketUnit=quoteCoin is too.
	if cat == "spot" && ord.Type == "market" && (unit == "quoteCoin" || unit == "" && sd == exchange.Buy) {
		ord.QuoteQuantity, ord.Notional = qty, qty
	} else {
		ord.Quantity = qty
		if ord.Type != "market" {
			ord.Price = price
			if notionalCategory(cat) {
				ord.Notional = qty * price
				ord.QuantityText, _ = o.Str("qty")
				ord.PriceText, _ = o.Str("price")
			}
		}
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func amendOrder(o fields, cat string, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "orderLinkId")
	if err != nil {
		return err
	}
	qty, err := num(o, "qty")
	if err != nil {
		return err
	}
	price, err := num(o, "price")
	if err != nil {
		return err
	}
	ord := exchange.Order{Action: exchange.ActionAmend, Symbol: s[0], ClientOrderID: s[1], Quantity: qty, Price: price}
	if notionalCategory(cat) {
		ord.Notional = qty * price
	}
	c.Orders = append(c.Orders, ord)
	return nil
}

func cancelOrder(o fields, cat string, c *exchange.Call) error {
	s, err := getStrings(o, "symbol", "orderLinkId")
	if err != nil {
		return err
	}
	c.Orders = append(c.Orders, exchange.Order{Action: exchange.ActionCancel, Symbol: s[0], ClientOrderID: s[1]})
	return nil
}

// interTransfer moves funds between the caller's own account types.
func interTransfer(o fields, _ map[string]any, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "toAccountType")
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

// universalTransfer moves funds between master and sub-account UIDs.
func universalTransfer(o fields, _ map[string]any, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "toMemberId", "toAccountType")
	if err != nil {
		return err
	}
	amt, err := num(o, "amount")
	if err != nil {
		return err
	}
	c.Transfer = &exchange.Transfer{Asset: s[0], Amount: amt, Destination: "member:" + s[1] + "/" + s[2]}
	return nil
}

// withdraw reads /v5/asset/withdraw/create. forceChain 2 sends to another
// Bybit account named by its UID in address; 0 may settle internally when
// the address belongs to a Bybit user.
func withdraw(o fields, _ map[string]any, c *exchange.Call) error {
	s, err := getStrings(o, "coin", "chain", "address", "tag", "forceChain")
	if err != nil {
		return err
	}
	amt, err := num(o, "amount")
	if err != nil {
		return err
	}
	t := &exchange.Transfer{Asset: s[0], Amount: amt, Address: s[2], Network: s[1], Memo: s[3]}
	switch s[4] {
	case "", "0", "1":
	case "2":
		t.Destination = "uid:" + s[2]
	default:
		return badRequest("params error: forceChain invalid")
	}
	c.Transfer = t
	return nil
}
