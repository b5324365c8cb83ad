package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// User-data stream tokens (Binance listen keys) are bearer tokens: whoever
// holds one reads the account's user-data stream. The gateway therefore
// remembers, for each token a bot obtained through it, which client
// credential and exchange key it belongs to, so that the WebSocket proxy
// opens a user-data stream only for a token keywarden issued through a
// currently valid credential, and closes the token at the venue when that
// credential is revoked. The tokens live in this replica's memory only,
// bounded and expiring with the venue's 60-minute validity; audit records
// carry a keyed HMAC of a token (ListenKeyTag), never the token.

// ListenKeyValidity is how long a token lives at the venue after its
// creation or last keep-alive (Binance: 60 minutes).
const ListenKeyValidity = 60 * time.Minute

// maxListenKeys bounds the tokens remembered; maxListenKeyClients the
// credentials sharing one token (Binance hands every caller of one
// account the same key).
const (
	maxListenKeys       = 4096
	maxListenKeyClients = 8
)

// streamTokens is the optional Verifier capability of venues whose
// user-data streams open with a token made over REST.
type streamTokens interface {
	StreamToken(in *exchange.Request, answer []byte) (op, token string, closer *exchange.Request)
}

// ListenKey is what the gateway knows of one user-data stream token.
type ListenKey struct {
	Venue    string
	Exchange string
	Key      string   // exchange key name the token belongs to
	Clients  []string // credentials that created or kept it alive
	Tag      string   // keyed HMAC of the token, for audit records
	Expires  time.Time
}

type listenKeyEntry struct {
	ListenKey
	token  string
	closer *exchange.Request
}

// listenKeys is the bounded in-memory token table. Safe for concurrent use.
type listenKeys struct {
	mac []byte // HMAC key of the audit tags; random per process

	mu sync.Mutex
	m  map[string]*listenKeyEntry // by venue + "\x00" + token
}

func newListenKeys() (*listenKeys, error) {
	mac := make([]byte, 32)
	if _, err := randRead(mac); err != nil {
		return nil, err
	}
	return &listenKeys{mac: mac, m: map[string]*listenKeyEntry{}}, nil
}

func (l *listenKeys) tag(token string) string {
	h := hmac.New(sha256.New, l.mac)
	h.Write([]byte(token))
	return "lk-hmac:" + hex.EncodeToString(h.Sum(nil)[:12])
}

// bind records that client, using exchange key key, created or kept alive
// token; the venue's success answer proved the token is that key's. It
// reports false when the table is full of live tokens.
func (l *listenKeys) bind(venue, exch, key, client, token string, closer *exchange.Request, now time.Time) bool {
	id := venue + "\x00" + token
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[id]
	if e != nil && e.Key != key {
		// Not this key's token any more: start over.
		e = nil
	}
	if e == nil {
		if len(l.m) >= maxListenKeys {
			for k, x := range l.m {
				if now.After(x.Expires) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxListenKeys {
				return false
			}
		}
		e = &listenKeyEntry{ListenKey: ListenKey{Venue: venue, Exchange: exch, Key: key, Tag: l.tag(token)}, token: token}
		l.m[id] = e
	}
	if !slices.Contains(e.Clients, client) {
		if len(e.Clients) >= maxListenKeyClients {
			e.Clients = e.Clients[1:]
		}
		e.Clients = append(e.Clients, client)
	}
	if closer != nil {
		e.closer = closer
	}
	e.Expires = now.Add(ListenKeyValidity)
	return true
}

func (l *listenKeys) lookup(venue, token string, now time.Time) (ListenKey, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[venue+"\x00"+token]
	if !ok || now.After(e.Expires) {
		return ListenKey{}, false
	}
	k := e.ListenKey
	k.Clients = slices.Clone(e.Clients)
	return k, true
}

func (l *listenKeys) remove(venue, token string) (*listenKeyEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[venue+"\x00"+token]
	delete(l.m, venue+"\x00"+token)
	return e, ok
}

// snapshot returns copies of the live entries and drops expired ones.
func (l *listenKeys) snapshot(now time.Time) []listenKeyEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]listenKeyEntry, 0, len(l.m))
	for k, e := range l.m {
		if now.After(e.Expires) {
			delete(l.m, k)
			continue
		}
		c := *e
		c.Clients = slices.Clone(e.Clients)
		out = append(out, c)
	}
	return out
}

// ListenKey returns what the gateway knows of venue's user-data stream
// token: ok is false for a token it did not issue, or that was closed or
// expired.
func (g *Gateway) ListenKey(venue, token string) (ListenKey, bool) {
	return g.listen.lookup(venue, token, g.now())
}

// ListenKeyTag is the keyed HMAC of token that audit records and logs
// carry instead of the token.
func (g *Gateway) ListenKeyTag(token string) string { return g.listen.tag(token) }

// RevokeListenKey forgets venue's token and closes it at the venue with
// the exchange key it belongs to, in the background; the close is audited
// (intent and outcome) with reason. Unknown tokens are ignored.
func (g *Gateway) RevokeListenKey(venue, token, reason string) {
	e, ok := g.listen.remove(venue, token)
	if !ok || e.closer == nil {
		return
	}
	g.inflight.Add(1)
	go func() {
		defer g.inflight.Done()
		g.closeListenKey(e, reason)
	}()
}

// RevokeListenKeys revokes every token the gateway knows (the panic
// switch: no user-data stream outlives it at the venue).
func (g *Gateway) RevokeListenKeys(reason string) {
	for _, e := range g.listen.snapshot(g.now()) {
		g.RevokeListenKey(e.Venue, e.token, reason)
	}
}

