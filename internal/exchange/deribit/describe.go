package deribit

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// apiPrefix is where every JSON-RPC method lives over HTTP.
const apiPrefix = "/api/v2"

// rpcCall is a parsed JSON-RPC request: the canonical method name
// ("private/buy") and its parameters, from the query or from the body.
type rpcCall struct {
	method string
	id     any
	params map[string]any
}

// parseRPC extracts the method and parameters of r strictly. The method
// comes from the path (/api/v2/private/buy) or from a JSON-RPC body posted
// to /api/v2; when both name one they must agree. Parameters come from the
// query or from the body, never from both, so no parser differential can
// hide a second amount.
func parseRPC(r *exchange.Request) (rpcCall, error) {
	var c rpcCall
	pathMethod, err := methodFromPath(r.Path)
	if err != nil {
		return c, err
	}
	qs, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return c, err
	}
	var bodyMethod string
	var bodyParams map[string]any
	if len(trimSpace(r.Body)) > 0 {
		v, err := exchange.DecodeJSON(r.Body, exchange.MaxJSONDepth)
		if err != nil {
			if errors.Is(err, exchange.ErrJSONDuplicateKey) {
				return c, exchange.Errorf(exchange.ErrBadRequest, "duplicate key in JSON body")
			}
			return c, exchange.Errorf(exchange.ErrBadRequest, "body is not valid JSON")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return c, exchange.Errorf(exchange.ErrBadRequest, "body must be one JSON-RPC object (batches are not supported)")
		}
		_, hasMethod := obj["method"]
		_, hasRPC := obj["jsonrpc"]
		if hasMethod || hasRPC {
			for k := range obj {
				switch k {
				case "jsonrpc", "id", "method", "params":
				default:
					return c, exchange.Errorf(exchange.ErrBadRequest, "unexpected JSON-RPC member %q", exchange.SafeName(k))
				}
			}
			m, ok := obj["method"].(string)
			if !ok {
				return c, exchange.Errorf(exchange.ErrBadRequest, "JSON-RPC method must be a string")
			}
			bodyMethod, err = canonicalMethod(m)
			if err != nil {
				return c, err
			}
			c.id = obj["id"]
			if p, ok := obj["params"]; ok && p != nil {
				pm, ok := p.(map[string]any)
				if !ok {
					return c, exchange.Errorf(exchange.ErrBadRequest, "JSON-RPC params must be an object")
				}
				bodyParams = pm
			}
		} else {
			bodyParams = obj
		}
	}
	switch {
	case pathMethod != "" && bodyMethod != "" && pathMethod != bodyMethod:
		return c, exchange.Errorf(exchange.ErrBadRequest, "path method and JSON-RPC method differ")
	case pathMethod != "":
		c.method = pathMethod
	case bodyMethod != "":
		c.method = bodyMethod
	default:
		return c, exchange.Errorf(exchange.ErrNotFound, "no JSON-RPC method")
	}
	if len(qs) > 0 && len(bodyParams) > 0 {
		return c, exchange.Errorf(exchange.ErrBadRequest, "parameters in both query and body")
	}
	c.params = bodyParams
	if len(qs) > 0 {
		c.params = make(map[string]any, len(qs))
		for _, p := range qs {
			c.params[p.Name] = p.Value
		}
	}
	if c.params == nil {
		c.params = map[string]any{}
	}
	return c, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// methodFromPath returns the canonical method named by path, or "" for the
// bare JSON-RPC endpoint /api/v2 (or /api/v2/). Anything that could alias
// another method (dot segments, empty segments, escapes, a trailing slash)
// is rejected.
func methodFromPath(path string) (string, error) {
	if path == apiPrefix || path == apiPrefix+"/" {
		return "", nil
	}
	if !strings.HasPrefix(path, apiPrefix+"/") {
		return "", exchange.Errorf(exchange.ErrNotFound, "unknown path")
	}
	return canonicalMethod(path[len(apiPrefix)+1:])
}

