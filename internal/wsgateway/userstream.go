package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// ListenKeys are the user-data stream tokens (Binance listen keys) the
// gateway issued through a client credential. *gateway.Gateway implements
// it.
type ListenKeys interface {
	// ListenKey returns the token's binding; ok is false for a token
	// keywarden did not issue, or that was closed or has expired.
	ListenKey(venue, token string) (gateway.ListenKey, bool)
	// ListenKeyTag is the keyed HMAC that records carry for token.
	ListenKeyTag(token string) string
	// RevokeListenKey forgets token and closes it at the venue.
	RevokeListenKey(venue, token, reason string)
	// RevokeListenKeys revokes every token (panic switch).
	RevokeListenKeys(reason string)
	// SweepListenKeys revokes tokens of revoked or rebound credentials.
	SweepListenKeys()
}

// maxStreamTokens caps the user-data tokens one socket streams.
const maxStreamTokens = 8

// isToken says whether a stream name may be a user-data token: it is no
// market stream (symbol@kind, !ticker@arr) and at least minTokenLen long.
// Shorter names (ccxt's connection names /ws/0, /ws/1) carry no user data
// at Binance, whose listen keys are 60 characters.
func isToken(name string) bool { return len(name) >= minTokenLen && !strings.Contains(name, "@") }

// minTokenLen is the shortest stream name treated as a user-data token.
const minTokenLen = 16

// streamTokens returns the user-data tokens a stream request names: every
// path segment and every name in a streams= list that may be a token (see
// isToken), wherever it stands (/ws/<key>, /ws/a@trade/<key>,
// /stream?streams=a@trade/<key>), and every listenKey= value (Binance
// USDⓈ-M /private/ws?listenKey=<key>).
func streamTokens(rest, rawQuery string) []string {
	names := strings.Split(rest, "/")
	var out []string
	for part := range strings.SplitSeq(rawQuery, "&") {
		name, v, _ := strings.Cut(part, "=")
		switch name {
		case "streams":
			names = append(names, strings.Split(v, "/")...)
		case "listenKey":
			if v != "" {
				out = append(out, v)
			}
		}
	}
	for _, n := range names {
		if isToken(n) {
			out = append(out, n)
		}
	}
	return out
}

// redactTokens replaces every token in s by its tag.
func (p *Proxy) redactTokens(s string, tokens []string) string {
	for _, t := range tokens {
		tag := "[listen key]"
		if p.o.ListenKeys != nil {
			tag = p.o.ListenKeys.ListenKeyTag(t)
		}
		s = strings.ReplaceAll(s, t, tag)
	}
	return s
}

// streamRefusal says why a user-data stream is refused or must close.
type streamRefusal struct {
	rule, reason string
	revoke       bool // the token must be closed at the venue too
}

// checkListenKey decides whether socket c may stream token: the gateway
// issued it, and every credential bound to it is still valid, still bound
// to the token's exchange key, allowed from the socket's address and
// certificate, and allowed to read by its policy. It returns the first
// credential, for the audit record.
func (c *conn) checkListenKey(ctx context.Context, token string) (*client.Entry, *streamRefusal) {
	p := c.p
	if p.o.ListenKeys == nil {
		return nil, &streamRefusal{rule: "listen_key", reason: "user-data streams are not enabled"}
	}
	lk, ok := p.o.ListenKeys.ListenKey(c.rt.Venue, token)
	if !ok {
		return nil, &streamRefusal{rule: "listen_key", reason: "listen key not issued through this keywarden, or closed or expired; create one through the gateway"}
	}
	var first *client.Entry
	for _, id := range lk.Clients {
		e, err := p.o.Clients.Lookup(c.rt.Venue, id)
		if err != nil {
			return nil, &streamRefusal{rule: "auth", reason: "client credential " + id + ": " + err.Error(), revoke: true}
		}
		if e.Key != lk.Key {
			return e, &streamRefusal{rule: "auth", reason: "client credential " + id + " is now bound to another exchange key", revoke: true}
		}
		if first == nil {
			first = e
		}
		if !e.AllowsCert(c.peerCerts) {
			return e, &streamRefusal{rule: "auth", reason: "this credential needs its TLS client certificate"}
		}
		if !e.AllowsIP(c.ip) {
			return e, &streamRefusal{rule: "source_ip", reason: "source address " + c.ip.String() + " not allowed for credential " + id}
		}
		call := c.streamCall(lk.Tag)
		permit, err := p.o.Policy.Check(ctx, gateway.Check{Call: call, Client: &e.Client, Exchange: c.rt.Exchange, SourceIP: c.ip, Now: p.o.Now()})
		if err != nil {
			var d *gateway.Denial
			if errors.As(err, &d) {
				// A policy that no longer lets the credential read closes the
				// key at the venue too; a refusal of this socket's address
				// alone does not (whoever connected, the bot may be elsewhere).
				return e, &streamRefusal{rule: d.Rule, reason: "credential " + id + " may no longer read this stream: " + d.Reason,
					revoke: d.Rule != "source_ip"}
			}
			return e, &streamRefusal{rule: "unavailable", reason: "policy unavailable"}
		}
		if permit != nil {
			permit.Release()
		}
	}
	if first == nil {
		return nil, &streamRefusal{rule: "listen_key", reason: "listen key has no credential"}
	}
	return first, nil
}

