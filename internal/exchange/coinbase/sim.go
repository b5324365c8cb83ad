package coinbase

import (
	"crypto/hmac"
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
const maxSimBody = 1 << 20

// Simulator is an offline Coinbase API (Advanced Trade v3 and the v2
// endpoints keywarden uses) for tests. It authenticates every private request
// from the raw received bytes as Coinbase does (spec §3, §16): a CDP JWT
// verified with the account's public key (kid lookup, alg, signature,
// sub == kid, nbf <= now < exp with 5 s skew, uri or uris equal to
// "<METHOD> <Host><path>"), accepting both the SDK's and ccxt's claim shapes
// (spec §15.10), or legacy CB-ACCESS HMAC headers within 30 s. Then it
// checks the key's permissions ("read", "trade", "transfer", "withdraw") and
// IP restriction. A Simulator is safe for concurrent use.
type Simulator struct {
	kit     *sim.Kit
	handler http.Handler
	balMu   sync.Mutex
}

// NewSimulator returns a Coinbase simulator over kit. Accounts with CDP keys
// set Key.Kind to KeyEd25519 or KeyECDSA and Key.PublicKey; legacy accounts
// set KeyHMAC and Key.Secret.
func NewSimulator(kit *sim.Kit) *Simulator {
	s := &Simulator{kit: kit}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v3/brokerage/time", s.handleTime)
	mux.HandleFunc("GET /v2/time", s.handleTime)
	mux.HandleFunc("GET /api/v3/brokerage/market/products/{id}/ticker", s.handleTicker)
	mux.HandleFunc("GET /api/v3/brokerage/market/products/{id}", s.handleProduct)
	mux.HandleFunc("GET /api/v3/brokerage/products/{id}/ticker", s.private("read", s.wrapPublic(s.handleTicker)))
	mux.HandleFunc("GET /api/v3/brokerage/accounts", s.private("read", s.handleAccounts))
	mux.HandleFunc("GET /api/v3/brokerage/key_permissions", s.private("", s.handleKeyPermissions))
	mux.HandleFunc("POST /api/v3/brokerage/orders", s.private("trade", s.handleCreateOrder))
	mux.HandleFunc("POST /api/v3/brokerage/orders/batch_cancel", s.private("trade", s.handleBatchCancel))
	mux.HandleFunc("GET /api/v3/brokerage/orders/historical/batch", s.private("read", s.handleListOrders))
	mux.HandleFunc("GET /v2/accounts", s.private("read", s.handleV2Accounts))
	mux.HandleFunc("POST /v2/accounts/{id}/transactions", s.private("", s.handleTransaction))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil, "", "not found")
		writeJSONError(w, http.StatusNotFound, "NOT_FOUND", 5, "Not Found")
	})
	s.handler = kit.Faults(mux)
	return s
}

// ServeHTTP serves the Coinbase API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Simulator) record(r *http.Request, body []byte, key, errMsg string) {
	s.kit.Record(sim.Logged{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
		Body: body, APIKey: key, Verified: key != "", Error: errMsg,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Simulator) handleTime(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil, "", "")
	now := s.kit.Now().UTC()
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		writeJSON(w, 200, map[string]any{"data": map[string]any{"iso": now.Format(time.RFC3339), "epoch": now.Unix()}})
		return
	}
	writeJSON(w, 200, map[string]any{
		"iso": now.Format(time.RFC3339Nano), "epochSeconds": strconv.FormatInt(now.Unix(), 10),
		"epochMillis": strconv.FormatInt(now.UnixMilli(), 10),
	})
}

func (s *Simulator) handleTicker(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil, "", "")
	id := r.PathValue("id")
	p := fmtNum(s.kit.Price(id))
	writeJSON(w, 200, map[string]any{
		"trades":   []map[string]any{{"trade_id": "1", "product_id": id, "price": p, "size": "0.01", "time": s.kit.Now().UTC().Format(time.RFC3339), "side": "BUY"}},
		"best_bid": p, "best_ask": p,
	})
}

