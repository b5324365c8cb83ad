package binance

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// WSSimulator is a loopback stand-in for Binance's WebSocket endpoints:
// market streams (/ws/<stream>[/<stream>...] and /stream?streams=a/b)
// emitting trade events, user-data streams (/ws/<listenKey>) emitting
// account events, and the WebSocket API (/ws-api/v3, /ws-fapi/v1), which
// verifies every request as Binance does: the signature over the sorted
// params, the timestamp and recvWindow, permissions, and session.logon with
// Ed25519 keys only. WS API requests are logged in the Kit with Method "WS"
// and the method name as Path. A WSSimulator is safe for concurrent use.
type WSSimulator struct {
	kit *sim.Kit
	// Interval is the pause between stream events (default 10 ms).
	Interval time.Duration

	mu    sync.Mutex
	conns int
	// listen are the REST simulator's listen keys; nil accepts every
	// listen-key-shaped stream name.
	listen *simListenKeys
}

// NewWSSimulator returns a WSSimulator over kit.
func NewWSSimulator(kit *sim.Kit) *WSSimulator {
	return &WSSimulator{kit: kit, Interval: 10 * time.Millisecond}
}

// SimulatorWithWS serves WebSocket upgrades with a WSSimulator and every
// other request with the REST Simulator, both over kit.
func SimulatorWithWS(kit *sim.Kit) http.Handler {
	rest, ws := NewSimulator(kit), NewWSSimulator(kit)
	ws.listen = rest.listen
	return sim.WithWS(rest, ws)
}

// Open returns how many sockets the simulator holds open.
func (s *WSSimulator) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *WSSimulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	// USDⓈ-M futures also serve streams under /public, /market and
	// /private, the user-data stream as /private/ws?listenKey=<key>.
	for _, pre := range []string{"/public/", "/market/", "/private/"} {
		if strings.HasPrefix(p, pre) {
			p = p[len(pre)-1:]
		}
	}
	lk := r.URL.Query().Get("listenKey")
	var serve func(context.Context, *websocket.Conn)
	switch {
	case p == "/ws" && lk != "":
		serve = func(ctx context.Context, c *websocket.Conn) { s.stream(ctx, c, []string{lk}, false) }
	case p == WSAPIPath || p == USDMWSAPIPath:
		serve = func(ctx context.Context, c *websocket.Conn) { s.api(ctx, c, p == USDMWSAPIPath) }
	case p == "/stream":
		names := strings.Split(r.URL.Query().Get("streams"), "/")
		serve = func(ctx context.Context, c *websocket.Conn) { s.stream(ctx, c, names, true) }
	case strings.HasPrefix(p, "/ws/") && len(p) > 4:
		names := strings.Split(p[4:], "/")
		serve = func(ctx context.Context, c *websocket.Conn) { s.stream(ctx, c, names, false) }
	default:
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if p != WSAPIPath && p != USDMWSAPIPath {
		names := strings.Split(strings.TrimPrefix(p, "/ws/"), "/")
		if p == "/stream" {
			names = strings.Split(r.URL.Query().Get("streams"), "/")
		}
		if lk != "" {
			names = append(names, lk)
		}
		if s.deadListenKey(names) != "" {
			http.Error(w, `{"code":-1125,"msg":"This listenKey does not exist."}`, http.StatusBadRequest)
			return
		}
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conns--
		s.mu.Unlock()
	}()
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	serve(r.Context(), c)
}

