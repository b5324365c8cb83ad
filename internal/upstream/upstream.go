// Package upstream is the HTTP/1.1 client the gateway forwards venue calls
// with.
//
// It does what net/http's Transport does for the gateway's narrow case —
// keep-alive connections pooled per host, TLS, timeouts on every phase, a cap
// on connections per host, a cap on response header size, no proxies, no
// compression, no redirects, no HTTP/2 — but it writes the request and reads
// the answer on the caller's goroutine. Transport hands every request to a
// write goroutine and every answer back from a read goroutine; on the
// gateway's hot path those hand-offs cost more CPU than the proxying itself
// (docs/performance.md has the figures).
//
// Without a read goroutine watching idle connections, a connection the venue
// closed while it sat in the pool is only found when it is used. The client
// therefore checks a connection that was idle for longer than
// Options.CheckIdleAfter with a non-blocking peek before it sends on it, and
// sends a GET again, once, on a fresh connection when a reused connection
// fails before any byte of an answer arrived. Any other method is never sent
// twice: the caller gets an error wrapping ErrConnLost and must treat the
// outcome as unknown. A request waiting for a connection takes the next one
// released (handed over directly) or dials when the host is under its cap.
//
// Per request the client does as little as it can: the request is built
// whole in a pooled buffer (directly for the plain shape the gateway sends,
// through req.Write otherwise) and, on a plain TCP connection, written from
// inside a wait for the answer, so that the first read of the answer finds
// data instead of first finding nothing; an answer of the plain shape venues
// send is parsed from the buffered header block, anything else by
// http.ReadResponse. Tests hold both direct paths to net/http's bytes and
// results.
package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrConnLost is wrapped by errors for a request whose connection failed
// after the request may have been (partly) written and before an answer
// arrived.
var ErrConnLost = errors.New("upstream connection lost before an answer")

// ErrHeaderTooLarge is returned when the answer's header exceeds
// Options.MaxResponseHeaderBytes.
var ErrHeaderTooLarge = errors.New("upstream answer header too large")

// Options tune a Client. Zero values take the defaults named.
type Options struct {
	// MaxConnsPerHost caps the connections per host, idle or busy (256).
	// A request beyond the cap waits for a connection to come free.
	MaxConnsPerHost int
	// IdleTimeout closes a pooled connection idle for longer (30 s).
	IdleTimeout time.Duration
	// CheckIdleAfter is how long a connection may sit in the pool before it
	// is checked for a close by the venue before use (500 ms).
	CheckIdleAfter time.Duration
	// DialTimeout bounds the TCP connect (5 s); TLSHandshakeTimeout the TLS
	// handshake (5 s); ResponseHeaderTimeout the wait for the answer's
	// header after the request was written (10 s). The request's context
	// deadline bounds all of them and the body.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// MaxResponseHeaderBytes caps the answer's status line and header
	// (64 KiB).
	MaxResponseHeaderBytes int64
	// TLS is the client TLS configuration (TLS 1.2+ with the system roots).
	TLS *tls.Config
	// Dial replaces the TCP dialer (tests count the addresses dialled).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadBufferSize sizes each connection's read buffer (8 KiB). Requests
	// are built whole in a pooled buffer and written with one call.
	ReadBufferSize int
	// DeadlineOnly says the caller's contexts end at their deadline and
	// are never cancelled before it while a request is on the wire (the
	// gateway's are detached from the bot's connection and cancelled only
	// after the answer was read). The client then does not watch the
	// context once the request is being sent — that watch costs several
	// allocations per request — and relies on the connection deadlines,
	// which it sets from the context's deadline in any case. Waiting for a
	// connection, dialling and the TLS handshake still end on
	// cancellation.
	DeadlineOnly bool
}

