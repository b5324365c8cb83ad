package kucoin

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// simQuota is the simulated request budget per key and 30-second window.
const simQuota = 4000

// Simulator is an in-process KuCoin that verifies requests exactly as
// KuCoin does (spec §16): from the raw received bytes, with the 5-second
// window, the HMAC-encoded passphrase of key versions 2 and 3 (plain for
// version 1), key permissions and IP whitelists. It serves the server time,
// a ticker, balances, the account-mode probes ccxt makes, classic and HF
// orders, the key self-inspection and withdrawals, and logs every request
// into the kit. A Simulator is safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu   sync.Mutex
	used map[string]int // requests per key in the current window
	win  time.Time

	bal sync.Mutex // guards the Balances of the kit's accounts

	// subKeys are the keys made by POST sub/api-key: the master key that
	// made each, its sub-account and its passphrase.
	subKeys map[string][3]string
}

// NewSimulator returns a KuCoin simulator over kit, behind kit's faults.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, used: map[string]int{}, subKeys: map[string][3]string{}}
	s.handler = kit.Faults(http.HandlerFunc(s.serve))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// simError is an error answer with KuCoin's code.
type simError struct {
	status int
	code   string
	msg    string
}

func (e *simError) Error() string { return e.code + " " + e.msg }

func fail(status int, code, msg string) *simError { return &simError{status, code, msg} }

var errParam = fail(http.StatusBadRequest, "400100", "Parameter Error")

// handlerFunc serves one authenticated (or public) request.
type handlerFunc func(s *Simulator, acc *sim.Account, req *exchange.Request, segs []string) (any, *simError)

type simRoute struct {
	perm string // "" for public
	h    handlerFunc
}

