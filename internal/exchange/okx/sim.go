package okx

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// maxSimBody is the largest request body the simulator reads.
const maxSimBody = 64 << 10

// Simulator is an OKX v5 REST simulator for tests. It verifies the
// OK-ACCESS-* signature, timestamp, passphrase, IP and key permissions from
// the raw bytes it receives, logs every request in the kit, and answers in
// OKX's shapes. Permissions are "read", "trade", "withdraw", "transfer" and
// "admin" (a master key that manages sub-account keys).
// A Simulator is safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler
	mu      sync.Mutex // guards account balances and subKeys
	errs    errorWriter
	// subKeys are the keys made by users/subaccount/apikey: the master key
	// that made each, and its sub-account.
	subKeys map[string][2]string
}

// NewSimulator returns a Simulator serving kit's accounts.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, subKeys: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v5/public/time", s.public(s.serverTime))
	mux.Handle("GET /api/v5/market/ticker", s.public(s.ticker))
	mux.Handle("GET /api/v5/account/balance", s.private("read", s.balance))
	mux.Handle("GET /api/v5/account/config", s.private("", s.config))
	mux.Handle("GET /api/v5/trade/orders-pending", s.private("read", s.openOrders))
	mux.Handle("GET /api/v5/asset/currencies", s.private("read", s.currencies))
	mux.Handle("POST /api/v5/trade/order", s.private("trade", s.placeOrder))
	mux.Handle("POST /api/v5/trade/batch-orders", s.private("trade", s.placeOrder))
	mux.Handle("POST /api/v5/trade/cancel-order", s.private("trade", s.cancelOrder))
	mux.Handle("POST /api/v5/trade/cancel-batch-orders", s.private("trade", s.cancelBatch))
	mux.Handle("POST /api/v5/account/set-leverage", s.private("trade", s.setLeverage))
	mux.Handle("POST /api/v5/asset/withdrawal", s.private("withdraw", s.withdraw))
	mux.Handle("POST /api/v5/asset/transfer", s.private("transfer", s.transfer))
	mux.Handle("POST /api/v5/users/subaccount/apikey", s.private("admin", s.createSubKey))
	mux.Handle("POST /api/v5/users/subaccount/delete-apikey", s.private("admin", s.deleteSubKey))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reject(w, r, nil, "", exchange.Errorf(exchange.ErrNotFound, "Not Found"))
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
	acc   *sim.Account
	query exchange.Params
	body  any
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
		h(w, &simCall{query: q})
	})
}

// private authenticates as OKX does, then checks perm ("" for any key).
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
			s.reject(w, r, req, "", exchange.Errorf(exchange.ErrAuth, "request header OK-ACCESS-KEY can not be empty"))
			return
		}
		acc, ok := s.kit.Account(key)
		if !ok {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrAuth, "invalid OK-ACCESS-KEY"))
			return
		}
		if err := check(req, acc.Key.Secret, acc.Key.Passphrase, s.kit.Now()); err != nil {
			s.reject(w, r, req, key, exchange.AsError(err))
			return
		}
		if !acc.IPAllowed(r.RemoteAddr) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrIP, "your IP is not included in your API key's IP whitelist"))
			return
		}
		if perm != "" && !acc.Allowed(perm) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrPermission, "API key doesn't have permission"))
			return
		}
		q, err := exchange.ParseQuery(req.RawQuery)
		if err != nil {
			s.reject(w, r, req, key, exchange.AsError(err))
			return
		}
		var body any
		if len(req.Body) > 0 {
			if body, err = parseJSON(req.Body); err != nil {
				s.reject(w, r, req, key, exchange.Errorf(exchange.ErrBadRequest, "Json data format error"))
				return
			}
		}
		s.kit.Record(sim.Logged{
			Method: r.Method, Path: req.Path, RawQuery: req.RawQuery, Header: r.Header.Clone(), Body: req.Body,
			APIKey: key, Verified: true,
		})
		h(w, &simCall{acc: acc, query: q, body: body})
	})
}

func ok(w http.ResponseWriter, data ...any) {
	if data == nil {
		data = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": "0", "msg": "", "data": data})
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *Simulator) serverTime(w http.ResponseWriter, _ *simCall) {
	ok(w, map[string]string{"ts": unixMilli(s.kit.Now())})
}

func (s *Simulator) ticker(w http.ResponseWriter, c *simCall) {
	inst := c.query.Get("instId")
	if inst == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter instId can not be empty"))
		return
	}
	p := s.kit.Price(inst)
	ok(w, map[string]string{
		"instType": "SPOT", "instId": inst, "last": fmtNum(p), "askPx": fmtNum(p * 1.0005),
		"bidPx": fmtNum(p * 0.9995), "ts": unixMilli(s.kit.Now()),
	})
}

