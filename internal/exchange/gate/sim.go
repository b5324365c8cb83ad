package gate

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// maxSimBody is the largest request body the simulator reads.
const maxSimBody = 64 << 10

// simQuota is the simulated request budget per key and 10-second window.
const simQuota = 200

// Simulator is an in-process Gate APIv4 that verifies requests exactly as
// Gate does (spec §10, §16): from the raw received bytes, with the 60-second
// window, key permissions and IP whitelists. It serves the server time, a
// ticker, spot balances and orders, the key self-inspection and
// withdrawals, and logs every request into the kit. A Simulator is safe for
// concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu   sync.Mutex
	used map[string]int
	win  time.Time

	bal sync.Mutex // guards the Balances of the kit's accounts

	// subKeys are the keys made by POST sub_accounts/{user_id}/keys: the
	// master key that made each and its sub-account user id.
	subKeys map[string][2]string
}

// NewSimulator returns a Gate simulator over kit, behind kit's faults.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, used: map[string]int{}, subKeys: map[string][2]string{}}
	s.handler = kit.Faults(http.HandlerFunc(s.serve))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type simError struct {
	status int
	label  string
	msg    string
}

func (e *simError) Error() string { return e.label + " " + e.msg }

func fail(status int, label, msg string) *simError { return &simError{status, label, msg} }

func errParam(msg string) *simError { return fail(http.StatusBadRequest, "INVALID_PARAM_VALUE", msg) }

type handlerFunc func(s *Simulator, acc *sim.Account, req *exchange.Request, segs []string) (int, any, *simError)

type simRoute struct {
	perm string
	h    handlerFunc
}

func findSimRoute(method string, segs []string) (simRoute, bool) {
	if len(segs) < 3 || segs[0] != "api" || segs[1] != "v4" {
		return simRoute{}, false
	}
	rest := strings.Join(segs[2:], "/")
	switch {
	case method == "GET" && rest == "spot/time":
		return simRoute{"", (*Simulator).serverTime}, true
	case method == "GET" && rest == "spot/tickers":
		return simRoute{"", (*Simulator).ticker}, true
	case method == "GET" && rest == "spot/accounts":
		return simRoute{"read", (*Simulator).accounts}, true
	case method == "GET" && rest == "account/detail":
		return simRoute{"read", (*Simulator).detail}, true
	case method == "GET" && rest == "spot/open_orders":
		return simRoute{"read", (*Simulator).openOrders}, true
	case method == "POST" && rest == "spot/orders":
		return simRoute{"trade", (*Simulator).placeOrder}, true
	case method == "DELETE" && len(segs) == 5 && strings.HasPrefix(rest, "spot/orders/"):
		return simRoute{"trade", (*Simulator).cancelOrder}, true
	case method == "DELETE" && rest == "spot/orders":
		return simRoute{"trade", (*Simulator).cancelAll}, true
	case method == "POST" && rest == "withdrawals":
		return simRoute{"withdraw", (*Simulator).withdraw}, true
	case method == "POST" && len(segs) == 5 && segs[2] == "sub_accounts" && segs[4] == "keys":
		return simRoute{"admin", (*Simulator).createSubKey}, true
	case method == "DELETE" && len(segs) == 6 && segs[2] == "sub_accounts" && segs[4] == "keys":
		return simRoute{"admin", (*Simulator).deleteSubKey}, true
	}
	return simRoute{}, false
}

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request) {
	logged := sim.Logged{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	status, data, err := s.handle(w, r, &logged)
	if err != nil {
		logged.Error = err.Error()
		s.kit.Record(logged)
		writeJSON(w, err.status, map[string]string{"label": err.label, "message": err.msg})
		return
	}
	s.kit.Record(logged)
	writeJSON(w, status, data)
}

func (s *Simulator) handle(w http.ResponseWriter, r *http.Request, logged *sim.Logged) (int, any, *simError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	logged.Body = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, nil, fail(http.StatusRequestEntityTooLarge, "INVALID_REQUEST_BODY", "request body too large")
		}
		return 0, nil, fail(http.StatusBadRequest, "INVALID_REQUEST_BODY", "cannot read body")
	}
	req := &exchange.Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	segs, err := exchange.SplitPath(req.Path)
	if err != nil {
		return 0, nil, fail(http.StatusNotFound, "NOT_FOUND", "not found")
	}
	if _, err := exchange.ParseQuery(req.RawQuery); err != nil {
		return 0, nil, errParam("invalid query")
	}
	if len(body) > 0 {
		if err := exchange.CheckJSON(body, exchange.MaxJSONDepth); err != nil {
			return 0, nil, fail(http.StatusBadRequest, "INVALID_REQUEST_BODY", "invalid request body")
		}
	}
	rt, ok := findSimRoute(r.Method, segs)
	if !ok {
		return 0, nil, fail(http.StatusNotFound, "NOT_FOUND", "not found")
	}
	var acc *sim.Account
	if rt.perm != "" {
		a, serr := s.authenticate(req, r.RemoteAddr)
		if a != nil {
			logged.APIKey = a.Key.APIKey
		}
		if serr != nil {
			return 0, nil, serr
		}
		acc = a
		logged.Verified = true
		if !acc.Allowed(rt.perm) {
			return 0, nil, fail(http.StatusForbidden, "FORBIDDEN", "API key lacks permission for this operation")
		}
		s.setRateHeaders(w, acc.Key.APIKey)
	}
	return rt.h(s, acc, req, segs)
}

