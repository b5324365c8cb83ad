package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	h1 "github.com/keywarden/keywarden/internal/upstream"
)

var randRead = rand.Read

// TransportOptions tune the upstream transport.
type TransportOptions struct {
	// MaxIdlePerHost caps the connections per venue host, idle or busy
	// (default 256: at least the peak concurrency, so steady state opens no
	// connection; beyond it requests wait for a pooled one).
	MaxIdlePerHost int
	// RootCAs overrides the system roots (tests).
	TLS *tls.Config
	// Dial overrides the dialer (tests log every address dialled).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewTransport returns the client the gateway forwards with
// (internal/upstream): HTTP/1.1 keep-alive connections pooled per venue host
// under a cap and used on the request's own goroutine, timeouts on every
// phase, no proxies, no compression, no redirects, TLS 1.2+.
//
// Every context the gateway sends with ends at its deadline: it is detached
// from the bot's connection (or made from context.Background) and cancelled
// only after the answer was read. The client is told so (DeadlineOnly) and
// enforces the deadline on the connection alone, without watching the
// context per request.
func NewTransport(o TransportOptions) *h1.Client {
	return h1.New(h1.Options{MaxConnsPerHost: o.MaxIdlePerHost, TLS: o.TLS, Dial: o.Dial, DeadlineOnly: true})
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// bodyReader is an outbound body: a bytes.Reader with a no-op Close, one
// allocation where NopCloser over a Reader is two.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

func newBodyReader(b []byte) *bodyReader {
	r := new(bodyReader)
	r.Reset(b)
	return r
}

// forward sends out to the route's fixed upstream and relays the answer.
// key is the exchange key that signed out (nil for public calls); its API key
// is scrubbed from the answer.
func (g *Gateway) forward(st *state, out *exchange.Request, key *exchange.Credential) {
	rt := st.rt
	u := &st.outURL
	*u = url.URL{Scheme: rt.base.Scheme, Host: rt.base.Host, Path: joinPath(rt.base.Path, out.Path), RawQuery: out.RawQuery}
	ctx, cancel := context.WithTimeout(st.detached(), g.timeout)
	defer cancel()
	// Built field by field rather than parsed from a string: the URL is
	// already the checked one, and parsing it again costs allocations.
	// internal/upstream's client takes the context apart from the request
	// (roundTrip); any other transport gets a copy that carries it.
	req := &st.outReq
	*req = http.Request{
		Method: out.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: out.Header, Host: rt.base.Host,
	}
	if _, ok := g.rt.(*h1.Client); !ok {
		req = req.WithContext(ctx)
	}
	if len(out.Body) > 0 {
		st.outBody.Reset(out.Body)
		req.Body = &st.outBody
		req.ContentLength = int64(len(out.Body))
		if out.Method == http.MethodGet {
			// Only a GET is ever sent again (roundTrip, upstream).
			req.GetBody = func() (io.ReadCloser, error) { return newBodyReader(out.Body), nil }
		}
	}
	sent := g.now()
	resp, tries, err := g.roundTrip(ctx, req, out.Method)
	if err != nil {
		st.upstream = g.now().Sub(sent)
		msg := "the venue could not be reached"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "the venue did not answer in time; the order's state is unknown, check before retrying"
			st.recordIfSigned(http.StatusGatewayTimeout, "unknown: "+msg)
			st.obs.Decision = "error"
			st.writeErrorStatus(http.StatusGatewayTimeout, msg)
			return
		}
		st.recordIfSigned(http.StatusBadGateway, msg)
		st.obs.Decision = "error"
		st.writeErrorStatus(http.StatusBadGateway, msg)
		return
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}()
	st.limit = io.LimitedReader{R: resp.Body, N: g.maxResp + 1}
	n, err := buf.ReadFrom(&st.limit)
	st.limit.R = nil
	st.upstream = g.now().Sub(sent)
	if err != nil || n > g.maxResp {
		msg := "the venue's answer was cut off or too large; the order's state is unknown, check before retrying"
		st.recordIfSigned(http.StatusBadGateway, msg)
		st.obs.Decision = "error"
		st.writeErrorStatus(http.StatusBadGateway, msg)
		return
	}
	if msg := venueFailure(resp.StatusCode, out.Method, tries); msg != "" {
		// F1/F7: a venue 5xx or redirect is not relayed. The bot gets
		// 502 in the venue's error shape; a redirect's Location never
		// reaches it. A maintenance Retry-After is passed on.
		if key != nil {
			g.noteLimits(st, resp)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" && validRetryAfter(ra) {
			st.w.Header().Set("Retry-After", ra)
		}
		st.w.Header().Set("X-Keywarden-Request-Id", st.reqID)
		if out.Method != http.MethodGet {
			msg = "unknown: " + msg
		}
		st.recordIfSigned(http.StatusBadGateway, msg)
		st.obs.Decision = "error"
		st.writeErrorStatus(http.StatusBadGateway, strings.TrimPrefix(msg, "unknown: "))
		return
	}
	respBody := buf.Bytes()
	if key != nil && key.APIKey != "" && st.entry != nil {
		respBody = scrub(respBody, key.APIKey, st.entry.ID)
	}
	respBody = scrubSensitive(respBody)
	if key != nil {
		g.noteLimits(st, resp)
	}
	if st.obs.Decision == "" {
		st.obs.Decision = "allow"
	}
	st.obs.Status = resp.StatusCode
	h := st.w.Header()
	scrubKey := key != nil && len(key.APIKey) >= 8 && st.entry != nil
	for k, vs := range resp.Header {
		if skipRespHeader(k) {
			continue
		}
		// The answer's header is not used after this: where nothing is
		// scrubbed or merged, its values are handed over without a copy.
		if ck := textproto.CanonicalMIMEHeaderKey(k); h[ck] == nil && !(scrubKey && anyContains(vs, key.APIKey)) {
			h[ck] = vs
			continue
		}
		for _, v := range vs {
			if scrubKey && strings.Contains(v, key.APIKey) {
				v = strings.ReplaceAll(v, key.APIKey, st.entry.ID)
			}
			h.Add(k, v)
		}
	}
	// Both values in one slice: one allocation where Set makes two.
	vals := []string{strconv.Itoa(len(respBody)), st.reqID}
	h["Content-Length"] = vals[0:1:1]
	h["X-Keywarden-Request-Id"] = vals[1:2:2]
	if c := rt.pubCache; c != nil && key == nil && out.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		c.put(out.Path+"?"+out.RawQuery, cachedResponse{status: resp.StatusCode, header: h.Clone(), body: bytes.Clone(respBody)}, st.start)
	}
	st.w.WriteHeader(resp.StatusCode)
	_, _ = st.w.Write(respBody)
	if st.entry != nil {
		// The intent was durable before anything went upstream; the outcome
		// is recorded after the answer is written, and an Auditor may make
		// it durable lazily (server's does), so it adds no flush to the
		// bot's wait. A failed outcome still stops new requests.
		orderID := ""
		if resp.StatusCode < 300 && st.call.Scope == exchange.ScopeTrade {
			orderID = findOrderID(respBody)
		}
		st.committed = resp.StatusCode < 300
		st.recordOutcome(resp.StatusCode, orderID, "")
	}
}

