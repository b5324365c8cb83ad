// Package monitor watches the gateway's finished requests for signs of
// trouble and raises alerts: request-rate surges per client and per exchange
// key against a learned EWMA baseline, bursts of signature failures or
// authentication refusals per claimed credential (someone trying a stolen
// or guessed credential), bursts of policy denials, any withdraw attempt,
// venue 401/403 answers for an exchange key (the key was revoked or expired
// at the venue), error-rate spikes per venue, new source addresses for a
// client, notional surges per client and per key against an EWMA baseline,
// the first use of a symbol after a client's learning period, orders priced
// far from the last market price, and activity in hours of the week in
// which a client was (almost) never active, learned per client.
//
// A Monitor is safe for concurrent use. Time comes from an injected clock so
// that every rule can be tested without sleeping. Alerts are deduplicated per
// rule and subject, rate limited as a whole, and handed to Notifiers by a
// single worker so that a slow notifier never delays a request.
//
// Security: alerts carry names, counts and statuses only, never request
// bodies, signatures or secrets.
package monitor

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// Severity says how urgently someone must look at an alert.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rule names, as they appear in Alert.Rule.
const (
	RuleRateSurge     = "rate_surge"
	RuleAuthFailures  = "auth_failures"
	RuleDenialBurst   = "denial_burst"
	RuleWithdraw      = "withdraw_attempt"
	RuleVenueAuth     = "venue_key_rejected"
	RuleErrorRate     = "error_rate"
	RuleNewSourceIP   = "new_source_ip"
	RuleTest          = "test"
	maxSubjects       = 10000
	maxIPsPerClient   = 64
	maxDecayIntervals = 1000
	// venueAuthFactor times Thresholds.AuthFailures refusals at one
	// venue within the window raise an alert whatever ids were claimed.
	venueAuthFactor = 4
)

// Alert is one finding. Evidence holds the facts that triggered it.
type Alert struct {
	Rule     string            `json:"rule"`
	Severity Severity          `json:"severity"`
	Subject  string            `json:"subject"`
	Summary  string            `json:"summary"`
	Evidence map[string]string `json:"evidence,omitempty"`
	Time     time.Time         `json:"time"`
}

// Notifier delivers alerts to people. Notify returns once the alert was
// accepted by the receiving service or the notifier gave up.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// Event is one finished request as the monitor sees it: the gateway's
// Observation plus what the gateway does not report yet.
type Event struct {
	gateway.Observation
	Time time.Time
	// Claimed is the credential id a refused request claimed, when the
	// gateway could not resolve it to a client.
	Claimed string
	// SourceIP is the bot's address, when known.
	SourceIP netip.Addr
}

