package binance

import (
	"crypto/rand"
	"encoding/hex"
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

// Simulator is a loopback stand-in for Binance spot (/api, /sapi) and
// USDⓈ-M futures (/fapi). It verifies every signed request from the raw
// bytes received, as Binance does (spec §16): key lookup, signature,
// timestamp and recvWindow, permissions and IP restriction; it logs every
// request into the Kit (the test oracle) and answers with Binance's bodies,
// error codes and X-MBX-USED-WEIGHT / X-MBX-ORDER-COUNT headers. Account
// permissions use the names "read", "trade", "withdraw" and "transfer";
// withdrawals also need an IP-restricted key, as at Binance. A Simulator is
// safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler
	macs    *macPool

	mu       sync.Mutex // guards the counters and account balances
	minute   int64
	weight   int
	day      int64
	orders1D int
	second10 int64
	orders10 int
	// subKeys are the keys made by POST sub-account/subAccountApi: the
	// master key that made each and the sub-account's email.
	subKeys map[string][2]string
	listen  *simListenKeys // USER_STREAM listen keys
}

// maxSimBody caps request bodies, like Binance's front end.
const maxSimBody = 64 << 10

// security is an endpoint's Binance security type.
type security int

const (
	secNone   security = iota // public
	secKey                    // USER_STREAM: API key only
	secSigned                 // TRADE, USER_DATA: key and signature
)

// simCtx is what a handler gets about the request it serves.
type simCtx struct {
	now     time.Time
	params  exchange.Params
	account *sim.Account
	futures bool
}

type simEndpoint struct {
	sec     security
	perm    string // account permission needed
	weight  int
	order   bool // counts against the order-rate limits
	handler func(s *Simulator, w http.ResponseWriter, c *simCtx)
}

