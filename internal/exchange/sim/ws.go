package sim

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WSSession is one simulated venue WebSocket: JSON messages written to the
// client, the topics it subscribed to (pushed at an interval by Push), and
// the account that logged it on. The OKX and Bybit simulators share it. A
// WSSession is safe for concurrent use.
type WSSession struct {
	ctx context.Context
	c   *websocket.Conn

	mu     sync.Mutex
	topics map[string]bool
	acct   *Account
}

// NewWSSession wraps c, whose writes use ctx.
func NewWSSession(ctx context.Context, c *websocket.Conn) *WSSession {
	return &WSSession{ctx: ctx, c: c, topics: map[string]bool{}}
}

// Send writes v as one JSON text message; a failed write ends nothing
// (the read loop sees the closed socket).
func (s *WSSession) Send(v any) {
	b, _ := json.Marshal(v)
	_ = s.c.Write(s.ctx, websocket.MessageText, b)
}

// Subscribe adds (on) or removes a topic.
func (s *WSSession) Subscribe(topic string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.topics[topic] = true
	} else {
		delete(s.topics, topic)
	}
}

// LogOn binds the socket to a; Account returns it (nil before a login).
func (s *WSSession) LogOn(a *Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acct = a
}

// Account is the account that logged the socket on, or nil.
func (s *WSSession) Account() *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct
}

// Push sends event(topic) for every subscribed topic each interval until
// the session's context ends. Run it in its own goroutine.
func (s *WSSession) Push(interval time.Duration, event func(topic string) any) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		ts := make([]string, 0, len(s.topics))
		for tp := range s.topics {
			ts = append(ts, tp)
		}
		s.mu.Unlock()
		for _, tp := range ts {
			s.Send(event(tp))
		}
	}
}