// canonicalMethod lower-cases m and checks it is "public/<name>" or
// "private/<name>" with name in [a-z0-9_].
func canonicalMethod(m string) (string, error) {
	bad := exchange.Errorf(exchange.ErrBadRequest, "malformed method name")
	if len(m) > 96 {
		return "", bad
	}
	m = strings.ToLower(m)
	ns, name, ok := strings.Cut(m, "/")
	if !ok || (ns != "public" && ns != "private") || name == "" {
		return "", bad
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return "", bad
		}
	}
	return m, nil
}

// kind says how to extract orders or transfers from a method's parameters.
type kind int

const (
	kNone kind = iota
	kBuy
	kSell
	kEdit
	kEditByLabel
	kCancel
	kCancelAll
	kClosePosition
	kMassQuote
	kBlockTrade
	kWithdraw
	kTransferUser
	kTransferSub
	kAddressBook
)

type method struct {
	scope exchange.Scope
	kind  kind
}

// methods classifies every private method keywarden knows. A private method
// not listed is account-admin. Public methods are public except the token
// grants, which would hand out a session that bypasses keywarden.
var methods = map[string]method{
	// token grants and session management
	"public/auth":           {exchange.ScopeAccountAdmin, kNone},
	"public/exchange_token": {exchange.ScopeAccountAdmin, kNone},
	"public/fork_token":     {exchange.ScopeAccountAdmin, kNone},
	"private/logout":        {exchange.ScopeRead, kNone},

	"private/enable_cancel_on_disconnect":  {exchange.ScopeTrade, kNone},
	"private/disable_cancel_on_disconnect": {exchange.ScopeTrade, kNone},
	"private/get_cancel_on_disconnect":     {exchange.ScopeRead, kNone},
	"private/subscribe":                    {exchange.ScopeRead, kNone},
	"private/unsubscribe":                  {exchange.ScopeRead, kNone},
	"private/unsubscribe_all":              {exchange.ScopeRead, kNone},

	// account reads
	"private/get_access_log":             {exchange.ScopeRead, kNone},
	"private/get_account_summary":        {exchange.ScopeRead, kNone},
	"private/get_account_summaries":      {exchange.ScopeRead, kNone},
	"private/get_affiliate_program_info": {exchange.ScopeRead, kNone},
	"private/get_email_language":         {exchange.ScopeRead, kNone},
	"private/get_new_announcements":      {exchange.ScopeRead, kNone},
	"private/get_portfolio_margins":      {exchange.ScopeRead, kNone},
	"private/get_position":               {exchange.ScopeRead, kNone},
	"private/get_positions":              {exchange.ScopeRead, kNone},
	"private/get_subaccounts":            {exchange.ScopeRead, kNone},
	"private/get_subaccounts_details":    {exchange.ScopeRead, kNone},
	"private/get_transaction_log":        {exchange.ScopeRead, kNone},
	"private/get_user_locks":             {exchange.ScopeRead, kNone},
	"private/list_api_keys":              {exchange.ScopeRead, kNone},
	"private/simulate_portfolio":         {exchange.ScopeRead, kNone},
	"private/get_currencies":             {exchange.ScopeRead, kNone},

	// trading
	"private/buy":                                    {exchange.ScopeTrade, kBuy},
	"private/sell":                                   {exchange.ScopeTrade, kSell},
	"private/edit":                                   {exchange.ScopeTrade, kEdit},
	"private/edit_by_label":                          {exchange.ScopeTrade, kEditByLabel},
	"private/cancel":                                 {exchange.ScopeTrade, kCancel},
	"private/cancel_all":                             {exchange.ScopeTrade, kCancelAll},
	"private/cancel_all_by_currency":                 {exchange.ScopeTrade, kCancelAll},
	"private/cancel_all_by_currency_pair":            {exchange.ScopeTrade, kCancelAll},
	"private/cancel_all_by_instrument":               {exchange.ScopeTrade, kCancelAll},
	"private/cancel_all_by_kind_or_type":             {exchange.ScopeTrade, kCancelAll},
	"private/cancel_by_label":                        {exchange.ScopeTrade, kCancelAll},
	"private/cancel_quotes":                          {exchange.ScopeTrade, kCancelAll},
	"private/close_position":                         {exchange.ScopeTrade, kClosePosition},
	"private/mass_quote":                             {exchange.ScopeTrade, kMassQuote},
	"private/reset_mmp":                              {exchange.ScopeTrade, kNone},
	"private/set_mmp_config":                         {exchange.ScopeTrade, kNone},
	"private/get_mmp_config":                         {exchange.ScopeRead, kNone},
	"private/get_mmp_status":                         {exchange.ScopeRead, kNone},
	"private/get_margins":                            {exchange.ScopeRead, kNone},
	"private/get_open_orders":                        {exchange.ScopeRead, kNone},
	"private/get_open_orders_by_currency":            {exchange.ScopeRead, kNone},
	"private/get_open_orders_by_instrument":          {exchange.ScopeRead, kNone},
	"private/get_open_orders_by_label":               {exchange.ScopeRead, kNone},
	"private/get_order_history_by_currency":          {exchange.ScopeRead, kNone},
	"private/get_order_history_by_instrument":        {exchange.ScopeRead, kNone},
	"private/get_order_margin_by_ids":                {exchange.ScopeRead, kNone},
	"private/get_order_state":                        {exchange.ScopeRead, kNone},
	"private/get_order_state_by_label":               {exchange.ScopeRead, kNone},
	"private/get_stop_order_history":                 {exchange.ScopeRead, kNone},
	"private/get_trigger_order_history":              {exchange.ScopeRead, kNone},
	"private/get_user_trades_by_currency":            {exchange.ScopeRead, kNone},
	"private/get_user_trades_by_currency_and_time":   {exchange.ScopeRead, kNone},
	"private/get_user_trades_by_instrument":          {exchange.ScopeRead, kNone},
	"private/get_user_trades_by_instrument_and_time": {exchange.ScopeRead, kNone},
	"private/get_user_trades_by_order":               {exchange.ScopeRead, kNone},
	"private/get_settlement_history_by_instrument":   {exchange.ScopeRead, kNone},
	"private/get_settlement_history_by_currency":     {exchange.ScopeRead, kNone},

	// block trades
	"private/execute_block_trade":               {exchange.ScopeTrade, kBlockTrade},
	"private/verify_block_trade":                {exchange.ScopeTrade, kBlockTrade},
	"private/simulate_block_trade":              {exchange.ScopeRead, kNone},
	"private/approve_block_trade":               {exchange.ScopeTrade, kNone},
	"private/reject_block_trade":                {exchange.ScopeTrade, kNone},
	"private/invalidate_block_trade_signature":  {exchange.ScopeTrade, kNone},
	"private/get_block_trade":                   {exchange.ScopeRead, kNone},
	"private/get_block_trade_requests":          {exchange.ScopeRead, kNone},
	"private/get_block_trades":                  {exchange.ScopeRead, kNone},
	"private/get_last_block_trades_by_currency": {exchange.ScopeRead, kNone},

	// wallet
	"private/get_address_book":                    {exchange.ScopeRead, kNone},
	"private/get_current_deposit_address":         {exchange.ScopeRead, kNone},
	"private/get_deposits":                        {exchange.ScopeRead, kNone},
	"private/get_transfers":                       {exchange.ScopeRead, kNone},
	"private/get_withdrawals":                     {exchange.ScopeRead, kNone},
	"private/get_reward_eligibility":              {exchange.ScopeRead, kNone},
	"private/create_deposit_address":              {exchange.ScopeTransfer, kNone},
	"private/cancel_transfer_by_id":               {exchange.ScopeTransfer, kNone},
	"private/cancel_withdrawal":                   {exchange.ScopeTransfer, kNone},
	"private/submit_transfer_to_subaccount":       {exchange.ScopeTransfer, kTransferSub},
	"private/submit_transfer_between_subaccounts": {exchange.ScopeTransfer, kTransferSub},
	"private/move_positions":                      {exchange.ScopeTransfer, kNone},
	// A transfer to another user leaves the account: it is a withdrawal.
	"private/submit_transfer_to_user": {exchange.ScopeWithdraw, kTransferUser},
	"private/withdraw":                {exchange.ScopeWithdraw, kWithdraw},
	// Address-book entries are what withdrawals may go to.
	"private/add_to_address_book":    {exchange.ScopeWithdraw, kAddressBook},
	"private/update_in_address_book": {exchange.ScopeWithdraw, kAddressBook},
}