// streamCall describes reading a user-data stream: a read, like the REST
// call that made its token.
func (c *conn) streamCall(tag string) exchange.Call {
	return exchange.Call{Venue: c.rt.Venue, Method: "GET", Path: "/ws/" + tag, Endpoint: "WS user-data stream", Scope: exchange.ScopeRead}
}

// auditStream records the opening, refusal or closing of a user-data
// stream; tokens appear as their tags only.
func (c *conn) auditStream(reqID string, e *client.Entry, path string, tokens []string, decision, rule, reason string) error {
	p := c.p
	tag := ""
	if len(tokens) > 0 && p.o.ListenKeys != nil {
		tag = p.o.ListenKeys.ListenKeyTag(tokens[0])
	}
	in := gateway.Intent{RequestID: reqID, Time: p.o.Now(), Venue: c.rt.Venue, Method: "WS",
		Path: "/" + c.rt.Venue + p.redactTokens(path, tokens), SourceIP: c.ip.String(), Call: c.streamCall(tag),
		Decision: decision, Rule: rule, Reason: reason}
	if e != nil {
		in.Client, in.Key = e.ID, e.Key
	}
	err := p.o.Audit.Intent(context.WithoutCancel(c.ctxOr()), in)
	if err != nil && decision != "allow" {
		p.log.Warn("audit of a user-data stream refusal failed", "request_id", reqID, "err", err)
	}
	return err
}

func (c *conn) ctxOr() context.Context {
	if c.ctx != nil {
		return c.ctx
	}
	return context.Background()
}

// checkStreamSocket re-checks every token of an open user-data stream: a
// token that is no longer valid closes the socket with 1008 and, when its
// credential was revoked or downgraded, is closed at the venue.
func (c *conn) checkStreamSocket() {
	c.mu.Lock()
	tokens := append([]string(nil), c.tokens...)
	c.mu.Unlock()
	for _, t := range tokens {
		e, refusal := c.checkListenKey(c.ctxOr(), t)
		if refusal == nil {
			continue
		}
		// The token is forgotten before the socket closes; should the venue
		// end the stream first, readUp still tells the bot 1008.
		if refusal.revoke {
			c.p.o.ListenKeys.RevokeListenKey(c.rt.Venue, t, refusal.reason)
		}
		c.close(websocket.StatusPolicyViolation, closedReason)
		_ = c.auditStream(c.p.requestID(), e, "/ws/"+t, []string{t}, "deny", refusal.rule, "open user-data stream closed: "+refusal.reason)
		return
	}
}

const closedReason = "user-data stream closed: credential revoked, expired or no longer allowed"

// revokedStream says whether one of the socket's user-data tokens is no
// longer one keywarden vouches for: when the venue ends such a stream
// (because keywarden closed the token), the bot is told 1008 as well.
func (c *conn) revokedStream() bool {
	c.mu.Lock()
	tokens := append([]string(nil), c.tokens...)
	c.mu.Unlock()
	for _, t := range tokens {
		if _, ok := c.p.o.ListenKeys.ListenKey(c.rt.Venue, t); !ok {
			return true
		}
	}
	return false
}

// subscribeTokens reads a stream socket's SUBSCRIBE request and returns
// the user-data tokens it names and its id; ok is false when b is no
// SUBSCRIBE request.
func subscribeTokens(b []byte) (tokens []string, id json.RawMessage, ok bool) {
	var req struct {
		Method string          `json:"method"`
		Params []string        `json:"params"`
		ID     json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b, &req) != nil || !strings.EqualFold(req.Method, "SUBSCRIBE") {
		return nil, nil, false
	}
	for _, n := range req.Params {
		if isToken(n) {
			tokens = append(tokens, n)
		}
	}
	return tokens, req.ID, true
}