// Thresholds tune the rules. Zero fields take the defaults noted. The
// toml names are the [alerts.thresholds] keys of the configuration file;
// durations are written like "1m".
type Thresholds struct {
	// Interval is the rate rule's bucket (default 1m).
	Interval time.Duration `toml:"interval"`
	// SurgeFactor: a bucket above SurgeFactor times the baseline is a surge
	// (default 5), provided it also exceeds SurgeMin requests (default 30).
	SurgeFactor float64 `toml:"surge_factor"`
	SurgeMin    int     `toml:"surge_min"`
	// WarmIntervals buckets are learned before surges are reported
	// (default 5). Alpha is the EWMA weight of the newest bucket (0.2).
	WarmIntervals int     `toml:"warm_intervals"`
	Alpha         float64 `toml:"alpha"`
	// Window is the window of the burst and error-rate rules (default 1m).
	Window time.Duration `toml:"window"`
	// AuthFailures refused authentications per claimed credential within
	// Window raise an alert (default 5); Denials policy denials per client
	// (default 10).
	AuthFailures int `toml:"auth_failures"`
	Denials      int `toml:"denials"`
	// ErrorRate is the share of failed requests per venue within Window
	// that raises an alert (default 0.5) once ErrorMin requests were seen
	// (default 20).
	ErrorRate float64 `toml:"error_rate"`
	ErrorMin  int     `toml:"error_min"`

	// NotionalFactor: an interval whose allowed notional exceeds
	// NotionalFactor times the EWMA baseline is a surge (default 5),
	// provided it also reaches NotionalMin in the quote currency (default
	// 10000). Interval, Alpha and WarmIntervals are the rate rule's.
	NotionalFactor float64 `toml:"notional_factor"`
	NotionalMin    float64 `toml:"notional_min"`
	// SymbolLearn is how long after a client's first order its symbols are
	// learned silently (default 24h); after that a symbol it never used
	// raises an alert.
	SymbolLearn time.Duration `toml:"symbol_learn"`
	// PriceDeviation is the relative distance from the last price beyond
	// which an order is reported (default 0.1, i.e. 10%).
	PriceDeviation float64 `toml:"price_deviation"`
	// OffHoursLearn is how long a client's hour-of-week histogram is
	// learned before it is used (default 7 days), and OffHoursMin how many
	// requests it must hold by then (default 200). A request in an hour
	// that, with its two neighbours, holds less than OffHoursShare of the
	// client's requests (default 0.002) is off hours.
	OffHoursLearn time.Duration `toml:"off_hours_learn"`
	OffHoursMin   int           `toml:"off_hours_min"`
	OffHoursShare float64       `toml:"off_hours_share"`
}

func (t Thresholds) withDefaults() Thresholds {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	deff := func(f *float64, v float64) {
		if *f <= 0 {
			*f = v
		}
	}
	def(&t.Interval, time.Minute)
	def(&t.Window, time.Minute)
	deff(&t.SurgeFactor, 5)
	defi(&t.SurgeMin, 30)
	defi(&t.WarmIntervals, 5)
	if t.Alpha <= 0 || t.Alpha > 1 {
		t.Alpha = 0.2
	}
	defi(&t.AuthFailures, 5)
	defi(&t.Denials, 10)
	if t.ErrorRate <= 0 || t.ErrorRate > 1 {
		t.ErrorRate = 0.5
	}
	defi(&t.ErrorMin, 20)
	return t.orderDefaults()
}

// Options configure a Monitor.
type Options struct {
	Now        func() time.Time
	Logger     *slog.Logger
	Notifiers  []Notifier
	Thresholds Thresholds
	// Cooldown suppresses repeats of one rule for one subject (default 10m).
	Cooldown time.Duration
	// MaxPerMinute bounds all alerts together (default 30); the excess is
	// counted and reported with the next alert that goes out.
	MaxPerMinute int
	// Queue bounds alerts waiting for the notifiers (default 256).
	Queue int
	// NotifyTimeout bounds one notifier's delivery of one alert (default 30s).
	NotifyTimeout time.Duration
	// OnAlert, when set, is called with every alert that passed
	// deduplication and the rate limit (metrics, incidents, automatic
	// responses). It runs on the caller of Record or Raise, outside the
	// monitor's lock: it must be quick.
	OnAlert func(Alert)
}

// Monitor applies the rules. Create it with New.
type Monitor struct {
	now       func() time.Time
	log       *slog.Logger
	notifiers []Notifier
	th        Thresholds
	cooldown  time.Duration
	perMinute int
	timeout   time.Duration
	queue     chan Alert
	onAlert   func(Alert)

	mu         sync.Mutex
	rates      map[subject]*rate
	auth       map[subject]*window
	denials    map[subject]*window
	errs       map[string]*errWindow
	ips        map[subject]map[netip.Addr]bool
	orders     orderState
	sent       map[string]time.Time
	tokens     float64
	tokensAt   time.Time
	suppressed int
}

