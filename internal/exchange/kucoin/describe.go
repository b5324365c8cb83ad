package kucoin

import (
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// kind says which fields a route carries beyond its scope.
type kind int

const (
	plain           kind = iota
	orderNew             // one order in the body
	orderBatch           // orderList (or a top-level array) of orders
	orderAmend           // hf/orders/alter
	orderCancel          // order id in the path or query
	orderCancelCOID      // client order id in the path
	withdraw             // withdrawals: currency, toAddress, chain, memo
	universalXfer        // accounts/universal-transfer
	subXfer              // accounts/sub-transfer
	innerXfer            // accounts/inner-transfer
	futuresXfer          // transfer-in / transfer-out
	uaOrderNew           // ua {mode}/order/place: one order, sizeUnit says the size's unit
	uaCancelBatch        // ua {mode}/order/cancel-batch: cancelOrderList
)

type route struct {
	scope exchange.Scope
	kind  kind
}

// routes maps "METHOD rest" to a route, where rest is the path after
// /api/vN/ in lower case with path parameters written {}. The API version is
// not part of the key: every version of an endpoint has the same effect, so
// /api/v1/withdrawals and /api/v3/withdrawals are both withdraw. Paths not
// listed here are account-admin (default deny).
var routes = map[string]route{
	// public
	"GET timestamp":                       {exchange.ScopePublic, plain},
	"GET status":                          {exchange.ScopePublic, plain},
	"GET currencies":                      {exchange.ScopePublic, plain},
	"GET currencies/{}":                   {exchange.ScopePublic, plain},
	"GET symbols":                         {exchange.ScopePublic, plain},
	"GET symbols/{}":                      {exchange.ScopePublic, plain},
	"GET markets":                         {exchange.ScopePublic, plain},
	"GET prices":                          {exchange.ScopePublic, plain},
	"GET market/orderbook/level1":         {exchange.ScopePublic, plain},
	"GET market/orderbook/level2_20":      {exchange.ScopePublic, plain},
	"GET market/orderbook/level2_100":     {exchange.ScopePublic, plain},
	"GET market/alltickers":               {exchange.ScopePublic, plain},
	"GET market/stats":                    {exchange.ScopePublic, plain},
	"GET market/histories":                {exchange.ScopePublic, plain},
	"GET market/candles":                  {exchange.ScopePublic, plain},
	"GET mark-price/{}/current":           {exchange.ScopePublic, plain},
	"GET mark-price/all-symbols":          {exchange.ScopePublic, plain},
	"GET margin/config":                   {exchange.ScopePublic, plain},
	"GET announcements":                   {exchange.ScopePublic, plain},
	"GET convert/symbol":                  {exchange.ScopePublic, plain},
	"GET convert/currencies":              {exchange.ScopePublic, plain},
	"POST bullet-public":                  {exchange.ScopePublic, plain},
	"GET contracts/active":                {exchange.ScopePublic, plain},
	"GET contracts/{}":                    {exchange.ScopePublic, plain},
	"GET ticker":                          {exchange.ScopePublic, plain},
	"GET alltickers":                      {exchange.ScopePublic, plain},
	"GET level2/snapshot":                 {exchange.ScopePublic, plain},
	"GET kline/query":                     {exchange.ScopePublic, plain},
	"GET funding-rate/{}/current":         {exchange.ScopePublic, plain},
	"GET trade/history":                   {exchange.ScopePublic, plain},
	"GET market/orderbook/level2":         {exchange.ScopeRead, plain},
	"GET market/orderbook/level3":         {exchange.ScopeRead, plain},
	"GET user-info":                       {exchange.ScopeRead, plain},
	"GET user/api-key":                    {exchange.ScopeRead, plain},
	"GET accounts":                        {exchange.ScopeRead, plain},
	"GET accounts/{}":                     {exchange.ScopeRead, plain},
	"GET accounts/ledgers":                {exchange.ScopeRead, plain},
	"GET accounts/transferable":           {exchange.ScopeRead, plain},
	"GET hf/accounts/ledgers":             {exchange.ScopeRead, plain},
	"GET hf/accounts/opened":              {exchange.ScopeRead, plain},
	"GET hf/margin/account/ledgers":       {exchange.ScopeRead, plain},
	"GET transaction-history":             {exchange.ScopeRead, plain},
	"GET margin/account":                  {exchange.ScopeRead, plain},
	"GET margin/accounts":                 {exchange.ScopeRead, plain},
	"GET isolated/accounts":               {exchange.ScopeRead, plain},
	"GET isolated/account/{}":             {exchange.ScopeRead, plain},
	"GET deposit-addresses":               {exchange.ScopeRead, plain},
	"GET deposits":                        {exchange.ScopeRead, plain},
	"GET hist-deposits":                   {exchange.ScopeRead, plain},
	"GET withdrawals":                     {exchange.ScopeRead, plain},
	"GET hist-withdrawals":                {exchange.ScopeRead, plain},
	"GET withdrawals/quotas":              {exchange.ScopeRead, plain},
	"GET transfer-list":                   {exchange.ScopeRead, plain},
	"GET base-fee":                        {exchange.ScopeRead, plain},
	"GET trade-fees":                      {exchange.ScopeRead, plain},
	"GET hf/orders/active":                {exchange.ScopeRead, plain},
	"GET hf/orders/active/symbols":        {exchange.ScopeRead, plain},
	"GET hf/orders/done":                  {exchange.ScopeRead, plain},
	"GET hf/orders/{}":                    {exchange.ScopeRead, plain},
	"GET hf/orders/client-order/{}":       {exchange.ScopeRead, plain},
	"GET hf/orders/dead-cancel-all/query": {exchange.ScopeRead, plain},
	"GET hf/fills":                        {exchange.ScopeRead, plain},
	"GET orders":                          {exchange.ScopeRead, plain},
	"GET limit/orders":                    {exchange.ScopeRead, plain},
	"GET orders/{}":                       {exchange.ScopeRead, plain},
	"GET orders/byclientoid":              {exchange.ScopeRead, plain},
	"GET order/client-order/{}":           {exchange.ScopeRead, plain},
	"GET fills":                           {exchange.ScopeRead, plain},
	"GET recentfills":                     {exchange.ScopeRead, plain},
	"GET recentdoneorders":                {exchange.ScopeRead, plain},
	"GET limit/fills":                     {exchange.ScopeRead, plain},
	"GET stop-order":                      {exchange.ScopeRead, plain},
	"GET stop-order/{}":                   {exchange.ScopeRead, plain},
	"GET stoporders":                      {exchange.ScopeRead, plain},
	"GET oco/orders":                      {exchange.ScopeRead, plain},
	"GET oco/order/{}":                    {exchange.ScopeRead, plain},
	"GET hf/margin/orders/active":         {exchange.ScopeRead, plain},
	"GET hf/margin/orders/done":           {exchange.ScopeRead, plain},
	"GET hf/margin/orders/{}":             {exchange.ScopeRead, plain},
	"GET hf/margin/fills":                 {exchange.ScopeRead, plain},
	"GET margin/borrow":                   {exchange.ScopeRead, plain},
	"GET margin/repay":                    {exchange.ScopeRead, plain},
	"GET margin/interest":                 {exchange.ScopeRead, plain},
	"GET account-overview":                {exchange.ScopeRead, plain},
	"GET account-overview-all":            {exchange.ScopeRead, plain},
	"GET position":                        {exchange.ScopeRead, plain},
	"GET positions":                       {exchange.ScopeRead, plain},
	"GET history-positions":               {exchange.ScopeRead, plain},
	"GET funding-history":                 {exchange.ScopeRead, plain},
	"GET convert/order/detail":            {exchange.ScopeRead, plain},
	"GET convert/order/history":           {exchange.ScopeRead, plain},
	"POST bullet-private":                 {exchange.ScopeRead, plain},
	"POST deposit-addresses":              {exchange.ScopeRead, plain},
	"POST deposit-address/create":         {exchange.ScopeRead, plain},

	// trade
	"POST hf/orders":                           {exchange.ScopeTrade, orderNew},
	"POST hf/orders/sync":                      {exchange.ScopeTrade, orderNew},
	"POST hf/orders/test":                      {exchange.ScopeTrade, orderNew},
	"POST hf/orders/multi":                     {exchange.ScopeTrade, orderBatch},
	"POST hf/orders/multi/sync":                {exchange.ScopeTrade, orderBatch},
	"POST hf/orders/alter":                     {exchange.ScopeTrade, orderAmend},
	"POST hf/orders/dead-cancel-all":           {exchange.ScopeTrade, plain},
	"POST orders":                              {exchange.ScopeTrade, orderNew},
	"POST orders/test":                         {exchange.ScopeTrade, orderNew},
	"POST orders/multi":                        {exchange.ScopeTrade, orderBatch},
	"POST st-orders":                           {exchange.ScopeTrade, orderNew},
	"POST stop-order":                          {exchange.ScopeTrade, orderNew},
	"POST oco/order":                           {exchange.ScopeTrade, orderNew},
	"POST hf/margin/order":                     {exchange.ScopeTrade, orderNew},
	"POST hf/margin/order/test":                {exchange.ScopeTrade, orderNew},
	"POST hf/margin/stop-order":                {exchange.ScopeTrade, orderNew},
	"POST margin/order":                        {exchange.ScopeTrade, orderNew},
	"POST margin/order/test":                   {exchange.ScopeTrade, orderNew},
	"POST margin/borrow":                       {exchange.ScopeTrade, plain},
	"POST margin/repay":                        {exchange.ScopeTrade, plain},
	"POST convert/order":                       {exchange.ScopeTrade, plain},
	"POST position/update-user-leverage":       {exchange.ScopeTrade, plain},
	"POST position/changemarginmode":           {exchange.ScopeTrade, plain},
	"POST position/switchpositionmode":         {exchange.ScopeTrade, plain},
	"POST changecrossuserleverage":             {exchange.ScopeTrade, plain},
	"POST position/risk-limit-level/change":    {exchange.ScopeTrade, plain},
	"DELETE hf/orders/{}":                      {exchange.ScopeTrade, orderCancel},
	"DELETE hf/orders/sync/{}":                 {exchange.ScopeTrade, orderCancel},
	"DELETE hf/orders/cancel/{}":               {exchange.ScopeTrade, orderCancel},
	"DELETE hf/orders/client-order/{}":         {exchange.ScopeTrade, orderCancelCOID},
	"DELETE hf/orders/sync/client-order/{}":    {exchange.ScopeTrade, orderCancelCOID},
	"DELETE hf/orders":                         {exchange.ScopeTrade, orderCancel},
	"DELETE hf/orders/cancelall":               {exchange.ScopeTrade, orderCancel},
	"DELETE orders/{}":                         {exchange.ScopeTrade, orderCancel},
	"DELETE orders/client-order/{}":            {exchange.ScopeTrade, orderCancelCOID},
	"DELETE order/client-order/{}":             {exchange.ScopeTrade, orderCancelCOID},
	"DELETE orders":                            {exchange.ScopeTrade, orderCancel},
	"DELETE orders/multi-cancel":               {exchange.ScopeTrade, orderCancel},
	"DELETE stoporders":                        {exchange.ScopeTrade, orderCancel},
	"DELETE stop-order/{}":                     {exchange.ScopeTrade, orderCancel},
	"DELETE stop-order/cancel":                 {exchange.ScopeTrade, orderCancel},
	"DELETE stop-order/cancelorderbyclientoid": {exchange.ScopeTrade, orderCancel},
	"DELETE oco/order/{}":                      {exchange.ScopeTrade, orderCancel},
	"DELETE oco/client-order/{}":               {exchange.ScopeTrade, orderCancelCOID},
	"DELETE oco/orders":                        {exchange.ScopeTrade, orderCancel},
	"DELETE hf/margin/orders/{}":               {exchange.ScopeTrade, orderCancel},
	"DELETE hf/margin/orders/client-order/{}":  {exchange.ScopeTrade, orderCancelCOID},
	"DELETE hf/margin/orders":                  {exchange.ScopeTrade, orderCancel},

	// transfer: funds stay with the owner (own accounts, sub-accounts)
	"POST accounts/universal-transfer":    {exchange.ScopeTransfer, universalXfer},
	"POST accounts/sub-transfer":          {exchange.ScopeTransfer, subXfer},
	"POST accounts/inner-transfer":        {exchange.ScopeTransfer, innerXfer},
	"POST transfer-out":                   {exchange.ScopeTransfer, futuresXfer},
	"POST transfer-in":                    {exchange.ScopeTransfer, futuresXfer},
	"DELETE cancel/transfer-out":          {exchange.ScopeTransfer, plain},
	"POST margin/withdrawmargin":          {exchange.ScopeTransfer, plain},
	"POST position/margin/deposit-margin": {exchange.ScopeTransfer, plain},
	"POST purchase":                       {exchange.ScopeTransfer, plain},
	"POST redeem":                         {exchange.ScopeTransfer, plain},

	// withdraw: funds leave the account
	"POST withdrawals":      {exchange.ScopeWithdraw, withdraw},
	"DELETE withdrawals/{}": {exchange.ScopeWithdraw, plain},
}

// uaRoutes maps "METHOD rest" to a route for the unified trading account
// API under /api/ua/vN/, keyed like routes. The account mode (unified or
// classic) is a path segment; both are listed explicitly. Batch placing,
// transfers, leverage and everything else not listed stay account-admin
// (default deny).
var uaRoutes = map[string]route{
	"GET account/mode":    {exchange.ScopeRead, plain},
	"GET account/balance": {exchange.ScopeRead, plain},
	"GET account/ledger":  {exchange.ScopeRead, plain},
	"GET user/fee-rate":   {exchange.ScopeRead, plain},

	"GET unified/account/balance":    {exchange.ScopeRead, plain},
	"GET unified/account/overview":   {exchange.ScopeRead, plain},
	"GET unified/order/detail":       {exchange.ScopeRead, plain},
	"GET unified/order/open-list":    {exchange.ScopeRead, plain},
	"GET unified/order/history":      {exchange.ScopeRead, plain},
	"GET unified/order/execution":    {exchange.ScopeRead, plain},
	"GET unified/position/open-list": {exchange.ScopeRead, plain},
	"GET unified/position/history":   {exchange.ScopeRead, plain},
	"GET classic/account/balance":    {exchange.ScopeRead, plain},
	"GET classic/account/overview":   {exchange.ScopeRead, plain},
	"GET classic/order/detail":       {exchange.ScopeRead, plain},
	"GET classic/order/open-list":    {exchange.ScopeRead, plain},
	"GET classic/order/history":      {exchange.ScopeRead, plain},
	"GET classic/order/execution":    {exchange.ScopeRead, plain},
	"GET classic/position/open-list": {exchange.ScopeRead, plain},
	"GET classic/position/history":   {exchange.ScopeRead, plain},

	"POST unified/order/place":        {exchange.ScopeTrade, uaOrderNew},
	"POST unified/order/cancel":       {exchange.ScopeTrade, orderCancel},
	"POST unified/order/cancel-batch": {exchange.ScopeTrade, uaCancelBatch},
	"POST unified/order/cancel-all":   {exchange.ScopeTrade, orderCancel},
	"POST classic/order/place":        {exchange.ScopeTrade, uaOrderNew},
	"POST classic/order/cancel":       {exchange.ScopeTrade, orderCancel},
	"POST classic/order/cancel-batch": {exchange.ScopeTrade, uaCancelBatch},
	"POST classic/order/cancel-all":   {exchange.ScopeTrade, orderCancel},
}

// describer classifies KuCoin spot and futures requests.
type describer struct{}

var _ exchange.Describer = describer{}

// Describe classifies r by (method, canonical path) and extracts its orders
// or transfer. Auth headers are ignored, so the Call is the same before and
// after Verify.
func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	call := exchange.Call{Venue: Name, Method: r.Method, Path: r.Path, Scope: exchange.ScopeAccountAdmin}
	segs, err := exchange.SplitPath(r.Path)
	if err != nil {
		return exchange.Call{}, err
	}
	switch r.Method {
	case "GET", "POST", "DELETE", "PUT":
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
	endpoint, rest, rt, ok := lookup(r.Method, segs)
	call.Endpoint = endpoint
	if !ok {
		return call, nil
	}
	call.Scope = rt.scope
	obj, _ := body.(map[string]any)
	if body != nil && obj == nil && rt.kind != orderBatch {
		return exchange.Call{}, exchange.Errorf(exchange.ErrBadRequest, "JSON body must be an object")
	}
	f := exchange.Fields{Body: obj, Query: query}
	pathParam := segs[len(segs)-1]
	switch rt.kind {
	case orderNew:
		o, err := newOrder(f, exchange.ActionNew)
		if err != nil {
			return exchange.Call{}, err
		}
		call.Orders = []exchange.Order{o}
	case uaOrderNew:
		o, err := uaOrder(f)
		if err != nil {
			return exchange.Call{}, err
		}
		call.Orders = []exchange.Order{o}
	case uaCancelBatch:
		call.Orders, err = uaCancels(obj)
	case orderBatch:
		call.Orders, err = batch(body, f)
	case orderAmend:
		call.Orders, err = amend(f)
	case orderCancel, orderCancelCOID:
		call.Orders, err = cancel(f, rt.kind, pathParam, strings.HasSuffix(rest, "{}"))
	case withdraw:
		call.Transfer, err = withdrawal(f)
	case universalXfer, subXfer, innerXfer, futuresXfer:
		call.Transfer, err = transfer(f, rt.kind)
	}
	if err != nil {
		return exchange.Call{}, err
	}
	return call, nil
}

// lookup finds the route of method and /api/vN/rest or /api/ua/vN/rest
// (rest compared in lower case: the case of a path must not change its
// scope). It returns the
// endpoint pattern for the Call, the lookup key and whether it is listed.
func lookup(method string, segs []string) (endpoint, key string, rt route, ok bool) {
	path := "/" + strings.Join(segs, "/")
	table, prefix := routes, 2
	switch {
	case len(segs) >= 4 && segs[0] == "api" && segs[1] == "ua" && isVersion(segs[2]):
		table, prefix = uaRoutes, 3
	case len(segs) >= 3 && segs[0] == "api" && isVersion(segs[1]):
	default:
		return method + " " + path, "", route{}, false
	}
	tail := make([]string, len(segs)-prefix)
	for i, s := range segs[prefix:] {
		tail[i] = strings.ToLower(s)
	}
	for _, cand := range paramCandidates(tail) {
		if rt, ok := table[method+" "+cand]; ok {
			return method + " /" + strings.Join(segs[:prefix], "/") + "/" + cand, cand, rt, true
		}
	}
	return method + " " + path, "", route{}, false
}

// paramCandidates lists the lookup keys a path could match: as is, then with
// the last segment as a parameter, then with the one before it as a
// parameter (mark-price/{}/current).
func paramCandidates(key []string) []string {
	out := []string{strings.Join(key, "/")}
	n := len(key)
	c := append([]string(nil), key...)
	c[n-1] = "{}"
	out = append(out, strings.Join(c, "/"))
	if n >= 2 {
		c = append([]string(nil), key...)
		c[n-2] = "{}"
		out = append(out, strings.Join(c, "/"))
	}
	return out
}

func isVersion(s string) bool {
	return len(s) >= 2 && len(s) <= 3 && s[0] == 'v' && allDigits(s[1:])
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

// newOrder reads one order. KuCoin orders are limit unless type says
// otherwise; a market order is sized by size (base) or funds (quote).
func newOrder(f exchange.Fields, action exchange.Action) (exchange.Order, error) {
	o, size, err := orderFields(f, action, "type")
	if err != nil {
		return o, err
	}
	if o.Type == "" {
		o.Type = "limit"
	}
	o.Quantity = size
	if o.QuoteQuantity, err = f.Decimal("funds"); err != nil {
		return o, err
	}
	switch {
	case o.QuoteQuantity > 0:
		o.Notional = o.QuoteQuantity
	case o.Type != "market" && o.Price > 0:
		o.Notional = o.Quantity * o.Price
	}
	return o, nil
}

// orderFields reads what classic and unified-account orders share: symbol,
// side, the type (from typeField, lower-cased), price, clientOid and
// reduceOnly, and returns the size for the caller to place by its unit.
func orderFields(f exchange.Fields, action exchange.Action, typeField string) (exchange.Order, float64, error) {
	o := exchange.Order{Action: action}
	var err error
	if o.Symbol, err = f.Field("symbol"); err != nil {
		return o, 0, err
	}
	if o.Side, err = side(f); err != nil {
		return o, 0, err
	}
	typ, err := f.Field(typeField)
	if err != nil {
		return o, 0, err
	}
	o.Type = strings.ToLower(typ)
	size, err := f.Decimal("size")
	if err != nil {
		return o, 0, err
	}
	if o.Price, err = f.Decimal("price"); err != nil {
		return o, 0, err
	}
	if o.ClientOrderID, err = f.Field("clientOid"); err != nil {
		return o, 0, err
	}
	ro, err := f.Field("reduceOnly")
	if err != nil {
		return o, 0, err
	}
	o.ReduceOnly = ro == "true"
	return o, size, nil
}

// batch expands hf/orders/multi and orders/multi: an orderList (with an
// optional shared symbol) or, on futures, a top-level array.
func batch(body any, f exchange.Fields) ([]exchange.Order, error) {
	var list []any
	switch b := body.(type) {
	case []any:
		list = b
	case map[string]any:
		l, ok := b["orderList"].([]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "batch order needs orderList")
		}
		list = l
	default:
		return nil, exchange.Errorf(exchange.ErrBadRequest, "batch order needs a JSON body")
	}
	if len(list) == 0 || len(list) > 50 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "batch must hold 1 to 50 orders")
	}
	shared, err := f.Field("symbol")
	if err != nil {
		return nil, err
	}
	out := make([]exchange.Order, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "batch entries must be objects")
		}
		o, err := newOrder(exchange.Fields{Body: m}, exchange.ActionNew)
		if err != nil {
			return nil, err
		}
		if o.Symbol == "" {
			o.Symbol = shared
		} else if shared != "" && o.Symbol != shared {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "batch order symbol differs from the batch symbol")
		}
		out = append(out, o)
	}
	return out, nil
}