func (s *Simulator) handleProduct(w http.ResponseWriter, r *http.Request) {
	s.record(r, nil, "", "")
	id := r.PathValue("id")
	base, quote, _ := strings.Cut(id, "-")
	writeJSON(w, 200, map[string]any{
		"product_id": id, "price": fmtNum(s.kit.Price(id)), "base_currency_id": base, "quote_currency_id": quote,
		"base_increment": "0.00000001", "quote_increment": "0.01", "status": "online", "product_type": "SPOT",
	})
}

// wrapPublic adapts a public handler (which records itself) to run after
// authentication.
func (s *Simulator) wrapPublic(h http.HandlerFunc) privateHandler {
	return func(w http.ResponseWriter, r *http.Request, _ *sim.Account, _ string, _ []byte) string {
		h(w, r)
		return "-"
	}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// privateHandler serves an authenticated request; it returns "" when the
// request succeeded, "-" when it recorded the request itself, or an error
// label after writing the error.
type privateHandler func(w http.ResponseWriter, r *http.Request, acc *sim.Account, key string, body []byte) string

func (s *Simulator) private(perm string, h privateHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
		if err != nil {
			s.record(r, nil, "", "body too large")
			writeJSONError(w, http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", 3, "request body too large")
			return
		}
		acc, key, err := s.authenticate(r, body)
		if err != nil {
			s.record(r, body, "", err.Error())
			writeUnauthorized(w)
			return
		}
		if _, err := exchange.ParseQuery(r.URL.RawQuery); err != nil {
			s.record(r, body, key, "bad query")
			writeJSONError(w, http.StatusBadRequest, "INVALID_ARGUMENT", 3, "invalid query")
			return
		}
		if _, err := jsonBody(body); err != nil {
			s.record(r, body, key, "bad body")
			writeJSONError(w, http.StatusBadRequest, "INVALID_ARGUMENT", 3, "invalid JSON body")
			return
		}
		if perm != "" && !acc.Allowed(perm) {
			s.record(r, body, key, "permission denied")
			writeJSONError(w, http.StatusForbidden, "PERMISSION_DENIED", 7, "Missing required scopes")
			return
		}
		switch res := h(w, r, acc, key, body); res {
		case "":
			s.record(r, body, key, "")
		case "-":
		default:
			s.record(r, body, key, res)
		}
	}
}

// authenticate checks r as Coinbase does and returns the account.
func (s *Simulator) authenticate(r *http.Request, body []byte) (*sim.Account, string, error) {
	auth, legacy := r.Header.Values("Authorization"), r.Header.Values("CB-ACCESS-KEY")
	now := s.kit.Now()
	switch {
	case len(auth) == 1 && len(legacy) == 0:
		tok, ok := bearer(auth[0])
		if !ok {
			return nil, "", errors.New("not a bearer token")
		}
		t, err := parseJWT(tok)
		if err != nil {
			return nil, "", err
		}
		acc, ok := s.kit.Account(t.kid)
		if !ok || acc.Key.PublicKey == nil || algFor(acc.Key.Kind) != t.alg {
			return nil, "", errors.New("unknown key")
		}
		if !acc.IPAllowed(r.RemoteAddr) {
			return nil, "", errors.New("ip not allowed")
		}
		if !t.verifySignature(acc.Key.PublicKey) {
			return nil, "", errors.New("bad signature")
		}
		if t.sub != t.kid || (t.iss != "cdp" && t.iss != "coinbase-cloud") {
			return nil, "", errors.New("bad claims")
		}
		sec := now.Unix()
		if !t.hasNBF || sec < t.nbf-5 || sec >= t.exp+5 {
			return nil, "", errors.New("expired")
		}
		want := r.Method + " " + r.Host + r.URL.Path
		found := false
		for _, u := range t.uris {
			found = found || u == want
		}
		if !found {
			return nil, "", errors.New("uri mismatch")
		}
		return acc, t.kid, nil
	case len(auth) == 0 && len(legacy) == 1:
		acc, ok := s.kit.Account(legacy[0])
		if !ok || acc.Key.Kind != exchange.KeyHMAC {
			return nil, "", errors.New("unknown key")
		}
		if !acc.IPAllowed(r.RemoteAddr) {
			return nil, "", errors.New("ip not allowed")
		}
		ts := r.Header.Get("CB-ACCESS-TIMESTAMP")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || sec < now.Unix()-30 || sec > now.Unix()+30 {
			return nil, "", errors.New("expired")
		}
		req := &exchange.Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: body}
		got, err := hex.DecodeString(r.Header.Get("CB-ACCESS-SIGN"))
		if err != nil || !hmac.Equal(got, legacyMAC(acc.Key.Secret, ts, req)) {
			return nil, "", errors.New("bad signature")
		}
		return acc, legacy[0], nil
	}
	return nil, "", errors.New("missing auth")
}

