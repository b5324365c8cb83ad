package krakenfutures

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// maxSimBody is the largest request body the simulator reads.
const maxSimBody = 1 << 20

// Simulator is an offline Kraken Futures REST API for tests. It verifies
// every private request from the raw received bytes as Kraken Futures does
// (spec §16): APIKey lookup, Authent over the raw parameters, optional Nonce
// and endpoint path, nonces strictly increasing per key when sent, key
// permissions ("read", "trade", "withdraw", "transfer") and IP restriction.
// A Simulator is safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu     sync.Mutex
	nonces map[string]uint64
	balMu  sync.Mutex
}

// NewSimulator returns a Kraken Futures simulator over kit.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, nonces: map[string]uint64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /derivatives/api/v3/tickers", s.handleTickers)
	mux.HandleFunc("GET /derivatives/api/v3/tickers/{symbol}", s.handleTickers)
	mux.HandleFunc("GET /derivatives/api/v3/accounts", s.private("read", s.handleAccounts))
	mux.HandleFunc("GET /derivatives/api/v3/openorders", s.private("read", s.handleOpenOrders))
	mux.HandleFunc("POST /derivatives/api/v3/sendorder", s.private("trade", s.handleSendOrder))
	mux.HandleFunc("POST /derivatives/api/v3/cancelorder", s.private("trade", s.handleCancelOrder))
	mux.HandleFunc("POST /derivatives/api/v3/cancelallorders", s.private("trade", s.handleCancelAll))
	mux.HandleFunc("POST /derivatives/api/v3/withdrawal", s.private("withdraw", s.handleWithdrawal))
	mux.HandleFunc("GET "+keyCheckPath, s.private("", s.handleKeyCheck))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil, "", errNotFound)
		s.fail(w, http.StatusNotFound, errNotFound)
	})
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves the Kraken Futures API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Simulator) record(r *http.Request, body []byte, key, errMsg string) {
	s.kit.Record(sim.Logged{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
		Body: body, APIKey: key, Verified: key != "", Error: errMsg,
	})
}

func (s *Simulator) fail(w http.ResponseWriter, status int, code string) {
	writeFuturesError(w, status, code, "", s.kit.Now())
}

func (s *Simulator) success(w http.ResponseWriter, fields map[string]any) {
	fields["result"] = "success"
	fields["serverTime"] = serverTime(s.kit.Now())
	b, _ := json.Marshal(fields)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Simulator) handleTickers(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil, "", "")
	symbols := []string{"PF_XBTUSD", "PI_XBTUSD", "PF_ETHUSD"}
	if sym := r.PathValue("symbol"); sym != "" {
		symbols = []string{sym}
	}
	var tickers []map[string]any
	for _, sym := range symbols {
		p := s.kit.Price(sym)
		tickers = append(tickers, map[string]any{"symbol": sym, "last": p, "markPrice": p, "bid": p, "ask": p, "vol24h": 1000, "suspended": false})
	}
	if r.PathValue("symbol") != "" {
		s.success(w, map[string]any{"ticker": tickers[0]})
		return
	}
	s.success(w, map[string]any{"tickers": tickers})
}

// privateHandler serves an authenticated request.
type privateHandler func(w http.ResponseWriter, acc *sim.Account, key string, p fields) (status int, code string)

// private authenticates the request as Kraken Futures does, checks that the
// key has perm, and runs h.
func (s *Simulator) private(perm string, h privateHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
		if err != nil {
			s.record(r, nil, "", "body too large")
			s.fail(w, http.StatusRequestEntityTooLarge, errInvalidArgument)
			return
		}
		acc, key, params, err := s.authenticate(r, body)
		if err != nil {
			s.record(r, body, "", err.Error())
			status := http.StatusUnauthorized
			if err.Error() == errInvalidArgument {
				status = http.StatusBadRequest
			}
			s.fail(w, status, err.Error())
			return
		}
		if perm != "" && !acc.Allowed(perm) {
			s.record(r, body, key, errPermission)
			s.fail(w, http.StatusForbidden, errPermission)
			return
		}
		status, code := h(w, acc, key, params)
		if code != "" {
			s.record(r, body, key, code)
			s.fail(w, status, code)
			return
		}
		s.record(r, body, key, "")
	}
}

