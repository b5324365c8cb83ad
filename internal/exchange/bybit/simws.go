package bybit

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// WSSimulator is a loopback stand-in for Bybit's v5 WebSockets: public
// streams (/v5/public/<category>) push tickers for subscribed topics;
// /v5/private and /v5/trade verify auth as Bybit does (hex HMAC-SHA256 over
// "GET/realtime" + expires, expires in the future, key lookup), then
// /v5/trade books, amends and cancels orders for order.create, order.amend,
// order.cancel and their -batch forms. Private ops are logged in
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
	sess := sim.NewWSSession(ctx, c)
	go sess.Push(s.Interval, func(tp string) any {
		sym := strings.TrimPrefix(tp, "tickers.")
		return map[string]any{"topic": tp, "type": "snapshot", "ts": s.kit.Now().UnixMilli(),
			"data": map[string]string{"symbol": sym, "lastPrice": strconv.FormatFloat(s.kit.Price(sym), 'f', -1, 64)}}
	})
	public := strings.HasPrefix(path, "/v5/public/")
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		m, e := parseWSMsg(msg)
		if e != nil {
			sess.Send(map[string]any{"success": false, "ret_msg": "Invalid request"})
			continue
		}
		id := m.id()
		logged := sim.Logged{Method: "WS", Path: m.Op, Body: msg}
		switch {
		case m.Op == "ping":
			sess.Send(map[string]any{"success": true, "ret_msg": "pong", "op": "ping", "req_id": id})
			continue
		case m.Op == "auth" && !public:
			a, err := s.auth(m)
			if err != nil {
				logged.Error = err.Message
				s.kit.Record(logged)
				sess.Send(map[string]any{"success": false, "ret_msg": "Request not authorized", "op": "auth", "req_id": id})
				continue
			}
			sess.LogOn(a)
			logged.APIKey, logged.Verified = a.Key.APIKey, true
			s.kit.Record(logged)
			sess.Send(map[string]any{"success": true, "ret_msg": "", "op": "auth", "req_id": id, "conn_id": "sim"})
			continue
		case m.Op == "subscribe" || m.Op == "unsubscribe":
			// The answer goes out before the first push, as at Bybit.
			sess.Send(map[string]any{"success": public || sess.Account() != nil, "ret_msg": "", "op": m.Op, "req_id": id, "conn_id": "sim"})
			if public {
				for _, a := range m.Args {
					var tp string
					_ = json.Unmarshal(a, &tp)
					sess.Subscribe(tp, m.Op == "subscribe")
				}
			}
			continue
		}
		a := sess.Account()
		if path != WSTrade || a == nil {
			logged.Error = "not authorized"
			s.kit.Record(logged)
			sess.Send(map[string]any{"reqId": id, "retCode": 10003, "retMsg": "Request not authorized", "op": m.Op, "data": map[string]any{}})
			continue
		}
		logged.APIKey, logged.Verified = a.Key.APIKey, true
		s.kit.Record(logged)
		sess.Send(s.trade(m, a))
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

// trade serves order.create, order.amend, order.cancel and their -batch
// forms as Bybit does: a batch's args are [{"category", "request": [...]}];
// its answer lists each leg in data.list and each leg's result in
// retExtInfo.list, with retCode 0 for the request as a whole.
func (s *WSSimulator) trade(m *wsMsg, a *sim.Account) map[string]any {
	out := map[string]any{"reqId": m.id(), "retCode": 0, "retMsg": "OK", "op": m.Op, "data": map[string]any{}}
	fail := func(code int, msg string) map[string]any {
		out["retCode"], out["retMsg"] = code, msg
		return out
	}
	if len(m.Args) != 1 {
		return fail(10001, "params error")
	}
	op, batch := strings.CutSuffix(m.Op, "-batch")
	var (
		legs     []map[string]string
		category string
	)
	if batch {
		var b struct {
			Category string            `json:"category"`
			Request  []json.RawMessage `json:"request"`
		}
		if json.Unmarshal(m.Args[0], &b) != nil || len(b.Request) == 0 || len(b.Request) > maxBatch {
			return fail(10001, "params error: request must hold 1 to 20 orders")
		}
		category = b.Category
		for _, r := range b.Request {
			var leg map[string]string
			if json.Unmarshal(r, &leg) != nil {
				return fail(10001, "params error")
			}
			legs = append(legs, leg)
		}
	} else {
		var leg map[string]string
		if json.Unmarshal(m.Args[0], &leg) != nil {
			return fail(10001, "params error")
		}
		legs = []map[string]string{leg}
	}
	if (op == "order.create" || op == "order.amend") && !a.Allowed("trade") {
		return fail(10005, "Permission denied")
	}
	var list, ext []any
	for _, o := range legs {
		var (
			so *sim.Order
			ok bool
		)
		code, msg := 0, "OK"
		switch op {
		case "order.create":
			so, ok = s.kit.PlaceOrder(sim.Order{APIKey: a.Key.APIKey, ClientOrderID: o["orderLinkId"], Symbol: o["symbol"], Side: strings.ToLower(o["side"]),
				Type: strings.ToLower(o["orderType"]), Quantity: exchange.ParseFloat(o["qty"]), Price: exchange.ParseFloat(o["price"])}), true
		case "order.amend":
			so, ok = s.kit.AmendOrder(a.Key.APIKey, o["orderId"], o["orderLinkId"], exchange.ParseFloat(o["qty"]), exchange.ParseFloat(o["price"]))
			if !ok {
				code, msg = 110001, "order not exists or too late to replace"
			}
		case "order.cancel":
			so, ok = s.kit.CancelOrder(a.Key.APIKey, o["orderId"], o["orderLinkId"])
			if !ok {
				code, msg = 110001, "Order does not exist"
			}
		default:
			return fail(10001, "op not supported by the simulator")
		}
		item := map[string]string{"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]}
		if ok {
			item = map[string]string{"orderId": so.ID, "orderLinkId": so.ClientOrderID}
		}
		if batch {
			item["category"], item["symbol"] = category, o["symbol"]
		}
		list = append(list, item)
		ext = append(ext, map[string]any{"code": code, "msg": msg})
	}
	if !batch {
		if c := ext[0].(map[string]any)["code"].(int); c != 0 {
			return fail(c, ext[0].(map[string]any)["msg"].(string))
		}
		out["data"] = list[0]
		return out
	}
	out["data"] = map[string]any{"list": list}
	out["retExtInfo"] = map[string]any{"list": ext}
	return out
}