func (o *Options) defaults() {
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 256
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.CheckIdleAfter <= 0 {
		o.CheckIdleAfter = 500 * time.Millisecond
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.TLSHandshakeTimeout <= 0 {
		o.TLSHandshakeTimeout = 5 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 10 * time.Second
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = 64 << 10
	}
	if o.TLS == nil {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		o.Dial = d.DialContext
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 8 << 10
	}
}

// Client is an http.RoundTripper for HTTP/1.1 upstreams. It is safe for
// concurrent use.
type Client struct {
	o     Options
	mu    sync.Mutex
	hosts map[poolKey]*hostPool
	// now is replaced in tests.
	now func() time.Time
}

// New returns a Client with o's settings.
func New(o Options) *Client {
	o.defaults()
	return &Client{o: o, hosts: make(map[poolKey]*hostPool), now: time.Now}
}

// hostPool holds one host's connections. Every connection, idle or busy,
// holds a slot in sem; a request waits for an idle connection handed over on
// handoff, or for a free slot to dial a new one.
type hostPool struct {
	scheme, addr, serverName string
	sem                      chan struct{}
	handoff                  chan *conn
	mu                       sync.Mutex
	idle                     []*conn
}

type conn struct {
	nc net.Conn
	// raw is the plain TCP socket's file descriptor access, nil over TLS:
	// writeRequest uses it to write and then wait for the answer without a
	// read that finds nothing.
	raw syscall.RawConn
	// rw is the state of writeRequest's wait, kept here so that its
	// callback, made once per connection, allocates nothing per request.
	rw       rawWrite
	lr       limitReader
	br       *bufio.Reader
	pool     *hostPool
	idleFrom time.Time
	reused   bool
}

// limitReader lets the header read be capped without a new reader per
// request.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

const noLimit = 1 << 62

// poolKey names a host pool by the request URL's scheme and host as
// written, so that finding the pool of a known host allocates nothing.
type poolKey struct{ scheme, host string }

// pool returns the pool for req's URL, creating it on first use.
func (c *Client) pool(req *http.Request) (*hostPool, error) {
	if req.URL == nil {
		return nil, errors.New("upstream: request has no URL")
	}
	key := poolKey{req.URL.Scheme, req.URL.Host}
	c.mu.Lock()
	p := c.hosts[key]
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	t, err := target(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.hosts[key]; p != nil {
		return p, nil
	}
	p = &hostPool{scheme: t.scheme, addr: t.addr, serverName: t.host,
		sem: make(chan struct{}, c.o.MaxConnsPerHost), handoff: make(chan *conn)}
	c.hosts[key] = p
	return p, nil
}

type requestTarget struct{ scheme, host, addr string }

func target(req *http.Request) (*requestTarget, error) {
	t := &requestTarget{scheme: req.URL.Scheme, host: req.URL.Hostname()}
	port := req.URL.Port()
	switch t.scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, fmt.Errorf("upstream: unsupported scheme %q", t.scheme)
	}
	if t.host == "" {
		return nil, errors.New("upstream: request has no host")
	}
	t.addr = net.JoinHostPort(t.host, port)
	return t, nil
}

// RoundTrip sends req and returns the answer with its header read. The
// caller reads the body to its end (the connection then goes back to the
// pool) or closes it (the connection is then closed).
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.RoundTripContext(req.Context(), req)
}

// RoundTripContext is RoundTrip under ctx instead of req's own context: a
// caller that builds req itself is spared the copy of it that
// Request.WithContext makes.
func (c *Client) RoundTripContext(ctx context.Context, req *http.Request) (*http.Response, error) {
	p, err := c.pool(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		cn, err := c.get(ctx, p)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := c.send(ctx, cn, req)
		if err == nil {
			return resp, nil
		}
		// A reused connection that failed before an answer started was most
		// likely closed by the venue while idle. Only a GET is sent again,
		// and only once: any other request may have reached the venue.
		retry := attempt == 0 && cn.reused && errors.Is(err, ErrConnLost) &&
			req.Method == http.MethodGet && ctx.Err() == nil
		if !retry {
			closeBody(req)
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			b, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req.Body = b
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// get returns a pooled connection or dials one within the host's cap.
func (c *Client) get(ctx context.Context, p *hostPool) (*conn, error) {
	if cn := c.popIdle(p); cn != nil {
		return cn, nil
	}
	select {
	case p.sem <- struct{}{}:
	case cn := <-p.handoff:
		return cn, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("upstream: waiting for a connection to %s: %w", p.addr, ctx.Err())
	}
	cn, err := c.dial(ctx, p)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return cn, nil
}

func (c *Client) popIdle(p *hostPool) *conn {
	now := c.now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		// Most recently used first: it is the least likely to have been
		// closed by the venue.
		cn := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		idle := now.Sub(cn.idleFrom)
		if idle > c.o.IdleTimeout {
			cn.close()
			continue
		}
		if idle > c.o.CheckIdleAfter {
			// The last request's read deadline may have passed, and the
			// peek would fail on it.
			cn.nc.SetReadDeadline(time.Time{})
			if !alive(cn) {
				cn.close()
				continue
			}
		}
		cn.reused = true
		return cn
	}
}

// put returns cn to its pool, first to a request waiting for one.
func (c *Client) put(cn *conn) {
	cn.idleFrom = c.now()
	p := cn.pool
	select {
	case p.handoff <- cn:
		return
	default:
	}
	p.mu.Lock()
	p.idle = append(p.idle, cn)
	p.mu.Unlock()
}

func (cn *conn) close() {
	cn.nc.Close()
	<-cn.pool.sem
}

func (c *Client) dial(ctx context.Context, p *hostPool) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.o.DialTimeout)
	defer cancel()
	nc, err := c.o.Dial(dctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: dial %s: %w", p.addr, err)
	}
	if p.scheme == "https" {
		cfg := c.o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = p.serverName
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		hctx, hcancel := context.WithTimeout(ctx, c.o.TLSHandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("upstream: TLS handshake with %s: %w", p.addr, err)
		}
		nc = tc
	}
	cn := &conn{nc: nc, pool: p}
	if sc, ok := nc.(syscall.Conn); ok && p.scheme == "http" {
		if raw, err := sc.SyscallConn(); err == nil {
			cn.raw = raw
			cn.rw.fn = cn.rw.step
		}
	}
	cn.lr.r = nc
	cn.lr.n = noLimit
	cn.br = bufio.NewReaderSize(&cn.lr, c.o.ReadBufferSize)
	return cn, nil
}

