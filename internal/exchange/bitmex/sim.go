package bitmex

import (
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// maxSimBody bounds request bodies the simulator reads.
const maxSimBody = 64 << 10

// simRateLimit is the per-key request budget per minute the simulator
// announces in x-ratelimit-* headers.
const simRateLimit = 120

// Simulator is a loopback BitMEX: it verifies api-signature from the raw
// request bytes (api-expires must be in the future; legacy api-nonce must
// increase), checks permissions and the CIDR list, answers wallet, order,
// apiKey, withdrawal and instrument calls with BitMEX-shaped bodies, and
// sends x-ratelimit-* headers. Every request is logged in the Kit. A
// Simulator is safe for concurrent use.
//
// Kit permission names map to BitMEX's: "trade" is order and orderCancel,
// "withdraw" is withdraw (and wallet transfers, as is "transfer"); reading
// is implicit, as at BitMEX.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu     sync.Mutex
	nonces map[string]int64
	used   map[string]int // requests this minute per key
	minute int64
	nextID int64
}

// NewSimulator returns a Simulator over kit.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, nonces: map[string]int64{}, used: map[string]int{}, nextID: 1}
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serve)
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves one request.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type simError struct {
	status int
	name   string
	msg    string
}

func (e *simError) Error() string { return e.msg }

func httpErr(status int, msg string) *simError { return &simError{status, "HTTPError", msg} }

func (s *Simulator) serve(w http.ResponseWriter, hr *http.Request) {
	path, rawQuery := splitURI(hr)
	logged := sim.Logged{Method: hr.Method, Path: path, RawQuery: rawQuery, Header: hr.Header.Clone()}
	fail := func(e *simError) {
		logged.Error = e.msg
		s.kit.Record(logged)
		writeError(w, e.status, e.name, e.msg)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxSimBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(httpErr(http.StatusRequestEntityTooLarge, "Request body too large."))
			return
		}
		fail(httpErr(http.StatusBadRequest, "Unreadable body."))
		return
	}
	logged.Body = body
	req := &exchange.Request{Method: hr.Method, Path: path, RawQuery: rawQuery, Header: hr.Header, Body: body}
	call, err := Describer{}.Describe(req)
	if err != nil {
		e := exchange.AsError(err)
		if e.Kind == exchange.ErrNotFound {
			fail(httpErr(http.StatusNotFound, "Not Found"))
			return
		}
		fail(&simError{http.StatusBadRequest, "ValidationError", e.Message})
		return
	}
	ps, _ := parseParams(req)
	p := params(ps)
	var acc *sim.Account
	a, hasAuth, aerr := parseAuth(hr.Header)
	if call.Scope != exchange.ScopePublic || hasAuth {
		acc, aerr = s.authenticate(req, a, hasAuth, aerr, hr.RemoteAddr)
		if aerr != nil {
			fail(aerr.(*simError))
			return
		}
		logged.APIKey = acc.Key.APIKey
		logged.Verified = true
		if serr := permit(acc, call.Scope); serr != nil {
			fail(serr)
			return
		}
		s.rateHeaders(w, acc.Key.APIKey)
	}
	result, serr := s.execute(strings.ToUpper(hr.Method)+" "+strings.ToLower(path), p, acc)
	if serr != nil {
		fail(serr)
		return
	}
	s.kit.Record(logged)
	writeJSON(w, http.StatusOK, result)
}