func (s *Simulator) balance(w http.ResponseWriter, c *simCall) {
	s.mu.Lock()
	ccys := make([]string, 0, len(c.acc.Balances))
	for ccy := range c.acc.Balances {
		ccys = append(ccys, ccy)
	}
	sort.Strings(ccys)
	details := make([]map[string]string, 0, len(ccys))
	for _, ccy := range ccys {
		b := fmtNum(c.acc.Balances[ccy])
		details = append(details, map[string]string{"ccy": ccy, "availBal": b, "cashBal": b, "eq": b, "frozenBal": "0"})
	}
	s.mu.Unlock()
	ok(w, map[string]any{"uTime": unixMilli(s.kit.Now()), "totalEq": "", "details": details})
}

func (s *Simulator) config(w http.ResponseWriter, c *simCall) {
	var perms []string
	for _, p := range []struct{ sim, okx string }{{"read", "read_only"}, {"trade", "trade"}, {"withdraw", "withdraw"}} {
		if c.acc.Allowed(p.sim) {
			perms = append(perms, p.okx)
		}
	}
	ok(w, map[string]string{
		"uid": "44705892343619584", "mainUid": "44705892343619584", "acctLv": "2", "posMode": "net_mode",
		"label": "keywarden-sim", "ip": strings.Join(c.acc.IPs, ","), "perm": strings.Join(perms, ","), "type": "0",
	})
}

// simChains are the withdrawal chains the simulator lists per currency.
var simChains = map[string][]string{
	"BTC": {"BTC-Bitcoin"}, "ETH": {"ETH-ERC20"}, "USDT": {"USDT-TRC20", "USDT-ERC20"}, "USDC": {"USDC-ERC20"},
}

func (s *Simulator) currencies(w http.ResponseWriter, c *simCall) {
	ccys := make([]string, 0, len(simChains))
	for ccy := range simChains {
		ccys = append(ccys, ccy)
	}
	sort.Strings(ccys)
	var out []any
	for _, ccy := range ccys {
		for i, chain := range simChains[ccy] {
			out = append(out, map[string]any{
				"ccy": ccy, "name": ccy, "chain": chain, "canDep": true, "canWd": true, "canInternal": true,
				"minWd": "0.0001", "maxWd": "1000000", "minFee": "0.0001", "maxFee": "0.001", "wdTickSz": "8",
				"mainNet": i == 0, "logoLink": "",
			})
		}
	}
	ok(w, out...)
}

func (s *Simulator) openOrders(w http.ResponseWriter, c *simCall) {
	inst := c.query.Get("instId")
	out := []any{}
	for _, o := range s.kit.Orders(c.acc.Key.APIKey) {
		if o.Status != "NEW" || inst != "" && o.Symbol != inst {
			continue
		}
		out = append(out, map[string]string{
			"instId": o.Symbol, "ordId": o.ID, "clOrdId": o.ClientOrderID, "side": o.Side, "ordType": o.Type,
			"sz": fmtNum(o.Quantity), "px": fmtNum(o.Price), "state": "live", "cTime": unixMilli(o.Created),
		})
	}
	ok(w, out...)
}

func (s *Simulator) placeOrder(w http.ResponseWriter, c *simCall) {
	var entries []any
	switch b := c.body.(type) {
	case map[string]any:
		entries = []any{b}
	case []any:
		entries = b
	}
	if len(entries) == 0 || len(entries) > maxBatch {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Body can not be empty"))
		return
	}
	results := make([]any, 0, len(entries))
	failed := 0
	for _, e := range entries {
		o, isObj := e.(map[string]any)
		var call exchange.Call
		var err error
		if isObj {
			err = newOrder(o, &call)
		}
		if !isObj || err != nil || call.Orders[0].Symbol == "" || call.Orders[0].Side == "" ||
			call.Orders[0].Type == "" || call.Orders[0].Quantity+call.Orders[0].QuoteQuantity <= 0 {
			failed++
			results = append(results, map[string]string{"ordId": "", "clOrdId": "", "sCode": "51000", "sMsg": "Parameter error"})
			continue
		}
		ord := call.Orders[0]
		status := "NEW"
		if ord.Type == "market" {
			status = "FILLED"
		}
		qty := ord.Quantity
		if qty == 0 && ord.QuoteQuantity > 0 {
			qty = ord.QuoteQuantity / s.kit.Price(ord.Symbol)
		}
		placed := s.kit.PlaceOrder(sim.Order{
			ClientOrderID: ord.ClientOrderID, APIKey: c.acc.Key.APIKey, Symbol: ord.Symbol, Side: string(ord.Side),
			Type: ord.Type, Quantity: qty, Price: ord.Price, Status: status,
		})
		results = append(results, map[string]string{"ordId": placed.ID, "clOrdId": placed.ClientOrderID, "tag": "", "sCode": "0", "sMsg": "Order placed"})
	}
	code := "0"
	switch {
	case failed == len(entries):
		code = "1"
	case failed > 0:
		code = "2"
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": code, "msg": "", "data": results,
		"inTime": unixMilli(s.kit.Now()), "outTime": unixMilli(s.kit.Now())})
}

