package policy

import (
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Limiter holds the state of the stateful rules: rolling windows of
// notional and order count, and open-order counts. It is safe for
// concurrent use.
//
// Every check reserves budget atomically under one lock: the whole call (a
// batch included) is checked against every window and the open-order cap,
// and then recorded in all of them, or in none. So concurrent calls never
// overshoot a cap: a reservation counts from the moment it is granted, and
// gives its budget back only through Release. A reservation that is neither
// committed nor released keeps counting, which errs on the side of denial.
//
// Windows are exact and rolling: an order counts from the time of its check
// until Duration later. Each window keeps one small entry per order it
// counts, so its memory is bounded by the venue's own order rate over the
// window. Windows are per policy: a per-key window counts the calls made on
// that key through this policy, not through other policies.
//
// Open orders are a counter model per client credential: a granted new
// resting order (anything but a market order) counts as pending, Commit
// turns it into an open order, Release drops it. The limiter cannot see
// fills or cancels by itself: the gateway reports them with OrdersClosed,
// or resynchronises with SetOpenOrders from the venue's open-orders list.
// Orders that fill or expire unseen keep counting until then, which again
// errs on the side of denial.
type Limiter struct {
	mu      sync.Mutex
	windows map[bucketKey]*bucket
	open    map[string]*openCount
}

type bucketKey struct {
	policy  string
	window  int
	perKey  bool
	subject string
}

type bucket struct {
	entries  []*entry
	head     int // entries before head have left the window
	notional units
	orders   int
}

type entry struct {
	at       time.Time
	notional units
	orders   int
	released bool // Release gave the budget back
	expired  bool // the entry left the window
}

type openCount struct {
	open, pending int
}

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	return &Limiter{windows: map[bucketKey]*bucket{}, open: map[string]*openCount{}}
}

// Reservation is budget a check took from the Limiter. Call Commit when the
// venue accepted the call, or Release when it failed before or at the venue
// (the budget returns). Only the first of the two counts. A nil
// *Reservation is valid and does nothing: Engine.Check returns one when the
// policy has no stateful rules. A Reservation is safe for concurrent use.
type Reservation struct {
	l       *Limiter
	entries []reservedEntry
	buf     [4]reservedEntry // entries of up to four windows, without a further allocation
	client  string
	opens   int
	done    bool
}

type reservedEntry struct {
	b *bucket
	e *entry
}

// Commit keeps the reserved budget: the call reached the venue and the
// venue accepted it.
func (r *Reservation) Commit() {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if r.opens > 0 {
		oc := r.l.open[r.client]
		oc.pending -= r.opens
		oc.open += r.opens
	}
}

// Release gives the reserved budget back: the call failed before the venue
// or the venue rejected it. Do not release a call whose outcome is unknown
// (a timeout): the order may exist.
func (r *Reservation) Release() {
	if r == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	for _, re := range r.entries {
		if re.e.released {
			continue
		}
		re.e.released = true
		if !re.e.expired {
			re.b.notional -= re.e.notional
			re.b.orders -= re.e.orders
		}
	}
	if r.opens > 0 {
		r.l.open[r.client].pending -= r.opens
	}
}

// OrdersClosed records that n of client's open orders were filled,
// cancelled or expired.
func (l *Limiter) OrdersClosed(client string, n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if oc := l.open[client]; oc != nil {
		oc.open = max(0, oc.open-n)
	}
}

// SetOpenOrders sets client's count of open orders, as read from the
// venue. Pending reservations still count on top of it.
func (l *Limiter) SetOpenOrders(client string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	oc := l.open[client]
	if oc == nil {
		oc = &openCount{}
		l.open[client] = oc
	}
	oc.open = max(0, n)
}

// OpenOrders returns client's open and pending order counts.
func (l *Limiter) OpenOrders(client string) (open, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if oc := l.open[client]; oc != nil {
		return oc.open, oc.pending
	}
	return 0, 0
}

// Reserve applies p's stateful rules to in and, when they allow the call,
// reserves its budget. It does not apply the pure rules; Engine.Check does
// both.
func (l *Limiter) Reserve(p *Policy, in Input) (*Reservation, *Denial) {
	var c checkCtx
	p.newCtx(&c, &in)
	return l.reserve(p, &c, true)
}

// stateful reports whether p has rules the Limiter applies.
func (p *Policy) stateful() bool { return len(p.windows) > 0 || p.maxOpen > 0 }