// Describer classifies Deribit requests. Its zero value is ready and safe
// for concurrent use.
type Describer struct{}

// Describe says what r does. Deribit's auth is in the Authorization header
// only, so the Call is the same before and after Verify.
func (Describer) Describe(r *exchange.Request) (exchange.Call, error) {
	c, err := parseRPC(r)
	if err != nil {
		return exchange.Call{}, err
	}
	return describeRPC(r, c)
}

func describeRPC(r *exchange.Request, c rpcCall) (exchange.Call, error) {
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path, Endpoint: c.method}
	m, known := methods[c.method]
	switch {
	case known:
		call.Scope = m.scope
	case strings.HasPrefix(c.method, "public/"):
		call.Scope = exchange.ScopePublic
	default:
		call.Scope = exchange.ScopeAccountAdmin
	}
	p := params(c.params)
	switch m.kind {
	case kBuy, kSell:
		side := exchange.Buy
		if m.kind == kSell {
			side = exchange.Sell
		}
		o := p.order(exchange.ActionNew, side)
		call.Orders = append(call.Orders, o)
		// otoco_config carries secondary orders placed when this one fills.
		for _, sub := range p.list("otoco_config") {
			sp, ok := sub.(map[string]any)
			if !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed otoco_config")
			}
			s := params(sp)
			so := s.order(exchange.ActionNew, parseSide(s.str("direction")))
			if so.Symbol == "" {
				so.Symbol = o.Symbol
				so = sized(so)
			}
			call.Orders = append(call.Orders, so)
		}
	case kEdit, kEditByLabel:
		o := p.order(exchange.ActionAmend, "")
		if m.kind == kEdit {
			o.Type = ""
		}
		call.Orders = append(call.Orders, o)
	case kCancel:
		call.Orders = append(call.Orders, exchange.Order{Action: exchange.ActionCancel})
	case kCancelAll:
		call.Orders = append(call.Orders, exchange.Order{
			Action: exchange.ActionCancel, Symbol: p.str("instrument_name"), ClientOrderID: p.str("label"),
		})
	case kClosePosition:
		o := exchange.Order{
			Action: exchange.ActionNew, Symbol: p.str("instrument_name"),
			Type: strings.ToLower(p.str("type")), Price: p.num("price"), ReduceOnly: true,
		}
		call.Orders = append(call.Orders, o)
	case kMassQuote:
		quotes := p.list("quotes")
		for _, q := range quotes {
			qm, ok := q.(map[string]any)
			if !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed quotes")
			}
			qp := params(qm)
			for _, leg := range []struct {
				name string
				side exchange.Side
			}{{"bid", exchange.Buy}, {"ask", exchange.Sell}} {
				lm, ok := qm[leg.name].(map[string]any)
				if !ok {
					continue
				}
				lp := params(lm)
				o := exchange.Order{
					Action: exchange.ActionNew, Symbol: qp.str("instrument_name"), Side: leg.side,
					Type: "limit", Quantity: lp.num("amount"), Price: lp.num("price"),
					ClientOrderID: p.str("quote_id"),
				}
				call.Orders = append(call.Orders, sized(o))
			}
		}
	case kBlockTrade:
		taker := p.str("role") == "taker"
		for _, t := range p.list("trades") {
			tm, ok := t.(map[string]any)
			if !ok {
				return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "malformed trades")
			}
			tp := params(tm)
			side := parseSide(tp.str("direction"))
			if taker { // direction is given from the maker's side
				side = opposite(side)
			}
			o := exchange.Order{
				Action: exchange.ActionNew, Symbol: tp.str("instrument_name"), Side: side,
				Type: "limit", Quantity: tp.num("amount"), Price: tp.num("price"),
			}
			call.Orders = append(call.Orders, sized(o))
		}
	case kWithdraw:
		call.Transfer = &exchange.Transfer{
			Asset: p.str("currency"), Amount: p.num("amount"), Address: p.str("address"),
		}
	case kTransferUser:
		d := p.str("destination")
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Amount: p.num("amount"), Address: d, Destination: d}
	case kTransferSub:
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Amount: p.num("amount"), Destination: p.str("destination")}
	case kAddressBook:
		call.Transfer = &exchange.Transfer{Asset: p.str("currency"), Address: p.str("address"), Destination: p.str("type")}
	}
	return call, nil
}

