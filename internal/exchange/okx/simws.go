package okx

import (
	"context"
	"crypto/hmac"
	"crypto/subtle"
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

// WSSimulator is a loopback stand-in for OKX's WebSocket API:
// /ws/v5/public pushes tickers for subscribed instruments; /ws/v5/private
// verifies login as OKX does (HMAC over timestamp + "GET" +
// "/users/self/verify", 30 s window, passphrase, key lookup) and then
// accepts order, batch-orders and cancel-order ops and subscriptions.
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
	var (
		mu   sync.Mutex
		subs = map[string]bool{} // instIds with a tickers subscription
		acct *sim.Account
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
			var ids []string
			for id := range subs {
				ids = append(ids, id)
			}
			mu.Unlock()
			for _, id := range ids {
				last := strconv.FormatFloat(s.kit.Price(id), 'f', -1, 64)
				send(map[string]any{"arg": map[string]string{"channel": "tickers", "instId": id},
					"data": []any{map[string]string{"instId": id, "last": last, "ts": strconv.FormatInt(s.kit.Now().UnixMilli(), 10)}}})
			}
		}
	}()
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		m, e := parseWSMsg(msg)
		if e != nil {
			send(map[string]string{"event": "error", "code": "60012", "msg": "Invalid request"})
			continue
		}
		logged := sim.Logged{Method: "WS", Path: m.Op, Body: msg}
		switch m.Op {
		case "login":
			a, err := s.login(m)
			if err != nil {
				logged.Error = err.Message
				s.kit.Record(logged)
				send(map[string]string{"event": "error", "code": "60009", "msg": "Login failed."})
				continue
			}
			mu.Lock()
			acct = a
			mu.Unlock()
			logged.APIKey, logged.Verified = a.Key.APIKey, true
			s.kit.Record(logged)
			send(map[string]string{"event": "login", "code": "0", "msg": "", "connId": "sim"})
			continue
		case "subscribe", "unsubscribe":
			for _, arg := range m.Args {
				var a struct {
					Channel string `json:"channel"`
					InstID  string `json:"instId"`
				}
				_ = json.Unmarshal(arg, &a)
				mu.Lock()
				if !private && a.Channel == "tickers" {
					if m.Op == "subscribe" {
						subs[a.InstID] = true
					} else {
						delete(subs, a.InstID)
					}
				}
				logged := acct == nil && private
				mu.Unlock()
				if logged {
					send(map[string]string{"event": "error", "code": "60011", "msg": "Please log in"})
					continue
				}
				send(map[string]any{"event": m.Op, "arg": json.RawMessage(arg), "connId": "sim"})
			}
			continue
		}
		mu.Lock()
		a := acct
		mu.Unlock()
		if !private || a == nil {
			logged.Error = "not logged in"
			s.kit.Record(logged)
			send(map[string]any{"id": idString(m.ID), "op": m.Op, "code": "60011", "msg": "Please log in", "data": []any{}})
			continue
		}
		logged.APIKey, logged.Verified = a.Key.APIKey, true
		s.kit.Record(logged)
		send(s.trade(m, a))
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

func (s *WSSimulator) trade(m *wsMsg, a *sim.Account) map[string]any {
	out := map[string]any{"id": idString(m.ID), "op": m.Op, "code": "0", "msg": "", "data": []any{}}
	fail := func(code, msg string) map[string]any {
		out["code"], out["msg"] = code, msg
		return out
	}
	if !a.Allowed("trade") {
		return fail("50120", "API key doesn't have permission")
	}
	var data []any
	for _, arg := range m.Args {
		var o struct {
			InstID  string `json:"instId"`
			Side    string `json:"side"`
			OrdType string `json:"ordType"`
			Sz      string `json:"sz"`
			Px      string `json:"px"`
			OrdID   string `json:"ordId"`
			ClOrdID string `json:"clOrdId"`
		}
		if json.Unmarshal(arg, &o) != nil {
			return fail("60012", "Invalid request")
		}
		switch m.Op {
		case "order", "batch-orders":
			so := s.kit.PlaceOrder(sim.Order{APIKey: a.Key.APIKey, ClientOrderID: o.ClOrdID, Symbol: o.InstID, Side: strings.ToLower(o.Side),
				Type: o.OrdType, Quantity: exchange.ParseFloat(o.Sz), Price: exchange.ParseFloat(o.Px)})
			data = append(data, map[string]string{"ordId": so.ID, "clOrdId": so.ClientOrderID, "sCode": "0", "sMsg": ""})
		case "cancel-order", "batch-cancel-orders":
			if so, ok := s.kit.CancelOrder(a.Key.APIKey, o.OrdID, o.ClOrdID); ok {
				data = append(data, map[string]string{"ordId": so.ID, "clOrdId": so.ClientOrderID, "sCode": "0", "sMsg": ""})
			} else {
				data = append(data, map[string]string{"ordId": o.OrdID, "sCode": "51400", "sMsg": "Order cancellation failed"})
			}
		default:
			return fail("60012", "Invalid request: op not supported by the simulator")
		}
	}
	out["data"] = data
	return out
}
