package deribit

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
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

// Simulator is a loopback Deribit: it verifies deri-hmac-sha256 headers from
// the raw request bytes (60 s window, single-use nonces), checks the key's
// permissions and IP allowlist, and answers JSON-RPC calls for time,
// tickers, auth, account summary, orders and withdrawals. Every request is
// logged in the Kit. A Simulator is safe for concurrent use.
//
// Kit permission names map to Deribit scopes: "read" is account:read
// trade:read wallet:read, "trade" is trade:read_write, "transfer" and
// "withdraw" are wallet:read_write for their own methods.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler

	mu     sync.Mutex
	nonces *replayCache
	nextID int64
	// keyIDs maps the numeric id of a key made by private/create_api_key
	// to its client id; removed holds the client ids of removed keys.
	keyIDs  map[string]string
	removed map[string]bool
}

// NewSimulator returns a Simulator over kit.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit, nonces: newReplayCache(1 << 20), nextID: 1, keyIDs: map[string]string{}, removed: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v2/", s.serve)
	mux.HandleFunc("/api/v2", s.serve)
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves one request.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// simError is a Deribit error answer.
type simError struct {
	status, code int
	msg, reason  string
}

func (e *simError) Error() string { return e.msg + ": " + e.reason }

func rpcErr(status, code int, msg, reason string) *simError {
	return &simError{status: status, code: code, msg: msg, reason: reason}
}

func (s *Simulator) serve(w http.ResponseWriter, hr *http.Request) {
	usIn := s.kit.Now().UnixMicro()
	path, rawQuery := splitURI(hr)
	logged := sim.Logged{Method: hr.Method, Path: path, RawQuery: rawQuery, Header: hr.Header.Clone()}
	fail := func(e *simError, id any) {
		logged.Error = e.Error()
		s.kit.Record(logged)
		writeRPCError(w, e.status, e.code, e.msg, e.reason, id)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxSimBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(rpcErr(http.StatusRequestEntityTooLarge, codeBadRequest, "bad_request", "request body too large"), nil)
			return
		}
		fail(rpcErr(http.StatusBadRequest, codeBadRequest, "bad_request", "unreadable body"), nil)
		return
	}
	logged.Body = body
	req := &exchange.Request{Method: hr.Method, Path: path, RawQuery: rawQuery, Header: hr.Header, Body: body}
	c, err := parseRPC(req)
	if err != nil {
		e := exchange.AsError(err)
		if e.Kind == exchange.ErrNotFound {
			fail(rpcErr(http.StatusBadRequest, codeMethodNotFound, "Method not found", e.Message), nil)
			return
		}
		fail(rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", e.Message), nil)
		return
	}
	var acc *sim.Account
	if strings.HasPrefix(c.method, "private/") {
		a, serr := s.authenticate(req, hr.RemoteAddr)
		if serr != nil {
			fail(serr, c.id)
			return
		}
		acc = a
		logged.APIKey = a.Key.APIKey
		logged.Verified = true
		if serr := permit(acc, c.method); serr != nil {
			fail(serr, c.id)
			return
		}
	}
	result, serr := s.execute(c, acc, hr.RemoteAddr)
	if serr != nil {
		fail(serr, c.id)
		return
	}
	s.kit.Record(logged)
	usOut := s.kit.Now().UnixMicro()
	writeJSON(w, http.StatusOK, rpcResponse{
		JSONRPC: "2.0", ID: c.id, Result: result, UsIn: usIn, UsOut: usOut, UsDiff: usOut - usIn,
	})
}