func (s *Simulator) authenticate(r *http.Request, body []byte) (*sim.Account, string, fields, error) {
	keys := r.Header.Values("APIKey")
	if len(keys) != 1 {
		return nil, "", nil, errors.New(errAuthentication)
	}
	acc, ok := s.kit.Account(keys[0])
	if !ok || !acc.IPAllowed(r.RemoteAddr) {
		return nil, "", nil, errors.New(errAuthentication)
	}
	req := &exchange.Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	pd, err := postData(req)
	if err != nil {
		return nil, "", nil, errors.New(errInvalidArgument)
	}
	ep, err := endpointPath(req.Path)
	if err != nil {
		return nil, "", nil, errors.New(errInvalidArgument)
	}
	nonces := r.Header.Values("Nonce")
	var nonce uint64
	var nonceBytes []byte
	if len(nonces) > 1 {
		return nil, "", nil, errors.New(errNonceBelow)
	}
	if len(nonces) == 1 {
		nonce, err = strconv.ParseUint(nonces[0], 10, 64)
		if err != nil || nonce == 0 {
			return nil, "", nil, errors.New(errNonceBelow)
		}
		nonceBytes = []byte(nonces[0])
	}
	sigs := r.Header.Values("Authent")
	if len(sigs) != 1 {
		return nil, "", nil, errors.New(errAuthentication)
	}
	got, err := base64.StdEncoding.DecodeString(sigs[0])
	secret, err2 := base64.StdEncoding.DecodeString(string(acc.Key.Secret))
	if err != nil || err2 != nil || !hmac.Equal(got, authent(secret, pd, nonceBytes, ep)) {
		return nil, "", nil, errors.New(errAuthentication)
	}
	params, err := requestParams(req)
	if err != nil {
		return nil, "", nil, errors.New(errInvalidArgument)
	}
	if nonce != 0 {
		s.mu.Lock()
		fresh := nonce > s.nonces[keys[0]]
		if fresh {
			s.nonces[keys[0]] = nonce
		}
		s.mu.Unlock()
		if !fresh {
			return nil, "", nil, errors.New(errNonceBelow)
		}
	}
	return acc, keys[0], params, nil
}

func (s *Simulator) handleAccounts(w http.ResponseWriter, acc *sim.Account, _ string, _ fields) (int, string) {
	currencies := map[string]any{}
	s.balMu.Lock()
	for asset, amt := range acc.Balances {
		currencies[asset] = map[string]any{"quantity": amt, "value": amt * s.kit.Price(asset+"USD"), "available": amt}
	}
	s.balMu.Unlock()
	s.success(w, map[string]any{"accounts": map[string]any{
		"flex": map[string]any{"type": "multiCollateralMarginAccount", "currencies": currencies},
	}})
	return 0, ""
}

func (s *Simulator) handleOpenOrders(w http.ResponseWriter, _ *sim.Account, key string, _ fields) (int, string) {
	open := []map[string]any{}
	for _, o := range s.kit.Orders(key) {
		if o.Status != "NEW" {
			continue
		}
		open = append(open, map[string]any{
			"order_id": o.ID, "cliOrdId": o.ClientOrderID, "symbol": o.Symbol, "side": o.Side,
			"orderType": o.Type, "limitPrice": o.Price, "unfilledSize": o.Quantity, "filledSize": 0,
			"receivedTime": serverTime(o.Created), "status": "untouched",
		})
	}
	s.success(w, map[string]any{"openOrders": open})
	return 0, ""
}