// New returns a Monitor. Call Run to deliver alerts to the notifiers.
func New(o Options) *Monitor {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 10 * time.Minute
	}
	if o.MaxPerMinute <= 0 {
		o.MaxPerMinute = 30
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 30 * time.Second
	}
	return &Monitor{
		now: o.Now, log: o.Logger, notifiers: o.Notifiers, th: o.Thresholds.withDefaults(),
		cooldown: o.Cooldown, perMinute: o.MaxPerMinute, timeout: o.NotifyTimeout,
		queue: make(chan Alert, o.Queue), rates: map[subject]*rate{}, auth: map[subject]*window{},
		denials: map[subject]*window{}, errs: map[string]*errWindow{}, ips: map[subject]map[netip.Addr]bool{},
		sent: map[string]time.Time{}, tokens: float64(o.MaxPerMinute), orders: newOrderState(), onAlert: o.OnAlert,
	}
}

// Observe records a gateway observation; it is gateway.Options.Observe.
func (m *Monitor) Observe(o gateway.Observation) {
	m.Record(Event{Observation: o, Time: m.now(), SourceIP: o.SourceIP, Claimed: o.Claimed})
}

// Record applies every rule to e and returns the alerts it raised after
// deduplication and rate limiting; they are also queued for the notifiers.
func (m *Monitor) Record(e Event) []Alert {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.mu.Lock()
	raw := m.check(e)
	var out []Alert
	for _, a := range raw {
		if m.admit(a) {
			out = append(out, a)
		}
	}
	m.mu.Unlock()
	for _, a := range out {
		m.enqueue(a)
	}
	return out
}

// Raise sends an alert that did not come from the rules (a test alert, a
// health check) through the same deduplication, rate limit and notifiers.
// It reports whether the alert was admitted.
func (m *Monitor) Raise(a Alert) bool {
	if a.Time.IsZero() {
		a.Time = m.now()
	}
	m.mu.Lock()
	ok := m.admit(a)
	m.mu.Unlock()
	if ok {
		m.enqueue(a)
	}
	return ok
}

func (m *Monitor) enqueue(a Alert) {
	if m.onAlert != nil {
		m.onAlert(a)
	}
	select {
	case m.queue <- a:
	default:
		m.log.Error("alert queue full: alert dropped", "rule", a.Rule, "subject", a.Subject)
	}
}

// Run delivers queued alerts to every notifier until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-m.queue:
			m.deliver(ctx, a)
		}
	}
}

func (m *Monitor) deliver(ctx context.Context, a Alert) {
	m.log.Warn("alert", "rule", a.Rule, "severity", string(a.Severity), "subject", a.Subject, "summary", a.Summary)
	for _, n := range m.notifiers {
		nctx, cancel := context.WithTimeout(ctx, m.timeout)
		if err := n.Notify(nctx, a); err != nil {
			m.log.Error("alert not delivered", "rule", a.Rule, "subject", a.Subject, "err", err)
		}
		cancel()
	}
}

// admit applies the per-subject cooldown and the global rate limit.
// m.mu is held.
func (m *Monitor) admit(a Alert) bool {
	k := a.Rule + "\x00" + a.Subject
	if last, ok := m.sent[k]; ok && a.Time.Sub(last) < m.cooldown {
		return false
	}
	if el := a.Time.Sub(m.tokensAt); el > 0 {
		m.tokens += el.Minutes() * float64(m.perMinute)
		if m.tokens > float64(m.perMinute) {
			m.tokens = float64(m.perMinute)
		}
		m.tokensAt = a.Time
	}
	if m.tokens < 1 {
		m.suppressed++
		return false
	}
	m.tokens--
	if len(m.sent) >= maxSubjects {
		for sk, t := range m.sent {
			if a.Time.Sub(t) >= m.cooldown {
				delete(m.sent, sk)
			}
		}
	}
	m.sent[k] = a.Time
	if m.suppressed > 0 {
		if a.Evidence == nil {
			a.Evidence = map[string]string{}
		}
		a.Evidence["suppressed_alerts"] = strconv.Itoa(m.suppressed)
		m.suppressed = 0
	}
	return true
}