// authenticate checks KEY, Timestamp and SIGN from the raw request.
func (s *Simulator) authenticate(req *exchange.Request, remote string) (*sim.Account, *simError) {
	h := req.Header
	key, sig, ts := h.Get(hdrKey), h.Get(hdrSign), h.Get(hdrTimestamp)
	if key == "" || sig == "" || ts == "" {
		return nil, fail(http.StatusUnauthorized, "MISSING_REQUIRED_HEADER", msgMissingHeader)
	}
	acc, ok := s.kit.Account(key)
	if !ok {
		return nil, fail(http.StatusUnauthorized, "INVALID_KEY", "Invalid key provided")
	}
	if err := checkTimestamp(ts, s.kit.Now()); err != nil {
		return acc, fail(http.StatusUnauthorized, "REQUEST_EXPIRED", "Request timestamp far from server time")
	}
	if !checkSignature(req, acc.Key.Secret, ts, sig, false) {
		return acc, fail(http.StatusUnauthorized, "INVALID_SIGNATURE", "Signature mismatch")
	}
	if !acc.IPAllowed(remote) {
		return acc, fail(http.StatusForbidden, "IP_FORBIDDEN", "Your IP is not in the whitelist of the API key")
	}
	return acc, nil
}

func (s *Simulator) setRateHeaders(w http.ResponseWriter, key string) {
	now := s.kit.Now()
	s.mu.Lock()
	if now.Sub(s.win) >= 10*time.Second || now.Before(s.win) {
		s.win = now
		clear(s.used)
	}
	s.used[key]++
	used := s.used[key]
	reset := s.win.Add(10 * time.Second)
	s.mu.Unlock()
	w.Header().Set("X-Gate-RateLimit-Limit", strconv.Itoa(simQuota))
	w.Header().Set("X-Gate-RateLimit-Requests-Remain", strconv.Itoa(max(simQuota-used, 0)))
	w.Header().Set("X-Gate-Ratelimit-Reset-Timestamp", strconv.FormatInt(reset.Unix(), 10))
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *Simulator) serverTime(_ *sim.Account, _ *exchange.Request, _ []string) (int, any, *simError) {
	return http.StatusOK, map[string]int64{"server_time": s.kit.Now().UnixMilli()}, nil
}

func (s *Simulator) ticker(_ *sim.Account, req *exchange.Request, _ []string) (int, any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	pair := q.Get("currency_pair")
	if pair == "" {
		return 0, nil, errParam("currency_pair required")
	}
	p := s.kit.Price(pair)
	return http.StatusOK, []map[string]string{{
		"currency_pair": pair, "last": fmtNum(p), "lowest_ask": fmtNum(p * 1.0001), "highest_bid": fmtNum(p * 0.9999),
		"change_percentage": "0", "base_volume": "100", "quote_volume": fmtNum(100 * p), "high_24h": fmtNum(p * 1.01), "low_24h": fmtNum(p * 0.99),
	}}, nil
}

