package bybit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// simLimit is the per-second request budget the simulator reports in its
// X-Bapi-Limit headers.
const simLimit = 20

// Simulator is a Bybit v5 REST simulator for tests. It verifies the X-BAPI-*
// signature (HMAC, or RSA for accounts whose Key is RSA), receive window, IP
// and key permissions from the raw bytes it receives, logs every request in
// the kit, and answers in Bybit's shapes with X-Bapi-Limit headers. After
// EnforceBudget, a key that spends its per-second budget gets retCode 10006.
// Permissions are "read", "trade", "withdraw" and "transfer". A Simulator is
// safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler
	errs    errorWriter

	mu      sync.Mutex // guards account balances and the rate window
	sec     int64
	spent   map[string]int
	enforce bool
	// subKeys are the keys made by create-sub-api, by API key, with the
	// master key that made them; removed holds deleted keys.
	subKeys map[string]string
	removed map[string]bool
}

// EnforceBudget makes the simulator refuse a key's requests beyond its
// per-second budget, as Bybit does, instead of only reporting the budget.
func (s *Simulator) EnforceBudget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enforce = true
}

// NewSimulator returns a Simulator serving kit's accounts.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, spent: map[string]int{}, subKeys: map[string]string{}, removed: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle("GET /v5/market/time", s.public(s.serverTime))
	mux.Handle("GET /v5/market/tickers", s.public(s.ticker))
	mux.Handle("GET /v5/account/wallet-balance", s.private("read", s.balance))
	mux.Handle("GET /v5/user/query-api", s.private("", s.queryAPI))
	mux.Handle("GET /v5/account/info", s.private("", s.accountInfo))
	mux.Handle("POST /v5/user/create-sub-api", s.private("admin", s.createSubAPI))
	mux.Handle("POST /v5/user/delete-sub-api", s.private("admin", s.deleteSubAPI))
	mux.Handle("GET /v5/order/realtime", s.private("read", s.openOrders))
	mux.Handle("POST /v5/order/create", s.private("trade", s.placeOrder))
	mux.Handle("POST /v5/order/cancel", s.private("trade", s.cancelOrder))
	mux.Handle("POST /v5/order/cancel-all", s.private("trade", s.cancelAll))
	mux.Handle("POST /v5/asset/withdraw/create", s.private("withdraw", s.withdraw))
	mux.Handle("POST /v5/asset/transfer/inter-transfer", s.private("transfer", s.transfer))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reject(w, r, nil, "", exchange.Errorf(exchange.ErrNotFound, "request path not found or request method is invalid"))
	}))
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves one request.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// simCall is an authenticated request as a handler sees it.
type simCall struct {
	acc    *sim.Account
	params fields
	body   map[string]any
}

// reject logs a refused request, with its body when it was read, and
// answers with e.
func (s *Simulator) reject(w http.ResponseWriter, r *http.Request, req *exchange.Request, key string, e *exchange.Error) {
	s.kit.Reject(s.errs, w, r, req, key, e)
}

func readRequest(w http.ResponseWriter, r *http.Request) (*exchange.Request, *exchange.Error) {
	return sim.ReadRequest(w, r, maxSimBody)
}

func (s *Simulator) public(h func(w http.ResponseWriter, c *simCall)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, e := readRequest(w, r)
		if e != nil {
			s.reject(w, r, nil, "", e)
			return
		}
		q, err := exchange.ParseQuery(req.RawQuery)
		if err != nil {
			s.reject(w, r, req, "", exchange.AsError(err))
			return
		}
		s.kit.Record(sim.Logged{Method: r.Method, Path: req.Path, RawQuery: req.RawQuery, Header: r.Header.Clone(), Body: req.Body})
		h(w, &simCall{params: queryFields(q)})
	})
}