// SweepListenKeys drops expired tokens and revokes those whose credentials
// were revoked, expired or bound to another exchange key since. The
// WebSocket proxy calls it from its once-a-second check.
func (g *Gateway) SweepListenKeys() {
	for _, e := range g.listen.snapshot(g.now()) {
		for _, id := range e.Clients {
			ent, err := g.clients.Lookup(e.Venue, id)
			if err != nil {
				g.RevokeListenKey(e.Venue, e.token, "client credential "+id+": "+err.Error())
				break
			}
			if ent.Key != e.Key {
				g.RevokeListenKey(e.Venue, e.token, "client credential "+id+" is now bound to another exchange key")
				break
			}
		}
	}
}

// closeListenKey sends e's closing call to the venue, signed with its
// exchange key, with an audit intent before and an outcome after.
func (g *Gateway) closeListenKey(e *listenKeyEntry, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	rt := g.routes[e.Venue]
	if rt == nil {
		return
	}
	out := e.closer.Clone()
	client := ""
	if len(e.Clients) > 0 {
		client = e.Clients[0]
	}
	reqID := g.requestID()
	in := Intent{RequestID: reqID, Time: g.now(), Client: client, Key: e.Key, Venue: e.Venue, Method: out.Method,
		Path: rt.prefix + out.Path, Decision: "allow", Rule: "listen_key_revoked",
		Reason: "keywarden closes listen key " + e.Tag + ": " + reason,
		Call:   exchange.Call{Venue: e.Venue, Method: out.Method, Path: out.Path, Endpoint: out.Method + " " + out.Path, Scope: exchange.ScopeRead}}
	if err := g.audit.Intent(ctx, in); err != nil {
		g.log.Error("audit intent of a listen-key close not durable; not sent", "request_id", reqID, "err", err)
		return
	}
	outcome := func(status int, msg string) {
		if err := g.audit.Outcome(context.WithoutCancel(ctx), Outcome{RequestID: reqID, Status: status, Error: msg}); err != nil {
			g.log.Error("audit outcome of a listen-key close not recorded", "request_id", reqID, "err", err)
		}
	}
	key, err := g.keys.Credential(ctx, rt.Exchange, e.Key)
	if err != nil {
		outcome(http.StatusServiceUnavailable, "exchange key unavailable; the listen key expires at the venue within 60 minutes")
		return
	}
	if err := rt.Venue.Signer.Sign(out, key, g.now()); err != nil {
		outcome(http.StatusServiceUnavailable, "could not sign the close")
		return
	}
	u := &url.URL{Scheme: rt.base.Scheme, Host: rt.base.Host, Path: joinPath(rt.base.Path, out.Path), RawQuery: out.RawQuery}
	req, err := http.NewRequestWithContext(ctx, out.Method, u.String(), bytes.NewReader(out.Body))
	if err != nil {
		outcome(http.StatusServiceUnavailable, "could not build the close")
		return
	}
	req.Header = out.Header
	req.ContentLength = int64(len(out.Body))
	resp, err := g.rt.RoundTrip(req)
	if err != nil {
		// The error names the URL, which holds the token: not recorded.
		outcome(http.StatusBadGateway, "the venue could not be reached; the listen key expires at the venue within 60 minutes")
		return
	}
	resp.Body.Close()
	outcome(resp.StatusCode, "")
}

// streamCall is a USER_STREAM call on its way through the gateway.
type streamCall struct {
	st streamTokens
}

// listenKeyCall returns the USER_STREAM handling of out, or nil when out
// is no such call; body is out's body as the audit record carries it, with
// the token replaced by its tag.
func (g *Gateway) listenKeyCall(v *exchange.Venue, out *exchange.Request) (*streamCall, []byte) {
	sts, ok := v.Verifier.(streamTokens)
	if !ok {
		return nil, out.Body
	}
	op, token, _ := sts.StreamToken(out, nil)
	if op == "" {
		return nil, out.Body
	}
	sc := &streamCall{st: sts}
	body := out.Body
	if token != "" {
		body = bytes.ReplaceAll(body, []byte(token), []byte(g.listen.tag(token)))
	}
	return sc, body
}

// forwardListenKeyCall forwards a USER_STREAM call and, when the venue
// accepts it, records (create, keep-alive) or forgets (close) its token.
func (g *Gateway) forwardListenKeyCall(st *state, out *exchange.Request, key *exchange.Credential, sc *streamCall) {
	in := out.Clone()
	cw := &captureWriter{ResponseWriter: st.w}
	st.w = cw
	g.forward(st, out, key)
	st.w = cw.ResponseWriter
	if cw.status < 200 || cw.status > 299 || st.entry == nil {
		return
	}
	op, token, closer := sc.st.StreamToken(in, cw.buf.Bytes())
	if token == "" {
		return
	}
	now := g.now()
	switch op {
	case "close":
		g.listen.remove(st.rt.Venue.Name, token)
	default:
		if !g.listen.bind(st.rt.Venue.Name, st.rt.Exchange, st.entry.Key, st.entry.ID, token, closer, now) {
			g.log.Warn("listen-key table full; the stream of this listen key will be refused",
				"venue", st.rt.Venue.Name, "client", st.entry.ID, "listen_key", g.listen.tag(token))
		}
	}
}

// captureWriter keeps a copy of a small answer on its way to the bot.
type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *captureWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.buf.Len()+len(b) <= 64<<10 {
		c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}
