package wsgateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// frame is one message in a queue.
type frame struct {
	typ websocket.MessageType
	b   []byte
}

// pending is a forwarded WS API request awaiting its answer.
type pending struct {
	reqID  string
	permit gateway.Permit
	sent   time.Time
}

// conn is one proxied socket pair.
type conn struct {
	p         *Proxy
	rt        *Route
	api       exchange.WSAPI // nil for streams
	ip        netip.Addr
	peerCerts []*x509.Certificate
	finished  chan struct{}

	down, up *websocket.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	toDown   chan frame
	toUp     chan frame

	closeOnce sync.Once

	mu      sync.Mutex
	session *client.Entry // the client that logged the session on
	last    *client.Entry // the client of the latest signed request
	scrub   []byte        // the exchange API key, replaced in answers
	pending map[string]pending
	tokens  []string // user-data stream tokens streamed (never logged)
}

// hasTokens says whether the socket streams user data.
func (c *conn) hasTokens() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tokens) > 0
}

// clientID is the credential the socket acts for, for revocation checks.
func (c *conn) clientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != nil {
		return c.session.ID
	}
	if c.last != nil {
		return c.last.ID
	}
	return ""
}

// close ends both sockets once, with a close handshake on each: the bot
// gets code and reason. The pumps stop when both handshakes are done (each
// bounded by the library's 5 s timeouts).
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		go func() {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); _ = c.down.Close(code, reason) }()
			go func() { defer wg.Done(); _ = c.up.Close(websocket.StatusNormalClosure, "") }()
			wg.Wait()
			c.cancel()
		}()
	})
}

// run pumps messages until either side ends.
func (c *conn) run(parent context.Context, down, up *websocket.Conn) {
	c.down, c.up = down, up
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(parent))
	c.toDown = make(chan frame, c.p.o.QueueLen)
	c.toUp = make(chan frame, c.p.o.QueueLen)
	c.p.register(c)
	defer c.p.unregister(c)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); c.readUp() }()
	go func() { defer wg.Done(); c.readDown() }()
	go func() { defer wg.Done(); c.write(c.down, c.toDown) }()
	go func() { defer wg.Done(); c.write(c.up, c.toUp) }()
	go func() { defer wg.Done(); c.ping() }()
	<-c.ctx.Done()
	wg.Wait()
	down.CloseNow()
	up.CloseNow()
	c.finishPending()
}

// enqueue queues f without blocking; a full queue means the receiving side
// does not keep up, and the socket is closed rather than buffered.
func (c *conn) enqueue(q chan frame, f frame, who string) bool {
	select {
	case q <- f:
		return true
	default:
		c.p.log.Warn("websocket queue full; closing", "venue", c.rt.Venue, "slow", who)
		c.close(websocket.StatusTryAgainLater, who+" does not keep up; reconnect")
		return false
	}
}

func (c *conn) write(ws *websocket.Conn, q chan frame) {
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-q:
			ctx, cancel := context.WithTimeout(c.ctx, c.p.o.WriteTimeout)
			err := ws.Write(ctx, f.typ, f.b)
			cancel()
			if err != nil {
				c.close(websocket.StatusTryAgainLater, "write failed; reconnect")
				return
			}
		}
	}
}

func (c *conn) ping() {
	t := time.NewTicker(c.p.o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.p.o.WriteTimeout)
		err := c.down.Ping(ctx)
		cancel()
		if err != nil {
			c.close(websocket.StatusTryAgainLater, "ping not answered; reconnect")
			return
		}
	}
}

// readUp relays the venue's messages, scrubbing the exchange key and
// recording the outcome of answered requests.
func (c *conn) readUp() {
	for {
		typ, b, err := c.up.Read(c.ctx)
		if err != nil {
			if c.hasTokens() && c.revokedStream() {
				c.close(websocket.StatusPolicyViolation, closedReason)
			} else if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				c.close(websocket.StatusNormalClosure, "the venue closed the stream")
			} else {
				c.close(websocket.StatusTryAgainLater, "the venue's stream ended; reconnect")
			}
			return
		}
		if c.api != nil {
			b = c.answer(b)
		}
		if !c.enqueue(c.toDown, frame{typ, b}, "the client") {
			return
		}
	}
}

