// Package wsgateway is keywarden's WebSocket proxy. It serves
// /{venue}/<path> WebSocket upgrades on the gateway's listener:
//
//   - market-data and user-data streams are proxied unchanged to the venue's
//     fixed stream host, without any credential, under a global and a
//     per-address connection limit;
//   - a venue's WebSocket API (Binance /ws-api/v3 and /ws-fapi/v1) is
//     proxied message by message: a signed request or a session logon is
//     verified with the bot's client credential, described as its REST twin
//     would be, checked by the same policy, recorded durably in the audit log
//     before anything is forwarded, and re-signed with the exchange key;
//     requests on a logged-on session are described, checked and audited
//     the same way; answers are relayed with the exchange API key scrubbed.
//
// Each socket has bounded queues in both directions: a peer that does not
// keep up is disconnected (close code 1013, try again later), never
// buffered without bound. The proxy pings the bot, closes sockets of revoked
// credentials (1008) and every socket when the panic switch stops the
// gateway (1013), and closes with 1001 on shutdown.
//
// A Proxy is safe for concurrent use.
//
// Security: the proxy decides what reaches an exchange with a real key.
// Changes here need a second security review.
package wsgateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// Route is one venue's WebSocket endpoints. Streams and API are fixed by
// configuration; nothing in a request can change them.
type Route struct {
	Venue    string
	Exchange string // the vault's exchange name for the venue's keys
	// Streams is the ws:// or wss:// base of market and user-data streams.
	Streams *url.URL
	// API is the base of the WebSocket API, APIPaths the venue-relative
	// paths it serves ("/ws-api/v3") and WSAPI how its messages are
	// verified, described and signed. All nil for stream-only venues.
	API      *url.URL
	APIPaths []string
	WSAPI    exchange.WSAPI
	// StreamPaths are the venue-relative paths of the venue's streams: a
	// path equal to one or under it ("/ws" serves "/ws/btcusdt@trade").
	// Upgrades to any other path are not WebSockets keywarden proxies.
	StreamPaths []string
	// UserStreams says the venue's streams also carry user-data streams
	// named by a token made over REST (Binance listen keys: every stream
	// name of 16 or more characters without "@"); such streams open only
	// for a token in Options.ListenKeys.
	UserStreams bool
}

// Options configure a Proxy.
type Options struct {
	Routes  []Route
	Clients gateway.Clients
	Keys    gateway.Keys
	Policy  gateway.Policy
	Audit   gateway.Auditor
	// Healthy reports why keywarden refuses requests (panic switch, sealed
	// vault, audit failure); the gateway's Healthy.
	Healthy func() error
	Logger  *slog.Logger
	Now     func() time.Time
	// MaxConns caps open sockets (default 1024), MaxConnsPerIP those from
	// one source address (default 32).
	MaxConns, MaxConnsPerIP int
	// QueueLen bounds each socket's queue in each direction (default 256
	// messages); MaxMessage caps one message (default 1 MiB).
	QueueLen   int
	MaxMessage int64
	// PingInterval is how often the bot is pinged (default 20 s; it must
	// answer within WriteTimeout). WriteTimeout bounds one write (default
	// 10 s) and DialTimeout the upstream handshake (default 10 s).
	PingInterval, WriteTimeout, DialTimeout time.Duration
	// Sweep is how often open sockets are checked against revocation and
	// the gateway's health (default 1 s).
	Sweep time.Duration
	// MaxPending caps requests awaiting an answer per socket (default 256).
	MaxPending int
	// ListenKeys are the user-data stream tokens issued through the
	// gateway; nil refuses every user-data stream.
	ListenKeys ListenKeys
}

// Proxy is the WebSocket proxy. It is an http.Handler.
type Proxy struct {
	o      Options
	routes map[string]*Route
	log    *slog.Logger

	mu     sync.Mutex
	conns  map[*conn]struct{} // running sockets
	slots  int                // sockets counted against the limits
	perIP  map[netip.Addr]int
	closed bool

	replay  *replaySet
	dialer  *http.Client
	reqSeq  atomic.Uint64
	reqBase string
	stop    chan struct{}
	done    chan struct{}
}