// simRoute finds the handler for method and path (lookup keys as in
// routes, without the version).
func findSimRoute(method string, segs []string) (simRoute, bool) {
	if len(segs) >= 4 && segs[0] == "api" && segs[1] == "ua" && isVersion(segs[2]) {
		rest := strings.Join(segs[3:], "/")
		switch {
		case method == "GET" && rest == "account/mode":
			return simRoute{"read", (*Simulator).accountMode}, true
		case method == "POST" && (rest == "unified/order/place" || rest == "classic/order/place"):
			return simRoute{"trade", (*Simulator).placeUnifiedOrder}, true
		case method == "POST" && (rest == "unified/order/cancel" || rest == "classic/order/cancel"):
			return simRoute{"trade", (*Simulator).cancelUnifiedOrder}, true
		}
		return simRoute{}, false
	}
	if len(segs) < 3 || segs[0] != "api" || !isVersion(segs[1]) {
		return simRoute{}, false
	}
	rest := strings.Join(segs[2:], "/")
	switch {
	case method == "DELETE" && rest == "orders":
		return simRoute{"trade", (*Simulator).cancelAllClassic}, true
	case method == "DELETE" && rest == "hf/orders/cancelAll":
		return simRoute{"trade", (*Simulator).cancelAllHF}, true
	case method == "GET" && rest == "hf/accounts/opened":
		return simRoute{"read", (*Simulator).hfOpened}, true
	case method == "POST" && rest == "orders":
		return simRoute{"trade", (*Simulator).placeOrder}, true
	case method == "DELETE" && len(segs) == 4 && segs[2] == "orders":
		return simRoute{"trade", (*Simulator).cancelClassicOrder}, true
	case method == "GET" && rest == "timestamp":
		return simRoute{"", (*Simulator).timestamp}, true
	case method == "GET" && rest == "market/orderbook/level1":
		return simRoute{"", (*Simulator).ticker}, true
	case method == "GET" && rest == "accounts":
		return simRoute{"read", (*Simulator).accounts}, true
	case method == "GET" && rest == "user/api-key":
		return simRoute{"read", (*Simulator).apiKey}, true
	case method == "GET" && rest == "hf/orders/active":
		return simRoute{"read", (*Simulator).openOrders}, true
	case method == "POST" && rest == "hf/orders":
		return simRoute{"trade", (*Simulator).placeOrder}, true
	case method == "DELETE" && len(segs) == 5 && strings.HasPrefix(rest, "hf/orders/"):
		return simRoute{"trade", (*Simulator).cancelOrder}, true
	case method == "DELETE" && len(segs) == 6 && strings.HasPrefix(rest, "hf/orders/client-order/"):
		return simRoute{"trade", (*Simulator).cancelOrder}, true
	case method == "POST" && rest == "withdrawals":
		return simRoute{"withdraw", (*Simulator).withdraw}, true
	case method == "POST" && rest == "sub/api-key":
		return simRoute{"admin", (*Simulator).createSubKey}, true
	case method == "DELETE" && rest == "sub/api-key":
		return simRoute{"admin", (*Simulator).deleteSubKey}, true
	}
	return simRoute{}, false
}

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request) {
	logged := sim.Logged{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	data, apiKey, err := s.handle(w, r, &logged)
	logged.APIKey = apiKey
	if err != nil {
		logged.Error = err.Error()
		s.kit.Record(logged)
		writeJSON(w, err.status, map[string]string{"code": err.code, "msg": err.msg})
		return
	}
	s.kit.Record(logged)
	writeJSON(w, http.StatusOK, map[string]any{"code": "200000", "data": data})
}

// handle authenticates and runs one request. It returns the data of the
// answer and the key that signed it.
func (s *Simulator) handle(w http.ResponseWriter, r *http.Request, logged *sim.Logged) (any, string, *simError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	logged.Body = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, "", fail(http.StatusRequestEntityTooLarge, "400100", "Request Entity Too Large")
		}
		return nil, "", errParam
	}
	req := &exchange.Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	segs, err := exchange.SplitPath(req.Path)
	if err != nil {
		return nil, "", fail(http.StatusNotFound, "404000", "Url Not Found")
	}
	if _, err := exchange.ParseQuery(req.RawQuery); err != nil {
		return nil, "", errParam
	}
	if len(body) > 0 {
		if err := exchange.CheckJSON(body, exchange.MaxJSONDepth); err != nil {
			return nil, "", errParam
		}
	}
	rt, ok := findSimRoute(r.Method, segs)
	if !ok {
		return nil, "", fail(http.StatusNotFound, "404000", "Url Not Found")
	}
	var acc *sim.Account
	if rt.perm != "" {
		a, serr := s.authenticate(req, r.RemoteAddr)
		if a != nil {
			logged.APIKey = a.Key.APIKey
		}
		if serr != nil {
			return nil, logged.APIKey, serr
		}
		acc = a
		logged.Verified = true
		if !acc.Allowed(rt.perm) {
			return nil, acc.Key.APIKey, fail(http.StatusForbidden, "400007", "Access denied, require more permission.")
		}
		s.setRateHeaders(w, acc.Key.APIKey)
	}
	data, serr := rt.h(s, acc, req, segs)
	key := ""
	if acc != nil {
		key = acc.Key.APIKey
	}
	return data, key, serr
}

// authenticate checks the KuCoin auth headers from the raw request.
func (s *Simulator) authenticate(req *exchange.Request, remote string) (*sim.Account, *simError) {
	h := req.Header
	key, sig, ts, pass := h.Get(hdrKey), h.Get(hdrSign), h.Get(hdrTimestamp), h.Get(hdrPassphrase)
	if key == "" || sig == "" || ts == "" || pass == "" {
		return nil, fail(http.StatusUnauthorized, "400001", msgMissingHeader)
	}
	acc, ok := s.kit.Account(key)
	if !ok {
		return nil, fail(http.StatusUnauthorized, "400003", "KC-API-KEY not exists")
	}
	if err := checkTimestamp(ts, s.kit.Now()); err != nil {
		return acc, fail(http.StatusUnauthorized, "400002", "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds")
	}
	var want string
	switch h.Get(hdrKeyVersion) {
	case "2", "3":
		want = encodePassphrase(acc.Key.Secret, acc.Key.Passphrase)
	case "", "1":
		want = string(acc.Key.Passphrase)
	default:
		return acc, fail(http.StatusUnauthorized, "400004", "Invalid KC-API-KEY-VERSION")
	}
	if !hmac.Equal([]byte(pass), []byte(want)) {
		return acc, fail(http.StatusUnauthorized, "400004", "Invalid KC-API-PASSPHRASE")
	}
	if !checkSignature(req, acc.Key.Secret, ts, sig, false) {
		return acc, fail(http.StatusUnauthorized, "400005", "Invalid KC-API-SIGN")
	}
	if !acc.IPAllowed(remote) {
		return acc, fail(http.StatusForbidden, "400006", "The requested ip address is not in the api whitelist")
	}
	return acc, nil
}