// NewSimulator returns a Simulator over kit. Queued kit faults apply before
// any venue logic.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, macs: newMACPool(), subKeys: map[string][2]string{}, listen: newSimListenKeys()}
	mux := http.NewServeMux()
	route := func(pattern string, e simEndpoint) {
		mux.Handle(pattern, s.endpoint(e))
	}
	for _, p := range []string{"/api/v3/time", "/fapi/v1/time"} {
		route("GET "+p, simEndpoint{sec: secNone, weight: 1, handler: (*Simulator).serverTime})
	}
	for _, p := range []string{"/api/v3/ping", "/fapi/v1/ping"} {
		route("GET "+p, simEndpoint{sec: secNone, weight: 1, handler: func(_ *Simulator, w http.ResponseWriter, _ *simCtx) {
			writeJSON(w, http.StatusOK, struct{}{})
		}})
	}
	for _, p := range []string{"/api/v3/ticker/price", "/fapi/v1/ticker/price", "/fapi/v2/ticker/price"} {
		route("GET "+p, simEndpoint{sec: secNone, weight: 2, handler: (*Simulator).tickerPrice})
	}
	route("GET /api/v3/account", simEndpoint{sec: secSigned, perm: "read", weight: 20, handler: (*Simulator).spotAccount})
	for _, p := range []string{"/fapi/v2/account", "/fapi/v3/account"} {
		route("GET "+p, simEndpoint{sec: secSigned, perm: "read", weight: 5, handler: (*Simulator).futuresAccount})
	}
	for _, p := range []string{"/fapi/v2/balance", "/fapi/v3/balance"} {
		route("GET "+p, simEndpoint{sec: secSigned, perm: "read", weight: 5, handler: (*Simulator).futuresBalance})
	}
	for _, p := range []string{"/api/v3/order", "/fapi/v1/order"} {
		route("POST "+p, simEndpoint{sec: secSigned, perm: "trade", weight: 1, order: true, handler: (*Simulator).placeOrder})
		route("DELETE "+p, simEndpoint{sec: secSigned, perm: "trade", weight: 1, handler: (*Simulator).cancelOrder})
	}
	route("POST /api/v3/order/test", simEndpoint{sec: secSigned, perm: "trade", weight: 1, handler: func(_ *Simulator, w http.ResponseWriter, _ *simCtx) {
		writeJSON(w, http.StatusOK, struct{}{})
	}})
	for _, p := range []string{"/api/v3/openOrders", "/fapi/v1/openOrders"} {
		route("GET "+p, simEndpoint{sec: secSigned, perm: "read", weight: 6, handler: (*Simulator).openOrders})
	}
	route("DELETE /api/v3/openOrders", simEndpoint{sec: secSigned, perm: "trade", weight: 1, handler: (*Simulator).cancelOpenOrders})
	route("DELETE /fapi/v1/allOpenOrders", simEndpoint{sec: secSigned, perm: "trade", weight: 1, handler: (*Simulator).cancelAllFutures})
	route("GET "+pathAPIRestrictions, simEndpoint{sec: secSigned, weight: 1, handler: (*Simulator).apiRestrictions})
	route("POST /sapi/v1/capital/withdraw/apply", simEndpoint{sec: secSigned, perm: "withdraw", weight: 900, handler: (*Simulator).withdraw})
	route("POST "+pathSubAccountAPI, simEndpoint{sec: secSigned, perm: "admin", weight: 3000, handler: (*Simulator).createSubKey})
	route("DELETE "+pathSubAccountAPI, simEndpoint{sec: secSigned, perm: "admin", weight: 3000, handler: (*Simulator).deleteSubKey})
	route("POST /sapi/v1/asset/transfer", simEndpoint{sec: secSigned, perm: "transfer", weight: 900, handler: (*Simulator).assetTransfer})
	for _, p := range []string{"/api/v3/userDataStream", "/sapi/v1/userDataStream", "/sapi/v1/userDataStream/isolated", "/fapi/v1/listenKey"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			route(m+" "+p, simEndpoint{sec: secKey, weight: 2, handler: func(s *Simulator, w http.ResponseWriter, c *simCtx) { s.listenKey(w, c, m, p) }})
		}
	}
	mux.Handle("/", s.endpoint(simEndpoint{sec: secNone, weight: 1, handler: func(_ *Simulator, w http.ResponseWriter, _ *simCtx) {
		writeJSON(w, http.StatusNotFound, apiError{Code: -1000, Msg: "Unknown endpoint."})
	}}))
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves one request.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// endpoint wraps a handler with Binance's checks, the rate-limit headers and
// the request log.
func (s *Simulator) endpoint(e simEndpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.kit.Now()
		logged := sim.Logged{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
		fail := func(ex *exchange.Error) {
			logged.Error = ex.Message
			s.kit.Record(logged)
			errorWriter{}.WriteError(w, ex)
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				logged.Error = "request body too large"
				s.kit.Record(logged)
				writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Code: -1000, Msg: "Request body too large."})
				return
			}
			fail(exchange.Errorf(exchange.ErrBadRequest, "unreadable body"))
			return
		}
		logged.Body = body
		req := &exchange.Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
		s.countRequest(w, now, e)
		ps, ex := requestParams(req)
		if ex != nil {
			fail(ex)
			return
		}
		c := &simCtx{now: now, params: ps, futures: strings.HasPrefix(r.URL.Path, "/fapi/")}
		if e.sec != secNone {
			key, ex := apiKeyOf(r.Header)
			if ex == nil && key == "" {
				ex = exchange.Errorf(exchange.ErrAuth, msgKeyFormat)
			}
			if ex != nil {
				fail(ex)
				return
			}
			acc, ok := s.kit.Account(key)
			if !ok {
				fail(exchange.Errorf(exchange.ErrAuth, msgInvalidKey))
				return
			}
			if !acc.IPAllowed(r.RemoteAddr) {
				fail(exchange.Errorf(exchange.ErrIP, msgInvalidKey))
				return
			}
			if e.sec == secSigned {
				sr, ex := parseSigned(req)
				if ex == nil {
					ex = sr.checkSignature(verifyKey(&acc.Key), s.macs)
				}
				if ex == nil {
					ex = sr.checkWindow(now)
				}
				if ex != nil {
					fail(ex)
					return
				}
			}
			if (e.perm != "" && !acc.Allowed(e.perm)) || (e.perm == "withdraw" && len(acc.IPs) == 0) {
				logged.APIKey = key
				fail(exchange.Errorf(exchange.ErrPermission, msgInvalidKey))
				return
			}
			logged.APIKey = key
			logged.Verified = true
			c.account = acc
		}
		s.kit.Record(logged)
		e.handler(s, w, c)
	})
}