// readDown handles the bot's messages: unchanged for streams, checked one
// by one for the WS API.
func (c *conn) readDown() {
	for {
		typ, b, err := c.down.Read(c.ctx)
		if err != nil {
			c.close(websocket.StatusNormalClosure, "")
			return
		}
		if c.api == nil {
			if c.rt.UserStreams && !c.streamMessage(typ, b) {
				continue
			}
			if !c.enqueue(c.toUp, frame{typ, b}, "the venue") {
				return
			}
			continue
		}
		if typ != websocket.MessageText {
			c.refuse(nil, exchange.Errorf(exchange.ErrBadRequest, "the WebSocket API takes text messages"))
			continue
		}
		c.request(b)
	}
}

// answer scrubs the exchange API key from an upstream message and settles
// the request it answers.
func (c *conn) answer(b []byte) []byte {
	c.mu.Lock()
	scrub, repl := c.scrub, []byte(nil)
	if c.session != nil {
		repl = []byte(c.session.ID)
	} else if c.last != nil {
		repl = []byte(c.last.ID)
	}
	c.mu.Unlock()
	if len(scrub) > 0 {
		b = bytes.ReplaceAll(b, scrub, repl)
	}
	id, ok, isAnswer := c.api.Answer(b)
	if !isAnswer {
		return b
	}
	c.mu.Lock()
	pd, found := c.pending[string(id)]
	delete(c.pending, string(id))
	c.mu.Unlock()
	if !found {
		return b
	}
	status := 200
	if !ok {
		status = 400
		pd.permit.Release()
	} else {
		pd.permit.Commit()
	}
	if err := c.p.o.Audit.Outcome(context.WithoutCancel(c.ctx), gateway.Outcome{
		RequestID: pd.reqID, Status: status, Latency: c.p.o.Now().Sub(pd.sent),
	}); err != nil {
		c.p.log.Error("audit outcome not recorded; closing the socket", "request_id", pd.reqID, "err", err)
		c.close(websocket.StatusTryAgainLater, "audit log unavailable")
	}
	return b
}

// finishPending settles requests that never got an answer.
func (c *conn) finishPending() {
	c.mu.Lock()
	ps := c.pending
	c.pending = map[string]pending{}
	c.mu.Unlock()
	for _, pd := range ps {
		pd.permit.Release()
		_ = c.p.o.Audit.Outcome(context.Background(), gateway.Outcome{RequestID: pd.reqID,
			Error: "unknown: the socket closed before the venue answered; check the order at the venue"})
	}
}

// refuse answers m with e in the venue's shape.
func (c *conn) refuse(m *exchange.WSMessage, e *exchange.Error) {
	c.enqueue(c.toDown, frame{websocket.MessageText, c.api.Refuse(m, e)}, "the client")
}

// intent builds the audit record of one WS API message.
func (c *conn) intent(reqID string, m *exchange.WSMessage, e *client.Entry, call exchange.Call, body []byte, decision, rule, reason string) gateway.Intent {
	in := gateway.Intent{RequestID: reqID, Time: c.p.o.Now(), Venue: c.rt.Venue, Method: "WS", Path: "/" + c.rt.Venue + " " + exchange.SafeName(m.Op),
		SourceIP: c.ip.String(), Call: call, Decision: decision, Rule: rule, Reason: reason, Body: body}
	if e != nil {
		in.Client, in.Key = e.ID, e.Key
	} else if m.ClientKey != "" {
		in.Client = exchange.SafeName(m.ClientKey)
	}
	return in
}

var errNoSession = exchange.Errorf(exchange.ErrAuth, "log the socket on first (session.logon, login or auth) or sign the request")

