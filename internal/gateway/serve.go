package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	h1 "github.com/keywarden/keywarden/internal/upstream"
)

// forwardHeaders are the request headers that go upstream; everything else
// the bot sent stays behind, its credentials above all. The Signer then adds
// the venue's auth headers for the exchange key.
var forwardHeaders = []string{
	"Content-Type", "Accept", "User-Agent",
	"X-Simulated-Trading", // OKX demo trading
	"Paptrading",          // Bitget demo trading
	"Locale",              // Bitget
}

// outboundHeaders copies the allowed headers of h.
func outboundHeaders(h http.Header) http.Header {
	// Room for the usual few forwarded headers and the signer's; a hint
	// above 8 would allocate a larger map than an order needs.
	return appendOutboundHeaders(make(http.Header, 8), h)
}

// pooledOutboundHeaders is outboundHeaders into a map from g.headers when
// the transport is internal/upstream's client: it writes the request on
// the caller's goroutine and keeps nothing of it, so the map is free again
// once forward returned (releaseHeaders). Another RoundTripper may still be
// writing the request after it returned, so it gets a fresh map.
func (g *Gateway) pooledOutboundHeaders(h http.Header) http.Header {
	if _, ok := g.rt.(*h1.Client); ok {
		if out, _ := g.headers.Get().(http.Header); out != nil {
			return appendOutboundHeaders(out, h)
		}
	}
	return outboundHeaders(h)
}

// releaseHeaders gives a map from pooledOutboundHeaders back, emptied: it
// held the exchange API key the signer set. A map that grew past a usual
// request's headers is left to the collector.
func (g *Gateway) releaseHeaders(h http.Header) {
	if _, ok := g.rt.(*h1.Client); !ok || len(h) > 16 {
		return
	}
	clear(h)
	g.headers.Put(h)
}

// signScratch returns a scratch from g.scratch for the signer to write the
// outbound request's signed bytes into, under the same rule as
// pooledOutboundHeaders: only when the transport is internal/upstream's
// client, which keeps nothing of the request once forward returned. It
// returns nil otherwise (the signer then allocates).
func (g *Gateway) signScratch() *exchange.SignScratch {
	if _, ok := g.rt.(*h1.Client); !ok {
		return nil
	}
	if s, _ := g.scratch.Get().(*exchange.SignScratch); s != nil {
		return s
	}
	return exchange.NewSignScratch()
}

// releaseScratch gives a scratch from signScratch back, wiped. One that grew
// past a usual request's size is left to the collector.
func (g *Gateway) releaseScratch(s *exchange.SignScratch) {
	if s == nil || s.Large() {
		return
	}
	s.Reset()
	g.scratch.Put(s)
}

// appendOutboundHeaders adds the allowed headers of h to out.
func appendOutboundHeaders(out, h http.Header) http.Header {
	for _, k := range forwardHeaders {
		if vs := h[k]; len(vs) > 0 {
			out[k] = vs
		}
	}
	return out
}

// authHeaders are the headers any supported venue reads credentials from.
var authHeaders = []string{
	"Authorization", "X-Mbx-Apikey", "Ok-Access-Key", "Ok-Access-Sign", "Ok-Access-Timestamp", "Ok-Access-Passphrase",
	"X-Bapi-Api-Key", "X-Bapi-Sign", "X-Bapi-Timestamp", "X-Bapi-Recv-Window", "Kc-Api-Key", "Kc-Api-Sign",
	"Kc-Api-Timestamp", "Kc-Api-Passphrase", "Kc-Api-Key-Version", "Access-Key", "Access-Sign", "Access-Timestamp",
	"Access-Passphrase", "Key", "Sign", "Timestamp", "Api-Key", "Api-Sign", "Apikey", "Authent", "Nonce",
	"Api-Expires", "Api-Signature", "Api-Nonce", "Cb-Access-Key", "Cb-Access-Sign", "Cb-Access-Timestamp",
}