// streamMessage checks a bot's message on a user-data capable stream
// socket: a SUBSCRIBE naming a user-data token needs the same checks as
// opening the stream. It reports whether to forward the message.
func (c *conn) streamMessage(typ websocket.MessageType, b []byte) bool {
	if typ != websocket.MessageText {
		return true
	}
	tokens, id, ok := subscribeTokens(b)
	if !ok || len(tokens) == 0 {
		return true
	}
	c.mu.Lock()
	n := len(c.tokens)
	c.mu.Unlock()
	refuse := func(msg string) bool {
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		ans, _ := json.Marshal(map[string]any{"error": map[string]any{"code": 2, "msg": "keywarden: " + msg}, "id": id})
		c.enqueue(c.toDown, frame{websocket.MessageText, ans}, "the client")
		return false
	}
	if n+len(tokens) > maxStreamTokens {
		return refuse("too many user-data streams on one socket")
	}
	for _, t := range tokens {
		e, refusal := c.checkListenKey(c.ctx, t)
		if refusal != nil {
			if refusal.revoke {
				c.p.o.ListenKeys.RevokeListenKey(c.rt.Venue, t, refusal.reason)
			}
			_ = c.auditStream(c.p.requestID(), e, "/ws/"+t, []string{t}, "deny", refusal.rule, "SUBSCRIBE refused: "+refusal.reason)
			return refuse("unknown, revoked or expired listen key; create one through the gateway")
		}
		reqID := c.p.requestID()
		if err := c.auditStream(reqID, e, "/ws/"+t, []string{t}, "allow", "", "SUBSCRIBE"); err != nil {
			c.p.log.Error("audit intent not durable; refusing a user-data SUBSCRIBE", "request_id", reqID, "err", err)
			return refuse("audit log unavailable; request refused")
		}
		c.p.streamOutcome(c, reqID, http.StatusOK, "forwarded")
	}
	c.mu.Lock()
	c.tokens = append(c.tokens, tokens...)
	c.mu.Unlock()
	return true
}

// errRefused says a user-data stream upgrade was answered with a refusal.
var errRefused = errors.New("user-data stream refused")

// openUserStream checks the user-data tokens a stream upgrade names and
// records the decision durably before anything is dialled. It answers a
// refusal itself (403, or 503 when the audit log fails) and returns
// errRefused; it returns the audit request id of an allowed stream ("" for
// a market-only stream).
func (p *Proxy) openUserStream(w http.ResponseWriter, r *http.Request, c *conn, rest string) (string, error) {
	tokens := streamTokens(rest, r.URL.RawQuery)
	if len(tokens) == 0 {
		return "", nil
	}
	if len(tokens) > maxStreamTokens {
		http.Error(w, "keywarden: too many user-data streams on one socket", http.StatusBadRequest)
		return "", errRefused
	}
	c.tokens = tokens
	var entry *client.Entry
	for _, t := range tokens {
		e, refusal := c.checkListenKey(r.Context(), t)
		if refusal != nil {
			if refusal.revoke {
				p.o.ListenKeys.RevokeListenKey(c.rt.Venue, t, refusal.reason)
			}
			_ = c.auditStream(p.requestID(), e, rest, tokens, "deny", refusal.rule, refusal.reason)
			http.Error(w, "keywarden: this listen key was not issued through keywarden, or its credential is revoked, "+
				"expired or not allowed to read it; create a new one through the gateway", http.StatusForbidden)
			return "", errRefused
		}
		if entry == nil {
			entry = e
		}
	}
	reqID := p.requestID()
	if err := c.auditStream(reqID, entry, rest, tokens, "allow", "", ""); err != nil {
		p.log.Error("audit intent not durable; refusing a user-data stream", "request_id", reqID, "err", err)
		http.Error(w, "keywarden: audit log unavailable; stream refused", http.StatusServiceUnavailable)
		return "", errRefused
	}
	return reqID, nil
}

// streamOutcome records how an allowed user-data stream's upstream
// handshake went.
func (p *Proxy) streamOutcome(c *conn, reqID string, status int, msg string) {
	if reqID == "" {
		return
	}
	if err := p.o.Audit.Outcome(context.Background(), gateway.Outcome{RequestID: reqID, Status: status, Error: msg}); err != nil {
		p.log.Warn("audit outcome of a user-data stream not recorded", "request_id", reqID, "err", err)
	}
}