// verifyKey returns the credential to verify with: asymmetric simulator
// accounts may hold only the private key.
func verifyKey(k *exchange.Credential) *exchange.Credential {
	if k.Kind == exchange.KeyHMAC || k.PublicKey != nil || k.PrivateKey == nil {
		return k
	}
	c := *k
	c.PublicKey = k.PrivateKey.Public()
	return &c
}

// countRequest updates and writes the rate-limit headers.
func (s *Simulator) countRequest(w http.ResponseWriter, now time.Time, e simEndpoint) {
	s.mu.Lock()
	if m := now.Unix() / 60; m != s.minute {
		s.minute, s.weight = m, 0
	}
	s.weight += e.weight
	weight := s.weight
	var o10, o1d int
	if e.order {
		if d := now.Unix() / 86400; d != s.day {
			s.day, s.orders1D = d, 0
		}
		if t := now.Unix() / 10; t != s.second10 {
			s.second10, s.orders10 = t, 0
		}
		s.orders10++
		s.orders1D++
		o10, o1d = s.orders10, s.orders1D
	}
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(weight))
	if e.order {
		h.Set("X-MBX-ORDER-COUNT-10S", strconv.Itoa(o10))
		h.Set("X-MBX-ORDER-COUNT-1D", strconv.Itoa(o1d))
	}
}

func (s *Simulator) serverTime(w http.ResponseWriter, c *simCtx) {
	writeJSON(w, http.StatusOK, map[string]int64{"serverTime": c.now.UnixMilli()})
}

func formatAmount(f float64) string { return strconv.FormatFloat(f, 'f', 8, 64) }

func (s *Simulator) tickerPrice(w http.ResponseWriter, c *simCtx) {
	type ticker struct {
		Symbol string `json:"symbol"`
		Price  string `json:"price"`
		Time   int64  `json:"time,omitempty"`
	}
	mk := func(sym string) ticker {
		t := ticker{Symbol: sym, Price: formatAmount(s.kit.Price(sym))}
		if c.futures {
			t.Time = c.now.UnixMilli()
		}
		return t
	}
	if sym := c.params.Get("symbol"); sym != "" {
		writeJSON(w, http.StatusOK, mk(sym))
		return
	}
	writeJSON(w, http.StatusOK, []ticker{mk("BTCUSDT"), mk("ETHUSDT")})
}