// ServeHTTP runs one request through the whole path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.upgrade.Load(); h != nil && r.Header.Get("Upgrade") != "" && serves(*h, r) {
		// Long-lived sockets are not in-flight requests: the WebSocket
		// proxy keeps its own accounting and checks.
		(*h).ServeHTTP(w, r)
		return
	}
	start := g.now()
	g.inflight.Add(1)
	defer g.inflight.Done()

	if r.URL.Path == "/healthz" {
		g.healthz(w)
		return
	}
	if e, status := checkTarget(r); e != nil {
		g.refuseUnrouted(w, r, status, e.Message)
		return
	}
	name, rest := splitVenue(r.URL.Path)
	rt := g.routes[name]
	if rt == nil {
		g.refuseUnrouted(w, r, http.StatusNotFound, "no venue named in the path; use /{venue}/...")
		return
	}
	reqID := g.requestID()
	st := &state{g: g, rt: rt, w: w, r: r, start: start, reqID: reqID}
	st.obs.Venue = rt.Venue.Name
	defer st.finish()

	if err := g.Healthy(); err != nil {
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "keywarden is not accepting requests: %s", err.Error()))
		return
	}
	if e, status := checkFraming(r, rest, g.maxURI); e != nil {
		if len(r.TransferEncoding) > 0 {
			// After a refused chunked body the connection's framing
			// cannot be trusted: close it (RFC 9112 §6.1).
			w.Header().Set("Connection", "close")
		}
		st.failStatus(e, status)
		return
	}
	body, berr, status := readBody(w, r, g.maxBody)
	if berr != nil {
		st.failStatus(berr, status)
		return
	}
	in := &st.in
	*in = exchange.Request{Method: r.Method, Path: rest, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	ip, err := g.remoteAddr(r)
	if err != nil {
		st.fail(exchange.Errorf(exchange.ErrIP, "%s", err.Error()))
		return
	}
	st.ip = ip
	v := &rt.Venue

	clientKey, err := v.Verifier.ClientKey(in)
	if err != nil {
		st.fail(exchange.AsError(err))
		return
	}
	if clientKey == "" {
		st.public = true
		g.servePublic(st, in)
		return
	}
	st.claimed = clientKey
	entry, err := g.clients.Lookup(v.Name, clientKey)
	if err != nil {
		// Unknown, revoked and expired answer alike so a prober learns
		// nothing; the audit record keeps the real cause.
		st.auditReason = err.Error()
		st.fail(exchange.Errorf(exchange.ErrAuth, "invalid API key or signature"))
		return
	}
	st.entry = entry
	st.obs.Client, st.obs.Key = entry.ID, entry.Key
	var peerCerts []*x509.Certificate
	if r.TLS != nil {
		peerCerts = r.TLS.PeerCertificates
	}
	if !entry.AllowsCert(peerCerts) {
		st.fail(exchange.Errorf(exchange.ErrAuth, "this credential needs its TLS client certificate"))
		return
	}
	if !entry.AllowsIP(ip) {
		st.fail(exchange.Errorf(exchange.ErrIP, "source address %s is not allowed for this credential", ip))
		return
	}
	out, err := v.Verifier.Verify(in, entry.Cred, start)
	if err != nil {
		e := exchange.AsError(err)
		if e.Kind == exchange.ErrAuth || e.Kind == exchange.ErrPassphrase {
			// A wrong signature or passphrase answers exactly like an
			// unknown key, so credential ids cannot be probed.
			st.auditReason = e.Message
			e = exchange.Errorf(exchange.ErrAuth, "invalid API key or signature")
		}
		st.fail(e)
		return
	}
	if !keyOnly(v.Verifier, in) {
		replayed, full := g.replay.check(in, start)
		if full {
			// Fail closed: a request that cannot be remembered could be
			// replayed unnoticed. Not the bot's fault, so not a replay.
			g.log.Warn("replay memory full; request refused", "request_id", reqID, "venue", v.Name)
			st.fail(exchange.Errorf(exchange.ErrUnavailable, "keywarden's replay memory is full (more signed requests in the last %s than it holds); try again shortly", g.replay.window))
			return
		}
		if replayed {
			st.fail(exchange.Errorf(exchange.ErrTimestamp, "replayed request: this exact signed request was already received"))
			return
		}
	}
	call, err := v.Describer.Describe(out)
	if err != nil {
		st.fail(exchange.AsError(err))
		return
	}
	call.Venue = v.Name
	st.call = call
	st.obs.Scope = call.Scope
	lk, auditBody := g.listenKeyCall(v, out)
	st.body = auditBody

	permit, err := g.policy.Check(r.Context(), Check{Call: call, Client: &entry.Client, Exchange: rt.Exchange, SourceIP: ip, Now: start})
	if err != nil {
		var d *Denial
		if errors.As(err, &d) {
			st.deny(d)
			return
		}
		g.log.Error("policy check failed", "request_id", reqID, "err", err)
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "policy unavailable"))
		return
	}
	defer func() {
		if permit != nil {
			if st.committed {
				permit.Commit()
			} else {
				permit.Release()
			}
		}
	}()
	if until, ok := g.limits.blocked(rt.Venue.Name, entry.Key, start); ok {
		st.deny(&Denial{Rule: "venue_rate_limit", RetryAfter: until.Sub(start),
			Reason: "keywarden is holding calls for key " + entry.Key + ": the venue's rate limit is used up or the venue asked to back off"})
		return
	}
	if !g.claimOrderIDs(st) {
		return
	}
	defer g.settleOrderIDs(st)
	if err := g.audit.Intent(r.Context(), st.intent("allow", "", "")); err != nil {
		g.log.Error("audit intent not durable; refusing", "request_id", reqID, "err", err)
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "audit log unavailable; request refused"))
		return
	}
	st.intentWritten = true
	key, err := g.keys.Credential(r.Context(), rt.Exchange, entry.Key)
	if err != nil {
		g.log.Warn("exchange key unavailable", "request_id", reqID, "key", entry.Key, "err", err)
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "exchange key %s is unavailable", entry.Key))
		return
	}
	out.Header = g.pooledOutboundHeaders(out.Header)
	// Nothing keeps the outbound header once the request was forwarded
	// (a listen-key call clones it first).
	defer g.releaseHeaders(out.Header)
	if lk == nil {
		// The signer writes into the scratch; nothing keeps what it wrote
		// once the request was forwarded (a listen-key call keeps its
		// token, so it signs without one).
		out.Scratch = g.signScratch()
		defer g.releaseScratch(out.Scratch)
	}
	if err := v.Signer.Sign(out, key, g.now()); err != nil {
		g.log.Error("sign failed", "request_id", reqID, "err", err)
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "could not sign the request"))
		return
	}
	// Re-check revocation and the panic switch just before dialling (T22).
	if err := g.Healthy(); err != nil {
		st.fail(exchange.Errorf(exchange.ErrUnavailable, "keywarden is not accepting requests: %s", err.Error()))
		return
	}
	if _, err := g.clients.Lookup(v.Name, clientKey); err != nil {
		st.fail(exchange.Errorf(exchange.ErrAuth, "invalid API key or signature"))
		return
	}
	if lk != nil {
		g.forwardListenKeyCall(st, out, key, lk)
		return
	}
	st.sent = true
	g.forward(st, out, key)
}