// check runs the rules. m.mu is held.
func (m *Monitor) check(e Event) []Alert {
	var out []Alert
	add := func(rule string, sev Severity, subject, summary string, ev map[string]string) {
		ev["venue"] = e.Venue
		out = append(out, Alert{Rule: rule, Severity: sev, Subject: subject, Summary: summary, Evidence: ev, Time: e.Time})
	}
	who := e.Client
	if who == "" {
		who = safeID(e.Claimed)
	}
	if who == "" {
		who = "unknown"
	}
	cs := subject{kind: "client", venue: e.Venue, id: who}
	ks := subject{kind: "key", venue: e.Venue, id: e.Key}

	if e.Scope == exchange.ScopeWithdraw {
		add(RuleWithdraw, SeverityCritical, cs.String(), "withdraw attempt by "+cs.String(),
			map[string]string{"client": who, "key": e.Key, "decision": e.Decision, "rule": e.Rule, "status": strconv.Itoa(e.Status)})
	}
	// The request reached the venue (allow) and the venue refused the
	// exchange key itself: it was revoked, expired or lost permissions.
	if e.Decision == "allow" && (e.Status == 401 || e.Status == 403) && e.Key != "" {
		add(RuleVenueAuth, SeverityCritical, ks.String(), "venue refused exchange key "+ks.String()+" (revoked or expired at the venue?)",
			map[string]string{"key": e.Key, "client": who, "status": strconv.Itoa(e.Status)})
	}
	if e.Decision == "error" && (e.Status == 401 || e.Status == 403) {
		w := lookup(m.auth, cs, func() *window { return &window{} })
		if n := w.add(e.Time, m.th.Window); n >= m.th.AuthFailures {
			add(RuleAuthFailures, SeverityCritical, cs.String(), "repeated authentication failures for "+cs.String(),
				map[string]string{"client": who, "failures": strconv.Itoa(n), "window": m.th.Window.String(), "status": strconv.Itoa(e.Status)})
		}
		// Failures spread over many claimed ids (guessing, or a list of
		// stolen credentials) are caught venue-wide.
		vw := lookup(m.auth, subject{kind: "venue", venue: e.Venue}, func() *window { return &window{} })
		if n := vw.add(e.Time, m.th.Window); n >= venueAuthFactor*m.th.AuthFailures {
			add(RuleAuthFailures, SeverityCritical, e.Venue, "repeated authentication failures at "+e.Venue,
				map[string]string{"failures": strconv.Itoa(n), "window": m.th.Window.String(), "last_claimed": who})
		}
	}
	if e.Decision == "deny" {
		w := lookup(m.denials, cs, func() *window { return &window{} })
		if n := w.add(e.Time, m.th.Window); n >= m.th.Denials {
			add(RuleDenialBurst, SeverityWarning, cs.String(), "burst of policy denials for "+cs.String(),
				map[string]string{"client": who, "denials": strconv.Itoa(n), "window": m.th.Window.String(), "last_rule": e.Rule})
		}
	}
	if e.Venue != "" {
		w := lookup(m.errs, e.Venue, func() *errWindow { return &errWindow{} })
		// Refusals of bad requests are the bots' business and have rules
		// of their own; errors here are 5xx, keywarden's or the venue's.
		failed := e.Status >= 500
		if total, bad := w.add(e.Time, m.th.Window, failed); total >= m.th.ErrorMin && float64(bad) >= m.th.ErrorRate*float64(total) {
			add(RuleErrorRate, SeverityWarning, e.Venue, "error rate spike at "+e.Venue,
				map[string]string{"requests": strconv.Itoa(total), "errors": strconv.Itoa(bad), "window": m.th.Window.String()})
		}
	}
	if e.Client != "" {
		for _, s := range [...]subject{cs, ks} {
			if s.id == "" {
				continue
			}
			r := lookup(m.rates, s, func() *rate { return &rate{} })
			if n, base, surge := r.add(e.Time, m.th); surge {
				add(RuleRateSurge, SeverityWarning, s.String(), "request rate surge for "+s.kind+" "+s.String(),
					map[string]string{s.kind: s.String(), "requests": strconv.Itoa(n), "interval": m.th.Interval.String(),
						"baseline": strconv.FormatFloat(base, 'f', 1, 64)})
			}
		}
		m.checkOrders(e, cs, ks, add)
		if e.SourceIP.IsValid() {
			seen := lookup(m.ips, cs, func() map[netip.Addr]bool { return map[netip.Addr]bool{} })
			ip := e.SourceIP.Unmap()
			if !seen[ip] {
				if len(seen) > 0 {
					add(RuleNewSourceIP, SeverityWarning, cs.String(), "new source address for "+cs.String(),
						map[string]string{"client": who, "source_ip": ip.String(), "known_addresses": strconv.Itoa(len(seen))})
				}
				if len(seen) < maxIPsPerClient {
					seen[ip] = true
				}
			}
		}
	}
	return out
}