// send writes req on cn and reads the answer's header.
func (c *Client) send(ctx context.Context, cn *conn, req *http.Request) (*http.Response, error) {
	// Deadlines are set only where they are needed, since each one is a
	// timer update: the read deadline before the request goes out, the
	// write deadline only for a write that cannot complete at once
	// (writeRequest), the body's deadline only when it differs from the
	// header's. A pooled connection keeps its last deadlines; popIdle
	// clears them before it peeks at a connection.
	deadline, hasDeadline := ctx.Deadline()
	// A cancelled context (rather than one that ran out of time) cuts the
	// connection short the same way, unless the caller said its contexts
	// are never cancelled early.
	var stop func() bool
	if !c.o.DeadlineOnly {
		stop = context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	}
	fail := func(e error, lost bool) (*http.Response, error) {
		if stop != nil {
			stop()
		}
		cn.close()
		if err := c.ctxErr(ctx, e); err != nil {
			return nil, fmt.Errorf("upstream: %s: %w", cn.pool.addr, err)
		}
		if lost {
			e = fmt.Errorf("%w: %w", ErrConnLost, e)
		}
		return nil, fmt.Errorf("upstream: %s: %w", cn.pool.addr, e)
	}
	wb := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*wb) <= maxPooledWriteBuf {
			writeBufs.Put(wb)
		}
	}()
	// Nothing leaves before the request is built whole, so an error here
	// means nothing was sent.
	b, ok, err := appendRequest((*wb)[:0], req)
	if err != nil {
		return fail(err, false)
	}
	if !ok {
		bb := bytes.NewBuffer((*wb)[:0])
		if err := req.Write(bb); err != nil {
			return fail(err, false)
		}
		b = bb.Bytes()
	}
	*wb = b
	// The read deadline is set before the write: writeRequest may wait for
	// the answer, and the deadline (or a cancellation) ends that wait.
	hd := c.now().Add(c.o.ResponseHeaderTimeout)
	if hasDeadline && deadline.Before(hd) {
		hd = deadline
	}
	cn.nc.SetReadDeadline(hd)
	if err := cn.writeRequest(b, deadline); err != nil {
		return fail(err, true)
	}
	cn.lr.n = c.o.MaxResponseHeaderBytes + int64(cn.br.Buffered())
	a := new(plainAnswer)
	resp, err := readResponseInto(cn.br, req, a)
	if err != nil {
		lost := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
		if errors.Is(err, ErrHeaderTooLarge) {
			lost = false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("timeout awaiting the answer's header: %w", err)
		}
		return fail(err, lost)
	}
	cn.lr.n = noLimit
	if !hd.Equal(deadline) {
		// The header's wait was the shorter; the body has the request's
		// deadline, or none.
		cn.nc.SetReadDeadline(deadline)
	}
	a.body = body{rc: resp.Body, cn: cn, c: c, stop: stop, ctx: ctx,
		reuse: !resp.Close && !req.Close}
	resp.Body = &a.body
	return resp, nil
}

// writeBufs holds the buffers requests are built in before they are
// written; a buffer grown past maxPooledWriteBuf is left to the collector.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledWriteBuf = 64 << 10

// ctxErr returns the context's error when e is due to it: the context was
// cancelled, or e is the connection's deadline — set to the context's — and
// that deadline has passed (the context's own timer may fire a moment
// later than the connection's).
func (c *Client) ctxErr(ctx context.Context, e error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var ne net.Error
	if errors.As(e, &ne) && ne.Timeout() {
		if dl, ok := ctx.Deadline(); ok && !c.now().Before(dl) {
			return context.DeadlineExceeded
		}
	}
	return nil
}

func isReset(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) {
		s := oe.Err.Error()
		return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
	}
	return false
}

// body returns its connection to the pool when read to the end, and closes
// it when closed before.
type body struct {
	rc    io.ReadCloser
	cn    *conn
	c     *Client
	stop  func() bool // nil: the context is not watched (DeadlineOnly)
	ctx   context.Context
	reuse bool
	done  bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
		return n, io.EOF
	}
	if err != nil {
		b.finish(false)
		if cerr := b.c.ctxErr(b.ctx, err); cerr != nil {
			err = fmt.Errorf("upstream: reading the answer: %w", cerr)
		}
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *body) finish(atEOF bool) {
	b.done = true
	cancelled := b.stop != nil && !b.stop()
	if atEOF && b.reuse && !cancelled && b.cn.br.Buffered() == 0 {
		b.c.put(b.cn)
		return
	}
	b.cn.close()
}

// CloseIdleConnections closes every pooled connection not in use.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	pools := make([]*hostPool, 0, len(c.hosts))
	for _, p := range c.hosts {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		idle := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, cn := range idle {
			cn.close()
		}
	}
}