// publicPather is a Verifier whose bots reach public endpoints under a
// longer path (Hyperliquid's /c/<client id>/info, so that one base URL
// serves public and signed calls): PublicPath is the venue's own path.
type publicPather interface {
	PublicPath(path string) string
}

// servePublic forwards an unsigned request when it describes as public.
func (g *Gateway) servePublic(st *state, in *exchange.Request) {
	v := &st.rt.Venue
	call, err := v.Describer.Describe(in)
	if err != nil {
		st.fail(exchange.AsError(err))
		return
	}
	st.call = call
	st.obs.Scope = call.Scope
	if call.Scope != exchange.ScopePublic {
		st.public = false // refused: it leaves an audit record
		st.fail(exchange.Errorf(exchange.ErrAuth, "this endpoint needs an API key"))
		return
	}
	out := in.Clone()
	if pp, ok := v.Verifier.(publicPather); ok {
		out.Path = pp.PublicPath(in.Path)
	}
	// A public call carries no credential upstream, not even the client's
	// key id that some clients send on every call.
	out.Header = outboundHeaders(out.Header)
	if c := st.rt.pubCache; c != nil && in.Method == http.MethodGet {
		if resp, ok := c.get(in.Path+"?"+in.RawQuery, st.start); ok {
			st.writeCached(resp)
			return
		}
	}
	g.forward(st, out, nil)
}

func (g *Gateway) healthz(w http.ResponseWriter) {
	if err := g.Healthy(); err != nil {
		writePlain(w, http.StatusServiceUnavailable, "unavailable: "+err.Error())
		return
	}
	writePlain(w, http.StatusOK, "ok")
}

func (g *Gateway) requestID() string {
	// One allocation, the string itself, for ids up to the buffer's size.
	var buf [64]byte
	return string(strconv.AppendUint(append(buf[:0], g.reqBase...), g.reqSeq.Add(1), 36))
}