// params reads JSON-RPC parameters that came as JSON values or as query
// strings.
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

func (p params) num(k string) float64 {
	return exchange.ParseFloat(p.str(k))
}

func (p params) flag(k string) bool { return p.str(k) == "true" }

// list returns an array parameter, given as JSON or as a JSON string in the
// query. Malformed values yield nil and are caught by the callers' checks
// on the elements; a value that is present but not a list is one element
// so it cannot be silently ignored.
func (p params) list(k string) []any {
	switch v := p[k].(type) {
	case []any:
		return v
	case string:
		parsed, err := exchange.DecodeJSON([]byte(v), exchange.MaxJSONDepth)
		if err != nil {
			return []any{v}
		}
		if a, ok := parsed.([]any); ok {
			return a
		}
		return []any{parsed}
	case nil:
		return nil
	default:
		return []any{v}
	}
}

// order reads a buy/sell/edit parameter set.
func (p params) order(a exchange.Action, side exchange.Side) exchange.Order {
	o := exchange.Order{
		Action:        a,
		Symbol:        p.str("instrument_name"),
		Side:          side,
		Type:          strings.ToLower(p.str("type")),
		Quantity:      p.num("amount"),
		Price:         p.num("price"),
		ClientOrderID: p.str("label"),
		ReduceOnly:    p.flag("reduce_only"),
	}
	if o.Quantity == 0 {
		o.Quantity = p.num("contracts")
		o.Contracts = o.Quantity > 0
	}
	if o.Type == "" && a == exchange.ActionNew {
		o.Type = "limit"
	}
	if p.str("amount") != "" {
		o = sized(o)
	}
	return o
}