// splitURI returns the path and query exactly as the client sent them.
func splitURI(r *http.Request) (string, string) {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "/") {
		p, q, _ := strings.Cut(uri, "?")
		return p, q
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// authenticate checks the Authorization header as Deribit does.
func (s *Simulator) authenticate(r *exchange.Request, remote string) (*sim.Account, *simError) {
	unauthorized := func(reason string) *simError {
		return rpcErr(http.StatusUnauthorized, codeUnauthorized, "unauthorized", reason)
	}
	a, ok, err := parseAuth(r.Header)
	if !ok {
		return nil, unauthorized("authorization_required")
	}
	if err != nil {
		return nil, unauthorized(exchange.AsError(err).Message)
	}
	acc, found := s.kit.Account(a.id)
	if !found || s.isRemoved(a.id) {
		return nil, rpcErr(http.StatusUnauthorized, codeInvalidCredentials, "invalid_credentials", "unknown client id")
	}
	now := s.kit.Now()
	if a.basic {
		if !hmac.Equal([]byte(a.secret), acc.Key.Secret) {
			return nil, rpcErr(http.StatusUnauthorized, codeInvalidCredentials, "invalid_credentials", "bad client secret")
		}
	} else {
		if err := checkSignature(r, a, acc.Key.Secret, now); err != nil {
			return nil, unauthorized(exchange.AsError(err).Message)
		}
		if !s.nonces.add(a.id, a.nonce, a.ts, now.UnixMilli()) {
			return nil, unauthorized("nonce already used")
		}
	}
	if !acc.IPAllowed(remote) {
		return nil, rpcErr(http.StatusForbidden, codeForbidden, "forbidden", "ip not allowed")
	}
	return acc, nil
}

// permit checks the account may call method.
func permit(acc *sim.Account, method string) *simError {
	m, known := methods[method]
	need := ""
	switch {
	case !known:
		need = "admin"
	case m.scope == exchange.ScopeRead:
		need = "read"
	case m.scope == exchange.ScopeTrade:
		need = "trade"
	case m.scope == exchange.ScopeTransfer:
		need = "transfer"
	case m.scope == exchange.ScopeWithdraw:
		need = "withdraw"
	default:
		need = "admin"
	}
	if !acc.Allowed(need) {
		return rpcErr(http.StatusForbidden, codeScopeExceeded, "scope_exceeded", "key lacks "+need+" permission")
	}
	return nil
}

// scopeOf is the Deribit scope string of acc, as public/auth returns it.
func scopeOf(acc *sim.Account) string {
	parts := []string{"account:none", "trade:none", "wallet:none"}
	if acc.Allowed("read") {
		parts = []string{"account:read", "trade:read", "wallet:read"}
	}
	if acc.Allowed("trade") {
		parts[1] = "trade:read_write"
	}
	if acc.Allowed("withdraw") || acc.Allowed("transfer") {
		parts[2] = "wallet:read_write"
	}
	if acc.Allowed("admin") {
		parts[0] = "account:read_write"
	}
	for _, ip := range acc.IPs {
		parts = append(parts, "ip:"+ip)
	}
	return strings.Join(parts, " ")
}

func (s *Simulator) execute(c rpcCall, acc *sim.Account, remote string) (any, *simError) {
	p := params(c.params)
	now := s.kit.Now()
	invalid := func(reason string) *simError {
		return rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", reason)
	}
	switch c.method {
	case "public/get_time":
		return now.UnixMilli(), nil
	case "public/test":
		return map[string]any{"version": "1.2.26"}, nil
	case "public/status":
		return map[string]any{"locked": "false", "locked_indices": []string{}}, nil
	case "public/ticker":
		name := p.str("instrument_name")
		if name == "" {
			return nil, invalid("instrument_name is required")
		}
		px := s.kit.Price(name)
		return map[string]any{
			"timestamp": now.UnixMilli(), "instrument_name": name, "state": "open",
			"last_price": px, "mark_price": px, "index_price": px,
			"best_bid_price": px * 0.9995, "best_ask_price": px * 1.0005,
			"best_bid_amount": 1000.0, "best_ask_amount": 1000.0,
			"min_price": px * 0.97, "max_price": px * 1.03, "open_interest": 1e6,
			"stats": map[string]any{"volume": 1234.5, "high": px * 1.02, "low": px * 0.98, "price_change": 0.5},
		}, nil
	case "public/auth":
		return s.auth(p, remote)
	case "private/get_account_summary":
		cur := strings.ToUpper(p.str("currency"))
		if cur == "" {
			return nil, invalid("currency is required")
		}
		s.mu.Lock()
		bal := acc.Balances[cur]
		s.mu.Unlock()
		return summary(cur, bal), nil
	case "private/get_account_summaries":
		// One summary per currency the account holds, BTC and ETH always.
		s.mu.Lock()
		bals := map[string]float64{"BTC": 0, "ETH": 0}
		for cur, v := range acc.Balances {
			bals[strings.ToUpper(cur)] = v
		}
		s.mu.Unlock()
		curs := slices.Sorted(maps.Keys(bals))
		out := make([]any, 0, len(curs))
		for _, cur := range curs {
			out = append(out, summary(cur, bals[cur]))
		}
		return map[string]any{
			"id": 1, "username": "sim", "email": "sim@example.invalid", "system_name": "sim", "type": "main",
			"creation_timestamp": acc.Created.UnixMilli(), "summaries": out,
		}, nil
	case "private/buy", "private/sell":
		return s.placeOrder(c, acc)
	case "private/cancel":
		id := p.str("order_id")
		if id == "" {
			return nil, invalid("order_id is required")
		}
		o, ok := s.kit.CancelOrder(acc.Key.APIKey, id, "")
		if !ok {
			return nil, rpcErr(http.StatusBadRequest, codeOrderNotFound, "order_not_found", "")
		}
		return orderJSON(*o), nil
	case "private/cancel_all":
		return s.cancelAll(acc)
	case "private/get_open_orders", "private/get_open_orders_by_instrument", "private/get_open_orders_by_currency":
		name := p.str("instrument_name")
		cur := strings.ToUpper(p.str("currency"))
		out := []any{}
		for _, o := range s.kit.Orders(acc.Key.APIKey) {
			if o.Status != "NEW" || (name != "" && o.Symbol != name) || (cur != "" && !strings.HasPrefix(o.Symbol, cur)) {
				continue
			}
			out = append(out, orderJSON(o))
		}
		return out, nil
	case "private/create_api_key":
		return s.createKey(p, acc)
	case "private/remove_api_key":
		return s.removeKey(p, acc)
	case "private/list_api_keys":
		return []any{map[string]any{
			"id": 1, "client_id": acc.Key.APIKey, "client_secret": string(acc.Key.Secret),
			"max_scope": scopeOf(acc), "enabled": true, "default": true, "name": "",
			"timestamp": acc.Created.UnixMilli(), "ip_whitelist": acc.IPs,
		}}, nil
	case "private/withdraw":
		cur := strings.ToUpper(p.str("currency"))
		amount := p.num("amount")
		addr := p.str("address")
		if cur == "" || addr == "" || amount <= 0 {
			return nil, invalid("currency, address and a positive amount are required")
		}
		s.mu.Lock()
		if acc.Balances[cur] < amount {
			s.mu.Unlock()
			return nil, rpcErr(http.StatusBadRequest, codeNotEnoughFunds, "not_enough_funds", "")
		}
		acc.Balances[cur] -= amount
		s.nextID++
		id := s.nextID
		s.mu.Unlock()
		return map[string]any{
			"id": id, "currency": cur, "amount": amount, "address": addr, "state": "unconfirmed",
			"fee": 0.0001, "priority": "high", "created_timestamp": now.UnixMilli(),
			"updated_timestamp": now.UnixMilli(), "transaction_id": nil, "confirmed_timestamp": nil,
		}, nil
	}
	return nil, rpcErr(http.StatusBadRequest, codeMethodNotFound, "Method not found", "")
}

// summary is one currency's account summary, as get_account_summary
// returns it and get_account_summaries lists it.
func summary(cur string, bal float64) map[string]any {
	return map[string]any{
		"currency": cur, "balance": bal, "equity": bal, "available_funds": bal,
		"available_withdrawal_funds": bal, "margin_balance": bal,
		"initial_margin": 0.0, "maintenance_margin": 0.0, "session_upl": 0.0, "session_rpl": 0.0,
	}
}

func (s *Simulator) placeOrder(c rpcCall, acc *sim.Account) (any, *simError) {
	p := params(c.params)
	side := "buy"
	if c.method == "private/sell" {
		side = "sell"
	}
	name := p.str("instrument_name")
	amount := p.num("amount")
	typ := strings.ToLower(p.str("type"))
	if typ == "" {
		typ = "limit"
	}
	price := p.num("price")
	if name == "" || amount <= 0 {
		return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "instrument_name and a positive amount are required")
	}
	if typ == "limit" && price <= 0 {
		return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "price is required for limit orders")
	}
	status := "NEW"
	if typ == "market" {
		status = "FILLED"
		price = s.kit.Price(name)
	}
	o := s.kit.PlaceOrder(sim.Order{
		ClientOrderID: p.str("label"), APIKey: acc.Key.APIKey, Symbol: name, Side: side,
		Type: typ, Quantity: amount, Price: price, Status: status,
	})
	trades := []any{}
	if status == "FILLED" {
		trades = append(trades, map[string]any{
			"trade_id": "T" + o.ID, "order_id": o.ID, "instrument_name": name, "direction": side,
			"amount": amount, "price": price, "timestamp": o.Created.UnixMilli(), "fee": 0.0, "fee_currency": "BTC",
		})
	}
	return map[string]any{"order": orderJSON(*o), "trades": trades}, nil
}