// splitVenue splits "/binance/api/v3/order" into "binance" and "/api/v3/order".
func splitVenue(p string) (string, string) {
	if len(p) < 2 || p[0] != '/' {
		return "", ""
	}
	i := strings.IndexByte(p[1:], '/')
	if i < 0 {
		return p[1:], "/"
	}
	return p[1 : i+1], p[i+1:]
}

// checkTarget refuses, before any routing, methods no venue API uses and
// request targets that are not a plain origin-form path.
func checkTarget(r *http.Request) (*exchange.Error, int) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
	default:
		return &exchange.Error{Kind: exchange.ErrBadRequest, Message: "method " + exchange.SafeName(r.Method) + " is not allowed"}, http.StatusMethodNotAllowed
	}
	if r.URL.IsAbs() || r.URL.Opaque != "" || r.URL.User != nil || r.RequestURI == "*" || !strings.HasPrefix(r.RequestURI, "/") {
		return exchange.Errorf(exchange.ErrBadRequest, "absolute-form request targets are not accepted"), http.StatusBadRequest
	}
	return nil, 0
}

// checkFraming refuses what no venue API needs and what hides a different
// request from the policy than the venue would see: paths that are not
// plain, control bytes, escaped slashes or dots, chunked bodies, upgrades.
func checkFraming(r *http.Request, rest string, maxURI int) (*exchange.Error, int) {
	if r.URL.RawPath != "" {
		return exchange.Errorf(exchange.ErrBadRequest, "percent-encoded paths are not accepted"), http.StatusBadRequest
	}
	if len(rest) > 1024 || len(r.RequestURI) > maxURI {
		return exchange.Errorf(exchange.ErrBadRequest, "request target too long"), http.StatusRequestURITooLong
	}
	if !cleanPath(rest) {
		return exchange.Errorf(exchange.ErrBadRequest, "path is not a plain API path"), http.StatusBadRequest
	}
	if !utf8.ValidString(r.URL.RawQuery) {
		return exchange.Errorf(exchange.ErrBadRequest, "query is not valid UTF-8"), http.StatusBadRequest
	}
	for i := 0; i < len(r.URL.RawQuery); i++ {
		if c := r.URL.RawQuery[i]; c < 0x20 || c == 0x7f {
			return exchange.Errorf(exchange.ErrBadRequest, "control character in query"), http.StatusBadRequest
		}
	}
	if q := r.URL.RawQuery; strings.Contains(q, "%00") || strings.Contains(q, "%0d") || strings.Contains(q, "%0D") ||
		strings.Contains(q, "%0a") || strings.Contains(q, "%0A") {
		return exchange.Errorf(exchange.ErrBadRequest, "encoded control character in query"), http.StatusBadRequest
	}
	// Venue clients send bodies with a Content-Length. A chunked body is
	// where request smuggling hides (Content-Length and Transfer-Encoding
	// together arrive here as chunked alone), so none is accepted.
	if len(r.TransferEncoding) > 0 {
		return exchange.Errorf(exchange.ErrBadRequest, "chunked request bodies are not accepted; send a Content-Length"), http.StatusBadRequest
	}
	if up := r.Header.Get("Upgrade"); up != "" {
		return exchange.Errorf(exchange.ErrBadRequest, "protocol upgrades are not accepted"), http.StatusBadRequest
	}
	return nil, 0
}

// cleanPath accepts "/seg/seg" with segments of [A-Za-z0-9_.:~-], no empty,
// "." or ".." segments.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if p == "/" {
		return true
	}
	seg := 0
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			s := p[i-seg : i]
			if seg == 0 || s == "." || s == ".." {
				return false
			}
			seg = 0
			continue
		}
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.', c == ':', c == '~':
		default:
			return false
		}
		seg++
	}
	return true
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *exchange.Error, int) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil, 0
	}
	if r.ContentLength > max {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "request body too large (limit %d bytes)", max), http.StatusRequestEntityTooLarge
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "compressed request bodies are not accepted"), http.StatusUnsupportedMediaType
	}
	lr := http.MaxBytesReader(w, r.Body, max)
	// A declared length sizes the buffer once (one byte more, so the read
	// that finds the end needs no room), up to a bound: a declared length
	// is only a claim, and memory follows the bytes that really arrive.
	var b []byte
	if cl := r.ContentLength; cl > 0 && cl < maxPresized {
		b = make([]byte, 0, cl+1)
	}
	b, err := readAll(lr, b)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "request body too large (limit %d bytes)", max), http.StatusRequestEntityTooLarge
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "request body not received in time"), http.StatusRequestTimeout
		}
		return nil, exchange.Errorf(exchange.ErrBadRequest, "could not read the request body"), http.StatusBadRequest
	}
	if len(b) == 0 {
		return nil, nil, 0
	}
	return b, nil, 0
}