// private authenticates as Bybit does, then checks perm ("" for any key).
func (s *Simulator) private(perm string, h func(w http.ResponseWriter, c *simCall)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, e := readRequest(w, r)
		if e != nil {
			s.reject(w, r, nil, "", e)
			return
		}
		key, err := verifier{}.ClientKey(req)
		if err != nil {
			s.reject(w, r, req, "", exchange.AsError(err))
			return
		}
		if key == "" {
			s.reject(w, r, req, "", exchange.Errorf(exchange.ErrAuth, "api_key not found in your request parameters"))
			return
		}
		acc, ok := s.kit.Account(key)
		if !ok || s.isRemoved(key) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrAuth, "API key is invalid."))
			return
		}
		cred := acc.Key
		if cred.Kind == exchange.KeyRSA && cred.PublicKey == nil && cred.PrivateKey != nil {
			cred.PublicKey = cred.PrivateKey.Public()
		}
		if err := check(req, &cred, s.kit.Now()); err != nil {
			s.reject(w, r, req, key, exchange.AsError(err))
			return
		}
		if !acc.IPAllowed(r.RemoteAddr) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrIP, "Unmatched IP, please check your API key's bound IP addresses."))
			return
		}
		if perm != "" && !acc.Allowed(perm) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrPermission, "Permission denied, please check your API key permissions."))
			return
		}
		q, err := exchange.ParseQuery(req.RawQuery)
		if err != nil {
			s.reject(w, r, req, key, exchange.AsError(err))
			return
		}
		c := &simCall{acc: acc, params: queryFields(q)}
		if r.Method == http.MethodPost {
			c.body = map[string]any{}
			if len(req.Body) > 0 {
				v, err := parseJSON(req.Body)
				o, isObj := v.(map[string]any)
				if err != nil || !isObj {
					s.reject(w, r, req, key, exchange.Errorf(exchange.ErrBadRequest, "params error: json body invalid"))
					return
				}
				c.body = o
			}
			c.params = objFields(c.body)
		}
		left, reset, enforce := s.spend(key)
		s.limitHeaders(w, left, reset)
		if left < 0 && enforce {
			s.reject(w, r, req, key, &exchange.Error{Kind: exchange.ErrRateLimit, Message: "Too many visits!", RetryAfter: reset.Sub(s.kit.Now())})
			return
		}
		s.kit.Record(sim.Logged{
			Method: r.Method, Path: req.Path, RawQuery: req.RawQuery, Header: r.Header.Clone(), Body: req.Body,
			APIKey: key, Verified: true,
		})
		h(w, c)
	})
}

// spend takes one unit of key's per-second budget and returns what is left
// (negative once it is exhausted), when the budget resets, and whether an
// exhausted budget refuses the request.
func (s *Simulator) spend(key string) (int, time.Time, bool) {
	now := s.kit.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.sec {
		s.sec, s.spent = sec, map[string]int{}
	}
	s.spent[key]++
	return simLimit - s.spent[key], now.Truncate(time.Second).Add(time.Second), s.enforce
}

// limitHeaders reports the budget as Bybit does.
func (s *Simulator) limitHeaders(w http.ResponseWriter, left int, reset time.Time) {
	h := w.Header()
	h.Set("X-Bapi-Limit", strconv.Itoa(simLimit))
	h.Set("X-Bapi-Limit-Status", strconv.Itoa(max(left, 0)))
	h.Set("X-Bapi-Limit-Reset-Timestamp", strconv.FormatInt(reset.UnixMilli(), 10))
}

func (s *Simulator) ok(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, reply{RetCode: 0, RetMsg: "OK", Result: result, RetExtInfo: struct{}{}, Time: s.kit.Now().UnixMilli()})
}

func (s *Simulator) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, reply{RetCode: code, RetMsg: msg, Result: struct{}{}, RetExtInfo: struct{}{}, Time: s.kit.Now().UnixMilli()})
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *Simulator) serverTime(w http.ResponseWriter, _ *simCall) {
	now := s.kit.Now()
	s.ok(w, map[string]string{"timeSecond": strconv.FormatInt(now.Unix(), 10), "timeNano": strconv.FormatInt(now.UnixNano(), 10)})
}

func (s *Simulator) ticker(w http.ResponseWriter, c *simCall) {
	vals, _ := getStrings(c.params, "category", "symbol")
	if vals[0] == "" || vals[1] == "" {
		s.fail(w, 10001, "params error: category and symbol are required")
		return
	}
	p := s.kit.Price(vals[1])
	s.ok(w, map[string]any{"category": vals[0], "list": []map[string]string{{
		"symbol": vals[1], "lastPrice": fmtNum(p), "bid1Price": fmtNum(p * 0.9995), "ask1Price": fmtNum(p * 1.0005),
		"volume24h": "1000", "turnover24h": fmtNum(1000 * p),
	}}})
}