// usage sums what a call adds: the notional and count of its placing
// orders, and how many new resting orders it opens.
func (p *Policy) usage(c *checkCtx) (notional units, orders, opens int) {
	for i := range c.in.Call.Orders {
		o := &c.in.Call.Orders[i]
		if !places(o) {
			continue
		}
		orders++
		if v := c.value(i); v.known {
			notional += v.notional
			if notional > maxUnits {
				notional = maxUnits
			}
		}
		if o.Action != exchange.ActionAmend && o.Type != "market" {
			opens++
		}
	}
	return notional, orders, opens
}

// reserve checks and, if take is set and the call is allowed, records it.
// With take unset it only reports (for Explain).
func (l *Limiter) reserve(p *Policy, c *checkCtx, take bool) (*Reservation, *Denial) {
	if !p.stateful() {
		return nil, nil
	}
	notional, orders, opens := p.usage(c)
	if orders == 0 {
		return nil, nil // reads, cancels and transfers use no budget
	}
	for i := range c.in.Call.Orders {
		o := &c.in.Call.Orders[i]
		if places(o) && !c.value(i).known && !p.allowNoRef && p.needsNotional {
			return nil, p.deny("reference_price", "no reference price for %s", exchange.SafeName(o.Symbol))
		}
	}
	now := c.in.Now
	if now.IsZero() {
		return nil, p.deny("clock", "no time given for the check")
	}

	l.mu.Lock()
	defer l.mu.Unlock()

	var bs [4]*bucket
	buckets := bs[:0]
	for i := range p.windows {
		w := &p.windows[i]
		subject, what := c.in.Client, "client credential"
		if w.perKey {
			subject, what = c.in.Key, "exchange key"
		}
		if subject == "" {
			return nil, p.deny("window", "no %s given for the %s window", what, fmtDur(w.dur))
		}
		k := bucketKey{policy: p.name, window: i, perKey: w.perKey, subject: subject}
		b := l.windows[k]
		if b == nil {
			if !take {
				buckets = append(buckets, &bucket{})
				continue
			}
			b = &bucket{}
			l.windows[k] = b
		}
		b.expire(now.Add(-w.dur))
		if w.maxNotional > 0 && b.notional+notional > w.maxNotional {
			return nil, p.deny("window_notional", "notional in %s would reach %s%s (%s used + %s this call), over the window's max_notional %s",
				fmtDur(w.dur), b.notional+notional, p.cur(), b.notional, notional, w.maxNotional)
		}
		if w.maxOrders > 0 && b.orders+orders > w.maxOrders {
			return nil, p.deny("window_orders", "orders in %s would reach %d (%d used + %d this call), over the window's max_orders %d",
				fmtDur(w.dur), b.orders+orders, b.orders, orders, w.maxOrders)
		}
		buckets = append(buckets, b)
	}
	oc := l.open[c.in.Client]
	if p.maxOpen > 0 && opens > 0 {
		if c.in.Client == "" {
			return nil, p.deny("max_open_orders", "no client credential given for max_open_orders")
		}
		cur := 0
		if oc != nil {
			cur = oc.open + oc.pending
		}
		if cur+opens > p.maxOpen {
			return nil, p.deny("max_open_orders", "open orders would reach %d (%d open or pending + %d this call), over max_open_orders %d",
				cur+opens, cur, opens, p.maxOpen)
		}
	}
	if !take {
		return nil, nil
	}

	r := &Reservation{l: l, client: c.in.Client}
	r.entries = r.buf[:0]
	es := make([]entry, len(buckets))
	for i, b := range buckets {
		e := &es[i]
		*e = entry{at: now, notional: notional, orders: orders}
		b.entries = append(b.entries, e)
		b.notional += notional
		b.orders += orders
		r.entries = append(r.entries, reservedEntry{b, e})
	}
	if p.maxOpen > 0 && opens > 0 {
		if oc == nil {
			oc = &openCount{}
			l.open[c.in.Client] = oc
		}
		oc.pending += opens
		r.opens = opens
	}
	return r, nil
}

// expire drops the entries at or before cutoff from the window's sums.
// Entries are appended in check order; if the injected clock ever goes
// backwards, a later entry with an earlier time waits behind the ones
// before it, which only keeps it counted longer.
func (b *bucket) expire(cutoff time.Time) {
	for b.head < len(b.entries) {
		e := b.entries[b.head]
		if e.at.After(cutoff) {
			break
		}
		e.expired = true
		if !e.released {
			b.notional -= e.notional
			b.orders -= e.orders
		}
		b.entries[b.head] = nil
		b.head++
	}
	// Compact once the dead prefix is at least half the slice.
	if b.head > 0 && b.head*2 >= len(b.entries) {
		n := copy(b.entries, b.entries[b.head:])
		clear(b.entries[n:])
		b.entries = b.entries[:n]
		b.head = 0
	}
}