// Read retries (F1): a GET answered with a venue 5xx is sent again at most
// maxReadRetries times, after readBackoff[i], and only while the request's
// deadline leaves room for the wait and another answer. Nothing else is
// retried: an order (POST, DELETE, PUT) reaches the venue exactly once.
const maxReadRetries = 2

var readBackoff = [maxReadRetries]time.Duration{50 * time.Millisecond, 150 * time.Millisecond}

// roundTrip sends req under ctx, retrying a GET on a venue 5xx as above.
// It returns the last answer and how many times the request was sent.
func (g *Gateway) roundTrip(ctx context.Context, req *http.Request, method string) (*http.Response, int, error) {
	for try := 1; ; try++ {
		var resp *http.Response
		var err error
		if c, ok := g.rt.(*h1.Client); ok {
			resp, err = c.RoundTripContext(ctx, req)
		} else {
			resp, err = g.rt.RoundTrip(req)
		}
		if err != nil || method != http.MethodGet || resp.StatusCode < 500 || try > maxReadRetries {
			return resp, try, err
		}
		// A venue that names its own wait (maintenance) is not pressed.
		if resp.Header.Get("Retry-After") != "" {
			return resp, try, nil
		}
		wait := readBackoff[try-1]
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < 2*wait {
			return resp, try, nil
		}
		// Drain a little so the connection can go back to the pool.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, try, ctx.Err()
		case <-t.C:
		}
		if req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return nil, try, err
			}
			req.Body = b
		}
	}
}