func orderJSON(o sim.Order) map[string]any {
	state := map[string]string{"NEW": "open", "FILLED": "filled", "CANCELED": "cancelled"}[o.Status]
	filled, avg := 0.0, 0.0 // Deribit reports average_price 0 until a fill
	if o.Status == "FILLED" {
		filled, avg = o.Quantity, o.Price
	}
	return map[string]any{
		"order_id": o.ID, "order_state": state, "instrument_name": o.Symbol, "direction": o.Side,
		"amount": o.Quantity, "filled_amount": filled, "price": o.Price, "average_price": avg,
		"order_type": o.Type, "label": o.ClientOrderID, "time_in_force": "good_til_cancelled",
		"post_only": false, "reduce_only": false, "api": true,
		"creation_timestamp": o.Created.UnixMilli(), "last_update_timestamp": o.Created.UnixMilli(),
	}
}

// auth serves public/auth with the client_credentials and client_signature
// grants and answers with the key's scope and fresh tokens.
func (s *Simulator) auth(p params, remote string) (any, *simError) {
	bad := rpcErr(http.StatusBadRequest, codeInvalidCredentials, "invalid_credentials", "")
	acc, ok := s.kit.Account(p.str("client_id"))
	if !ok || s.isRemoved(p.str("client_id")) {
		return nil, bad
	}
	now := s.kit.Now()
	switch p.str("grant_type") {
	case "client_credentials":
		if !hmac.Equal([]byte(p.str("client_secret")), acc.Key.Secret) {
			return nil, bad
		}
	case "client_signature":
		ts, err := strconv.ParseInt(p.str("timestamp"), 10, 64)
		nonce := p.str("nonce")
		if err != nil || nonce == "" {
			return nil, bad
		}
		if d := now.UnixMilli() - ts; d > Window.Milliseconds() || d < -Window.Milliseconds() {
			return nil, rpcErr(http.StatusBadRequest, codeUnauthorized, "unauthorized", "timestamp is outside the window")
		}
		want := clientSignature(acc.Key.Secret, ts, nonce, p.str("data"))
		if !hmac.Equal([]byte(want), []byte(p.str("signature"))) {
			return nil, bad
		}
		if !s.nonces.add(acc.Key.APIKey, nonce, ts, now.UnixMilli()) {
			return nil, rpcErr(http.StatusBadRequest, codeUnauthorized, "unauthorized", "nonce already used")
		}
	default:
		return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "unsupported grant_type")
	}
	if !acc.IPAllowed(remote) {
		return nil, rpcErr(http.StatusForbidden, codeForbidden, "forbidden", "ip not allowed")
	}
	return map[string]any{
		"access_token": token(), "refresh_token": token(), "expires_in": int((15 * time.Minute).Seconds()),
		"scope": scopeOf(acc), "token_type": "bearer", "enabled_features": []string{},
	}, nil
}