// setRateHeaders writes gw-ratelimit-* for key's 30-second window.
func (s *Simulator) setRateHeaders(w http.ResponseWriter, key string) {
	now := s.kit.Now()
	s.mu.Lock()
	if now.Sub(s.win) >= 30*time.Second || now.Before(s.win) {
		s.win = now
		clear(s.used)
	}
	s.used[key]++
	used := s.used[key]
	reset := 30*time.Second - now.Sub(s.win)
	s.mu.Unlock()
	w.Header().Set("gw-ratelimit-limit", strconv.Itoa(simQuota))
	w.Header().Set("gw-ratelimit-remaining", strconv.Itoa(max(simQuota-used, 0)))
	w.Header().Set("gw-ratelimit-reset", strconv.FormatInt(reset.Milliseconds(), 10))
}

func (s *Simulator) timestamp(_ *sim.Account, _ *exchange.Request, _ []string) (any, *simError) {
	return s.kit.Now().UnixMilli(), nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *Simulator) ticker(_ *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	sym := q.Get("symbol")
	if sym == "" {
		return nil, errParam
	}
	p := s.kit.Price(sym)
	now := s.kit.Now().UnixMilli()
	return map[string]any{
		"time": now, "sequence": strconv.FormatInt(now, 10), "price": fmtNum(p), "size": "0.01",
		"bestBid": fmtNum(p * 0.9999), "bestBidSize": "1", "bestAsk": fmtNum(p * 1.0001), "bestAskSize": "1",
	}, nil
}

// accountMode answers the unified-account probe ccxt makes before its
// first private call: the simulated account is a classic one.
func (s *Simulator) accountMode(_ *sim.Account, _ *exchange.Request, _ []string) (any, *simError) {
	return map[string]any{"selfAccountMode": "CLASSIC"}, nil
}

// hfOpened says whether the account trades through the HF endpoints; ccxt
// asks while loading markets. The simulator serves both, and says yes.
func (s *Simulator) hfOpened(_ *sim.Account, _ *exchange.Request, _ []string) (any, *simError) {
	return true, nil
}

// accounts lists the balances, all held in one trading account that is
// reported under the requested type (trade, or trade_hf for an account
// migrated to HF trading); other account types are empty.
func (s *Simulator) accounts(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	cur := q.Get("currency")
	typ := q.Get("type")
	switch typ {
	case "":
		typ = "trade"
	case "trade", "trade_hf":
	case "main", "margin", "isolated", "margin_v2", "isolated_v2":
		return []map[string]string{}, nil
	default:
		return nil, errParam
	}
	s.bal.Lock()
	defer s.bal.Unlock()
	names := make([]string, 0, len(acc.Balances))
	for c := range acc.Balances {
		names = append(names, c)
	}
	sort.Strings(names)
	out := []map[string]string{}
	for i, c := range names {
		if cur != "" && c != cur {
			continue
		}
		b := fmtNum(acc.Balances[c])
		out = append(out, map[string]string{"id": strconv.Itoa(5000 + i), "currency": c, "type": typ, "balance": b, "available": b, "holds": "0"})
	}
	return out, nil
}

func (s *Simulator) apiKey(acc *sim.Account, _ *exchange.Request, _ []string) (any, *simError) {
	var perms []string
	for _, p := range []struct{ sim, venue string }{{"read", "General"}, {"trade", "Spot"}, {"transfer", "InnerTransfer"}, {"withdraw", "Withdrawal"}} {
		if acc.Allowed(p.sim) {
			perms = append(perms, p.venue)
		}
	}
	return map[string]any{
		"remark": "simulated", "apiKey": acc.Key.APIKey, "apiVersion": 3, "permission": strings.Join(perms, ","),
		"ipWhitelist": strings.Join(acc.IPs, ","), "createdAt": acc.Created.UnixMilli(), "uid": 1000001, "isMaster": true,
	}, nil
}

func simOrder(o sim.Order) map[string]any {
	return map[string]any{
		"id": o.ID, "clientOid": o.ClientOrderID, "symbol": o.Symbol, "side": strings.ToLower(o.Side), "type": o.Type,
		"price": fmtNum(o.Price), "size": fmtNum(o.Quantity), "active": o.Status == "NEW", "createdAt": o.Created.UnixMilli(),
	}
}

