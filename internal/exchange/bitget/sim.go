package bitget

import (
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

// Simulator is a Bitget v2 REST simulator for tests. It verifies the
// ACCESS-* signature (HMAC, or RSA for accounts whose Key is RSA),
// timestamp, passphrase, IP and key permissions from the raw bytes it
// receives, logs every request in the kit, and answers in Bitget's shapes.
// Permissions are "read", "trade", "withdraw" and "transfer"; "admin" marks
// a main account's key, which creates, modifies and lists virtual
// sub-account keys when it has an IP allowlist. A Simulator is safe for
// concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler
	mu      sync.Mutex // guards account balances
	errs    errorWriter

	keysMu   sync.Mutex            // guards subKeys and keyOrder
	subKeys  map[string]*simSubKey // sub-account keys made through the API
	keyOrder []string
}

// NewSimulator returns a Simulator serving kit's accounts.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, subKeys: map[string]*simSubKey{}}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v2/public/time", s.public(s.serverTime))
	mux.Handle("GET /api/v2/spot/market/tickers", s.public(s.ticker))
	mux.Handle("GET /api/v2/spot/account/assets", s.private("read", s.assets))
	mux.Handle("GET /api/v2/spot/account/info", s.private("", s.info))
	mux.Handle("GET /api/v3/account/settings", s.private("", s.utaSettings))
	mux.Handle("GET /api/v2/spot/trade/unfilled-orders", s.private("read", s.openOrders))
	mux.Handle("POST /api/v2/spot/trade/place-order", s.private("trade", s.placeOrder))
	mux.Handle("POST /api/v2/spot/trade/cancel-order", s.private("trade", s.cancelOrder))
	mux.Handle("POST /api/v2/spot/trade/batch-cancel-order", s.private("trade", s.batchCancel))
	mux.Handle("POST /api/v2/mix/order/cancel-all-orders", s.private("trade", s.cancelAllFutures))
	mux.Handle("POST /api/v2/spot/wallet/withdrawal", s.private("withdraw", s.withdraw))
	mux.Handle("POST /api/v2/spot/wallet/transfer", s.private("transfer", s.transfer))
	mux.Handle("POST "+pathCreateKey, s.private("", s.createSubKey))
	mux.Handle("POST "+pathModifyKey, s.private("", s.modifySubKey))
	mux.Handle("GET "+pathListKeys, s.private("", s.listSubKeys))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reject(w, r, nil, "", exchange.Errorf(exchange.ErrNotFound, "Request URL NOT FOUND"))
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