// maxPresized bounds the body buffer sized from Content-Length alone.
const maxPresized = 16 << 10

// readAll is io.ReadAll into b's spare capacity first.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	if b == nil {
		b = make([]byte, 0, 512) // io.ReadAll's start
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}

// state carries one request through the path.
type state struct {
	g             *Gateway
	rt            *route
	w             http.ResponseWriter
	r             *http.Request
	start         time.Time
	reqID         string
	ip            netip.Addr
	entry         *client.Entry
	claimed       string // the credential id the request claims, unverified
	auditReason   string // the refusal's real cause, when the answer hides it
	public        bool   // an unsigned call to a public endpoint
	call          exchange.Call
	body          []byte
	intentWritten bool
	idsReserved   bool // client order ids reserved (claimOrderIDs)
	sent          bool // handed to forward: the venue may have it
	committed     bool
	obs           Observation
	upstream      time.Duration
	limit         io.LimitedReader // caps the venue's answer (forward), held here to save an allocation
	// dctx is the request's context detached from the bot's connection
	// (detached), made once.
	dctx context.Context
	// in is the request as received; outReq, outURL and outBody are the
	// outbound request's. Each is held here to save an allocation.
	in      exchange.Request
	outReq  http.Request
	outURL  url.URL
	outBody bodyReader
}

// detached returns the request's context without its cancellation: what
// must finish once begun (the call to the venue, its audit records) does
// not stop when the bot hangs up.
func (st *state) detached() context.Context {
	if st.dctx == nil {
		st.dctx = context.WithoutCancel(st.r.Context())
	}
	return st.dctx
}

func (st *state) intent(decision, rule, reason string) Intent {
	in := Intent{
		RequestID: st.reqID, Time: st.start, Venue: st.rt.Venue.Name, Method: st.r.Method,
		Path: st.r.URL.Path, Call: st.call, Decision: decision, Rule: rule, Reason: reason, Body: st.body,
	}
	if st.ip.IsValid() {
		in.SourceIP = st.ip.String()
	}
	if st.entry != nil {
		in.Client, in.Key = st.entry.ID, st.entry.Key
	}
	return in
}

// deny answers a policy refusal in the venue's shape and records it.
func (st *state) deny(d *Denial) {
	st.obs.Decision, st.obs.Rule = "deny", d.Rule
	if err := st.g.audit.Intent(st.r.Context(), st.intent("deny", d.Rule, d.Reason)); err != nil {
		st.g.log.Error("audit of a denial failed", "request_id", st.reqID, "err", err)
	}
	kind := exchange.ErrPermission
	if d.Rule == "venue_rate_limit" {
		kind = exchange.ErrRateLimit
	}
	e := &exchange.Error{Kind: kind, Message: "keywarden policy denied (rule " + d.Rule + "): " + d.Reason, RetryAfter: d.RetryAfter}
	st.writeError(e)
}

// fail answers an error keywarden produced itself.
func (st *state) fail(e *exchange.Error) {
	if st.obs.Decision == "" {
		st.obs.Decision = "error"
	}
	if st.intentWritten {
		st.recordOutcome(statusOf(e.Kind), "", e.Message)
	} else if !st.public {
		// Every refused request leaves one record with its reason; an
		// unknown or forged credential is recorded under the id it claimed.
		reason := e.Message
		if st.auditReason != "" {
			reason = st.auditReason
		}
		in := st.intent("deny", reasonCode(e.Kind), reason)
		if st.entry == nil {
			in.Client = exchange.SafeName(st.claimed)
		}
		if err := st.g.audit.Intent(st.detached(), in); err != nil {
			st.g.log.Warn("audit of a refusal failed", "request_id", st.reqID, "err", err)
		}
	}
	st.writeError(e)
}

func (st *state) writeError(e *exchange.Error) {
	st.obs.Status = statusOf(e.Kind)
	st.rt.Venue.Errors.WriteError(st.w, e)
}

// failStatus is fail with an HTTP status the venue's own shapes do not
// have (405, 413, 414, 408): the venue's body, keywarden's status.
func (st *state) failStatus(e *exchange.Error, status int) {
	if status == 0 || status == http.StatusBadRequest {
		st.fail(e)
		return
	}
	w := st.w
	if status == http.StatusRequestEntityTooLarge || status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close")
	}
	st.w = &statusOverride{ResponseWriter: w, status: status}
	st.fail(e)
	st.obs.Status = status
}