func (s *Simulator) cancelOrder(w http.ResponseWriter, c *simCall) {
	o, isObj := c.body.(map[string]any)
	if !isObj {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Body can not be empty"))
		return
	}
	f := objFields(o)
	vals, err := getStrings(f, "ordId", "clOrdId")
	if err != nil || vals[0] == "" && vals[1] == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Either client order ID or order ID is required"))
		return
	}
	got, found := s.kit.CancelOrder(c.acc.Key.APIKey, vals[0], vals[1])
	if !found {
		writeJSON(w, http.StatusOK, map[string]any{"code": "1", "msg": "", "data": []any{map[string]string{
			"ordId": vals[0], "clOrdId": vals[1], "sCode": "51400",
			"sMsg": "Cancellation failed as the order has been filled, canceled or does not exist"}}})
		return
	}
	ok(w, map[string]string{"ordId": got.ID, "clOrdId": got.ClientOrderID, "sCode": "0", "sMsg": ""})
}

func (s *Simulator) setLeverage(w http.ResponseWriter, c *simCall) {
	o, isObj := c.body.(map[string]any)
	if !isObj {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Body can not be empty"))
		return
	}
	vals, err := getStrings(objFields(o), "instId", "lever", "mgnMode", "posSide")
	if err != nil || vals[1] == "" || vals[2] == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter lever or mgnMode can not be empty"))
		return
	}
	ok(w, map[string]string{"instId": vals[0], "lever": vals[1], "mgnMode": vals[2], "posSide": vals[3]})
}

func (s *Simulator) withdraw(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := withdrawal(c.body, &call); err != nil {
		s.errs.WriteError(w, exchange.AsError(err))
		return
	}
	t := call.Transfer
	if t.Asset == "" || t.Amount <= 0 || t.Address == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter ccy, amt or toAddr can not be empty"))
		return
	}
	if !s.debit(c.acc, t.Asset, t.Amount) {
		writeJSON(w, http.StatusOK, map[string]any{"code": "58350", "msg": "Insufficient balance", "data": []any{}})
		return
	}
	clientID, _ := objFields(c.body.(map[string]any)).Str("clientId")
	ok(w, map[string]string{"amt": fmtNum(t.Amount), "wdId": strconv.FormatInt(s.kit.Now().UnixNano()%1e9, 10),
		"ccy": t.Asset, "clientId": clientID, "chain": t.Network})
}

func (s *Simulator) transfer(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := transfer(c.body, &call); err != nil {
		s.errs.WriteError(w, exchange.AsError(err))
		return
	}
	t := call.Transfer
	if t.Asset == "" || t.Amount <= 0 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter ccy or amt can not be empty"))
		return
	}
	ok(w, map[string]string{"transId": strconv.FormatInt(s.kit.Now().UnixNano()%1e9, 10), "ccy": t.Asset, "amt": fmtNum(t.Amount)})
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

// createSubKey serves POST /api/v5/users/subaccount/apikey for a master
// key: a new sub-account key with read_only and/or trade (OKX grants no
// withdraw by API), the passphrase the request chose, and the IPs given.
func (s *Simulator) createSubKey(w http.ResponseWriter, c *simCall) {
	f, _ := c.body.(map[string]any)
	fields := objFields(f)
	sub, _ := fields.Str("subAcct")
	label, _ := fields.Str("label")
	pass, _ := fields.Str("passphrase")
	perm, _ := fields.Str("perm")
	ip, _ := fields.Str("ip")
	if sub == "" || label == "" || len(pass) < 8 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter subAcct, label or passphrase error"))
		return
	}
	perms := map[string]bool{"read": true}
	for _, p := range strings.Split(perm, ",") {
		switch p {
		case "read_only", "":
		case "trade":
			perms["trade"] = true
		default:
			s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter perm error"))
			return
		}
	}
	var ips []string
	if ip != "" {
		ips = strings.Split(ip, ",")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrUnavailable, "System error"))
		return
	}
	key := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	secret := strings.ToUpper(hex.EncodeToString(b[16:32]))
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret),
		Passphrase: exchange.Secret(pass), Account: sub}, Permissions: perms, IPs: ips})
	s.mu.Lock()
	s.subKeys[key] = [2]string{c.acc.Key.APIKey, sub}
	s.mu.Unlock()
	ok(w, map[string]string{"subAcct": sub, "label": label, "apiKey": key, "secretKey": secret, "passphrase": pass,
		"perm": perm, "ip": ip, "ts": unixMilli(s.kit.Now())})
}

// deleteSubKey serves POST /api/v5/users/subaccount/delete-apikey: the
// master key that made a sub-account key deletes it.
func (s *Simulator) deleteSubKey(w http.ResponseWriter, c *simCall) {
	f, _ := c.body.(map[string]any)
	fields := objFields(f)
	sub, _ := fields.Str("subAcct")
	key, _ := fields.Str("apiKey")
	s.mu.Lock()
	made, found := s.subKeys[key]
	if found && made == [2]string{c.acc.Key.APIKey, sub} {
		delete(s.subKeys, key)
	}
	s.mu.Unlock()
	if !found || made != [2]string{c.acc.Key.APIKey, sub} || !s.kit.RemoveAccount(key) {
		writeJSON(w, http.StatusOK, map[string]any{"code": "59509", "msg": "API key does not exist", "data": []any{}})
		return
	}
	ok(w, map[string]string{"subAcct": sub})
}