// request runs one bot message through verify, describe, policy, audit
// and sign, then forwards it, or answers a refusal.
func (c *conn) request(b []byte) {
	p := c.p
	now := p.o.Now()
	reqID := p.requestID()
	m, err := c.api.Parse(b)
	if err != nil {
		c.refuse(m, exchange.AsError(err))
		return
	}
	denyAudit := func(e *client.Entry, call exchange.Call, rule, reason string) {
		if err := p.o.Audit.Intent(context.WithoutCancel(c.ctx), c.intent(reqID, m, e, call, nil, "deny", rule, reason)); err != nil {
			p.log.Warn("audit of a refusal failed", "request_id", reqID, "err", err)
		}
	}
	if m.Public {
		call, err := c.api.Describe(b, m)
		if err != nil || call.Scope != exchange.ScopePublic {
			c.refuse(m, exchange.Errorf(exchange.ErrAuth, "this method needs an API key"))
			return
		}
		c.enqueue(c.toUp, frame{websocket.MessageText, b}, "the venue")
		return
	}
	if err := p.o.Healthy(); err != nil {
		c.refuse(m, exchange.Errorf(exchange.ErrUnavailable, "keywarden is not accepting requests: %s", err.Error()))
		return
	}
	var entry *client.Entry
	if m.Signed || m.Logon {
		e, err := p.o.Clients.Lookup(c.rt.Venue, m.ClientKey)
		if err != nil {
			denyAudit(nil, exchange.Call{}, "auth", err.Error())
			c.refuse(m, exchange.Errorf(exchange.ErrAuth, "invalid API key or signature"))
			return
		}
		if !e.AllowsCert(c.peerCerts) {
			denyAudit(e, exchange.Call{}, "auth", "this credential needs its TLS client certificate")
			c.refuse(m, exchange.Errorf(exchange.ErrAuth, "this credential needs its TLS client certificate"))
			return
		}
		if !e.AllowsIP(c.ip) {
			denyAudit(e, exchange.Call{}, "source_ip", "source address not allowed")
			c.refuse(m, exchange.Errorf(exchange.ErrIP, "source address %s is not allowed for this credential", c.ip))
			return
		}
		if err := c.api.Verify(b, m, e.Cred, now); err != nil {
			ee := exchange.AsError(err)
			denyAudit(e, exchange.Call{}, reasonCode(ee.Kind), ee.Message)
			if ee.Kind == exchange.ErrAuth || ee.Kind == exchange.ErrPassphrase {
				ee = exchange.Errorf(exchange.ErrAuth, "invalid API key or signature")
			}
			c.refuse(m, ee)
			return
		}
		if !p.replay.add(c.rt.Venue, m.Signature, now) {
			denyAudit(e, exchange.Call{}, "timestamp", "replayed signature")
			c.refuse(m, exchange.Errorf(exchange.ErrTimestamp, "replayed request: this signature was already received"))
			return
		}
		c.mu.Lock()
		if c.session != nil && c.session.ID != e.ID {
			c.mu.Unlock()
			denyAudit(e, exchange.Call{}, "auth", "socket logged on by another credential")
			c.refuse(m, exchange.Errorf(exchange.ErrAuth, "this socket is logged on with another credential"))
			return
		}
		c.last = e
		c.mu.Unlock()
		entry = e
	} else {
		c.mu.Lock()
		entry = c.session
		c.mu.Unlock()
		if entry == nil {
			c.refuse(m, errNoSession)
			return
		}
		if _, err := p.o.Clients.Lookup(c.rt.Venue, entry.ID); err != nil {
			denyAudit(entry, exchange.Call{}, "auth", err.Error())
			c.close(websocket.StatusPolicyViolation, "client credential revoked or expired")
			return
		}
	}
	call, err := c.api.Describe(b, m)
	if err != nil {
		ee := exchange.AsError(err)
		denyAudit(entry, exchange.Call{}, reasonCode(ee.Kind), ee.Message)
		c.refuse(m, ee)
		return
	}
	call.Venue = c.rt.Venue
	permit, err := p.o.Policy.Check(c.ctx, gateway.Check{Call: call, Client: &entry.Client, Exchange: c.rt.Exchange, SourceIP: c.ip, Now: now})
	if err != nil {
		var d *gateway.Denial
		if errors.As(err, &d) {
			denyAudit(entry, call, d.Rule, d.Reason)
			c.refuse(m, &exchange.Error{Kind: exchange.ErrPermission, Message: "keywarden policy denied (rule " + d.Rule + "): " + d.Reason, RetryAfter: d.RetryAfter})
			return
		}
		p.log.Error("policy check failed", "request_id", reqID, "err", err)
		c.refuse(m, exchange.Errorf(exchange.ErrUnavailable, "policy unavailable"))
		return
	}
	if permit == nil {
		permit = noPermit{}
	}
	tracked := len(m.ID) > 0 // answers to messages without an id cannot be matched
	c.mu.Lock()
	_, dup := c.pending[string(m.ID)]
	full := len(c.pending) >= p.o.MaxPending
	c.mu.Unlock()
	dup = dup && tracked
	if dup || full {
		permit.Release()
		c.refuse(m, exchange.Errorf(exchange.ErrRateLimit, "too many requests awaiting an answer, or a request id reused while in flight"))
		return
	}
	if err := p.o.Audit.Intent(c.ctx, c.intent(reqID, m, entry, call, redactSignature(b, m.Signature), "allow", "", "")); err != nil {
		permit.Release()
		p.log.Error("audit intent not durable; refusing", "request_id", reqID, "err", err)
		c.refuse(m, exchange.Errorf(exchange.ErrUnavailable, "audit log unavailable; request refused"))
		return
	}
	out := b
	if m.Signed || m.Logon {
		key, err := p.o.Keys.Credential(c.ctx, c.rt.Exchange, entry.Key)
		if err != nil {
			permit.Release()
			c.settle(reqID, exchange.Errorf(exchange.ErrUnavailable, "exchange key %s is unavailable", entry.Key))
			c.refuse(m, exchange.Errorf(exchange.ErrUnavailable, "exchange key %s is unavailable", entry.Key))
			return
		}
		out, err = c.api.Sign(b, m, key, p.o.Now())
		if err != nil {
			permit.Release()
			ee := exchange.AsError(err)
			if ee.Kind != exchange.ErrUnavailable {
				ee = exchange.Errorf(exchange.ErrUnavailable, "could not sign the request")
			}
			c.settle(reqID, ee)
			c.refuse(m, ee)
			return
		}
		c.mu.Lock()
		c.scrub = []byte(key.APIKey)
		if m.Logon {
			c.session = entry
		}
		c.mu.Unlock()
	}
	// Re-check revocation and the panic switch just before forwarding.
	if err := p.o.Healthy(); err != nil {
		permit.Release()
		c.settle(reqID, exchange.Errorf(exchange.ErrUnavailable, "keywarden is not accepting requests"))
		c.close(websocket.StatusTryAgainLater, "keywarden stopped accepting requests")
		return
	}
	if _, err := p.o.Clients.Lookup(c.rt.Venue, entry.ID); err != nil {
		permit.Release()
		c.settle(reqID, exchange.Errorf(exchange.ErrAuth, "client credential revoked"))
		c.close(websocket.StatusPolicyViolation, "client credential revoked or expired")
		return
	}
	if !tracked {
		if c.enqueue(c.toUp, frame{websocket.MessageText, out}, "the venue") {
			permit.Commit()
			_ = p.o.Audit.Outcome(context.WithoutCancel(c.ctx), gateway.Outcome{RequestID: reqID,
				Error: "forwarded; the venue's answer to a message without an id is not matched"})
		} else {
			permit.Release()
		}
		return
	}
	c.mu.Lock()
	c.pending[string(m.ID)] = pending{reqID: reqID, permit: permit, sent: now}
	c.mu.Unlock()
	c.enqueue(c.toUp, frame{websocket.MessageText, out}, "the venue")
}

// settle records the outcome of an allowed request that was not forwarded.
func (c *conn) settle(reqID string, e *exchange.Error) {
	_ = c.p.o.Audit.Outcome(context.WithoutCancel(c.ctx), gateway.Outcome{RequestID: reqID, Status: 503, Error: e.Message})
}

// redactSignature drops the bot's signature from the audited body.
func redactSignature(b []byte, sig string) []byte {
	if sig == "" {
		return b
	}
	return bytes.ReplaceAll(b, []byte(sig), []byte("[signature]"))
}

type noPermit struct{}

func (noPermit) Commit()  {}
func (noPermit) Release() {}

func reasonCode(k exchange.ErrorKind) string {
	switch k {
	case exchange.ErrAuth:
		return "auth"
	case exchange.ErrTimestamp:
		return "timestamp"
	case exchange.ErrPassphrase:
		return "passphrase"
	case exchange.ErrIP:
		return "source_ip"
	case exchange.ErrPermission:
		return "permission"
	case exchange.ErrRateLimit:
		return "rate_limit"
	case exchange.ErrUnavailable:
		return "unavailable"
	case exchange.ErrNotFound:
		return "not_found"
	}
	return "bad_request"
}