// balances returns a sorted copy of the account's balances.
func (s *Simulator) balances(a *sim.Account) ([]string, map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]float64, len(a.Balances))
	names := make([]string, 0, len(a.Balances))
	for k, v := range a.Balances {
		m[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	return names, m
}

func (s *Simulator) spotAccount(w http.ResponseWriter, c *simCtx) {
	type balance struct {
		Asset  string `json:"asset"`
		Free   string `json:"free"`
		Locked string `json:"locked"`
	}
	names, m := s.balances(c.account)
	bs := make([]balance, 0, len(names))
	for _, n := range names {
		bs = append(bs, balance{n, formatAmount(m[n]), formatAmount(0)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
		"canTrade": c.account.Allowed("trade"), "canWithdraw": c.account.Allowed("withdraw"), "canDeposit": true,
		"brokered": false, "requireSelfTradePrevention": false, "preventSor": false,
		"updateTime": c.now.UnixMilli(), "accountType": "SPOT", "balances": bs, "permissions": []string{"SPOT"},
		"uid": 354937868,
	})
}

func (s *Simulator) futuresAccount(w http.ResponseWriter, c *simCtx) {
	names, m := s.balances(c.account)
	var assets []map[string]any
	total := 0.0
	for _, n := range names {
		if n != "USDT" && n != "USDC" && n != "BTC" {
			continue
		}
		assets = append(assets, map[string]any{"asset": n, "walletBalance": formatAmount(m[n]), "unrealizedProfit": "0.00000000",
			"marginBalance": formatAmount(m[n]), "availableBalance": formatAmount(m[n]), "maxWithdrawAmount": formatAmount(m[n]),
			"updateTime": c.now.UnixMilli()})
		if n != "BTC" {
			total += m[n]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000", "totalWalletBalance": formatAmount(total),
		"totalUnrealizedProfit": "0.00000000", "totalMarginBalance": formatAmount(total), "availableBalance": formatAmount(total),
		"maxWithdrawAmount": formatAmount(total), "assets": assets, "positions": []any{},
	})
}

func (s *Simulator) futuresBalance(w http.ResponseWriter, c *simCtx) {
	names, m := s.balances(c.account)
	out := make([]map[string]any, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]any{"accountAlias": "SgsR", "asset": n, "balance": formatAmount(m[n]),
			"crossWalletBalance": formatAmount(m[n]), "crossUnPnl": "0.00000000", "availableBalance": formatAmount(m[n]),
			"maxWithdrawAmount": formatAmount(m[n]), "marginAvailable": true, "updateTime": c.now.UnixMilli()})
	}
	writeJSON(w, http.StatusOK, out)
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// orderView is an order in Binance's answer shape (spot and futures fields).
func orderView(o *sim.Order, futures bool, now time.Time) map[string]any {
	id, _ := strconv.ParseInt(o.ID, 10, 64)
	executed := 0.0
	if o.Status == "FILLED" {
		executed = o.Quantity
	}
	v := map[string]any{
		"symbol": o.Symbol, "orderId": id, "clientOrderId": o.ClientOrderID,
		"price": formatAmount(o.Price), "origQty": formatAmount(o.Quantity), "executedQty": formatAmount(executed),
		"status": o.Status, "timeInForce": "GTC", "type": o.Type, "side": o.Side,
	}
	if futures {
		v["avgPrice"] = "0.00000"
		v["cumQty"] = formatAmount(executed)
		v["cumQuote"] = formatAmount(executed * o.Price)
		v["reduceOnly"] = false
		v["closePosition"] = false
		v["positionSide"] = "BOTH"
		v["stopPrice"] = "0"
		v["workingType"] = "CONTRACT_PRICE"
		v["priceProtect"] = false
		v["origType"] = o.Type
		v["updateTime"] = now.UnixMilli()
	} else {
		v["orderListId"] = -1
		v["transactTime"] = now.UnixMilli()
		v["cummulativeQuoteQty"] = formatAmount(executed * o.Price)
		v["workingTime"] = now.UnixMilli()
		v["selfTradePreventionMode"] = "NONE"
	}
	return v
}

func (s *Simulator) placeOrder(w http.ResponseWriter, c *simCtx) {
	if e := mandatory(c.params, "symbol", "side", "type"); e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	o, e := order(c.params, exchange.ActionNew, plainOrder)
	if e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	if o.Quantity <= 0 && o.QuoteQuantity <= 0 {
		errorWriter{}.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "quantity"))
		return
	}
	if o.Type == "limit" && o.Price <= 0 {
		errorWriter{}.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "price"))
		return
	}
	so := sim.Order{APIKey: c.account.Key.APIKey, ClientOrderID: o.ClientOrderID, Symbol: o.Symbol,
		Side: strings.ToUpper(string(o.Side)), Type: strings.ToUpper(o.Type), Quantity: o.Quantity, Price: o.Price}
	if so.ClientOrderID == "" {
		so.ClientOrderID = randomID()[:22]
	}
	if o.Type == "market" {
		so.Status = "FILLED"
		so.Price = s.kit.Price(o.Symbol)
		if so.Quantity == 0 {
			so.Quantity = o.QuoteQuantity / so.Price
		}
	}
	placed := s.kit.PlaceOrder(so)
	writeJSON(w, http.StatusOK, orderView(placed, c.futures, c.now))
}

func (s *Simulator) cancelOrder(w http.ResponseWriter, c *simCtx) {
	if e := mandatory(c.params, "symbol"); e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	id, cid := c.params.Get("orderId"), c.params.Get("origClientOrderId")
	if id == "" && cid == "" {
		errorWriter{}.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "orderId"))
		return
	}
	o, ok := s.kit.CancelOrder(c.account.Key.APIKey, id, cid)
	if !ok || o.Symbol != c.params.Get("symbol") {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -2011, Msg: "Unknown order sent."})
		return
	}
	writeJSON(w, http.StatusOK, orderView(o, c.futures, c.now))
}