// lookup returns m[k], creating it with mk; the map is bounded by dropping
// an arbitrary entry when full (state is advisory).
func lookup[K comparable, V any](m map[K]V, k K, mk func() V) V {
	v, ok := m[k]
	if !ok {
		if len(m) >= maxSubjects {
			for dk := range m {
				delete(m, dk)
				break
			}
		}
		v = mk()
		m[k] = v
	}
	return v
}

// safeID keeps an attacker-chosen credential id printable and short.
func safeID(s string) string {
	if s == "" {
		return ""
	}
	b := []byte(s[:min(len(s), 64)])
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// subject is what rules keep state for: a client or an exchange key at a
// venue. A struct key keeps the hot path free of string building.
type subject struct{ kind, venue, id string }

func (s subject) String() string { return s.venue + "/" + s.id }

// window counts events in a fixed window that starts with its first event.
type window struct {
	start time.Time
	n     int
}

func (w *window) add(t time.Time, size time.Duration) int {
	if w.n == 0 || t.Sub(w.start) >= size || t.Before(w.start) {
		w.start, w.n = t, 0
	}
	w.n++
	return w.n
}

// errWindow counts requests and failures in a fixed window.
type errWindow struct {
	start      time.Time
	total, bad int
}

func (w *errWindow) add(t time.Time, size time.Duration, failed bool) (int, int) {
	if w.total == 0 || t.Sub(w.start) >= size || t.Before(w.start) {
		w.start, w.total, w.bad = t, 0, 0
	}
	w.total++
	if failed {
		w.bad++
	}
	return w.total, w.bad
}

// rate counts requests per interval and keeps an EWMA of past intervals.
type rate struct {
	bucket   time.Time // start of the current interval
	n        int
	baseline float64
	learned  int
}

// add counts one request at t and reports the current count, the baseline
// and whether the current interval is a surge against a warm baseline.
func (r *rate) add(t time.Time, th Thresholds) (int, float64, bool) {
	b := t.Truncate(th.Interval)
	switch {
	case r.bucket.IsZero():
		r.bucket = b
	case b.After(r.bucket):
		r.fold(float64(r.n), th)
		// Empty intervals between then and now pull the baseline down.
		gaps := int(b.Sub(r.bucket)/th.Interval) - 1
		for i := 0; i < gaps && i < maxDecayIntervals; i++ {
			r.fold(0, th)
		}
		r.bucket, r.n = b, 0
	}
	r.n++
	if r.learned < th.WarmIntervals {
		return r.n, r.baseline, false
	}
	limit := max(th.SurgeFactor*r.baseline, float64(th.SurgeMin))
	return r.n, r.baseline, float64(r.n) > limit
}

func (r *rate) fold(v float64, th Thresholds) {
	if r.learned == 0 {
		r.baseline = v
	} else {
		r.baseline = th.Alpha*v + (1-th.Alpha)*r.baseline
	}
	r.learned++
}
