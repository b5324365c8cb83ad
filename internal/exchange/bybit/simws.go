package bybit

import (
	"context"
	"crypto/hmac"
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

// WSSimulator is a loopback stand-in for Bybit's v5 WebSockets: public
// streams (/v5/public/<category>) push tickers for subscribed topics;
// /v5/private and /v5/trade verify auth as Bybit does (hex HMAC-SHA256 over
// "GET/realtime" + expires, expires in the future, key lookup), then
// /v5/trade accepts order.create and order.cancel. Private ops are logged in
// the Kit with Method "WS" and the op as Path. A WSSimulator is safe for
// concurrent use.
type WSSimulator struct {
	kit *sim.Kit
	// Interval is the pause between pushed tickers (default 10 ms).
	Interval time.Duration
}

// NewWSSimulator returns a WSSimulator over kit.
func NewWSSimulator(kit *sim.Kit) *WSSimulator {
	return &WSSimulator{kit: kit, Interval: 10 * time.Millisecond}
}

// SimulatorWithWS serves WebSocket upgrades with a WSSimulator and every
// other request with the REST Simulator, both over kit.
func SimulatorWithWS(kit *sim.Kit) http.Handler {
	return sim.WithWS(NewSimulator(kit), NewWSSimulator(kit))
}

func (s *WSSimulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p != WSPrivate && p != WSTrade && !strings.HasPrefix(p, "/v5/public/") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	s.serve(r.Context(), c, p)
}

func (s *WSSimulator) serve(ctx context.Context, c *websocket.Conn, path string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		topics = map[string]bool{}
		acct   *sim.Account
	)
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	go func() {
		t := time.NewTicker(s.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			var ts []string
			for tp := range topics {
				ts = append(ts, tp)
			}
			mu.Unlock()
			for _, tp := range ts {
				sym := strings.TrimPrefix(tp, "tickers.")
				send(map[string]any{"topic": tp, "type": "snapshot", "ts": s.kit.Now().UnixMilli(),
					"data": map[string]string{"symbol": sym, "lastPrice": strconv.FormatFloat(s.kit.Price(sym), 'f', -1, 64)}})
			}
		}
	}()
	public := strings.HasPrefix(path, "/v5/public/")
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		m, e := parseWSMsg(msg)
		if e != nil {
			send(map[string]any{"success": false, "ret_msg": "Invalid request"})
			continue
		}
		id := m.id()
		logged := sim.Logged{Method: "WS", Path: m.Op, Body: msg}
		switch {
		case m.Op == "ping":
			send(map[string]any{"success": true, "ret_msg": "pong", "op": "ping", "req_id": id})
			continue
		case m.Op == "auth" && !public:
			a, err := s.auth(m)
			if err != nil {
				logged.Error = err.Message
				s.kit.Record(logged)
				send(map[string]any{"success": false, "ret_msg": "Request not authorized", "op": "auth", "req_id": id})
				continue
			}
			mu.Lock()
			acct = a
			mu.Unlock()
			logged.APIKey, logged.Verified = a.Key.APIKey, true
			s.kit.Record(logged)
			send(map[string]any{"success": true, "ret_msg": "", "op": "auth", "req_id": id, "conn_id": "sim"})
			continue
		case m.Op == "subscribe" || m.Op == "unsubscribe":
			mu.Lock()
			authed := acct != nil
			if public {
				for _, a := range m.Args {
					var tp string
					_ = json.Unmarshal(a, &tp)
					if m.Op == "subscribe" {
						topics[tp] = true
					} else {
						delete(topics, tp)
					}
				}
			}
			mu.Unlock()
			send(map[string]any{"success": public || authed, "ret_msg": "", "op": m.Op, "req_id": id, "conn_id": "sim"})
			continue
		}
		mu.Lock()
		a := acct
		mu.Unlock()
		if path != WSTrade || a == nil {
			logged.Error = "not authorized"
			s.kit.Record(logged)
			send(map[string]any{"reqId": id, "retCode": 10003, "retMsg": "Request not authorized", "op": m.Op, "data": map[string]any{}})
			continue
		}
		logged.APIKey, logged.Verified = a.Key.APIKey, true
		s.kit.Record(logged)
		send(s.trade(m, a))
	}
}

func (s *WSSimulator) auth(m *wsMsg) (*sim.Account, *exchange.Error) {
	key, exp, sig, e := wsAuth(m)
	if e != nil {
		return nil, e
	}
	a, ok := s.kit.Account(key)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrAuth, "api_key not found")
	}
	if !time.UnixMilli(exp).After(s.kit.Now()) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "expired")
	}
	if !hmac.Equal([]byte(sig), []byte(WSSignature(a.Key.Secret, exp))) {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	return a, nil
}

func (s *WSSimulator) trade(m *wsMsg, a *sim.Account) map[string]any {
	out := map[string]any{"reqId": m.id(), "retCode": 0, "retMsg": "OK", "op": m.Op, "data": map[string]any{}}
	if len(m.Args) != 1 {
		out["retCode"], out["retMsg"] = 10001, "params error"
		return out
	}
	var o struct {
		Symbol, Side, OrderType, Qty, Price, OrderID, OrderLinkID string
	}
	var raw map[string]string
	_ = json.Unmarshal(m.Args[0], &raw)
	o.Symbol, o.Side, o.OrderType, o.Qty, o.Price = raw["symbol"], raw["side"], raw["orderType"], raw["qty"], raw["price"]
	o.OrderID, o.OrderLinkID = raw["orderId"], raw["orderLinkId"]
	switch m.Op {
	case "order.create":
		if !a.Allowed("trade") {
			out["retCode"], out["retMsg"] = 10005, "Permission denied"
			return out
		}
		so := s.kit.PlaceOrder(sim.Order{APIKey: a.Key.APIKey, ClientOrderID: o.OrderLinkID, Symbol: o.Symbol, Side: strings.ToLower(o.Side),
			Type: strings.ToLower(o.OrderType), Quantity: exchange.ParseFloat(o.Qty), Price: exchange.ParseFloat(o.Price)})
		out["data"] = map[string]string{"orderId": so.ID, "orderLinkId": so.ClientOrderID}
	case "order.cancel":
		so, ok := s.kit.CancelOrder(a.Key.APIKey, o.OrderID, o.OrderLinkID)
		if !ok {
			out["retCode"], out["retMsg"] = 110001, "Order does not exist"
			return out
		}
		out["data"] = map[string]string{"orderId": so.ID, "orderLinkId": so.ClientOrderID}
	default:
		out["retCode"], out["retMsg"] = 10001, "op not supported by the simulator"
	}
	return out
}