func (s *Simulator) handleSendOrder(w http.ResponseWriter, _ *sim.Account, key string, p fields) (int, string) {
	o, err := orderFrom(p)
	size := o.Quantity + o.QuoteQuantity
	if err != nil || o.Symbol == "" || size <= 0 || o.Type == "" {
		return http.StatusBadRequest, errInvalidArgument
	}
	if o.Type == "lmt" && o.Price <= 0 {
		return http.StatusBadRequest, errInvalidArgument
	}
	status, state := "NEW", "placed"
	if o.Type == "mkt" {
		status = "FILLED"
	}
	placed := s.kit.PlaceOrder(sim.Order{ClientOrderID: o.ClientOrderID, APIKey: key, Symbol: o.Symbol, Side: string(o.Side), Type: o.Type, Quantity: size, Price: o.Price, Status: status})
	s.success(w, map[string]any{"sendStatus": map[string]any{
		"order_id": placed.ID, "cliOrdId": o.ClientOrderID, "status": state, "receivedTime": serverTime(placed.Created),
		"orderEvents": []map[string]any{{"type": "PLACE", "order": map[string]any{
			"orderId": placed.ID, "cliOrdId": o.ClientOrderID, "type": o.Type, "symbol": o.Symbol, "side": o.Side,
			"quantity": size, "filled": 0, "limitPrice": o.Price, "reduceOnly": o.ReduceOnly,
		}}},
	}})
	return 0, ""
}

func (s *Simulator) handleCancelOrder(w http.ResponseWriter, _ *sim.Account, key string, p fields) (int, string) {
	id, cli := p.str("order_id"), p.str("cliOrdId")
	if id == "" && cli == "" {
		return http.StatusBadRequest, errRequiredArg
	}
	o, ok := s.kit.CancelOrder(key, id, cli)
	if !ok {
		s.success(w, map[string]any{"cancelStatus": map[string]any{"status": "notFound", "receivedTime": serverTime(s.kit.Now())}})
		return 0, ""
	}
	s.success(w, map[string]any{"cancelStatus": map[string]any{"status": "cancelled", "order_id": o.ID, "cliOrdId": o.ClientOrderID, "receivedTime": serverTime(s.kit.Now())}})
	return 0, ""
}

func (s *Simulator) handleWithdrawal(w http.ResponseWriter, acc *sim.Account, _ string, p fields) (int, string) {
	asset, amount := strings.ToUpper(p.str("currency")), p.float("amount")
	if asset == "" || amount <= 0 {
		return http.StatusBadRequest, errInvalidArgument
	}
	s.balMu.Lock()
	ok := acc.Balances[asset] >= amount
	if ok {
		acc.Balances[asset] -= amount
	}
	s.balMu.Unlock()
	if !ok {
		return http.StatusBadRequest, errInsufficient
	}
	s.success(w, map[string]any{})
	return 0, ""
}

// handleKeyCheck answers the API key check. It is not wrapped in the
// result/serverTime envelope, as on the real host.
func (s *Simulator) handleKeyCheck(w http.ResponseWriter, acc *sim.Account, key string, _ fields) (int, string) {
	general := "NO_ACCESS"
	switch {
	case acc.Allowed("trade"):
		general = "FULL_ACCESS"
	case acc.Allowed("read"):
		general = "READ_ONLY"
	}
	withdrawal := "NO_ACCESS"
	if acc.Allowed("withdraw") {
		withdrawal = "FULL_ACCESS"
	}
	ips := acc.IPs
	if ips == nil {
		ips = []string{}
	}
	var single *string
	if len(ips) > 0 {
		single = &ips[0]
	}
	b, _ := json.Marshal(keyCheck{
		APIKey: key, AccountUID: "3c90c3cc-0d44-4b50-8888-8dd25736052a", CreatedAt: acc.Created.UTC(),
		Permissions:      map[string]any{"general": general, "withdrawal": withdrawal},
		AllowedCidrBlock: single, AllowedCidrBlocks: ips,
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return 0, ""
}