func (s *Simulator) handleAccounts(w http.ResponseWriter, _ *http.Request, acc *sim.Account, _ string, _ []byte) string {
	s.balMu.Lock()
	var list []map[string]any
	for cur, amt := range acc.Balances {
		list = append(list, map[string]any{
			"uuid": cur, "name": cur + " Wallet", "currency": cur, "active": true, "default": true,
			"available_balance": map[string]string{"value": fmtNum(amt), "currency": cur},
			"hold":              map[string]string{"value": "0", "currency": cur},
			"type":              "ACCOUNT_TYPE_CRYPTO", "ready": true,
		})
	}
	s.balMu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i]["currency"].(string) < list[j]["currency"].(string) })
	writeJSON(w, 200, map[string]any{"accounts": list, "has_next": false, "cursor": "", "size": len(list)})
	return ""
}

func (s *Simulator) handleV2Accounts(w http.ResponseWriter, _ *http.Request, acc *sim.Account, _ string, _ []byte) string {
	s.balMu.Lock()
	var list []map[string]any
	for cur, amt := range acc.Balances {
		list = append(list, map[string]any{
			"id": cur, "name": cur + " Wallet", "primary": cur == "BTC", "type": "wallet",
			"currency": map[string]string{"code": cur, "name": cur},
			"balance":  map[string]string{"amount": fmtNum(amt), "currency": cur},
		})
	}
	s.balMu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i]["id"].(string) < list[j]["id"].(string) })
	writeJSON(w, 200, map[string]any{"pagination": map[string]any{"limit": len(list), "order": "desc"}, "data": list})
	return ""
}

func (s *Simulator) handleKeyPermissions(w http.ResponseWriter, _ *http.Request, acc *sim.Account, _ string, _ []byte) string {
	writeJSON(w, 200, keyPermissions{
		CanView: acc.Allowed("read"), CanTrade: acc.Allowed("trade"),
		CanTransfer:   acc.Allowed("transfer") || acc.Allowed("withdraw"),
		PortfolioUUID: "00000000-0000-0000-0000-000000000000", PortfolioType: "DEFAULT",
	})
	return ""
}

func (s *Simulator) handleCreateOrder(w http.ResponseWriter, _ *http.Request, _ *sim.Account, key string, body []byte) string {
	b, _ := jsonBody(body)
	o, err := orderFrom(b)
	if err != nil || o.Symbol == "" || o.Quantity+o.QuoteQuantity <= 0 || (o.Type == "limit" && o.Price <= 0) {
		writeJSON(w, 200, map[string]any{"success": false, "failure_reason": "UNKNOWN_FAILURE_REASON",
			"error_response": map[string]any{"error": "INVALID_ARGUMENT", "message": "invalid order", "error_details": "invalid order"}})
		return "invalid order"
	}
	status := "NEW"
	qty := o.Quantity
	if o.Type == "market" {
		status = "FILLED"
		if qty == 0 {
			qty = o.QuoteQuantity / s.kit.Price(o.Symbol)
		}
	}
	placed := s.kit.PlaceOrder(sim.Order{ClientOrderID: o.ClientOrderID, APIKey: key, Symbol: o.Symbol, Side: strings.ToUpper(string(o.Side)), Type: o.Type, Quantity: qty, Price: o.Price, Status: status})
	writeJSON(w, 200, map[string]any{
		"success":             true,
		"success_response":    map[string]any{"order_id": placed.ID, "product_id": o.Symbol, "side": strings.ToUpper(string(o.Side)), "client_order_id": o.ClientOrderID},
		"order_configuration": b["order_configuration"],
	})
	return ""
}