// New returns a Proxy and starts its sweeper; Close stops it.
func New(o Options) (*Proxy, error) {
	if o.Clients == nil || o.Keys == nil || o.Policy == nil || o.Audit == nil {
		return nil, errors.New("wsgateway: clients, keys, policy and audit are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Healthy == nil {
		o.Healthy = func() error { return nil }
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxConns, 1024)
	def(&o.MaxConnsPerIP, 32)
	def(&o.QueueLen, 256)
	def(&o.MaxPending, 256)
	if o.MaxMessage <= 0 {
		o.MaxMessage = 1 << 20
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defd(&o.PingInterval, 20*time.Second)
	defd(&o.WriteTimeout, 10*time.Second)
	defd(&o.DialTimeout, 10*time.Second)
	defd(&o.Sweep, time.Second)
	p := &Proxy{o: o, routes: map[string]*Route{}, log: o.Logger, conns: map[*conn]struct{}{},
		perIP: map[netip.Addr]int{}, replay: newReplaySet(1<<16, 65*time.Second),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := range o.Routes {
		r := o.Routes[i]
		if r.Venue == "" || r.Streams == nil {
			return nil, errors.New("wsgateway: a route needs a venue and a stream host")
		}
		for _, u := range []*url.URL{r.Streams, r.API} {
			if u == nil {
				continue
			}
			if err := checkUpstream(u); err != nil {
				return nil, fmt.Errorf("wsgateway: venue %s: %w", r.Venue, err)
			}
		}
		if (r.API == nil) != (r.WSAPI == nil) || (r.API != nil && len(r.APIPaths) == 0) {
			return nil, fmt.Errorf("wsgateway: venue %s: API, APIPaths and WSAPI go together", r.Venue)
		}
		if r.Exchange == "" {
			r.Exchange = r.Venue
		}
		if _, dup := p.routes[r.Venue]; dup {
			return nil, fmt.Errorf("wsgateway: venue %s configured twice", r.Venue)
		}
		p.routes[r.Venue] = &r
	}
	// Handshake connections are taken over by the socket or closed: a
	// refused handshake must not leave an idle connection behind.
	p.dialer = &http.Client{Timeout: o.DialTimeout,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSHandshakeTimeout: o.DialTimeout,
			ResponseHeaderTimeout: o.DialTimeout, DialContext: (&net.Dialer{Timeout: o.DialTimeout}).DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }}
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, err
	}
	p.reqBase = fmt.Sprintf("kw-ws-%x-", rb)
	go p.sweep()
	return p, nil
}

// checkUpstream accepts wss://, and ws:// to loopback only (simulators).
func checkUpstream(u *url.URL) error {
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("upstream must be scheme://host[/path] only")
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("upstream %s: plain ws is allowed only to loopback", u.Host)
	}
	return fmt.Errorf("upstream scheme %q is not wss", u.Scheme)
}

// Open returns the number of sockets holding a connection slot, from the
// accepted upgrade until the socket and its upstream are closed: what the
// connection limits count.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots
}

// CloseAll closes every open socket with 1013 (try again later): the panic
// switch's hook.
func (p *Proxy) CloseAll() {
	if p.o.ListenKeys != nil {
		// No user-data stream outlives the panic switch at the venue.
		p.o.ListenKeys.RevokeListenKeys("the panic switch stopped keywarden")
	}
	for _, c := range p.snapshot() {
		c.close(websocket.StatusTryAgainLater, "keywarden stopped accepting requests")
	}
}

// Close refuses new sockets, closes the open ones with 1001 (going away),
// waits for them to finish, and stops the sweeper.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, c := range p.snapshot() {
		c.close(websocket.StatusGoingAway, "keywarden is shutting down")
	}
	for _, c := range p.snapshot() {
		<-c.finished
	}
}