func (s *Simulator) balance(w http.ResponseWriter, c *simCall) {
	acct, _ := c.params.Str("accountType")
	if acct == "" {
		s.fail(w, 10001, "params error: accountType is required")
		return
	}
	s.mu.Lock()
	coins := make([]string, 0, len(c.acc.Balances))
	for coin := range c.acc.Balances {
		coins = append(coins, coin)
	}
	sort.Strings(coins)
	list := make([]map[string]string, 0, len(coins))
	for _, coin := range coins {
		b := fmtNum(c.acc.Balances[coin])
		list = append(list, map[string]string{"coin": coin, "walletBalance": b, "equity": b, "locked": "0"})
	}
	s.mu.Unlock()
	s.ok(w, map[string]any{"list": []map[string]any{{"accountType": acct, "coin": list}}})
}

func (s *Simulator) queryAPI(w http.ResponseWriter, c *simCall) {
	perms := map[string][]string{"ContractTrade": {}, "Spot": {}, "Wallet": {}, "Options": {}, "Derivatives": {}}
	readOnly := 1
	if c.acc.Allowed("trade") {
		perms["ContractTrade"] = []string{"Order", "Position"}
		perms["Spot"] = []string{"SpotTrade"}
		readOnly = 0
	}
	if c.acc.Allowed("transfer") {
		perms["Wallet"] = append(perms["Wallet"], "AccountTransfer")
		readOnly = 0
	}
	if c.acc.Allowed("withdraw") {
		perms["Wallet"] = append(perms["Wallet"], "Withdraw")
		readOnly = 0
	}
	ips := c.acc.IPs
	if len(ips) == 0 {
		ips = []string{"*"}
	}
	s.ok(w, map[string]any{"id": "13770661", "note": "keywarden-sim", "apiKey": c.acc.Key.APIKey, "readOnly": readOnly,
		"secret": "", "permissions": perms, "ips": ips, "type": 1, "deadlineDay": 90,
		"expiredAt": c.acc.Created.Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"createdAt": c.acc.Created.UTC().Format(time.RFC3339), "unified": 0, "uta": 1, "userID": 24617703, "isMaster": true})
}

// accountInfo reports a unified trading account (UTA 2.0 pro), which is
// what ccxt asks before its first private call.
func (s *Simulator) accountInfo(w http.ResponseWriter, _ *simCall) {
	s.ok(w, map[string]any{"unifiedMarginStatus": 6, "marginMode": "REGULAR_MARGIN", "isMasterTrader": false,
		"spotHedgingStatus": "OFF", "updatedTime": strconv.FormatInt(s.kit.Now().UnixMilli(), 10)})
}

func (s *Simulator) openOrders(w http.ResponseWriter, c *simCall) {
	vals, _ := getStrings(c.params, "category", "symbol")
	list := []map[string]string{}
	for _, o := range s.kit.Orders(c.acc.Key.APIKey) {
		if o.Status != "NEW" || vals[1] != "" && o.Symbol != vals[1] {
			continue
		}
		list = append(list, map[string]string{"symbol": o.Symbol, "orderId": o.ID, "orderLinkId": o.ClientOrderID,
			"side": bybitSide(o.Side), "orderType": bybitType(o.Type), "qty": fmtNum(o.Quantity), "price": fmtNum(o.Price),
			"orderStatus": "New", "createdTime": strconv.FormatInt(o.Created.UnixMilli(), 10)})
	}
	s.ok(w, map[string]any{"category": vals[0], "list": list, "nextPageCursor": ""})
}

func bybitSide(s string) string {
	if s == "sell" {
		return "Sell"
	}
	return "Buy"
}

func bybitType(t string) string {
	if t == "market" {
		return "Market"
	}
	return "Limit"
}

func (s *Simulator) placeOrder(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := one(newOrder)(c.params, c.body, &call); err != nil {
		s.fail(w, 10001, exchange.AsError(err).Message)
		return
	}
	ord := call.Orders[0]
	cat, _ := c.params.Str("category")
	if cat == "" || ord.Symbol == "" || ord.Side == "" || ord.Type == "" || ord.Quantity+ord.QuoteQuantity <= 0 {
		s.fail(w, 10001, "params error: category, symbol, side, orderType and qty are required")
		return
	}
	status := "NEW"
	qty := ord.Quantity
	if ord.Type == "market" {
		status = "FILLED"
		if qty == 0 {
			qty = ord.QuoteQuantity / s.kit.Price(ord.Symbol)
		}
	}
	placed := s.kit.PlaceOrder(sim.Order{ClientOrderID: ord.ClientOrderID, APIKey: c.acc.Key.APIKey, Symbol: ord.Symbol,
		Side: string(ord.Side), Type: ord.Type, Quantity: qty, Price: ord.Price, Status: status})
	s.ok(w, map[string]string{"orderId": placed.ID, "orderLinkId": placed.ClientOrderID})
}