func token() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Simulator) isRemoved(clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed[clientID]
}

// createKey serves private/create_api_key: a key with account:read_write
// makes a new key of the same account, with no more than max_scope.
func (s *Simulator) createKey(p params, acc *sim.Account) (any, *simError) {
	if !acc.Allowed("admin") {
		return nil, rpcErr(http.StatusForbidden, codeForbidden, "forbidden", "account:read_write scope required")
	}
	perms := map[string]bool{}
	scope := p.str("max_scope")
	for _, part := range strings.Fields(scope) {
		switch part {
		case "account:read", "trade:read", "wallet:read":
			perms["read"] = true
		case "trade:read_write":
			perms["read"], perms["trade"] = true, true
		case "wallet:read_write":
			perms["read"], perms["withdraw"], perms["transfer"] = true, true, true
		case "account:read_write":
			perms["read"], perms["admin"] = true, true
		case "account:none", "trade:none", "wallet:none":
		default:
			return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "unknown scope")
		}
	}
	if len(perms) == 0 {
		return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "max_scope is required")
	}
	var b [16]byte
	rand.Read(b[:])
	clientID := hex.EncodeToString(b[:5])
	secret := hex.EncodeToString(b[5:])
	s.mu.Lock()
	s.nextID++
	id := strconv.FormatInt(s.nextID+100, 10)
	s.keyIDs[id] = clientID
	if acc.Key.Account != "" { // the creating key, so its successor can remove it
		s.keyIDs[acc.Key.Account] = acc.Key.APIKey
	}
	s.mu.Unlock()
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: clientID, Secret: exchange.Secret(secret), Account: id},
		Permissions: perms, Balances: acc.Balances})
	return map[string]any{"id": json.Number(id), "client_id": clientID, "client_secret": secret, "max_scope": scope,
		"enabled": true, "default": false, "name": p.str("name"), "timestamp": s.kit.Now().UnixMilli()}, nil
}

// removeKey serves private/remove_api_key: a key made by create_api_key or
// one that made keys, or the calling key itself, by its numeric id.
func (s *Simulator) removeKey(p params, acc *sim.Account) (any, *simError) {
	if !acc.Allowed("admin") {
		return nil, rpcErr(http.StatusForbidden, codeForbidden, "forbidden", "account:read_write scope required")
	}
	id := p.str("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID, ok := s.keyIDs[id]
	if !ok && id != "" && acc.Key.Account == id {
		clientID, ok = acc.Key.APIKey, true
	}
	if !ok || s.removed[clientID] {
		return nil, rpcErr(http.StatusBadRequest, codeInvalidParams, "Invalid params", "no such key")
	}
	s.removed[clientID] = true
	return "ok", nil
}
