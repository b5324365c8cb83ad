package kraken

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
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
const maxSimBody = 1 << 20

// Simulator is an offline Kraken spot REST API for tests. It verifies every
// private request from the raw received bytes as Kraken does (spec §16):
// API-Key lookup, API-Sign over path and body, a nonce strictly above the
// key's last nonce, key permissions and IP restriction. Account permissions
// are the kit's "read", "trade", "withdraw" and "transfer". A Simulator is
// safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu     sync.Mutex
	nonces map[string]uint64

	// balMu guards account balances, which the kit hands out by pointer.
	balMu sync.Mutex
}

// NewSimulator returns a Kraken simulator over kit.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, nonces: map[string]uint64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/0/public/Time", s.handleTime)
	mux.HandleFunc("/0/public/Ticker", s.handleTicker)
	mux.HandleFunc("POST /0/private/{method...}", s.handlePrivate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil, "", "unknown method")
		writeKrakenError(w, http.StatusNotFound, errUnknownMethod, "")
	})
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves the Kraken API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Simulator) record(r *http.Request, body []byte, key, errMsg string) {
	s.kit.Record(sim.Logged{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
		Body: body, APIKey: key, Verified: key != "", Error: errMsg,
	})
}

func writeResult(w http.ResponseWriter, result any) {
	b, err := json.Marshal(struct {
		Error  []string `json:"error"`
		Result any      `json:"result"`
	}{Error: []string{}, Result: result})
	if err != nil {
		writeKrakenError(w, http.StatusInternalServerError, errInternal, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Simulator) handleTime(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil, "", "")
	now := s.kit.Now()
	writeResult(w, map[string]any{"unixtime": now.Unix(), "rfc1123": now.UTC().Format(time.RFC1123)})
}

func (s *Simulator) handleTicker(w http.ResponseWriter, r *http.Request) {
	ps, err := exchange.ParseQuery(r.URL.RawQuery)
	if err != nil || ps.Get("pair") == "" {
		s.record(r, nil, "", "bad pair")
		writeKrakenError(w, http.StatusOK, "EQuery:Unknown asset pair", "")
		return
	}
	s.record(r, nil, "", "")
	out := map[string]any{}
	for pair := range strings.SplitSeq(ps.Get("pair"), ",") {
		p := fmtNum(s.kit.Price(pair))
		out[pair] = map[string]any{
			"a": []string{p, "1", "1.000"}, "b": []string{p, "1", "1.000"},
			"c": []string{p, "0.10000000"}, "v": []string{"100", "1000"},
			"p": []string{p, p}, "t": []int{10, 100}, "l": []string{p, p}, "h": []string{p, p}, "o": p,
		}
	}
	writeResult(w, out)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// authenticate verifies r as Kraken does and returns its account and the
// parsed body parameters.
func (s *Simulator) authenticate(r *http.Request, body []byte) (*sim.Account, fields, string, error) {
	keys := r.Header.Values("API-Key")
	if len(keys) != 1 || keys[0] == "" {
		return nil, nil, "", errors.New(errInvalidKey)
	}
	acc, ok := s.kit.Account(keys[0])
	if !ok {
		return nil, nil, "", errors.New(errInvalidKey)
	}
	if !acc.IPAllowed(r.RemoteAddr) {
		return nil, nil, "", errors.New(errPermission)
	}
	req := &exchange.Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	nonceStr, err := bodyNonce(req)
	if err != nil {
		if exchange.AsError(err).Kind == exchange.ErrTimestamp {
			return nil, nil, "", errors.New(errInvalidNonce)
		}
		return nil, nil, "", errors.New(errInvalidArguments)
	}
	nonce, err := strconv.ParseUint(nonceStr, 10, 64)
	if err != nil || nonce == 0 {
		return nil, nil, "", errors.New(errInvalidNonce)
	}
	signs := r.Header.Values("API-Sign")
	if len(signs) != 1 {
		return nil, nil, "", errors.New(errInvalidSignature)
	}
	got, err := base64.StdEncoding.DecodeString(signs[0])
	secret, err2 := base64.StdEncoding.DecodeString(string(acc.Key.Secret))
	if err != nil || err2 != nil || !hmac.Equal(got, rawSign(secret, r.URL.Path, []byte(nonceStr), body)) {
		return nil, nil, "", errors.New(errInvalidSignature)
	}
	s.mu.Lock()
	fresh := nonce > s.nonces[keys[0]]
	if fresh {
		s.nonces[keys[0]] = nonce
	}
	s.mu.Unlock()
	if !fresh {
		return nil, nil, "", errors.New(errInvalidNonce)
	}
	params, err := requestParams(req)
	if err != nil {
		return nil, nil, "", errors.New(errInvalidArguments)
	}
	return acc, params, keys[0], nil
}

// permissionFor names the kit permission a private method needs ("" for
// none).
func permissionFor(method string) string {
	m := strings.ToLower(method)
	if m == "getapikeyinfo" {
		return ""
	}
	switch privateScopes[m] {
	case exchange.ScopeRead:
		return "read"
	case exchange.ScopeTrade:
		return "trade"
	case exchange.ScopeTransfer:
		return "transfer"
	case exchange.ScopeWithdraw:
		return "withdraw"
	}
	return "admin"
}

func (s *Simulator) handlePrivate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	if err != nil {
		s.record(r, nil, "", "body too large")
		writeKrakenError(w, http.StatusRequestEntityTooLarge, errInvalidArguments, "")
		return
	}
	if r.URL.RawQuery != "" {
		s.record(r, body, "", "query string")
		writeKrakenError(w, http.StatusOK, errInvalidArguments, "")
		return
	}
	acc, params, key, err := s.authenticate(r, body)
	if err != nil {
		s.record(r, body, "", err.Error())
		writeKrakenError(w, http.StatusOK, err.Error(), "")
		return
	}
	method := r.PathValue("method")
	if perm := permissionFor(method); perm != "" && !acc.Allowed(perm) {
		s.record(r, body, key, errPermission)
		writeKrakenError(w, http.StatusOK, errPermission, "")
		return
	}
	var result any
	var failure string
	switch method {
	case "Balance":
		out := map[string]string{}
		for asset, amt := range s.balances(key) {
			out[krakenAsset(asset)] = strconv.FormatFloat(amt, 'f', 10, 64)
		}
		result = out
	case "BalanceEx":
		// Extended balance: the total and the part held by open orders
		// (Kraken's Get Extended Balance).
		held := s.heldByOrders(key)
		out := map[string]map[string]string{}
		for asset, amt := range s.balances(key) {
			out[krakenAsset(asset)] = map[string]string{
				"balance":    strconv.FormatFloat(amt, 'f', 10, 64),
				"hold_trade": strconv.FormatFloat(held[asset], 'f', 10, 64),
			}
		}
		result = out
	case "AddOrder":
		result, failure = s.addOrder(key, params)
	case "CancelOrder":
		txid := params.str("txid")
		_, ok := s.kit.CancelOrder(key, txid, params.str("cl_ord_id"))
		if !ok {
			failure = "EOrder:Unknown order"
		} else {
			result = map[string]any{"count": 1}
		}
	case "CancelAll":
		result = map[string]any{"count": len(s.kit.CancelAll(key, nil))}
	case "OpenOrders":
		open := map[string]any{}
		for _, o := range s.kit.Orders(key) {
			if o.Status != "NEW" {
				continue
			}
			open[o.ID] = map[string]any{
				"status": "open", "cl_ord_id": o.ClientOrderID, "opentm": float64(o.Created.UnixMilli()) / 1000,
				"vol": fmtNum(o.Quantity), "vol_exec": "0.00000000",
				"descr": map[string]any{"pair": o.Symbol, "type": o.Side, "ordertype": o.Type, "price": fmtNum(o.Price)},
			}
		}
		result = map[string]any{"open": open}
	case "GetApiKeyInfo":
		s.mu.Lock()
		last := s.nonces[key]
		s.mu.Unlock()
		result = keyInfo(acc, key, last, s.kit.Now())
	case "Withdraw":
		result, failure = s.withdraw(acc, key, params)
	default:
		s.record(r, body, key, "unknown method")
		writeKrakenError(w, http.StatusNotFound, errUnknownMethod, "")
		return
	}
	if failure != "" {
		s.record(r, body, key, failure)
		writeKrakenError(w, http.StatusOK, failure, "")
		return
	}
	s.record(r, body, key, "")
	writeResult(w, result)
}

func (s *Simulator) balances(key string) map[string]float64 {
	acc, _ := s.kit.Account(key)
	out := map[string]float64{}
	s.withAccount(func() {
		for k, v := range acc.Balances {
			out[k] = v
		}
	})
	return out
}

// heldByOrders sums what key's open limit orders hold, by asset: the quote
// of buys, the base of sells. Pairs are split at known quote suffixes.
func (s *Simulator) heldByOrders(key string) map[string]float64 {
	held := map[string]float64{}
	for _, o := range s.kit.Orders(key) {
		if o.Status != "NEW" {
			continue
		}
		base, quote, ok := splitPair(o.Symbol)
		if !ok {
			continue
		}
		if strings.EqualFold(o.Side, "buy") {
			held[quote] += o.Quantity * o.Price
		} else {
			held[base] += o.Quantity
		}
	}
	return held
}

// splitPair splits a Kraken pair (XBTUSD, XXBTZUSD, ETHUSDT) into the
// simulator's asset names (BTC, USD, ...).
func splitPair(pair string) (base, quote string, ok bool) {
	for _, q := range []string{"ZUSD", "USDT", "USDC", "USD", "ZEUR", "EUR", "XXBT", "XBT"} {
		if b, found := strings.CutSuffix(pair, q); found && b != "" {
			return simAsset(b), simAsset(q), true
		}
	}
	return "", "", false
}

// simAsset is the inverse of krakenAsset, also for altnames (XBT).
func simAsset(a string) string {
	switch a {
	case "XXBT", "XBT":
		return "BTC"
	case "XETH":
		return "ETH"
	case "ZUSD":
		return "USD"
	case "ZEUR":
		return "EUR"
	}
	return a
}

func (s *Simulator) withAccount(f func()) {
	s.balMu.Lock()
	defer s.balMu.Unlock()
	f()
}

func krakenAsset(a string) string {
	switch a {
	case "BTC":
		return "XXBT"
	case "ETH":
		return "XETH"
	case "USD":
		return "ZUSD"
	}
	return a
}

func (s *Simulator) addOrder(key string, p fields) (any, string) {
	o, err := orderFrom(p, "")
	if err != nil || o.Symbol == "" || o.Quantity+o.QuoteQuantity <= 0 {
		return nil, errInvalidArguments + ":volume"
	}
	if o.Type == "limit" && o.Price <= 0 {
		return nil, "EGeneral:Invalid arguments:price"
	}
	if p.str("validate") == "true" {
		return map[string]any{"descr": map[string]any{"order": describeOrder(o)}}, ""
	}
	status := "NEW"
	if o.Type == "market" {
		status = "FILLED"
	}
	placed := s.kit.PlaceOrder(sim.Order{
		ClientOrderID: o.ClientOrderID, APIKey: key, Symbol: o.Symbol, Side: string(o.Side),
		Type: o.Type, Quantity: o.Quantity, Price: o.Price, Status: status,
	})
	return map[string]any{"descr": map[string]any{"order": describeOrder(o)}, "txid": []string{placed.ID}}, ""
}

func describeOrder(o exchange.Order) string {
	d := fmt.Sprintf("%s %s %s", o.Side, fmtNum(o.Quantity), o.Symbol)
	if o.Type != "market" {
		d += " @ " + o.Type + " " + fmtNum(o.Price)
	} else {
		d += " @ market"
	}
	return d
}

func (s *Simulator) withdraw(acc *sim.Account, key string, p fields) (any, string) {
	asset, amount := p.str("asset"), p.float("amount")
	if p.str("key") == "" {
		return nil, "EFunding:Unknown withdraw key"
	}
	if asset == "" || amount <= 0 {
		return nil, "EFunding:Invalid amount"
	}
	ok := false
	s.withAccount(func() {
		if acc.Balances[asset] >= amount {
			acc.Balances[asset] -= amount
			ok = true
		}
	})
	if !ok {
		return nil, "EFunding:Insufficient funds"
	}
	return map[string]any{"refid": fmt.Sprintf("FTQcuak-%d", s.kit.Now().UnixNano()%1e9)}, ""
}

func keyInfo(acc *sim.Account, key string, lastNonce uint64, now time.Time) apiKeyInfo {
	var perms []string
	if acc.Allowed("read") {
		perms = append(perms, PermQueryFunds, PermQueryOpenTrades, PermQueryClosedTrades, PermQueryLedger)
	}
	if acc.Allowed("trade") {
		perms = append(perms, PermModifyTrades, PermCloseTrades)
	}
	if acc.Allowed("transfer") {
		perms = append(perms, PermDepositFunds, PermEarnFunds)
	}
	if acc.Allowed("withdraw") {
		perms = append(perms, PermWithdrawFunds)
	}
	sort.Strings(perms)
	ips := acc.IPs
	if ips == nil {
		ips = []string{}
	}
	return apiKeyInfo{
		APIKeyName: "sim", APIKey: key, Nonce: flexInt(lastNonce), Permissions: perms, IPAllowlist: ips,
		CreatedTime: flexInt(acc.Created.Unix()), ModifiedTime: flexInt(acc.Created.Unix()), LastUsed: flexInt(now.Unix()),
	}
}
