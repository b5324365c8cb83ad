package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// limiter tracks each exchange key's venue-reported rate-limit budget and
// bans (429/418 with Retry-After) and refuses calls early.
type limiter struct {
	share float64
	mu    sync.Mutex
	state map[string]*limitState
}

type limitState struct {
	rl        exchange.RateLimit
	at        time.Time
	bannedTil time.Time
}

func newLimiter(share float64) *limiter {
	return &limiter{share: share, state: map[string]*limitState{}}
}

func (l *limiter) blocked(venue, key string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state[venue+"/"+key]
	if s == nil {
		return time.Time{}, false
	}
	if now.Before(s.bannedTil) {
		return s.bannedTil, true
	}
	if s.rl.Limit > 0 && float64(s.rl.Used) >= l.share*float64(s.rl.Limit) {
		w := s.rl.Window
		if w <= 0 {
			w = time.Minute
		}
		// The budget resets at the next window boundary.
		until := s.at.Truncate(w).Add(w)
		if now.Before(until) {
			return until, true
		}
	}
	return time.Time{}, false
}

func (l *limiter) note(venue, key string, rl *exchange.RateLimit, ban time.Duration, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := venue + "/" + key
	s := l.state[k]
	if s == nil {
		s = &limitState{}
		l.state[k] = s
	}
	if rl != nil {
		s.rl, s.at = *rl, now
	}
	if ban > 0 {
		s.bannedTil = now.Add(ban)
	}
}

func (l *limiter) snapshot() map[string]exchange.RateLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]exchange.RateLimit, len(l.state))
	for k, s := range l.state {
		out[k] = s.rl
	}
	return out
}

func (g *Gateway) noteLimits(st *state, resp *http.Response) {
	if st.entry == nil {
		return
	}
	var rl *exchange.RateLimit
	if lr := st.rt.Venue.Limits; lr != nil {
		if v, ok := lr.RateLimit(resp.Header); ok {
			rl = &v
		}
	}
	var ban time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusTeapot {
		ban = time.Minute
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ban = time.Duration(s) * time.Second
		}
	}
	if rl != nil || ban > 0 {
		g.limits.note(st.rt.Venue.Name, st.entry.Key, rl, ban, g.now())
	}
}

// publicCache keeps public GET answers for a short TTL.
type publicCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]cachedEntry
}

type cachedResponse struct {
	status int
	header http.Header
	body   []byte
}

type cachedEntry struct {
	resp cachedResponse
	at   time.Time
}

func newPublicCache(ttl time.Duration, max int) *publicCache {
	return &publicCache{ttl: ttl, max: max, m: map[string]cachedEntry{}}
}

func (c *publicCache) get(k string, now time.Time) (cachedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.Sub(e.at) >= c.ttl {
		return cachedResponse{}, false
	}
	return e.resp, true
}

func (c *publicCache) put(k string, r cachedResponse, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			return
		}
	}
	c.m[k] = cachedEntry{resp: r, at: now}
}

// priceCache holds last prices fetched from venues' public tickers.
type priceCache struct {
	mu sync.Mutex
	m  map[string]pricePoint
}

type pricePoint struct {
	price float64
	at    time.Time
}

func newPriceCache() *priceCache { return &priceCache{m: map[string]pricePoint{}} }

// priceTTL is how old a cached price may be before it is fetched again.
const priceTTL = 5 * time.Second

func (c *priceCache) get(venue, symbol string, now time.Time) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[venue+"/"+symbol]
	if !ok || now.Sub(p.at) > priceTTL {
		return 0, false
	}
	return p.price, true
}

func (c *priceCache) set(venue, symbol string, price float64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[venue+"/"+symbol] = pricePoint{price, now}
}