func (p *Proxy) snapshot() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// sweep closes sockets whose credential was revoked or expired, and all
// sockets while the gateway refuses requests.
func (p *Proxy) sweep() {
	defer close(p.done)
	t := time.NewTicker(p.o.Sweep)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		healthy := p.o.Healthy()
		for _, c := range p.snapshot() {
			if healthy != nil {
				c.close(websocket.StatusTryAgainLater, "keywarden stopped accepting requests")
				continue
			}
			if c.hasTokens() {
				c.checkStreamSocket()
			}
			if id := c.clientID(); id != "" {
				if _, err := p.o.Clients.Lookup(c.rt.Venue, id); err != nil {
					c.close(websocket.StatusPolicyViolation, "client credential revoked or expired")
				}
			}
		}
		if healthy == nil && p.o.ListenKeys != nil {
			// After the sockets: tokens without one are closed at the venue.
			p.o.ListenKeys.SweepListenKeys()
		}
	}
}

// acquire takes a connection slot for c's address.
func (p *Proxy) acquire(c *conn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return errors.New("keywarden is shutting down")
	case p.slots >= p.o.MaxConns:
		return errors.New("too many open WebSockets")
	case p.perIP[c.ip] >= p.o.MaxConnsPerIP:
		return errors.New("too many open WebSockets from this address")
	}
	p.slots++
	p.perIP[c.ip]++
	return nil
}

func (p *Proxy) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slots--
	if p.perIP[c.ip]--; p.perIP[c.ip] <= 0 {
		delete(p.perIP, c.ip)
	}
}

// register makes a running socket visible to the sweeper, CloseAll and
// Close; a socket that arrives after Close is closed at once.
func (p *Proxy) register(c *conn) {
	p.mu.Lock()
	closed := p.closed
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	if closed {
		c.close(websocket.StatusGoingAway, "keywarden is shutting down")
	}
}

func (p *Proxy) unregister(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) requestID() string { return p.reqBase + strconv.FormatUint(p.reqSeq.Add(1), 36) }

// Serves reports whether r asks for a WebSocket this proxy serves: a GET
// upgrade to websocket at a stream or WebSocket API path of a configured
// venue. The gateway hands only such requests to the proxy; any other
// upgrade takes the HTTP path, which refuses it and audits the refusal.
func (p *Proxy) Serves(r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	venue, rest := splitVenue(r.URL.Path)
	rt := p.routes[venue]
	if rt == nil {
		return false
	}
	if slices.Contains(rt.APIPaths, rest) {
		return true
	}
	if _, _, ok := clientPathAPI(rt, rest); ok {
		return true
	}
	for _, sp := range rt.StreamPaths {
		if rest == sp || strings.HasPrefix(rest, strings.TrimSuffix(sp, "/")+"/") {
			return true
		}
	}
	return false
}

