package dashboard

import (
	"maps"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/monitor"
)

// Activity is the dashboard's small in-memory view of the gateway's recent
// traffic: per-minute buckets of requests, denials, errors and latency for
// the last hour, the last source addresses of each client, and the alerts
// the monitor raised. It is fed by the gateway's Observe hook (see
// Observer) and is safe for concurrent use. It holds names, counts and
// addresses only, never a request body or a secret; it is bounded in
// memory whatever the traffic.
type Activity struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [bucketCount]bucket
	seen    map[string][]SourceSeen // client id → newest first
	alerts  []Alert                 // oldest first
	nextID  int
}

// Series are kept per minute for an hour.
const (
	bucketCount = 60
	bucketSize  = time.Minute
	// maxClientsSeen and maxIPsPerClient bound the last-seen table.
	maxClientsSeen  = 10000
	maxIPsPerClient = 5
	maxAlerts       = 200
)

type bucket struct {
	start      time.Time
	requests   int
	denials    int
	errors     int
	latencySum time.Duration
	latencyMax time.Duration
	timed      int
	// notional sums the orders allowed per key ("venue/key"); bounded by
	// the keys the gateway signs with.
	notional map[string]float64
}

// SourceSeen is an address a client's requests came from, and when last.
type SourceSeen struct {
	Addr netip.Addr
	Last time.Time
}

// Alert is a monitor alert as the dashboard lists it; Closed is set when
// an operator acknowledged it.
type Alert struct {
	ID int
	monitor.Alert
	Closed   time.Time
	ClosedBy string
}

// NewActivity returns an empty Activity; now nil means time.Now.
func NewActivity(now func() time.Time) *Activity {
	if now == nil {
		now = time.Now
	}
	return &Activity{now: now, seen: map[string][]SourceSeen{}}
}

// Observer returns the gateway's Observe hook: it records o here, then
// hands it to next (the monitor's Observe) when next is not nil.
func (a *Activity) Observer(next func(gateway.Observation)) func(gateway.Observation) {
	return func(o gateway.Observation) {
		a.Observe(o)
		if next != nil {
			next(o)
		}
	}
}

// Observe records one finished gateway request.
func (a *Activity) Observe(o gateway.Observation) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bucket(now)
	b.requests++
	switch {
	case o.Decision == "deny":
		b.denials++
	case o.Decision == "error" || o.Status >= 500:
		b.errors++
	}
	if o.Decision == "allow" && o.Key != "" && o.Notional > 0 && !math.IsInf(o.Notional, 0) {
		if b.notional == nil {
			b.notional = map[string]float64{}
		}
		b.notional[o.Venue+"/"+o.Key] += o.Notional
	}
	if lat := o.Overhead + o.Upstream; lat > 0 {
		b.latencySum += lat
		b.latencyMax = max(b.latencyMax, lat)
		b.timed++
	}
	if o.Client != "" && o.SourceIP.IsValid() {
		list, ok := a.seen[o.Client]
		if !ok && len(a.seen) >= maxClientsSeen {
			return
		}
		list = slices.DeleteFunc(list, func(s SourceSeen) bool { return s.Addr == o.SourceIP })
		list = slices.Insert(list, 0, SourceSeen{Addr: o.SourceIP, Last: now})
		if len(list) > maxIPsPerClient {
			list = list[:maxIPsPerClient]
		}
		a.seen[o.Client] = list
	}
}

// bucket returns the bucket of t, resetting it when it held an older
// minute. a.mu is held.
func (a *Activity) bucket(t time.Time) *bucket {
	start := t.Truncate(bucketSize)
	b := &a.buckets[start.Unix()/int64(bucketSize/time.Second)%bucketCount]
	if !b.start.Equal(start) {
		*b = bucket{start: start}
	}
	return b
}

// Alert keeps an alert for the alerts page, dropping the oldest beyond a
// bound. It is quick, for monitor.Options.OnAlert.
func (a *Activity) Alert(al monitor.Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextID++
	a.alerts = append(a.alerts, Alert{ID: a.nextID, Alert: al})
	if n := len(a.alerts) - maxAlerts; n > 0 {
		a.alerts = slices.Delete(a.alerts, 0, n)
	}
}

// Alerts returns the kept alerts, newest first.
func (a *Activity) Alerts() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.alerts)
	slices.Reverse(out)
	return out
}

// CloseAlert marks alert id acknowledged by who; it reports whether the
// alert exists and was open.
func (a *Activity) CloseAlert(id int, who string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.alerts {
		if a.alerts[i].ID == id && a.alerts[i].Closed.IsZero() {
			a.alerts[i].Closed, a.alerts[i].ClosedBy = a.now(), who
			return true
		}
	}
	return false
}

// Seen returns the last source addresses of a client, newest first.
func (a *Activity) Seen(client string) []SourceSeen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen[client])
}

// Point is one minute of traffic.
type Point struct {
	Start       time.Time
	Requests    int
	Denials     int
	Errors      int
	MeanLatency time.Duration
	MaxLatency  time.Duration
	// Notional is the value of the orders allowed, per key ("venue/key").
	Notional map[string]float64
}

// Series returns the last n minutes (n ≤ 60), oldest first, the current
// minute last; minutes without traffic are zero points.
func (a *Activity) Series(n int) []Point {
	n = min(max(n, 1), bucketCount)
	now := a.now().Truncate(bucketSize)
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Point, 0, n)
	for i := n - 1; i >= 0; i-- {
		start := now.Add(-time.Duration(i) * bucketSize)
		p := Point{Start: start}
		b := &a.buckets[start.Unix()/int64(bucketSize/time.Second)%bucketCount]
		if b.start.Equal(start) {
			p.Requests, p.Denials, p.Errors, p.MaxLatency = b.requests, b.denials, b.errors, b.latencyMax
			p.Notional = maps.Clone(b.notional)
			if b.timed > 0 {
				p.MeanLatency = b.latencySum / time.Duration(b.timed)
			}
		}
		out = append(out, p)
	}
	return out
}
