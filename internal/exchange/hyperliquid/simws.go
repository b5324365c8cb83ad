package hyperliquid

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// WSInterval is the pause between the trades the WebSocket simulator
// pushes for each subscribed coin.
const WSInterval = 10 * time.Millisecond

// SimulatorWithWS serves WebSocket upgrades to /ws and every other request
// with the same Simulator: {"method":"ping"} answers {"channel":"pong"};
// subscribe answers a subscriptionResponse and, for trades, pushes a trade
// of the coin at the kit's price every WSInterval; post runs an info
// request or a signed action exactly as POST /info and POST /exchange do
// (signer recovery, nonces, agents) and answers
// {"channel":"post","data":{"id":N,"response":{"type":"info"|"action"|"error","payload":...}}}.
// Actions are logged in the Kit with Method "WS" and Path "/exchange".
func SimulatorWithWS(kit *sim.Kit) http.Handler {
	s := NewSimulator(kit)
	return sim.WithWS(s, http.HandlerFunc(s.serveWS))
}

func (s *Simulator) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != WSPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	var mu sync.Mutex
	coins := map[string]bool{}
	go func() {
		t := time.NewTicker(WSInterval)
		defer t.Stop()
		for tid := int64(1); ; tid++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			var list []string
			for coin := range coins {
				list = append(list, coin)
			}
			mu.Unlock()
			for _, coin := range list {
				send(map[string]any{"channel": "trades", "data": []any{map[string]any{"coin": coin, "side": "B",
					"px": strconv.FormatFloat(s.kit.Price(coin), 'f', -1, 64), "sz": "0.01", "time": s.kit.Now().UnixMilli(), "tid": tid}}})
			}
		}
	}()
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		method, p, perr := parseWS(msg)
		switch {
		case perr != nil && p != nil:
			send(wsPostAnswer(p.id, "error", perr.Error()))
		case perr != nil:
			send(map[string]any{"channel": "error", "data": "Error parsing JSON into valid websocket request: " + perr.Error()})
		case method == "ping":
			send(map[string]any{"channel": "pong"})
		case method == "subscribe" || method == "unsubscribe":
			v, _ := eip712.DecodeOrdered(msg)
			sub, _ := v.(*eip712.Object).Get("subscription")
			so := sub.(*eip712.Object)
			if typ, _ := stringMember(so, "type"); typ == "trades" {
				coin, _ := stringMember(so, "coin")
				mu.Lock()
				if method == "subscribe" {
					coins[coin] = true
				} else {
					delete(coins, coin)
				}
				mu.Unlock()
			}
			raw, _ := eip712.MarshalJSON(so)
			send(map[string]any{"channel": "subscriptionResponse", "data": map[string]any{"method": method, "subscription": json.RawMessage(raw)}})
		case p.typ == "info":
			body, _ := eip712.MarshalJSON(p.payload)
			out, ok := s.infoAnswer(body)
			if !ok {
				send(wsPostAnswer(p.id, "error", "Failed to deserialize the JSON body"))
				continue
			}
			t, _ := stringMember(p.payload, "type")
			send(wsPostAnswer(p.id, "info", map[string]any{"type": t, "data": out}))
		default:
			body, _ := eip712.MarshalJSON(p.payload)
			status, out := s.act(body, sim.Logged{Method: "WS", Path: "/exchange", Body: body})
			if status != http.StatusOK {
				send(wsPostAnswer(p.id, "error", out))
				continue
			}
			send(wsPostAnswer(p.id, "action", out))
		}
	}
}

func wsPostAnswer(id uint64, typ string, payload any) any {
	return map[string]any{"channel": "post", "data": map[string]any{"id": id, "response": map[string]any{"type": typ, "payload": payload}}}
}