// private authenticates as Bitget does, then checks perm ("" for any key).
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
			s.reject(w, r, req, "", exchange.Errorf(exchange.ErrAuth, "ACCESS_KEY cannot be empty"))
			return
		}
		acc, ok := s.kit.Account(key)
		if !ok {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrAuth, "Invalid ACCESS_KEY"))
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
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrIP, "Invalid IP"))
			return
		}
		if perm != "" && !acc.Allowed(perm) {
			s.reject(w, r, req, key, exchange.Errorf(exchange.ErrPermission, "Incorrect permissions"))
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
				s.reject(w, r, req, key, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
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

func (s *Simulator) ok(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, reply{Code: "00000", Msg: "success", RequestTime: s.kit.Now().UnixMilli(), Data: data})
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (s *Simulator) serverTime(w http.ResponseWriter, _ *simCall) {
	s.ok(w, map[string]string{"serverTime": unixMilli(s.kit.Now())})
}

func (s *Simulator) ticker(w http.ResponseWriter, c *simCall) {
	sym := c.query.Get("symbol")
	if sym == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter symbol cannot be empty"))
		return
	}
	p := s.kit.Price(sym)
	s.ok(w, []map[string]string{{
		"symbol": sym, "lastPr": fmtNum(p), "askPr": fmtNum(p * 1.0005), "bidPr": fmtNum(p * 0.9995), "ts": unixMilli(s.kit.Now()),
	}})
}

func (s *Simulator) assets(w http.ResponseWriter, c *simCall) {
	s.mu.Lock()
	coins := make([]string, 0, len(c.acc.Balances))
	for coin := range c.acc.Balances {
		coins = append(coins, coin)
	}
	sort.Strings(coins)
	want := c.query.Get("coin")
	out := make([]map[string]string, 0, len(coins))
	for _, coin := range coins {
		if want != "" && coin != want {
			continue
		}
		out = append(out, map[string]string{"coin": coin, "available": fmtNum(c.acc.Balances[coin]), "frozen": "0",
			"locked": "0", "limitAvailable": "0", "uTime": unixMilli(s.kit.Now())})
	}
	s.mu.Unlock()
	s.ok(w, out)
}

func (s *Simulator) info(w http.ResponseWriter, c *simCall) {
	var auth []string
	// Bitget's documented codes: stor spot read-only, stow spot
	// read-write, wtow wallet transfer, wwow wallet withdrawal.
	for _, p := range []struct{ sim, bitget string }{{"read", "stor"}, {"trade", "stow"}, {"transfer", "wtow"}, {"withdraw", "wwow"}} {
		if c.acc.Allowed(p.sim) {
			auth = append(auth, p.bitget)
		}
	}
	s.ok(w, map[string]any{"userId": "8150150245", "inviterId": "", "ips": strings.Join(c.acc.IPs, ","),
		"authorities": auth, "parentId": 0, "traderType": "", "regisTime": unixMilli(c.acc.Created)})
}

// utaSettings answers as for a classic (not unified) account, which ccxt
// probes before withdrawals and futures calls. Bitget's exact error code for
// this case is not documented; the simulator uses 40084.
func (s *Simulator) utaSettings(w http.ResponseWriter, _ *simCall) {
	writeJSON(w, http.StatusBadRequest, reply{Code: "40084", Msg: "The account is not a unified trading account",
		RequestTime: s.kit.Now().UnixMilli()})
}

func (s *Simulator) openOrders(w http.ResponseWriter, c *simCall) {
	sym := c.query.Get("symbol")
	out := []map[string]string{}
	for _, o := range s.kit.Orders(c.acc.Key.APIKey) {
		if o.Status != "NEW" || sym != "" && o.Symbol != sym {
			continue
		}
		out = append(out, map[string]string{"symbol": o.Symbol, "orderId": o.ID, "clientOid": o.ClientOrderID,
			"side": o.Side, "orderType": o.Type, "size": fmtNum(o.Quantity), "price": fmtNum(o.Price), "priceAvg": "0",
			"baseVolume": "0", "quoteVolume": "0", "uTime": unixMilli(o.Created),
			"status": "live", "cTime": unixMilli(o.Created)})
	}
	s.ok(w, out)
}

func (s *Simulator) placeOrder(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := one(spotOrder)(c.body, &call); err != nil {
		s.errs.WriteError(w, exchange.AsError(err))
		return
	}
	ord := call.Orders[0]
	if ord.Symbol == "" || ord.Side == "" || ord.Type == "" || ord.Quantity+ord.QuoteQuantity <= 0 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
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
	s.ok(w, map[string]string{"orderId": placed.ID, "clientOid": placed.ClientOrderID})
}

func (s *Simulator) cancelOrder(w http.ResponseWriter, c *simCall) {
	o, isObj := c.body.(map[string]any)
	if !isObj {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	vals, err := getStrings(objFields(o), "orderId", "clientOid")
	if err != nil || vals[0] == "" && vals[1] == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	got, found := s.kit.CancelOrder(c.acc.Key.APIKey, vals[0], vals[1])
	if !found {
		writeJSON(w, http.StatusBadRequest, reply{Code: "43001", Msg: "The order does not exist", RequestTime: s.kit.Now().UnixMilli()})
		return
	}
	s.ok(w, map[string]string{"orderId": got.ID, "clientOid": got.ClientOrderID})
}

func (s *Simulator) withdraw(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := one(withdrawal)(c.body, &call); err != nil {
		s.errs.WriteError(w, exchange.AsError(err))
		return
	}
	t := call.Transfer
	if t.Asset == "" || t.Amount <= 0 || t.Address == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	if !s.debit(c.acc, t.Asset, t.Amount) {
		writeJSON(w, http.StatusBadRequest, reply{Code: "43012", Msg: "Insufficient balance", RequestTime: s.kit.Now().UnixMilli()})
		return
	}
	clientOid, _ := objFields(c.body.(map[string]any)).Str("clientOid")
	s.ok(w, map[string]string{"orderId": strconv.FormatInt(s.kit.Now().UnixNano()%1e9, 10), "clientOid": clientOid})
}

func (s *Simulator) transfer(w http.ResponseWriter, c *simCall) {
	var call exchange.Call
	if err := one(transfer)(c.body, &call); err != nil {
		s.errs.WriteError(w, exchange.AsError(err))
		return
	}
	t := call.Transfer
	if t.Asset == "" || t.Amount <= 0 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	s.ok(w, map[string]string{"transferId": strconv.FormatInt(s.kit.Now().UnixNano()%1e9, 10), "clientOid": ""})
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