// ServeHTTP upgrades /{venue}/<path> and proxies it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "keywarden: only WebSocket upgrades are served here", http.StatusBadRequest)
		return
	}
	if err := p.o.Healthy(); err != nil {
		http.Error(w, "keywarden is not accepting requests: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	venue, rest := splitVenue(r.URL.Path)
	rt := p.routes[venue]
	if rt == nil {
		http.Error(w, "keywarden: no WebSocket venue named in the path; use /{venue}/...", http.StatusNotFound)
		return
	}
	if r.URL.RawPath != "" || !cleanPath(rest) || !cleanQuery(r.URL.RawQuery) {
		http.Error(w, "keywarden: path is not a plain stream path", http.StatusBadRequest)
		return
	}
	ip, err := peer(r.RemoteAddr)
	if err != nil {
		http.Error(w, "keywarden: unknown peer address", http.StatusBadRequest)
		return
	}
	c := &conn{p: p, rt: rt, ip: ip, finished: make(chan struct{}), pending: map[string]pending{}}
	if r.TLS != nil {
		c.peerCerts = r.TLS.PeerCertificates
	}
	target := *rt.Streams
	for _, ap := range rt.APIPaths {
		if rest == ap {
			target, c.api = *rt.API, rt.WSAPI
		}
	}
	if api, up, ok := clientPathAPI(rt, rest); ok {
		target, c.api, rest = *rt.API, api, up
	}
	target.Path = strings.TrimSuffix(target.Path, "/") + rest
	if c.api == nil {
		target.RawQuery = r.URL.RawQuery
	} else if r.URL.RawQuery != "" {
		http.Error(w, "keywarden: the WebSocket API takes no query", http.StatusBadRequest)
		return
	}
	streamReqID := ""
	if c.api == nil && rt.UserStreams {
		if streamReqID, err = p.openUserStream(w, r, c, rest); err != nil {
			return
		}
	}
	if err := p.acquire(c); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "keywarden: "+err.Error(), http.StatusTooManyRequests)
		return
	}
	defer close(c.finished)
	defer p.release(c)

	dctx, cancel := context.WithTimeout(r.Context(), p.o.DialTimeout)
	up, resp, err := websocket.Dial(dctx, target.String(), &websocket.DialOptions{
		HTTPClient: p.dialer,
		HTTPHeader: http.Header{"User-Agent": {"keywarden"}},
	})
	cancel()
	if err != nil {
		status := http.StatusBadGateway
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			status = http.StatusNotFound
		}
		p.log.Warn("websocket upstream dial failed", "venue", rt.Venue, "err", p.redactTokens(err.Error(), c.tokens))
		p.streamOutcome(c, streamReqID, status, "the venue's WebSocket could not be reached")
		http.Error(w, "keywarden: the venue's WebSocket could not be reached", status)
		return
	}
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		up.CloseNow()
		return
	}
	p.streamOutcome(c, streamReqID, http.StatusSwitchingProtocols, "")
	up.SetReadLimit(p.o.MaxMessage)
	down.SetReadLimit(p.o.MaxMessage)
	c.run(r.Context(), down, up)
}

// splitVenue splits "/binance/ws/x" into "binance" and "/ws/x".
func splitVenue(path string) (string, string) {
	if len(path) < 2 || path[0] != '/' {
		return "", ""
	}
	i := strings.IndexByte(path[1:], '/')
	if i < 0 {
		return path[1:], "/"
	}
	return path[1 : i+1], path[i+1:]
}

// cleanPath accepts "/seg/seg" of stream-name characters, no empty, "." or
// ".." segments.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 2048 {
		return false
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("@_.!:~-", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// cleanQuery accepts stream lists (streams=a@trade/b@trade) and simple
// name=value pairs only.
func cleanQuery(q string) bool {
	if len(q) > 4096 {
		return false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("@_.!:~-=&/,", c) >= 0) {
			return false
		}
	}
	return true
}

func peer(remote string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap(), nil
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err
}

// replaySet remembers signatures for a window, bounded in size.
type replaySet struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seen   map[[32]byte]time.Time
}

func newReplaySet(max int, window time.Duration) *replaySet {
	return &replaySet{max: max, window: window, seen: map[[32]byte]time.Time{}}
}

// add reports false when sig was seen within the window, or when the set is
// full of live entries (fail closed).
func (s *replaySet) add(venue, sig string, now time.Time) bool {
	k := sha256.Sum256([]byte(venue + "\x00" + sig))
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.seen[k]; ok && now.Sub(t) < s.window {
		return false
	}
	if len(s.seen) >= s.max {
		for kk, t := range s.seen {
			if now.Sub(t) >= s.window {
				delete(s.seen, kk)
			}
		}
		if len(s.seen) >= s.max {
			return false
		}
	}
	s.seen[k] = now
	return true
}
