// Package metrics exports keywarden's Prometheus metrics: requests by venue,
// scope and decision; gateway overhead and upstream latency as separate
// histograms; audit commit latency and batch size; policy denials by rule;
// venue rate-limit usage per exchange key; the vault's seal state and
// whether the gateway accepts requests; plus the Go runtime and process
// collectors. It uses its own registry, never the global one.
//
// Observe is on the gateway's hot path: label sets are resolved once per
// venue (scope and decision index fixed arrays, rules a small copy-on-write
// map), so after warm-up an observation takes no allocation and no lock.
//
// A Metrics is safe for concurrent use.
//
// Security: labels carry venue names, scopes, decisions, policy rule names
// and exchange key names (as audit records show them), never request
// content, credential ids, signatures or secrets.
package metrics

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// Metric names, as the dashboard queries them.
const (
	NameRequests       = "keywarden_requests_total"
	NameDenials        = "keywarden_policy_denials_total"
	NameOverhead       = "keywarden_gateway_overhead_seconds"
	NameUpstream       = "keywarden_upstream_seconds"
	NameAuditCommit    = "keywarden_audit_commit_seconds"
	NameAuditBatch     = "keywarden_audit_batch_records"
	NameRateLimitUsed  = "keywarden_venue_rate_limit_used"
	NameRateLimitLimit = "keywarden_venue_rate_limit_limit"
	NameRateLimitRatio = "keywarden_venue_rate_limit_used_ratio"
	NameSealed         = "keywarden_vault_sealed"
	NameReplayFull     = "keywarden_replay_memory_full_total"
	NameGatewayAccepts = "keywarden_gateway_accepting"
	NameAlerts         = "keywarden_alerts_total"
	maxRulesPerVenue   = 64
	maxVenues          = 256
	otherLabel         = "other"
	noScopeLabel       = "none"
	ruleOverflowLabel  = "other"
	decisionOtherLabel = "other"
)

// decisions are the gateway's Observation.Decision values, in index order;
// anything else counts as "other".
var decisions = [...]string{"allow", "deny", "error", decisionOtherLabel}

// scopeLabels index exchange.Scopes, then "none" (refused before the call
// was described) and "other".
var scopeLabels = func() []string {
	out := make([]string, 0, len(exchange.Scopes)+2)
	for _, s := range exchange.Scopes {
		out = append(out, string(s))
	}
	return append(out, noScopeLabel, otherLabel)
}()

const nScopes = 8 // len(exchange.Scopes) + 2; a test checks it

// Options configure New. Every func is called at scrape time only.
type Options struct {
	// Sealed reports whether the vault is sealed.
	Sealed func() bool
	// Healthy reports why the gateway refuses requests (panic switch,
	// sealed vault, audit failure), or nil.
	Healthy func() error
	// RateLimits returns the latest venue-reported budget per
	// "venue/keyname", as gateway.Gateway.RateLimits does.
	RateLimits func() map[string]exchange.RateLimit
	// ReplayFull counts signed requests refused because the replay memory
	// had no room for them, as gateway.Gateway.ReplayFull does.
	ReplayFull func() uint64
	// Buckets for the latency histograms in seconds; nil takes a
	// default from 100 µs to 10 s.
	Buckets []float64
}

// Metrics holds keywarden's collectors and its registry.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	denials     *prometheus.CounterVec
	overhead    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	auditCommit prometheus.Histogram
	auditBatch  prometheus.Histogram
	alerts      *prometheus.CounterVec

	mu     sync.Mutex // serialises changes to venues
	venues atomic.Pointer[map[string]*venueSeries]
}

// venueSeries are one venue's resolved children.
type venueSeries struct {
	name     string
	requests [nScopes][len(decisions)]prometheus.Counter
	overhead prometheus.Observer
	upstream prometheus.Observer
	mu       sync.Mutex // serialises changes to rules
	rules    atomic.Pointer[map[string]prometheus.Counter]
}

// defaultBuckets span 100 µs to 10 s, dense below 10 ms where the
// gateway's own overhead lives.
func defaultBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// New registers keywarden's collectors in a new registry.
func New(o Options) *Metrics {
	b := o.Buckets
	if b == nil {
		b = defaultBuckets()
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameRequests,
		Help: "Finished gateway requests by venue, scope and decision (allow, deny, error)."},
		[]string{"venue", "scope", "decision"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameDenials,
		Help: "Policy denials by venue and the rule that denied."}, []string{"venue", "rule"})
	m.overhead = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameOverhead,
		Help: "Time a request spent in keywarden itself (total minus upstream), by venue.", Buckets: b}, []string{"venue"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameUpstream,
		Help: "Time the venue took to answer a forwarded request, by venue.", Buckets: b}, []string{"venue"})
	m.auditCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: NameAuditCommit,
		Help: "Time to write and flush one batch of audit records.", Buckets: b})
	m.auditBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: NameAuditBatch,
		Help:    "Audit records (checkpoints included) written per flush.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameAlerts,
		Help: "Monitor alerts raised (after deduplication) by rule and severity."}, []string{"rule", "severity"})
	m.reg.MustRegister(m.requests, m.denials, m.overhead, m.upstream, m.auditCommit, m.auditBatch, m.alerts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{o: o})
	empty := map[string]*venueSeries{}
	m.venues.Store(&empty)
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Observe counts one finished gateway request; it fits
// gateway.Options.Observe.
func (m *Metrics) Observe(o gateway.Observation) {
	vs := m.venue(o.Venue)
	vs.requests[scopeIndex(o.Scope)][decisionIndex(o.Decision)].Inc()
	vs.overhead.Observe(o.Overhead.Seconds())
	if o.Upstream > 0 {
		vs.upstream.Observe(o.Upstream.Seconds())
	}
	if o.Decision == "deny" && o.Rule != "" {
		vs.rule(m, o.Rule).Inc()
	}
}