func (s *Simulator) openOrders(w http.ResponseWriter, c *simCtx) {
	sym := c.params.Get("symbol")
	orders := s.kit.Orders(c.account.Key.APIKey)
	sort.Slice(orders, func(i, j int) bool { return orders[i].ID < orders[j].ID })
	out := []map[string]any{}
	for i := range orders {
		o := &orders[i]
		if o.Status != "NEW" || (sym != "" && o.Symbol != sym) {
			continue
		}
		out = append(out, orderView(o, c.futures, c.now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) apiRestrictions(w http.ResponseWriter, c *simCtx) {
	a := c.account
	writeJSON(w, http.StatusOK, apiRestrictions{
		IPRestrict:                 len(a.IPs) > 0,
		CreateTime:                 a.Created.UnixMilli(),
		EnableReading:              a.Allowed("read"),
		EnableWithdrawals:          a.Allowed("withdraw"),
		EnableInternalTransfer:     a.Allowed("transfer"),
		PermitsUniversalTransfer:   a.Allowed("transfer"),
		EnableFutures:              a.Allowed("trade"),
		EnableSpotAndMarginTrading: a.Allowed("trade"),
	})
}

// debit takes amount of asset from a, or reports false.
func (s *Simulator) debit(a *sim.Account, asset string, amount float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if amount <= 0 || a.Balances[asset] < amount {
		return false
	}
	a.Balances[asset] -= amount
	return true
}

func (s *Simulator) withdraw(w http.ResponseWriter, c *simCtx) {
	call, e := withdraw(c.params, exchange.Call{})
	if e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	t := call.Transfer
	if !s.debit(c.account, t.Asset, t.Amount) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -4026, Msg: "User has insufficient balance"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": randomID()})
}

func (s *Simulator) assetTransfer(w http.ResponseWriter, c *simCtx) {
	if e := mandatory(c.params, "type", "asset", "amount"); e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	amt, e := decimal(c.params, "amount")
	if e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	if amt <= 0 {
		errorWriter{}.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "amount"))
		return
	}
	id, _ := strconv.ParseInt(randomID()[:12], 16, 64)
	writeJSON(w, http.StatusOK, map[string]int64{"tranId": id})
}

// createSubKey serves POST /sapi/v1/sub-account/subAccountApi for a master
// key (the simulator's "admin" permission): an HMAC key of the sub-account
// named by email, with the asked trading permissions (withdrawal cannot be
// granted here) and, with status 2, the IPs in ipAddress.
func (s *Simulator) createSubKey(w http.ResponseWriter, c *simCtx) {
	p := c.params
	email, name, status := p.Get("email"), p.Get("apiName"), p.Get("status")
	if email == "" || name == "" || (status != "1" && status != "2") || (status == "2") == (p.Get("ipAddress") == "") {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -1102, Msg: "Mandatory parameter missing or malformed."})
		return
	}
	perms := map[string]bool{"read": true}
	for _, f := range []string{"canTrade", "canMarginLoanRepay", "canFuturesTrade", "canVanillaOptions"} {
		if p.Get(f) == "true" {
			perms["trade"] = true
		}
	}
	if p.Get("canUniversalTransfer") == "true" {
		perms["transfer"] = true
	}
	var ips []string
	if status == "2" {
		ips = strings.Split(p.Get("ipAddress"), ",")
	}
	var b [48]byte
	if _, err := rand.Read(b[:]); err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Code: -1000, Msg: "An unknown error occurred."})
		return
	}
	key, secret := strings.ToUpper(hex.EncodeToString(b[:24])), hex.EncodeToString(b[24:])
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)},
		Permissions: perms, IPs: ips})
	s.mu.Lock()
	s.subKeys[key] = [2]string{c.account.Key.APIKey, email}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"apiName": name, "apiKey": key, "secretKey": secret,
		"canTrade": perms["trade"], "canUniversalTransfer": perms["transfer"], "status": status, "ipList": ips})
}

// deleteSubKey serves DELETE /sapi/v1/sub-account/subAccountApi: the master
// key that made a sub-account key deletes it.
func (s *Simulator) deleteSubKey(w http.ResponseWriter, c *simCtx) {
	key, email := c.params.Get("subAccountApiKey"), c.params.Get("email")
	s.mu.Lock()
	made, found := s.subKeys[key]
	match := found && made == [2]string{c.account.Key.APIKey, email}
	if match {
		delete(s.subKeys, key)
	}
	s.mu.Unlock()
	if !match || !s.kit.RemoveAccount(key) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -12022, Msg: "The API key does not exist."})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
