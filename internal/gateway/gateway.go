// Package gateway is keywarden's signing proxy, the hot path between a bot and
// an exchange. For every request it: routes by the first path segment to a
// configured venue; verifies the bot's signature with its client credential
// exactly as the venue would; refuses replays, unknown, revoked or expired
// credentials and source addresses outside the credential's allowlist;
// describes the call and checks it against the credential's policy; makes an
// audit intent record durable (fail closed); signs a request built from the
// checked fields with the exchange key; forwards it to the venue's fixed
// upstream; scrubs the reply; and records the outcome.
//
// A Gateway is safe for concurrent use.
//
// Security: the gateway decides what reaches an exchange with a real key.
// Changes here need a second security review.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
)

// Clients finds client credentials. client.Registry implements it.
type Clients interface {
	Lookup(venue, id string) (*client.Entry, error)
}

// Keys opens exchange keys. The vault implements it.
type Keys interface {
	Credential(ctx context.Context, exchange, name string) (*exchange.Credential, error)
}

// Check is what the policy is asked about one request.
type Check struct {
	Call     exchange.Call
	Client   *client.Client
	Exchange string // exchange the key belongs to
	SourceIP netip.Addr
	Now      time.Time
}

// Denial is a policy refusal: the rule that refused and a human reason.
type Denial struct {
	Rule, Reason string
	// RetryAfter tells the bot when to try again, for rate-limit denials.
	RetryAfter time.Duration
}

func (d *Denial) Error() string { return d.Rule + ": " + d.Reason }

// Permit is an allowed call's hold on windowed budgets. Commit keeps it
// (the venue accepted the order); Release gives it back.
type Permit interface {
	Commit()
	Release()
}

// Policy checks calls. A *Denial error refuses the call; any other error
// refuses it as unavailable (fail closed).
type Policy interface {
	Check(ctx context.Context, c Check) (Permit, error)
}

// Intent is the audit record written, durably, before a request is
// forwarded; for refused requests it is the only record.
type Intent struct {
	RequestID string
	Time      time.Time
	Client    string
	Key       string // exchange key name
	Venue     string
	Method    string
	Path      string
	SourceIP  string
	Call      exchange.Call
	Decision  string // allow | deny
	Rule      string
	Reason    string
	Body      []byte // request body with the bot's auth removed
}

// Outcome is the audit record written after the venue answered.
type Outcome struct {
	RequestID    string
	Status       int
	VenueOrderID string
	Latency      time.Duration
	Error        string
}

// Auditor makes audit records durable. Intent must not return nil until the
// record is durable.
type Auditor interface {
	Intent(ctx context.Context, in Intent) error
	Outcome(ctx context.Context, out Outcome) error
}

// Route is one venue as the gateway serves it under /{Name}/.
type Route struct {
	Venue exchange.Venue
	// Exchange is the vault's exchange name for the keys this venue uses
	// (binance-usdm uses binance keys).
	Exchange string
	// PublicCacheTTL caches public GET answers for this long (0: off).
	PublicCacheTTL time.Duration
}