// amend reads hf/orders/alter: newSize and newPrice replace the order's
// size and price.
func amend(f exchange.Fields) ([]exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionAmend}
	var err error
	if o.Symbol, err = f.Field("symbol"); err != nil {
		return nil, err
	}
	if o.ClientOrderID, err = f.Field("clientOid"); err != nil {
		return nil, err
	}
	if o.Quantity, err = f.Decimal("newSize"); err != nil {
		return nil, err
	}
	if o.Price, err = f.Decimal("newPrice"); err != nil {
		return nil, err
	}
	o.Type = "limit"
	o.Notional = o.Quantity * o.Price
	return []exchange.Order{o}, nil
}

func cancel(f exchange.Fields, k kind, param string, hasParam bool) ([]exchange.Order, error) {
	o := exchange.Order{Action: exchange.ActionCancel}
	var err error
	if o.Symbol, err = f.Field("symbol"); err != nil {
		return nil, err
	}
	if o.ClientOrderID, err = f.Field("clientOid"); err != nil {
		return nil, err
	}
	if k == orderCancelCOID && hasParam {
		o.ClientOrderID = param
	}
	return []exchange.Order{o}, nil
}

// uaOrder reads a unified-account order: orderType, side (upper case),
// size with its sizeUnit (BASECCY, QUOTECCY for spot market orders, or UNIT:
// contracts), price, clientOid, reduceOnly. Without sizeUnit a FUTURES
// order is sized in contracts and any other in the base currency.
func uaOrder(f exchange.Fields) (exchange.Order, error) {
	o, size, err := orderFields(f, exchange.ActionNew, "orderType")
	if err != nil {
		return o, err
	}
	unit, err := f.Field("sizeUnit")
	if err != nil {
		return o, err
	}
	tradeType, err := f.Field("tradeType")
	if err != nil {
		return o, err
	}
	if unit == "" {
		unit = "BASECCY"
		if strings.EqualFold(tradeType, "FUTURES") {
			unit = "UNIT"
		}
	}
	switch strings.ToUpper(unit) {
	case "BASECCY":
		o.Quantity = size
		if o.Type != "market" && o.Price > 0 {
			o.Notional = size * o.Price
		}
	case "QUOTECCY":
		o.QuoteQuantity, o.Notional = size, size
	case "UNIT":
		o.Quantity, o.Contracts = size, true
	default:
		return o, exchange.Errorf(exchange.ErrBadRequest, "invalid sizeUnit")
	}
	return o, nil
}