func (st *state) finish() {
	if st.g.observe == nil {
		return
	}
	st.obs.SourceIP = st.ip
	if st.entry == nil && st.claimed != "" {
		st.obs.Claimed = exchange.SafeName(st.claimed)
	}
	if orders := st.call.Orders; len(orders) > 0 {
		st.obs.Symbol = orders[0].Symbol
		var last float64
		if orders[0].Symbol != "" {
			last, _ = st.g.prices.get(st.rt.Venue.Name, orders[0].Symbol, st.start)
		}
		for _, o := range orders {
			if o.Action != exchange.ActionCancel {
				n := o.Notional
				if n == 0 && last > 0 && o.Symbol == orders[0].Symbol {
					n = o.Quantity * last
				}
				st.obs.Notional += n
			}
		}
		if last > 0 && orders[0].Price > 0 && orders[0].Action != exchange.ActionCancel {
			st.obs.PriceDeviation = (orders[0].Price - last) / last
		}
	}
	total := st.g.now().Sub(st.start)
	st.obs.Upstream = st.upstream
	st.obs.Overhead = total - st.upstream
	st.g.observe(st.obs)
}

func (st *state) recordOutcome(status int, orderID, errMsg string) {
	err := st.g.audit.Outcome(st.detached(), Outcome{
		RequestID: st.reqID, Status: status, VenueOrderID: orderID, Latency: st.upstream, Error: errMsg,
	})
	if err != nil {
		// The bot still gets the venue's answer (a retry would duplicate
		// the order), but nothing new goes out until the log is healthy.
		msg := "audit outcome could not be recorded: " + err.Error()
		st.g.failed.Store(&msg)
		st.g.log.Error("audit outcome not recorded; refusing new requests", "request_id", st.reqID, "err", err)
	}
}

// reasonCode names the gateway's own refusals in audit records.
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
	case exchange.ErrUpstream:
		return "upstream"
	}
	return "bad_request"
}

// statusOf is the HTTP status keywarden uses for each error kind when a venue
// has no opinion.
func statusOf(k exchange.ErrorKind) int {
	switch k {
	case exchange.ErrAuth, exchange.ErrTimestamp, exchange.ErrPassphrase:
		return http.StatusUnauthorized
	case exchange.ErrIP, exchange.ErrPermission:
		return http.StatusForbidden
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable
	case exchange.ErrNotFound:
		return http.StatusNotFound
	case exchange.ErrUpstream:
		return http.StatusBadGateway
	}
	return http.StatusBadRequest
}

func writePlain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// refuseUnrouted answers a request that names no configured venue or whose
// target is not a plain path, and records the refusal: it has no venue whose
// error shape to use.
func (g *Gateway) refuseUnrouted(w http.ResponseWriter, r *http.Request, status int, msg string) {
	rule := "not_found"
	switch status {
	case http.StatusMethodNotAllowed:
		rule = "method"
		w.Header().Set("Allow", "GET, POST, PUT, DELETE, PATCH")
	case http.StatusBadRequest:
		rule = "bad_request"
	}
	in := Intent{RequestID: g.requestID(), Time: g.now(), Method: exchange.SafeName(r.Method),
		Path: exchange.SafeName(r.URL.Path), Decision: "deny", Rule: rule, Reason: msg}
	if ip, err := g.remoteAddr(r); err == nil {
		in.SourceIP = ip.String()
	}
	if err := g.audit.Intent(context.WithoutCancel(r.Context()), in); err != nil {
		g.log.Warn("audit of a refusal failed", "err", err)
	}
	writePlain(w, status, "keywarden: "+msg)
}

// serves says whether the upgrade handler h takes r: a handler that says
// which requests it serves is asked; any other takes every upgrade.
func serves(h http.Handler, r *http.Request) bool {
	if s, ok := h.(interface{ Serves(*http.Request) bool }); ok {
		return s.Serves(r)
	}
	return true
}

// keyOnly says whether the venue's verifier took in on its API key alone
// (Binance's USER_STREAM listen-key calls): such a call has no signature or
// timestamp to replay, and repeating it (a keep-alive) is its normal use.
func keyOnly(v exchange.Verifier, in *exchange.Request) bool {
	k, ok := v.(interface{ KeyOnly(*exchange.Request) bool })
	return ok && k.KeyOnly(in)
}