// Options configure a Gateway.
type Options struct {
	Routes  []Route
	Clients Clients
	Keys    Keys
	Policy  Policy
	Audit   Auditor
	Logger  *slog.Logger
	Now     func() time.Time
	// Transport forwards to venues; nil builds a tuned one.
	Transport http.RoundTripper
	// TrustedProxies may set X-Forwarded-For; nobody else can.
	TrustedProxies []netip.Prefix
	// MaxBody caps request bodies (default 64 KiB) and MaxResponse caps
	// venue answers (default 16 MiB).
	MaxBody, MaxResponse int64
	// MaxURI caps the request target, path and query (default 8 KiB):
	// longer ones answer 414.
	MaxURI int
	// UpstreamTimeout bounds one forwarded call (default 10 s).
	UpstreamTimeout time.Duration
	// ReplayWindow is how long a seen signature is remembered (default 65 s:
	// longer than any venue's timestamp window, beyond which the venue
	// scheme itself refuses a replay) and ReplayEntries is how many requests
	// it holds at least in that window (about 26 bytes each; see replay.go).
	// A request that finds its part of the cache full is refused with 503.
	ReplayWindow  time.Duration
	ReplayEntries int
	// RateLimitShare refuses a key's calls early once the venue reports
	// this share of its budget used (default 0.95).
	RateLimitShare float64
	// Observe, when set, is told about every finished request (monitoring).
	Observe func(Observation)
	// IdempotencyWindow is how long a new order's client order id stays
	// used for its exchange key on its venue (default 24 h; negative: off),
	// and IdempotencyEntries bounds how many ids are held (default 1<<17,
	// about 11 MB when full; the oldest is dropped first: a retry is still
	// caught while fewer than that many orders came after it).
	IdempotencyWindow  time.Duration
	IdempotencyEntries int
	// Ready, when set, reports why keywarden cannot serve signed requests
	// (a sealed vault); requests are refused before any policy or audit
	// work while it returns an error.
	Ready func() error
}

// Observation summarizes one finished request for monitoring.
type Observation struct {
	Venue, Client, Key string
	// Claimed is the credential id a refused request claimed when it
	// matched no credential (cleaned for display); SourceIP is the caller.
	Claimed            string
	SourceIP           netip.Addr
	Scope              exchange.Scope
	Decision           string // allow, deny, error
	Rule               string
	Status             int
	Overhead, Upstream time.Duration
	// Symbol is the first order's symbol; Notional the orders' value in
	// the quote currency (from the request, else at the cached last
	// price); PriceDeviation the first limit order's relative distance
	// from the cached last price ((price-last)/last, 0 when unknown).
	Symbol         string
	Notional       float64
	PriceDeviation float64
}

// Gateway is the signing proxy. It is an http.Handler.
type Gateway struct {
	routes   map[string]*route
	clients  Clients
	keys     Keys
	policy   Policy
	audit    Auditor
	log      *slog.Logger
	now      func() time.Time
	rt       http.RoundTripper
	trusted  []netip.Prefix
	maxBody  int64
	maxResp  int64
	maxURI   int
	timeout  time.Duration
	replay   *replayCache
	limits   *limiter
	observe  func(Observation)
	ready    func() error
	prices   *priceCache
	orderIDs *orderIDs   // client order ids used recently (A31); nil: off
	listen   *listenKeys // user-data stream tokens issued through the gateway
	reqSeq   atomic.Uint64
	reqBase  string
	failed   atomic.Pointer[string] // set when an outcome could not be recorded
	stopped  atomic.Bool            // panic switch
	inflight sync.WaitGroup
	upgrade  atomic.Pointer[http.Handler] // WebSocket upgrades, when set
	// headers holds outbound header maps for reuse (http.Header, cleared),
	// used only when rt is internal/upstream's client
	// (pooledOutboundHeaders).
	headers sync.Pool
	// scratch holds the memory signers write outbound requests into
	// (*exchange.SignScratch, wiped), under the same rule (signScratch).
	scratch  sync.Pool
	hookMu   sync.Mutex
	onStop   []func()
	onResume []func() // switch.go

	// priceMiss holds when a venue's ticker last failed, per venue and
	// symbol (LastPrice), under priceMu.
	priceMu   sync.Mutex
	priceMiss map[string]time.Time
}

type route struct {
	Route
	base     *url.URL
	prefix   string // "/binance"
	pubCache *publicCache
}