// sized fills in the size fields of o, whose Quantity is Deribit's amount.
// Inverse futures (BTC-PERPETUAL) are sized in USD, so the amount is the
// notional itself: it becomes QuoteQuantity and Notional, and Quantity (in
// the base coin, which depends on the fill price) is left at zero, so that
// quantity*price is never mistaken for the order's value. Linear (USDC/USDT
// margined) instruments are sized in the base coin, so their value is
// amount*price for priced orders. Options and contract counts need the
// instrument's contract size and have no notional here.
func sized(o exchange.Order) exchange.Order {
	switch {
	case o.Symbol == "":
	case option(o.Symbol):
		// An option's price is a premium in the settlement coin.
		o.Contracts = o.Quantity > 0
	case inverse(o.Symbol):
		if o.Quantity > 0 {
			o.QuoteQuantity, o.Notional, o.Quantity = o.Quantity, o.Quantity, 0
		}
	case o.Price > 0 && o.Type != "market":
		o.Notional = o.Quantity * o.Price
	}
	return o
}

// option says whether name is an option (BTC-27DEC24-100000-C).
func option(name string) bool {
	parts := strings.Split(name, "-")
	if len(parts) != 4 {
		return false
	}
	last := parts[3]
	return last == "C" || last == "P"
}

// inverse says whether name is a coin-margined future or perpetual sized in
// USD (BTC-PERPETUAL, ETH-27DEC24), as opposed to linear ones (BTC_USDC-...).
func inverse(name string) bool {
	base, _, ok := strings.Cut(name, "-")
	return ok && !strings.Contains(base, "_") && !option(name)
}

func parseSide(s string) exchange.Side {
	switch strings.ToLower(s) {
	case "buy":
		return exchange.Buy
	case "sell":
		return exchange.Sell
	}
	return ""
}

func opposite(s exchange.Side) exchange.Side {
	switch s {
	case exchange.Buy:
		return exchange.Sell
	case exchange.Sell:
		return exchange.Buy
	}
	return s
}