func (s *Simulator) accounts(acc *sim.Account, req *exchange.Request, _ []string) (int, any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	cur := q.Get("currency")
	s.bal.Lock()
	defer s.bal.Unlock()
	names := make([]string, 0, len(acc.Balances))
	for c := range acc.Balances {
		names = append(names, c)
	}
	sort.Strings(names)
	out := []map[string]string{}
	for _, c := range names {
		if cur == "" || c == cur {
			out = append(out, map[string]string{"currency": c, "available": fmtNum(acc.Balances[c]), "locked": "0"})
		}
	}
	return http.StatusOK, out, nil
}

func (s *Simulator) detail(acc *sim.Account, _ *exchange.Request, _ []string) (int, any, *simError) {
	ips := acc.IPs
	if ips == nil {
		ips = []string{}
	}
	return http.StatusOK, map[string]any{
		"user_id": 10000001, "ip_whitelist": ips, "currency_pairs": []string{}, "key": map[string]int{"mode": 1}, "tier": 0,
	}, nil
}

func gateOrder(o sim.Order, account string) map[string]any {
	status := map[string]string{"NEW": "open", "FILLED": "closed", "CANCELED": "cancelled"}[o.Status]
	return map[string]any{
		"id": o.ID, "text": o.ClientOrderID, "create_time": strconv.FormatInt(o.Created.Unix(), 10),
		"create_time_ms": o.Created.UnixMilli(), "status": status, "currency_pair": o.Symbol, "type": o.Type, "account": account,
		"side": strings.ToLower(o.Side), "amount": fmtNum(o.Quantity), "price": fmtNum(o.Price), "time_in_force": "gtc",
	}
}

func (s *Simulator) openOrders(acc *sim.Account, _ *exchange.Request, _ []string) (int, any, *simError) {
	byPair := map[string][]map[string]any{}
	for _, o := range s.kit.Orders(acc.Key.APIKey) {
		if o.Status == "NEW" {
			byPair[o.Symbol] = append(byPair[o.Symbol], gateOrder(o, "spot"))
		}
	}
	pairs := make([]string, 0, len(byPair))
	for p := range byPair {
		pairs = append(pairs, p)
	}
	sort.Strings(pairs)
	out := []map[string]any{}
	for _, p := range pairs {
		os := byPair[p]
		sort.Slice(os, func(i, j int) bool { return os[i]["id"].(string) < os[j]["id"].(string) })
		out = append(out, map[string]any{"currency_pair": p, "total": len(os), "orders": os})
	}
	return http.StatusOK, out, nil
}

func (s *Simulator) placeOrder(acc *sim.Account, req *exchange.Request, _ []string) (int, any, *simError) {
	call, err := (describer{}).Describe(req)
	if err != nil || len(call.Orders) != 1 {
		return 0, nil, errParam("invalid order")
	}
	o := call.Orders[0]
	if o.Symbol == "" || o.Side == "" || (o.Type != "limit" && o.Type != "market") {
		return 0, nil, errParam("invalid order")
	}
	if o.ClientOrderID != "" && !strings.HasPrefix(o.ClientOrderID, "t-") {
		return 0, nil, errParam("text must start with t-")
	}
	st := sim.Order{APIKey: acc.Key.APIKey, ClientOrderID: o.ClientOrderID, Symbol: o.Symbol, Side: string(o.Side), Type: o.Type,
		Quantity: o.Quantity, Price: o.Price}
	switch {
	case o.Type == "limit" && (o.Price <= 0 || o.Quantity <= 0):
		return 0, nil, errParam("invalid amount or price")
	case o.Type == "market":
		st.Status, st.Price = "FILLED", s.kit.Price(o.Symbol)
		if o.QuoteQuantity > 0 {
			st.Quantity = o.QuoteQuantity / st.Price
		}
		if st.Quantity <= 0 {
			return 0, nil, errParam("invalid amount")
		}
	}
	placed := s.kit.PlaceOrder(st)
	return http.StatusCreated, gateOrder(*placed, "spot"), nil
}