func (s *Simulator) openOrders(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	sym := q.Get("symbol")
	if sym == "" {
		return nil, errParam
	}
	out := []map[string]any{}
	for _, o := range s.kit.Orders(acc.Key.APIKey) {
		if o.Status == "NEW" && o.Symbol == sym {
			out = append(out, simOrder(o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	return out, nil
}

func (s *Simulator) placeOrder(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	call, err := (describer{}).Describe(req)
	if err != nil || len(call.Orders) != 1 {
		return nil, errParam
	}
	o := call.Orders[0]
	if o.Symbol == "" || o.Side == "" || (o.Type != "limit" && o.Type != "market") {
		return nil, errParam
	}
	if o.Type == "limit" && (o.Price <= 0 || o.Quantity <= 0) {
		return nil, errParam
	}
	if o.Type == "market" && o.Quantity <= 0 && o.QuoteQuantity <= 0 {
		return nil, errParam
	}
	st := sim.Order{APIKey: acc.Key.APIKey, ClientOrderID: o.ClientOrderID, Symbol: o.Symbol, Side: string(o.Side),
		Type: o.Type, Quantity: o.Quantity, Price: o.Price}
	if o.Type == "market" {
		st.Status, st.Price = "FILLED", s.kit.Price(o.Symbol)
		if st.Quantity == 0 {
			st.Quantity = o.QuoteQuantity / st.Price
		}
	}
	placed := s.kit.PlaceOrder(st)
	return map[string]string{"orderId": placed.ID, "clientOid": placed.ClientOrderID}, nil
}

func (s *Simulator) cancelOrder(acc *sim.Account, req *exchange.Request, segs []string) (any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	if q.Get("symbol") == "" {
		return nil, errParam
	}
	id, coid := segs[len(segs)-1], ""
	if segs[len(segs)-2] == "client-order" {
		id, coid = "", id
	}
	o, ok := s.kit.CancelOrder(acc.Key.APIKey, id, coid)
	if !ok {
		return nil, fail(http.StatusBadRequest, "400100", "order_not_exist_or_not_allow_to_cancel")
	}
	if coid != "" {
		return map[string]string{"clientOid": o.ClientOrderID}, nil
	}
	return map[string]string{"orderId": o.ID}, nil
}

// placeUnifiedOrder serves POST /api/ua/v1/{mode}/order/place: the order
// as placeOrder books it, answered with its ids, trade type and a ns time.
func (s *Simulator) placeUnifiedOrder(acc *sim.Account, req *exchange.Request, segs []string) (any, *simError) {
	data, err := s.placeOrder(acc, req, segs)
	if err != nil {
		return nil, err
	}
	ids := data.(map[string]string)
	return map[string]any{"orderId": ids["orderId"], "clientOid": ids["clientOid"], "tradeType": unifiedTradeType(req), "ts": s.kit.Now().UnixNano()}, nil
}

// cancelUnifiedOrder serves POST /api/ua/v1/{mode}/order/cancel: symbol and
// orderId or clientOid in the body.
func (s *Simulator) cancelUnifiedOrder(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	f, ok := bodyFields(req)
	if !ok {
		return nil, errParam
	}
	sym, _ := f.Field("symbol")
	id, _ := f.Field("orderId")
	coid, _ := f.Field("clientOid")
	if sym == "" || (id == "") == (coid == "") {
		return nil, errParam
	}
	o, ok := s.kit.CancelOrder(acc.Key.APIKey, id, coid)
	if !ok || o.Symbol != sym {
		return nil, fail(http.StatusBadRequest, "400100", "order_not_exist_or_not_allow_to_cancel")
	}
	return map[string]any{"orderId": o.ID, "clientOid": o.ClientOrderID, "tradeType": unifiedTradeType(req), "ts": s.kit.Now().UnixNano()}, nil
}

// unifiedTradeType is the request's tradeType, SPOT when absent.
func unifiedTradeType(req *exchange.Request) string {
	if f, ok := bodyFields(req); ok {
		if t, _ := f.Field("tradeType"); t != "" {
			return t
		}
	}
	return "SPOT"
}

// bodyFields reads req's JSON object body.
func bodyFields(req *exchange.Request) (exchange.Fields, bool) {
	v, err := decodeJSON(req.Body)
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return exchange.Fields{}, false
	}
	return exchange.Fields{Body: obj}, true
}

// cancelClassicOrder serves DELETE /api/v1/orders/{orderId}, which needs
// no symbol and answers with the canceled ids.
func (s *Simulator) cancelClassicOrder(acc *sim.Account, _ *exchange.Request, segs []string) (any, *simError) {
	o, ok := s.kit.CancelOrder(acc.Key.APIKey, segs[len(segs)-1], "")
	if !ok {
		return nil, fail(http.StatusBadRequest, "400100", "order_not_exist_or_not_allow_to_cancel")
	}
	return map[string][]string{"cancelledOrderIds": {o.ID}}, nil
}

func (s *Simulator) withdraw(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	call, err := (describer{}).Describe(req)
	if err != nil || call.Transfer == nil {
		return nil, errParam
	}
	t := call.Transfer
	if t.Asset == "" || t.Address == "" || t.Amount <= 0 {
		return nil, errParam
	}
	s.bal.Lock()
	defer s.bal.Unlock()
	if acc.Balances[t.Asset] < t.Amount {
		return nil, fail(http.StatusBadRequest, "260100", "account.noBalance")
	}
	acc.Balances[t.Asset] -= t.Amount
	return map[string]string{"withdrawalId": "w" + strconv.FormatInt(s.kit.Now().UnixNano(), 36)}, nil
}

// createSubKey serves POST /api/v1/sub/api-key for a master key (the
// simulator's "admin" permission): a sub-account key with General and the
// asked Spot/Margin/Futures permissions, never Withdrawal, and the
// passphrase the request chose.
func (s *Simulator) createSubKey(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	f, ok := bodyFields(req)
	if !ok {
		return nil, errParam
	}
	sub, _ := f.Field("subName")
	pass, _ := f.Field("passphrase")
	remark, _ := f.Field("remark")
	perm, _ := f.Field("permission")
	ipList, _ := f.Field("ipWhitelist")
	if sub == "" || len(pass) < 7 || len(pass) > 32 || remark == "" {
		return nil, errParam
	}
	perms := map[string]bool{"read": true}
	for _, p := range strings.Split(perm, ",") {
		switch p {
		case "General", "":
		case "Spot", "Margin", "Futures":
			perms["trade"] = true
		default:
			return nil, fail(http.StatusBadRequest, "400100", "Invalid permission")
		}
	}
	var ips []string
	if ipList != "" {
		ips = strings.Split(ipList, ",")
	}
	var b [28]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fail(http.StatusInternalServerError, "500000", "Internal Server Error")
	}
	key, secret := hex.EncodeToString(b[:12]), fmt.Sprintf("%x-%x-%x", b[12:16], b[16:20], b[20:28])
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret),
		Passphrase: exchange.Secret(pass)}, Permissions: perms, IPs: ips})
	s.mu.Lock()
	s.subKeys[key] = [3]string{acc.Key.APIKey, sub, pass}
	s.mu.Unlock()
	return map[string]any{"subName": sub, "remark": remark, "apiKey": key, "apiSecret": secret, "passphrase": pass,
		"permission": perm, "ipWhitelist": ipList, "createdAt": s.kit.Now().UnixMilli()}, nil
}

// deleteSubKey serves DELETE /api/v1/sub/api-key: the master key that made
// a sub-account key deletes it, naming its sub-account and passphrase.
func (s *Simulator) deleteSubKey(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	q, err := exchange.ParseQuery(req.RawQuery)
	if err != nil {
		return nil, errParam
	}
	key, sub, pass := q.Get("apiKey"), q.Get("subName"), q.Get("passphrase")
	s.mu.Lock()
	made, found := s.subKeys[key]
	match := found && made[0] == acc.Key.APIKey && made[1] == sub
	if match && made[2] != pass {
		s.mu.Unlock()
		return nil, fail(http.StatusBadRequest, "400004", "Invalid KC-API-PASSPHRASE")
	}
	if match {
		delete(s.subKeys, key)
	}
	s.mu.Unlock()
	if !match || !s.kit.RemoveAccount(key) {
		return nil, fail(http.StatusBadRequest, "400100", "API key does not exist")
	}
	return map[string]string{"subName": sub, "apiKey": key}, nil
}