// isListenKey says whether a stream name is a listenKey (60+ letters and
// digits) rather than a market stream (symbol@kind).
func isListenKey(n string) bool {
	if len(n) < 60 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// stream emits events for names, and for names added by SUBSCRIBE
// requests, until the client goes away. Only market streams
// (symbol@kind) and listenKeys emit events.
func (s *WSSimulator) stream(ctx context.Context, c *websocket.Conn, names []string, combined bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	subs := map[string]bool{}
	for _, n := range names {
		if strings.Contains(n, "@") || isListenKey(n) {
			subs[n] = true
		}
	}
	go func() {
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			var req struct {
				Method string          `json:"method"`
				Params []string        `json:"params"`
				ID     json.RawMessage `json:"id"`
			}
			if json.Unmarshal(msg, &req) != nil || req.Method == "" {
				_ = c.Write(ctx, websocket.MessageText, []byte(`{"error":{"code":2,"msg":"Invalid request"}}`))
				continue
			}
			mu.Lock()
			for _, p := range req.Params {
				switch req.Method {
				case "SUBSCRIBE":
					if !isListenKey(p) || s.listenKeyLive(p) {
						subs[p] = true
					}
				case "UNSUBSCRIBE":
					delete(subs, p)
				}
			}
			mu.Unlock()
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"result":null,"id":`+string(wsID(req.ID))+`}`))
		}
	}()
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mu.Lock()
		cur := make([]string, 0, len(subs))
		for n := range subs {
			cur = append(cur, n)
		}
		mu.Unlock()
		if dead := s.deadListenKey(cur); dead != "" {
			// A closed or expired listen key ends its stream, as at Binance.
			ev, _ := json.Marshal(map[string]any{"e": "listenKeyExpired", "E": s.kit.Now().UnixMilli(), "listenKey": dead})
			_ = c.Write(ctx, websocket.MessageText, ev)
			_ = c.Close(websocket.StatusNormalClosure, "listen key expired")
			return
		}
		for _, n := range cur {
			seq++
			ev := s.event(n, seq)
			if combined {
				ev = []byte(`{"stream":` + string(mustJSON(n)) + `,"data":` + string(ev) + `}`)
			}
			if err := c.Write(ctx, websocket.MessageText, ev); err != nil {
				return
			}
		}
	}
}

func (s *WSSimulator) event(name string, seq int64) []byte {
	now := s.kit.Now().UnixMilli()
	if isListenKey(name) {
		b, _ := json.Marshal(map[string]any{"e": "outboundAccountPosition", "E": now, "u": now, "B": []any{
			map[string]string{"a": "USDT", "f": "100000.00000000", "l": "0.00000000"}}})
		return b
	}
	sym, _, _ := strings.Cut(name, "@")
	sym = strings.ToUpper(sym)
	price := strconv.FormatFloat(s.kit.Price(sym), 'f', 2, 64)
	b, _ := json.Marshal(map[string]any{"e": "trade", "E": now, "s": sym, "t": seq, "p": price, "q": "0.00100000", "T": now, "m": seq%2 == 0})
	return b
}

// wsSession is the state of one WS API connection.
type wsSession struct {
	account *sim.Account
	since   time.Time
}

func (s *WSSimulator) api(ctx context.Context, c *websocket.Conn, futures bool) {
	var sess wsSession
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		out := s.apiRequest(ctx, c, &sess, msg, futures)
		if err := c.Write(ctx, websocket.MessageText, out); err != nil {
			return
		}
	}
}

func wsAnswer(id json.RawMessage, result any) []byte {
	b, _ := json.Marshal(map[string]any{"id": wsID(id), "status": 200, "result": result})
	return b
}

func wsFail(id json.RawMessage, e *exchange.Error) []byte {
	return (&WSAPI{}).Refuse(&exchange.WSMessage{ID: id}, e)
}

func (s *WSSimulator) apiRequest(ctx context.Context, c *websocket.Conn, sess *wsSession, msg []byte, futures bool) []byte {
	r, e := parseWS(msg)
	if e != nil {
		return wsFail(nil, e)
	}
	now := s.kit.Now()
	logged := sim.Logged{Method: "WS", Path: r.Method, Body: msg}
	fail := func(e *exchange.Error) []byte {
		logged.Error = e.Message
		s.kit.Record(logged)
		return wsFail(r.ID, e)
	}
	switch r.Method {
	case "ping":
		return wsAnswer(r.ID, map[string]any{})
	case "time":
		return wsAnswer(r.ID, map[string]any{"serverTime": now.UnixMilli()})
	}
	acct := sess.account
	if _, signed := r.Raw[paramSignature]; signed || r.Method == "session.logon" {
		if !r.scalar {
			return fail(exchange.Errorf(exchange.ErrBadRequest, "signed requests take scalar params only"))
		}
		a, ok := s.kit.Account(r.Text["apiKey"])
		if !ok {
			return fail(exchange.Errorf(exchange.ErrAuth, msgInvalidKey))
		}
		if err := wsCheckWindow(r.Text, now); err != nil {
			return fail(err)
		}
		if !wsCheckSignature(r.Text, &a.Key) {
			return fail(exchange.Errorf(exchange.ErrAuth, msgBadSignature))
		}
		acct = a
	}
	if acct == nil {
		return fail(exchange.Errorf(exchange.ErrAuth, msgInvalidKey))
	}
	logged.APIKey, logged.Verified = acct.Key.APIKey, true
	switch r.Method {
	case "session.logon":
		if acct.Key.Kind != exchange.KeyEd25519 {
			return fail(exchange.Errorf(exchange.ErrAuth, "session.logon accepts Ed25519 API keys only"))
		}
		sess.account, sess.since = acct, now
		s.kit.Record(logged)
		return wsAnswer(r.ID, map[string]any{"apiKey": acct.Key.APIKey, "authorizedSince": now.UnixMilli(),
			"connectedSince": now.UnixMilli(), "returnRateLimits": false, "serverTime": now.UnixMilli()})
	case "session.status":
		s.kit.Record(logged)
		var key any
		if sess.account != nil {
			key = sess.account.Key.APIKey
		}
		return wsAnswer(r.ID, map[string]any{"apiKey": key, "serverTime": now.UnixMilli()})
	case "userDataStream.subscribe", "userDataStream.subscribe.signature":
		s.kit.Record(logged)
		go func() {
			// One account event after the answer, as Binance pushes on change.
			time.Sleep(s.Interval)
			ev, _ := json.Marshal(map[string]any{"subscriptionId": 0, "event": json.RawMessage(s.event(strings.Repeat("k", 64), 0))})
			_ = c.Write(ctx, websocket.MessageText, ev)
		}()
		return wsAnswer(r.ID, map[string]any{"subscriptionId": 0})
	case "account.status", "account.balance", "v2/account.balance", "v2/account.status":
		s.kit.Record(logged)
		var bal []any
		for asset, v := range s.kit.Balances(acct.Key.APIKey) {
			bal = append(bal, map[string]any{"asset": asset, "free": strconv.FormatFloat(v, 'f', 8, 64), "locked": "0.00000000"})
		}
		return wsAnswer(r.ID, map[string]any{"balances": bal})
	case "order.place", "order.test":
		if !acct.Allowed("trade") {
			return fail(exchange.Errorf(exchange.ErrPermission, msgInvalidKey))
		}
		p := r.Text
		qty, price := exchange.ParseFloat(p["quantity"]), exchange.ParseFloat(p["price"])
		if p["symbol"] == "" || qty <= 0 {
			return fail(exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "quantity"))
		}
		s.kit.Record(logged)
		if r.Method == "order.test" {
			return wsAnswer(r.ID, map[string]any{})
		}
		o := s.kit.PlaceOrder(sim.Order{APIKey: acct.Key.APIKey, ClientOrderID: p["newClientOrderId"], Symbol: p["symbol"],
			Side: strings.ToLower(p["side"]), Type: strings.ToLower(p["type"]), Quantity: qty, Price: price})
		id, _ := strconv.ParseInt(o.ID, 10, 64)
		return wsAnswer(r.ID, map[string]any{"symbol": o.Symbol, "orderId": id, "clientOrderId": o.ClientOrderID,
			"transactTime": now.UnixMilli(), "price": p["price"], "origQty": p["quantity"], "status": o.Status,
			"type": p["type"], "side": p["side"]})
	case "order.cancel":
		if !acct.Allowed("trade") {
			return fail(exchange.Errorf(exchange.ErrPermission, msgInvalidKey))
		}
		o, ok := s.kit.CancelOrder(acct.Key.APIKey, r.Text["orderId"], r.Text["origClientOrderId"])
		if !ok {
			return fail(&exchange.Error{Kind: exchange.ErrBadRequest, Message: "Unknown order sent."})
		}
		s.kit.Record(logged)
		id, _ := strconv.ParseInt(o.ID, 10, 64)
		return wsAnswer(r.ID, map[string]any{"symbol": o.Symbol, "orderId": id, "status": o.Status})
	}
	return fail(exchange.Errorf(exchange.ErrBadRequest, "Unknown method %s", exchange.SafeName(r.Method)))
}