func (s *Simulator) cancelOrder(acc *sim.Account, req *exchange.Request, segs []string) (int, any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	if q.Get("currency_pair") == "" {
		return 0, nil, fail(http.StatusBadRequest, "MISSING_REQUIRED_PARAM", "currency_pair required")
	}
	o, ok := s.kit.CancelOrder(acc.Key.APIKey, segs[len(segs)-1], "")
	if !ok {
		return 0, nil, fail(http.StatusNotFound, "ORDER_NOT_FOUND", "Order not found")
	}
	return http.StatusOK, gateOrder(*o, "spot"), nil
}

func (s *Simulator) withdraw(acc *sim.Account, req *exchange.Request, _ []string) (int, any, *simError) {
	call, err := (describer{}).Describe(req)
	if err != nil || call.Transfer == nil {
		return 0, nil, errParam("invalid withdrawal")
	}
	t := call.Transfer
	if t.Asset == "" || t.Address == "" || t.Amount <= 0 {
		return 0, nil, errParam("invalid withdrawal")
	}
	s.bal.Lock()
	defer s.bal.Unlock()
	if acc.Balances[t.Asset] < t.Amount {
		return 0, nil, fail(http.StatusBadRequest, "BALANCE_NOT_ENOUGH", "Not enough balance")
	}
	acc.Balances[t.Asset] -= t.Amount
	return http.StatusOK, map[string]string{
		"id": "w" + strconv.FormatInt(s.kit.Now().UnixNano(), 36), "currency": t.Asset, "amount": fmtNum(t.Amount),
		"address": t.Address, "memo": t.Memo, "chain": t.Network, "status": "REQUEST",
	}, nil
}

// createSubKey serves POST /api/v4/sub_accounts/{user_id}/keys for a master
// key (the simulator's "admin" permission): a key for that sub-account with
// the asked perms (never withdrawal) and IP whitelist.
func (s *Simulator) createSubKey(acc *sim.Account, req *exchange.Request, segs []string) (int, any, *simError) {
	uid := segs[3]
	if !allDigits(uid) {
		return 0, nil, errParam("invalid user_id")
	}
	var body struct {
		Name        string     `json:"name"`
		Mode        int        `json:"mode"`
		Perms       []gatePerm `json:"perms"`
		IPWhitelist []string   `json:"ip_whitelist"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 0, nil, fail(http.StatusBadRequest, "INVALID_REQUEST_BODY", "invalid request body")
	}
	perms := map[string]bool{"read": true}
	for _, p := range body.Perms {
		switch {
		case p.Name == "withdrawal":
			return 0, nil, errParam("sub-account keys cannot withdraw")
		case p.Name == "spot" && !p.ReadOnly, p.Name == "futures" && !p.ReadOnly, p.Name == "delivery" && !p.ReadOnly:
			perms["trade"] = true
		case p.Name == "wallet" && !p.ReadOnly:
			perms["transfer"] = true
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, nil, fail(http.StatusInternalServerError, "SERVER_ERROR", "internal error")
	}
	key, secret := hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])+hex.EncodeToString(b[:16])
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)},
		Permissions: perms, IPs: body.IPWhitelist})
	s.mu.Lock()
	s.subKeys[key] = [2]string{acc.Key.APIKey, uid}
	s.mu.Unlock()
	now := strconv.FormatInt(s.kit.Now().Unix(), 10)
	n, _ := strconv.ParseInt(uid, 10, 64)
	return http.StatusOK, map[string]any{"user_id": n, "mode": body.Mode, "name": body.Name, "perms": body.Perms,
		"ip_whitelist": body.IPWhitelist, "key": key, "secret": secret, "state": 1, "created_at": now, "updated_at": now}, nil
}

// deleteSubKey serves DELETE /api/v4/sub_accounts/{user_id}/keys/{key}: the
// master key that made a sub-account key deletes it.
func (s *Simulator) deleteSubKey(acc *sim.Account, _ *exchange.Request, segs []string) (int, any, *simError) {
	uid, key := segs[3], segs[5]
	s.mu.Lock()
	made, found := s.subKeys[key]
	match := found && made == [2]string{acc.Key.APIKey, uid}
	if match {
		delete(s.subKeys, key)
	}
	s.mu.Unlock()
	if !match || !s.kit.RemoveAccount(key) {
		return 0, nil, fail(http.StatusNotFound, "KEY_NOT_FOUND", "API key not found")
	}
	return http.StatusNoContent, nil, nil
}