func (s *Simulator) handleBatchCancel(w http.ResponseWriter, _ *http.Request, _ *sim.Account, key string, body []byte) string {
	b, _ := jsonBody(body)
	ids, _ := b["order_ids"].([]any)
	results := []map[string]any{}
	for _, v := range ids {
		id, _ := v.(string)
		_, ok := s.kit.CancelOrder(key, id, "")
		res := map[string]any{"success": ok, "order_id": id, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON"}
		if !ok {
			res["failure_reason"] = "UNKNOWN_CANCEL_ORDER"
		}
		results = append(results, res)
	}
	writeJSON(w, 200, map[string]any{"results": results})
	return ""
}

func (s *Simulator) handleListOrders(w http.ResponseWriter, r *http.Request, _ *sim.Account, key string, _ []byte) string {
	ps, _ := exchange.ParseQuery(r.URL.RawQuery)
	want := ps.Get("order_status")
	orders := []map[string]any{}
	for _, o := range s.kit.Orders(key) {
		status := map[string]string{"NEW": "OPEN", "FILLED": "FILLED", "CANCELED": "CANCELLED"}[o.Status]
		if want != "" && want != status {
			continue
		}
		orders = append(orders, map[string]any{
			"order_id": o.ID, "client_order_id": o.ClientOrderID, "product_id": o.Symbol, "side": o.Side,
			"status": status, "order_type": strings.ToUpper(o.Type), "created_time": o.Created.UTC().Format(time.RFC3339Nano),
			"order_configuration": map[string]any{"limit_limit_gtc": map[string]string{"base_size": fmtNum(o.Quantity), "limit_price": fmtNum(o.Price)}},
		})
	}
	writeJSON(w, 200, map[string]any{"orders": orders, "has_next": false, "cursor": ""})
	return ""
}

// handleTransaction serves the v2 send/transfer endpoint; a send needs the
// "withdraw" permission, a transfer "transfer". Errors use the v2 shape.
func (s *Simulator) handleTransaction(w http.ResponseWriter, r *http.Request, acc *sim.Account, _ string, body []byte) string {
	b, _ := jsonBody(body)
	typ := b.str("type")
	perm := map[string]string{"send": "withdraw", "transfer": "transfer"}[typ]
	if perm == "" {
		writeJSON(w, 400, map[string]any{"errors": []map[string]string{{"id": "validation_error", "message": "Invalid type"}}})
		return "bad type"
	}
	if !acc.Allowed(perm) {
		writeJSON(w, 403, map[string]any{"errors": []map[string]string{{"id": "invalid_scope", "message": "Missing required scopes"}}})
		return "permission denied"
	}
	cur, amount := b.str("currency"), b.float("amount")
	if cur == "" || amount <= 0 || b.str("to") == "" {
		writeJSON(w, 400, map[string]any{"errors": []map[string]string{{"id": "param_required", "message": "to, amount and currency are required"}}})
		return "missing parameter"
	}
	s.balMu.Lock()
	ok := acc.Balances[cur] >= amount
	if ok {
		acc.Balances[cur] -= amount
	}
	s.balMu.Unlock()
	if !ok {
		writeJSON(w, 400, map[string]any{"errors": []map[string]string{{"id": "validation_error", "message": "Insufficient balance in source account"}}})
		return "insufficient funds"
	}
	writeJSON(w, 201, map[string]any{"data": map[string]any{
		"id": "tx-" + strconv.FormatInt(s.kit.Now().UnixNano(), 36), "type": typ, "status": "pending",
		"amount":  map[string]string{"amount": "-" + fmtNum(amount), "currency": cur},
		"to":      map[string]string{"resource": "address", "address": b.str("to")},
		"network": map[string]string{"status": "pending", "name": b.str("network")},
		"account": r.PathValue("id"),
	}})
	return ""
}