// uaCancels reads cancel-batch's cancelOrderList: one cancel per entry,
// each with its symbol and orderId or clientOid.
func uaCancels(obj map[string]any) ([]exchange.Order, error) {
	list, ok := obj["cancelOrderList"].([]any)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "cancelOrderList must be an array")
	}
	if len(list) == 0 || len(list) > 50 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "cancelOrderList must hold 1 to 50 orders")
	}
	out := make([]exchange.Order, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "cancelOrderList entries must be objects")
		}
		f := exchange.Fields{Body: m}
		o := exchange.Order{Action: exchange.ActionCancel}
		var err error
		if o.Symbol, err = f.Field("symbol"); err != nil {
			return nil, err
		}
		if o.ClientOrderID, err = f.Field("clientOid"); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func withdrawal(f exchange.Fields) (*exchange.Transfer, error) {
	t := &exchange.Transfer{}
	var err error
	if t.Asset, err = f.Field("currency"); err != nil {
		return nil, err
	}
	if t.Amount, err = f.Decimal("amount"); err != nil {
		return nil, err
	}
	if t.Address, err = f.Field("toAddress"); err != nil {
		return nil, err
	}
	if t.Address == "" { // v1 spelling
		if t.Address, err = f.Field("address"); err != nil {
			return nil, err
		}
	}
	if t.Network, err = f.Field("chain"); err != nil {
		return nil, err
	}
	if t.Memo, err = f.Field("memo"); err != nil {
		return nil, err
	}
	wt, err := f.Field("withdrawType")
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(wt) {
	case "", "ADDRESS":
	case "UID", "MAIL", "PHONE":
		// an internal withdrawal to another KuCoin user
		t.Destination = strings.ToLower(wt) + ":" + t.Address
	default:
		return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid withdrawType")
	}
	inner, err := f.Field("isInner")
	if err != nil {
		return nil, err
	}
	if inner == "true" && t.Destination == "" {
		t.Destination = "inner:" + t.Address
	}
	return t, nil
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
	case universalXfer:
		// PARENT_TO_SUB and SUB_TO_PARENT name the other user in toUserId.
		t.Destination, err = get("type", "toUserId", "toAccountType")
	case subXfer:
		t.Destination, err = get("direction", "subUserId", "subAccountType")
	case innerXfer:
		t.Destination, err = get("to")
	case futuresXfer:
		t.Destination, err = get("recAccountType")
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}