// venueFailure says why an answer is not relayed to the bot ("" when it
// is): a 5xx (the venue failed; for a write its outcome is unknown) or a
// redirect (never followed, F7; 304 Not Modified is not a redirect).
func venueFailure(status int, method string, tries int) string {
	switch {
	case status >= 500:
		msg := "the venue answered " + strconv.Itoa(status) + " " + http.StatusText(status)
		if tries > 1 {
			msg += " (" + strconv.Itoa(tries) + " tries)"
		}
		if method != http.MethodGet {
			msg += "; the order's state is unknown, check before retrying"
		}
		return msg
	case status >= 300 && status < 400 && status != http.StatusNotModified:
		msg := "the venue answered with a redirect (" + strconv.Itoa(status) + "), which keywarden does not follow"
		if method != http.MethodGet {
			msg += "; the order's state is unknown, check before retrying"
		}
		return msg
	}
	return ""
}

// validRetryAfter accepts a Retry-After in seconds (at most a day) or an
// HTTP date, so nothing else from the venue is echoed in the header.
func validRetryAfter(v string) bool {
	if n, err := strconv.Atoi(v); err == nil {
		return n >= 0 && n <= 86400
	}
	_, err := http.ParseTime(v)
	return err == nil
}

func (st *state) recordIfSigned(status int, msg string) {
	if st.entry != nil && st.intentWritten {
		st.recordOutcome(status, "", msg)
	}
}

// writeErrorStatus answers a transport failure in the venue's shape.
func (st *state) writeErrorStatus(status int, msg string) {
	kind := exchange.ErrUpstream
	if status == http.StatusGatewayTimeout {
		kind = exchange.ErrUpstream
	}
	st.obs.Status = status
	st.rt.Venue.Errors.WriteError(&statusOverride{ResponseWriter: st.w, status: status}, &exchange.Error{Kind: kind, Message: msg})
}

// statusOverride makes a venue ErrorWriter's body go out with our status.
type statusOverride struct {
	http.ResponseWriter
	status int
}

func (s *statusOverride) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }

func (st *state) writeCached(c cachedResponse) {
	h := st.w.Header()
	for k, vs := range c.header {
		h[k] = vs
	}
	h.Set("X-Keywarden-Cache", "hit")
	st.obs.Status, st.obs.Decision = c.status, "allow"
	st.w.WriteHeader(c.status)
	_, _ = st.w.Write(c.body)
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	if base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + p
}

func anyContains(vs []string, sub string) bool {
	for _, v := range vs {
		if strings.Contains(v, sub) {
			return true
		}
	}
	return false
}

func skipRespHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Set-Cookie", "Alt-Svc":
		return true
	}
	return false
}

// scrub replaces every occurrence of the exchange API key in b with the
// client's id (threat R4: echoed keys never reach the bot).
func scrub(b []byte, apiKey, clientID string) []byte {
	if len(apiKey) < 8 || !bytes.Contains(b, []byte(apiKey)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(apiKey), []byte(clientID))
}

// orderIDFields are the JSON names venues use for an order id, most specific
// first.
var orderIDFields = [][]byte{
	[]byte(`"orderId":`), []byte(`"ordId":`), []byte(`"order_id":`), []byte(`"orderID":`),
	[]byte(`"order_id" :`), []byte(`"txid":`), []byte(`"id":`),
}

// findOrderID pulls the venue's order id out of an order answer for the
// audit record, without decoding the whole body.
func findOrderID(b []byte) string {
	for _, f := range orderIDFields {
		i := bytes.Index(b, f)
		if i < 0 {
			continue
		}
		v := bytes.TrimLeft(b[i+len(f):], " \t\r\n[")
		if len(v) == 0 {
			continue
		}
		if v[0] == '"' {
			end := bytes.IndexByte(v[1:], '"')
			if end < 0 || end > 128 {
				continue
			}
			return string(v[1 : end+1])
		}
		end := 0
		for end < len(v) && end < 64 && (v[end] >= '0' && v[end] <= '9') {
			end++
		}
		if end > 0 {
			return string(v[:end])
		}
	}
	return ""
}
