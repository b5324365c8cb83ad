package okx

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// WSSimulator is a loopback stand-in for OKX's WebSocket API:
// /ws/v5/public pushes tickers for subscribed instruments; /ws/v5/private
// verifies login as OKX does (HMAC over timestamp + "GET" +
// "/users/self/verify", 30 s window, passphrase, key lookup) and then
// books, amends and cancels orders for order, batch-orders, amend-order,
// batch-amend-orders, cancel-order and batch-cancel-orders ops, and
// accepts subscriptions.
// Private ops are logged in the Kit with Method "WS" and the op as Path.
// A WSSimulator is safe for concurrent use.
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
	if p != WSPublic && p != WSPrivate && p != WSBusiness {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	s.serve(r.Context(), c, p != WSPublic)
}

func (s *WSSimulator) serve(ctx context.Context, c *websocket.Conn, private bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess := sim.NewWSSession(ctx, c)
	go sess.Push(s.Interval, func(id string) any {
		last := strconv.FormatFloat(s.kit.Price(id), 'f', -1, 64)
		return map[string]any{"arg": map[string]string{"channel": "tickers", "instId": id},
			"data": []any{map[string]string{"instId": id, "last": last, "ts": strconv.FormatInt(s.kit.Now().UnixMilli(), 10)}}}
	})
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		m, e := parseWSMsg(msg)
		if e != nil {
			sess.Send(map[string]string{"event": "error", "code": "60012", "msg": "Invalid request"})
			continue
		}
		logged := sim.Logged{Method: "WS", Path: m.Op, Body: msg}
		switch m.Op {
		case "login":
			a, err := s.login(m)
			if err != nil {
				logged.Error = err.Message
				s.kit.Record(logged)
				sess.Send(map[string]string{"event": "error", "code": "60009", "msg": "Login failed."})
				continue
			}
			sess.LogOn(a)
			logged.APIKey, logged.Verified = a.Key.APIKey, true
			s.kit.Record(logged)
			sess.Send(map[string]string{"event": "login", "code": "0", "msg": "", "connId": "sim"})
			continue
		case "subscribe", "unsubscribe":
			for _, arg := range m.Args {
				var a struct {
					Channel string `json:"channel"`
					InstID  string `json:"instId"`
				}
				_ = json.Unmarshal(arg, &a)
				if private && sess.Account() == nil {
					sess.Send(map[string]string{"event": "error", "code": "60011", "msg": "Please log in"})
					continue
				}
				// The answer goes out before the first push, as at OKX.
				sess.Send(map[string]any{"event": m.Op, "arg": json.RawMessage(arg), "connId": "sim"})
				if !private && a.Channel == "tickers" {
					sess.Subscribe(a.InstID, m.Op == "subscribe")
				}
			}
			continue
		}
		a := sess.Account()
		if !private || a == nil {
			logged.Error = "not logged in"
			s.kit.Record(logged)
			sess.Send(map[string]any{"id": idString(m.ID), "op": m.Op, "code": "60011", "msg": "Please log in", "data": []any{}})
			continue
		}
		logged.APIKey, logged.Verified = a.Key.APIKey, true
		s.kit.Record(logged)
		sess.Send(s.trade(m, a))
	}
}

// login verifies a login as OKX does and returns the account.
func (s *WSSimulator) login(m *wsMsg) (*sim.Account, *exchange.Error) {
	l, e := parseLogin(m)
	if e != nil {
		return nil, e
	}
	a, ok := s.kit.Account(l.APIKey)
	if !ok {
		return nil, exchange.Errorf(exchange.ErrAuth, "unknown key")
	}
	secs, err := strconv.ParseInt(l.Timestamp, 10, 64)
	if d := s.kit.Now().Sub(time.Unix(secs, 0)); err != nil || d > Window || d < -Window {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "timestamp expired")
	}
	if !hmac.Equal([]byte(l.Sign), wsSign(a.Key.Secret, l.Timestamp)) {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid sign")
	}
	if subtle.ConstantTimeCompare([]byte(l.Passphrase), a.Key.Passphrase) != 1 {
		return nil, exchange.Errorf(exchange.ErrPassphrase, "wrong passphrase")
	}
	return a, nil
}

// trade books, amends or cancels every leg of an order op, as OKX does:
// each leg answers with its own sCode; the op's code is 0 when every leg
// succeeded, 1 when all failed and 2 when some did (batch ops).
func (s *WSSimulator) trade(m *wsMsg, a *sim.Account) map[string]any {
	out := map[string]any{"id": idString(m.ID), "op": m.Op, "code": "0", "msg": "", "data": []any{}}
	fail := func(code, msg string) map[string]any {
		out["code"], out["msg"] = code, msg
		return out
	}
	if !a.Allowed("trade") {
		return fail("50120", "API key doesn't have permission")
	}
	if len(m.Args) == 0 || (wsSingle[m.Op] && len(m.Args) != 1) || len(m.Args) > maxBatch {
		return fail("60012", "Invalid request: wrong number of args")
	}
	var data []any
	failed := 0
	leg := func(ordID, clOrdID, code, msg string) {
		if code != "0" {
			failed++
		}
		data = append(data, map[string]string{"ordId": ordID, "clOrdId": clOrdID, "sCode": code, "sMsg": msg})
	}
	for _, arg := range m.Args {
		var o struct {
			InstID  string `json:"instId"`
			Side    string `json:"side"`
			OrdType string `json:"ordType"`
			Sz      string `json:"sz"`
			Px      string `json:"px"`
			OrdID   string `json:"ordId"`
			ClOrdID string `json:"clOrdId"`
			NewSz   string `json:"newSz"`
			NewPx   string `json:"newPx"`
		}
		if json.Unmarshal(arg, &o) != nil {
			return fail("60012", "Invalid request")
		}
		switch m.Op {
		case "order", "batch-orders":
			so := s.kit.PlaceOrder(sim.Order{APIKey: a.Key.APIKey, ClientOrderID: o.ClOrdID, Symbol: o.InstID, Side: strings.ToLower(o.Side),
				Type: o.OrdType, Quantity: exchange.ParseFloat(o.Sz), Price: exchange.ParseFloat(o.Px)})
			leg(so.ID, so.ClientOrderID, "0", "")
		case "cancel-order", "batch-cancel-orders":
			if so, ok := s.kit.CancelOrder(a.Key.APIKey, o.OrdID, o.ClOrdID); ok {
				leg(so.ID, so.ClientOrderID, "0", "")
			} else {
				leg(o.OrdID, o.ClOrdID, "51400", "Order cancellation failed as the order has been filled, canceled or does not exist")
			}
		case "amend-order", "batch-amend-orders":
			if o.NewSz == "" && o.NewPx == "" {
				leg(o.OrdID, o.ClOrdID, "51000", "Parameter newSz or newPx error")
				continue
			}
			if so, ok := s.kit.AmendOrder(a.Key.APIKey, o.OrdID, o.ClOrdID, exchange.ParseFloat(o.NewSz), exchange.ParseFloat(o.NewPx)); ok {
				leg(so.ID, so.ClientOrderID, "0", "")
			} else {
				leg(o.OrdID, o.ClOrdID, "51503", "Order modification failed as the order has been filled, canceled or does not exist")
			}
		default:
			return fail("60012", "Invalid request: op not supported by the simulator")
		}
	}
	out["data"] = data
	switch {
	case failed == len(data):
		return fail("1", "All operations failed")
	case failed > 0:
		return fail("2", "Bulk operation partially succeeded")
	}
	return out
}