// ObserveAuditCommit records one audit batch: records written and the time
// its write and flush took. It fits audit.ObserveCommits.
func (m *Metrics) ObserveAuditCommit(records int, took time.Duration) {
	m.auditCommit.Observe(took.Seconds())
	m.auditBatch.Observe(float64(records))
}

// CountAlert counts one alert that went out.
func (m *Metrics) CountAlert(rule, severity string) {
	m.alerts.WithLabelValues(rule, severity).Inc()
}

// venue returns the resolved series of name, creating them once.
func (m *Metrics) venue(name string) *venueSeries {
	if vs, ok := (*m.venues.Load())[name]; ok {
		return vs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.venues.Load()
	if vs, ok := cur[name]; ok {
		return vs
	}
	label := name
	if len(cur) >= maxVenues {
		// Venue names come from the configuration; this only guards
		// against a caller passing request data.
		label = otherLabel
		if vs, ok := cur[otherLabel]; ok {
			return vs
		}
	}
	vs := &venueSeries{name: label,
		overhead: m.overhead.WithLabelValues(label), upstream: m.upstream.WithLabelValues(label)}
	for si, s := range scopeLabels {
		for di, d := range decisions {
			vs.requests[si][di] = m.requests.WithLabelValues(label, s, d)
		}
	}
	rules := map[string]prometheus.Counter{}
	vs.rules.Store(&rules)
	next := make(map[string]*venueSeries, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[label] = vs
	m.venues.Store(&next)
	return vs
}

// rule returns the denial counter of rule at this venue.
func (vs *venueSeries) rule(m *Metrics, rule string) prometheus.Counter {
	if c, ok := (*vs.rules.Load())[rule]; ok {
		return c
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	cur := *vs.rules.Load()
	if c, ok := cur[rule]; ok {
		return c
	}
	label := rule
	if len(cur) >= maxRulesPerVenue || !safeLabel(rule) {
		label = ruleOverflowLabel
		if c, ok := cur[label]; ok {
			return c
		}
	}
	c := m.denials.WithLabelValues(vs.name, label)
	next := make(map[string]prometheus.Counter, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[label] = c
	vs.rules.Store(&next)
	return c
}

// safeLabel accepts the rule names keywarden uses: short, lower-case
// identifiers.
func safeLabel(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func scopeIndex(s exchange.Scope) int {
	switch s {
	case "":
		return nScopes - 2
	case exchange.ScopePublic:
		return 0
	case exchange.ScopeRead:
		return 1
	case exchange.ScopeTrade:
		return 2
	case exchange.ScopeTransfer:
		return 3
	case exchange.ScopeWithdraw:
		return 4
	case exchange.ScopeAccountAdmin:
		return 5
	}
	return nScopes - 1
}

func decisionIndex(d string) int {
	switch d {
	case "allow":
		return 0
	case "deny":
		return 1
	case "error":
		return 2
	}
	return 3
}

// stateCollector reads seal state, gateway health and rate-limit budgets
// at scrape time.
type stateCollector struct{ o Options }

var (
	descSealed = prometheus.NewDesc(NameSealed, "1 while the vault is sealed (the gateway refuses signed requests), else 0.", nil, nil)
	descAccept = prometheus.NewDesc(NameGatewayAccepts,
		"1 while the gateway accepts requests, 0 while it refuses them (panic switch, sealed vault, audit failure).", nil, nil)
	descRLUsed  = prometheus.NewDesc(NameRateLimitUsed, "Venue-reported rate-limit budget used, per exchange key.", []string{"venue", "key"}, nil)
	descRLLimit = prometheus.NewDesc(NameRateLimitLimit, "Venue-reported rate-limit budget, per exchange key.", []string{"venue", "key"}, nil)
	descRLRatio = prometheus.NewDesc(NameRateLimitRatio, "Share of the venue's rate-limit budget used, per exchange key.", []string{"venue", "key"}, nil)
	descReplay  = prometheus.NewDesc(NameReplayFull,
		"Signed requests refused with 503 because the replay memory had no room for them (it never forgets one inside its window).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSealed
	ch <- descAccept
	ch <- descRLUsed
	ch <- descRLLimit
	ch <- descRLRatio
	ch <- descReplay
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.o.Sealed != nil {
		ch <- prometheus.MustNewConstMetric(descSealed, prometheus.GaugeValue, b2f(c.o.Sealed()))
	}
	if c.o.Healthy != nil {
		ch <- prometheus.MustNewConstMetric(descAccept, prometheus.GaugeValue, b2f(c.o.Healthy() == nil))
	}
	if c.o.ReplayFull != nil {
		ch <- prometheus.MustNewConstMetric(descReplay, prometheus.CounterValue, float64(c.o.ReplayFull()))
	}
	if c.o.RateLimits == nil {
		return
	}
	rls := c.o.RateLimits()
	keys := make([]string, 0, len(rls))
	for k := range rls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rl := rls[k]
		venue, key, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRLUsed, prometheus.GaugeValue, float64(rl.Used), venue, key)
		ch <- prometheus.MustNewConstMetric(descRLLimit, prometheus.GaugeValue, float64(rl.Limit), venue, key)
		if rl.Limit > 0 {
			ch <- prometheus.MustNewConstMetric(descRLRatio, prometheus.GaugeValue, float64(rl.Used)/float64(rl.Limit), venue, key)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