// New returns a Gateway.
func New(o Options) (*Gateway, error) {
	if o.Clients == nil || o.Keys == nil || o.Policy == nil || o.Audit == nil {
		return nil, errors.New("gateway: clients, keys, policy and audit are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.MaxURI <= 0 {
		o.MaxURI = 8 << 10
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = 16 << 20
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 10 * time.Second
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = 65 * time.Second
	}
	if o.ReplayEntries <= 0 {
		o.ReplayEntries = 1 << 19
	}
	if o.IdempotencyWindow == 0 {
		o.IdempotencyWindow = 24 * time.Hour
	}
	if o.IdempotencyEntries <= 0 {
		o.IdempotencyEntries = 1 << 17
	}
	if o.RateLimitShare <= 0 || o.RateLimitShare > 1 {
		o.RateLimitShare = 0.95
	}
	if o.Transport == nil {
		o.Transport = NewTransport(TransportOptions{})
	}
	g := &Gateway{
		routes: map[string]*route{}, clients: o.Clients, keys: o.Keys, policy: o.Policy, audit: o.Audit,
		log: o.Logger, now: o.Now, rt: o.Transport, trusted: o.TrustedProxies, maxBody: o.MaxBody,
		maxResp: o.MaxResponse, maxURI: o.MaxURI, timeout: o.UpstreamTimeout,
		replay:   newReplayCache(o.ReplayEntries, o.ReplayWindow),
		limits:   newLimiter(o.RateLimitShare),
		observe:  o.Observe,
		ready:    o.Ready,
		prices:   newPriceCache(),
		orderIDs: newOrderIDs(o.IdempotencyWindow, o.IdempotencyEntries),
	}
	var rb [4]byte
	if _, err := randRead(rb[:]); err != nil {
		return nil, err
	}
	g.reqBase = fmt.Sprintf("kw-%x-", rb)
	var err error
	if g.listen, err = newListenKeys(); err != nil {
		return nil, err
	}
	for _, r := range o.Routes {
		if r.Venue.Name == "" || r.Venue.Upstream == nil {
			return nil, errors.New("gateway: a route needs a venue name and upstream")
		}
		if err := CheckUpstream(r.Venue.Upstream); err != nil {
			return nil, fmt.Errorf("gateway: venue %s: %w", r.Venue.Name, err)
		}
		if _, dup := g.routes[r.Venue.Name]; dup {
			return nil, fmt.Errorf("gateway: venue %s configured twice", r.Venue.Name)
		}
		if r.Exchange == "" {
			r.Exchange = r.Venue.Name
		}
		rt := &route{Route: r, base: r.Venue.Upstream, prefix: "/" + r.Venue.Name}
		if r.PublicCacheTTL > 0 {
			rt.pubCache = newPublicCache(r.PublicCacheTTL, 4096)
		}
		g.routes[r.Venue.Name] = rt
	}
	return g, nil
}

// CheckUpstream refuses upstreams that are not HTTPS, except plain HTTP to a
// loopback address (simulators).
func CheckUpstream(u *url.URL) error {
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("upstream must be scheme://host[/path] only")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("upstream %s: plain http is allowed only to loopback", u.Host)
	}
	return fmt.Errorf("upstream scheme %q is not https", u.Scheme)
}