// splitURI returns the path and query exactly as the client sent them.
func splitURI(r *http.Request) (string, string) {
	if uri := r.RequestURI; strings.HasPrefix(uri, "/") {
		p, q, _ := strings.Cut(uri, "?")
		return p, q
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

func (s *Simulator) authenticate(r *exchange.Request, a auth, ok bool, err error, remote string) (*sim.Account, error) {
	if !ok {
		return nil, httpErr(http.StatusUnauthorized, "Missing API key.")
	}
	if err != nil {
		return nil, httpErr(http.StatusUnauthorized, exchange.AsError(err).Message)
	}
	acc, found := s.kit.Account(a.key)
	if !found {
		return nil, httpErr(http.StatusUnauthorized, "Invalid API Key.")
	}
	now := s.kit.Now()
	if !a.legacy && a.expires <= now.Unix() {
		return nil, httpErr(http.StatusUnauthorized, "This request has expired - `expires` is in the past. Current time: "+strconv.FormatInt(now.Unix(), 10))
	}
	if !checkMAC(r, a, acc.Key.Secret) {
		return nil, httpErr(http.StatusUnauthorized, "Signature not valid.")
	}
	if a.legacy {
		s.mu.Lock()
		last := s.nonces[a.key]
		if a.expires <= last {
			s.mu.Unlock()
			return nil, httpErr(http.StatusUnauthorized, "Nonce is not increasing. This nonce: "+a.raw+", last nonce: "+strconv.FormatInt(last, 10))
		}
		s.nonces[a.key] = a.expires
		s.mu.Unlock()
	}
	if !acc.IPAllowed(remote) {
		return nil, httpErr(http.StatusUnauthorized, "This IP address is not allowed to use this API key.")
	}
	return acc, nil
}

// permit checks the key's BitMEX permissions for scope.
func permit(acc *sim.Account, scope exchange.Scope) *simError {
	ok := false
	switch scope {
	case exchange.ScopePublic, exchange.ScopeRead:
		ok = true
	case exchange.ScopeTrade:
		ok = acc.Allowed("trade")
	case exchange.ScopeTransfer:
		ok = acc.Allowed("transfer") || acc.Allowed("withdraw")
	case exchange.ScopeWithdraw:
		ok = acc.Allowed("withdraw")
	}
	if !ok {
		return httpErr(http.StatusForbidden, "Access Denied")
	}
	return nil
}

// rateHeaders counts the request against key's per-minute budget.
func (s *Simulator) rateHeaders(w http.ResponseWriter, key string) {
	now := s.kit.Now()
	s.mu.Lock()
	if m := now.Unix() / 60; m != s.minute {
		s.minute = m
		clear(s.used)
	}
	s.used[key]++
	remaining := max(0, simRateLimit-s.used[key])
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(simRateLimit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt((now.Unix()/60+1)*60, 10))
}

// assets maps BitMEX currency codes to Kit balance names and units.
var assets = map[string]struct {
	kit  string
	unit float64
}{
	"XBt": {"BTC", 1e8}, "USDt": {"USDT", 1e6}, "Gwei": {"ETH", 1e9},
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Simulator) execute(route string, p params, acc *sim.Account) (any, *simError) {
	now := s.kit.Now()
	invalid := func(msg string) *simError { return &simError{http.StatusBadRequest, "ValidationError", msg} }
	switch route {
	case "GET /api/v1", "GET /api/v1/":
		return map[string]any{"name": "BitMEX API", "version": "1.2.0", "timestamp": now.UnixMilli()}, nil
	case "GET /api/v1/instrument":
		sym := p.str("symbol")
		if sym == "" {
			sym = "XBTUSD"
		}
		px := s.kit.Price(sym)
		return []any{map[string]any{
			"symbol": sym, "state": "Open", "typ": "FFWCSX", "lastPrice": px, "markPrice": px,
			"bidPrice": px - 0.5, "askPrice": px + 0.5, "midPrice": px, "highPrice": px * 1.02,
			"lowPrice": px * 0.98, "volume24h": 1000000, "timestamp": ts(now), "tickSize": 0.5, "lotSize": 100,
		}}, nil
	case "GET /api/v1/user/wallet", "GET /api/v1/user/margin":
		cur := p.str("currency")
		if cur == "" {
			cur = "XBt"
		}
		if cur == "all" {
			// currency=all answers an array with one entry per currency.
			out := []any{}
			for _, c := range slices.Sorted(maps.Keys(assets)) {
				out = append(out, s.margin(acc, c, now))
			}
			return out, nil
		}
		if _, ok := assets[cur]; !ok {
			return nil, invalid("Unknown currency.")
		}
		return s.margin(acc, cur, now), nil
	case "POST /api/v1/order":
		return s.placeOrder(p, acc)
	case "DELETE /api/v1/order":
		out := []any{}
		for _, id := range p.list("orderID") {
			idStr, _ := id.(string)
			if o, ok := s.kit.CancelOrder(acc.Key.APIKey, idStr, ""); ok {
				out = append(out, orderJSON(*o))
			}
		}
		for _, id := range p.list("clOrdID") {
			idStr, _ := id.(string)
			if o, ok := s.kit.CancelOrder(acc.Key.APIKey, "", idStr); ok {
				out = append(out, orderJSON(*o))
			}
		}
		if len(out) == 0 {
			return nil, httpErr(http.StatusNotFound, "Not Found")
		}
		return out, nil
	case "DELETE /api/v1/order/all":
		return s.cancelAll(p, acc), nil
	case "GET /api/v1/order":
		open := strings.Contains(strings.ReplaceAll(p.str("filter"), " ", ""), `"open":true`)
		sym := p.str("symbol")
		out := []any{}
		for _, o := range s.kit.Orders(acc.Key.APIKey) {
			if (open && o.Status != "NEW") || (sym != "" && o.Symbol != sym) {
				continue
			}
			out = append(out, orderJSON(o))
		}
		return out, nil
	case "GET /api/v1/apikey":
		var perms []string
		if acc.Allowed("trade") {
			perms = append(perms, "order", "orderCancel")
		}
		if acc.Allowed("withdraw") {
			perms = append(perms, "withdraw")
		}
		cidrs := []string{"0.0.0.0/0"}
		if len(acc.IPs) > 0 {
			cidrs = nil
			for _, ip := range acc.IPs {
				cidrs = append(cidrs, ip+"/32")
			}
		}
		return []any{map[string]any{
			"id": acc.Key.APIKey, "secret": string(acc.Key.Secret), "name": "sim", "nonce": 0,
			"cidr": cidrs[0], "cidrs": cidrs, "permissions": perms, "enabled": true, "userId": 1,
			"created": ts(acc.Created),
		}}, nil
	case "POST /api/v1/user/requestwithdrawal":
		cur := p.str("currency")
		a, ok := assets[cur]
		amt := p.num("amount")
		addr := p.str("address")
		if !ok || amt <= 0 || (addr == "" && p.str("addressId") == "" && p.str("targetUserId") == "") || p.str("network") == "" {
			return nil, invalid("currency, network, a positive amount and a destination are required.")
		}
		s.mu.Lock()
		if acc.Balances[a.kit]*a.unit < amt {
			s.mu.Unlock()
			return nil, invalid("Insufficient funds available for withdrawal.")
		}
		acc.Balances[a.kit] -= amt / a.unit
		s.nextID++
		id := s.nextID
		s.mu.Unlock()
		return map[string]any{
			"transactID": "00000000-0000-0000-0000-" + strconv.FormatInt(100000000000+id, 10), "account": 1,
			"currency": cur, "network": p.str("network"), "transactType": "Withdrawal", "amount": -amt,
			"fee": 0, "transactStatus": "Pending", "address": addr, "tx": "", "text": p.str("text"),
			"transactTime": ts(now), "timestamp": ts(now),
		}, nil
	}
	return nil, httpErr(http.StatusNotFound, "Not Found")
}

// margin is acc's wallet and margin summary in cur, in cur's smallest unit
// (satoshis for XBt), as /user/wallet and /user/margin report it.
func (s *Simulator) margin(acc *sim.Account, cur string, now time.Time) map[string]any {
	a := assets[cur]
	s.mu.Lock()
	amt := int64(acc.Balances[a.kit] * a.unit)
	s.mu.Unlock()
	return map[string]any{
		"account": 1, "currency": cur, "amount": amt, "walletBalance": amt, "marginBalance": amt,
		"availableMargin": amt, "withdrawableMargin": amt, "excessMargin": amt, "initMargin": 0, "maintMargin": 0,
		"unrealisedPnl": 0, "realisedPnl": 0, "timestamp": ts(now),
	}
}

func (s *Simulator) placeOrder(p params, acc *sim.Account) (any, *simError) {
	o := p.order(exchange.ActionNew)
	o.Quantity = math.Abs(p.num("orderQty")) // contracts, whatever their unit
	if o.Symbol == "" || o.Quantity <= 0 {
		return nil, &simError{http.StatusBadRequest, "ValidationError", "symbol and a non-zero orderQty are required."}
	}
	if o.Side == "" {
		return nil, &simError{http.StatusBadRequest, "ValidationError", "Invalid side."}
	}
	if o.Type == "limit" && o.Price <= 0 {
		return nil, &simError{http.StatusBadRequest, "ValidationError", "Invalid price."}
	}
	status := "NEW"
	price := o.Price
	if o.Type == "market" {
		status, price = "FILLED", s.kit.Price(o.Symbol)
	}
	if o.ClientOrderID != "" {
		for _, ex := range s.kit.Orders(acc.Key.APIKey) {
			if ex.ClientOrderID == o.ClientOrderID && ex.Status == "NEW" {
				return nil, &simError{http.StatusBadRequest, "ValidationError", "Duplicate clOrdID"}
			}
		}
	}
	so := s.kit.PlaceOrder(sim.Order{
		ClientOrderID: o.ClientOrderID, APIKey: acc.Key.APIKey, Symbol: o.Symbol, Side: string(o.Side),
		Type: o.Type, Quantity: o.Quantity, Price: price, Status: status,
	})
	return orderJSON(*so), nil
}

func orderJSON(o sim.Order) map[string]any {
	status := map[string]string{"NEW": "New", "FILLED": "Filled", "CANCELED": "Canceled"}[o.Status]
	side := "Buy"
	if o.Side == "sell" {
		side = "Sell"
	}
	leaves, cum := o.Quantity, 0.0
	if o.Status != "NEW" {
		leaves = 0
	}
	if o.Status == "FILLED" {
		cum = o.Quantity
	}
	typ := map[string]string{"limit": "Limit", "market": "Market", "stop": "Stop", "stoplimit": "StopLimit"}[o.Type]
	return map[string]any{
		"orderID": o.ID, "clOrdID": o.ClientOrderID, "account": 1, "symbol": o.Symbol, "side": side,
		"orderQty": o.Quantity, "price": o.Price, "ordType": typ, "timeInForce": "GoodTillCancel",
		"ordStatus": status, "leavesQty": leaves, "cumQty": cum, "avgPx": o.Price, "currency": "USD",
		"settlCurrency": "XBt", "execInst": "", "text": "Submitted via API.",
		"transactTime": ts(o.Created), "timestamp": ts(o.Created),
	}
}