func (s *Simulator) cancelOrder(w http.ResponseWriter, c *simCall) {
	vals, err := getStrings(c.params, "orderId", "orderLinkId")
	if err != nil || vals[0] == "" && vals[1] == "" {
		s.fail(w, 10001, "params error: orderId or orderLinkId is required")
		return
	}
	got, found := s.kit.CancelOrder(c.acc.Key.APIKey, vals[0], vals[1])
	if !found {
		s.fail(w, 110001, "order not exists or too late to cancel")
		return
	}
	s.ok(w, map[string]string{"orderId": got.ID, "orderLinkId": got.ClientOrderID})
}

func (s *Simulator) withdraw(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := withdraw(c.params, c.body, &call); err != nil {
		s.fail(w, 10001, exchange.AsError(err).Message)
		return
	}
	t := call.Transfer
	if t.Asset == "" || t.Amount <= 0 || t.Address == "" {
		s.fail(w, 10001, "params error: coin, address and amount are required")
		return
	}
	if !s.debit(c.acc, t.Asset, t.Amount) {
		s.fail(w, 131001, "Insufficient balance")
		return
	}
	s.ok(w, map[string]string{"id": strconv.FormatInt(s.kit.Now().UnixNano()%1e9, 10)})
}

func (s *Simulator) transfer(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := interTransfer(c.params, c.body, &call); err != nil {
		s.fail(w, 10001, exchange.AsError(err).Message)
		return
	}
	id, _ := c.params.Str("transferId")
	if call.Transfer.Asset == "" || call.Transfer.Amount <= 0 || id == "" {
		s.fail(w, 10001, "params error: transferId, coin and amount are required")
		return
	}
	s.ok(w, map[string]string{"transferId": id, "status": "SUCCESS"})
}

// debit takes amount of asset from acc, reporting whether the balance held.
func (s *Simulator) debit(acc *sim.Account, asset string, amount float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acc.Balances[asset] < amount {
		return false
	}
	acc.Balances[asset] -= amount
	return true
}

func (s *Simulator) isRemoved(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed[key]
}

// createSubAPI serves POST /v5/user/create-sub-api for a master key (the
// simulator's "admin" permission): a new sub-account key with the asked
// permission groups, never withdraw.
func (s *Simulator) createSubAPI(w http.ResponseWriter, c *simCall) {
	uid, err := strconv.ParseInt(fmt.Sprint(c.body["subuid"]), 10, 64)
	if err != nil || uid <= 0 {
		s.fail(w, 10001, "params error: subuid is required")
		return
	}
	perms := map[string]bool{"read": true}
	groups, _ := c.body["permissions"].(map[string]any)
	for g, v := range groups {
		names, _ := v.([]any)
		for _, n := range names {
			switch name, _ := n.(string); g + "." + name {
			case "Wallet.Withdraw":
				s.fail(w, 10001, "params error: sub-account keys cannot withdraw")
				return
			case "Wallet.AccountTransfer", "Wallet.SubMemberTransfer":
				perms["transfer"] = true
			default:
				perms["trade"] = true
			}
		}
	}
	var ips []string
	if raw, _ := c.body["ips"].(string); raw != "" && raw != "*" {
		ips = strings.Split(raw, ",")
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		s.fail(w, 10016, "server error")
		return
	}
	key, secret := hex.EncodeToString(b[:9]), hex.EncodeToString(b[9:])
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)}, Permissions: perms, IPs: ips})
	s.mu.Lock()
	s.subKeys[key] = c.acc.Key.APIKey
	s.mu.Unlock()
	note, _ := c.body["note"].(string)
	s.ok(w, map[string]any{"id": "16651283", "note": note, "apiKey": key, "readOnly": 0, "secret": secret,
		"permissions": groups, "ips": ips})
}

// deleteSubAPI serves POST /v5/user/delete-sub-api: the master key that
// made a sub-account key deletes it.
func (s *Simulator) deleteSubAPI(w http.ResponseWriter, c *simCall) {
	key, _ := c.body["apikey"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if master, ok := s.subKeys[key]; !ok || master != c.acc.Key.APIKey || s.removed[key] {
		s.fail(w, 10001, "params error: no such sub-account key")
		return
	}
	s.removed[key] = true
	s.ok(w, struct{}{})
}