// Stop refuses every new request with 503 (the panic switch) until Resume,
// and runs the functions registered with OnStop.
func (g *Gateway) Stop() {
	g.stopped.Store(true)
	g.hookMu.Lock()
	hooks := append([]func(){}, g.onStop...)
	g.hookMu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// OnStop registers f to run whenever the panic switch stops the gateway
// (the WebSocket proxy closes its open sockets).
func (g *Gateway) OnStop(f func()) {
	g.hookMu.Lock()
	defer g.hookMu.Unlock()
	g.onStop = append(g.onStop, f)
}

// SetUpgradeHandler hands WebSocket upgrade requests to h instead of
// refusing them. Set it before serving.
func (g *Gateway) SetUpgradeHandler(h http.Handler) { g.upgrade.Store(&h) }

// Resume lifts Stop.
func (g *Gateway) Resume() { g.stopped.Store(false); g.resumed() }

// Healthy reports why the gateway refuses requests, or nil.
func (g *Gateway) Healthy() error {
	if g.stopped.Load() {
		return errors.New("stopped by the panic switch")
	}
	if msg := g.failed.Load(); msg != nil {
		return errors.New(*msg)
	}
	if g.ready != nil {
		if err := g.ready(); err != nil {
			return err
		}
	}
	return nil
}

// RateLimits returns the latest venue-reported budgets per exchange key.
func (g *Gateway) RateLimits() map[string]exchange.RateLimit { return g.limits.snapshot() }

// ReplayFull counts the signed requests refused because the replay memory
// had no room for them.
func (g *Gateway) ReplayFull() uint64 { return g.replay.refused.Load() }

// Wait blocks until in-flight requests are done (for shutdown).
func (g *Gateway) Wait() { g.inflight.Wait() }

// LastPrice returns a venue's last traded price for symbol from the
// gateway's cache, fetching the venue's public ticker through the gateway's
// own transport when the cached price is missing or stale. It is the
// policy's price source; ok is false when no price can be had.
//
// A fetch that fails is not tried again for priceRetryAfter: without a
// price the check goes on as it would with a failed fetch, and the calls
// meanwhile do not each wait for a venue that is failing.
func (g *Gateway) LastPrice(venue, symbol string) (float64, bool) {
	now := g.now()
	if p, ok := g.prices.get(venue, symbol, now); ok {
		return p, true
	}
	rt := g.routes[venue]
	if rt == nil || rt.Venue.Prices == nil || symbol == "" {
		return 0, false
	}
	missKey := venue + "/" + symbol
	g.priceMu.Lock()
	failedAt, failed := g.priceMiss[missKey]
	g.priceMu.Unlock()
	if failed && now.Sub(failedAt) < priceRetryAfter && !now.Before(failedAt) {
		return 0, false
	}
	p, ok := g.fetchPrice(rt, symbol)
	g.priceMu.Lock()
	if ok {
		delete(g.priceMiss, missKey)
	} else {
		if g.priceMiss == nil || len(g.priceMiss) >= maxPriceMisses {
			g.priceMiss = map[string]time.Time{}
		}
		g.priceMiss[missKey] = now
	}
	g.priceMu.Unlock()
	if ok {
		g.prices.set(venue, symbol, p, now)
	}
	return p, ok
}

// priceRetryAfter is how long a failed ticker fetch stands before the same
// venue and symbol are fetched again; maxPriceMisses bounds how many
// failures are remembered (the set starts over when full).
const (
	priceRetryAfter = time.Second
	maxPriceMisses  = 4096
)

// fetchPrice reads symbol's last price from the route's public ticker.
func (g *Gateway) fetchPrice(rt *route, symbol string) (float64, bool) {
	venue := rt.Venue.Name
	tr := rt.Venue.Prices.TickerRequest(symbol)
	if tr == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	u := &url.URL{Scheme: rt.base.Scheme, Host: rt.base.Host, Path: joinPath(rt.base.Path, tr.Path), RawQuery: tr.RawQuery}
	req, err := http.NewRequestWithContext(ctx, tr.Method, u.String(), nil)
	if err != nil {
		return 0, false
	}
	resp, err := g.rt.RoundTrip(req)
	if err != nil {
		g.log.Warn("price fetch failed", "venue", venue, "symbol", symbol, "err", err)
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, false
	}
	p, err := rt.Venue.Prices.ParsePrice(symbol, resp.StatusCode, body)
	if err != nil || p <= 0 {
		return 0, false
	}
	return p, true
}

// remoteAddr returns the caller's address: the TCP peer, or the last
// untrusted hop of X-Forwarded-For when the peer is a trusted proxy.
func (g *Gateway) remoteAddr(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else {
		host, _, serr := net.SplitHostPort(r.RemoteAddr)
		if serr != nil {
			return netip.Addr{}, errors.New("unknown peer address")
		}
		if peer, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, errors.New("unknown peer address")
		}
	}
	if !g.isTrusted(peer) {
		return peer, nil
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return peer, nil
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, errors.New("malformed X-Forwarded-For")
		}
		a = a.Unmap()
		if !g.isTrusted(a) || i == 0 {
			return a, nil
		}
	}
	return peer, nil
}

func (g *Gateway) isTrusted(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
