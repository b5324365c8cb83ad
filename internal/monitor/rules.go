package monitor

import (
	"math"
	"strconv"
	"time"
)

// Rules over orders and timing. They need the order's symbol, notional and
// price deviation from the gateway's observation.
const (
	RuleNotionalSurge   = "notional_surge"
	RuleNewSymbol       = "new_symbol"
	RulePriceDeviation  = "price_far_from_market"
	RuleOffHours        = "off_hours"
	maxSymbolsPerClient = 512
	hoursPerWeek        = 7 * 24
)

// orderDefaults fills the order and timing rules' zero thresholds.
func (t Thresholds) orderDefaults() Thresholds {
	if t.NotionalFactor <= 0 {
		t.NotionalFactor = 5
	}
	if t.NotionalMin <= 0 {
		t.NotionalMin = 10000
	}
	if t.SymbolLearn <= 0 {
		t.SymbolLearn = 24 * time.Hour
	}
	if t.PriceDeviation <= 0 {
		t.PriceDeviation = 0.1
	}
	if t.OffHoursLearn <= 0 {
		t.OffHoursLearn = 7 * 24 * time.Hour
	}
	if t.OffHoursMin <= 0 {
		t.OffHoursMin = 200
	}
	if t.OffHoursShare <= 0 || t.OffHoursShare >= 1 {
		t.OffHoursShare = 0.002
	}
	return t
}

// orderState is what the order and timing rules remember. m.mu guards it.
type orderState struct {
	notional map[subject]*sumRate
	symbols  map[subject]*symbolSet
	hours    map[subject]*hourHistogram
}

func newOrderState() orderState {
	return orderState{notional: map[subject]*sumRate{}, symbols: map[subject]*symbolSet{}, hours: map[subject]*hourHistogram{}}
}

// checkOrders applies the order and timing rules to e for client subject
// cs and key subject ks. m.mu is held.
func (m *Monitor) checkOrders(e Event, cs, ks subject, add func(rule string, sev Severity, subject, summary string, ev map[string]string)) {
	th := m.th
	if e.Decision == "allow" && e.Notional > 0 && !math.IsInf(e.Notional, 0) && !math.IsNaN(e.Notional) {
		for _, s := range [...]subject{cs, ks} {
			if s.id == "" {
				continue
			}
			r := lookup(m.orders.notional, s, func() *sumRate { return &sumRate{} })
			if sum, base, surge := r.add(e.Time, e.Notional, th); surge {
				add(RuleNotionalSurge, SeverityWarning, s.String(), "notional surge for "+s.kind+" "+s.String(),
					map[string]string{s.kind: s.String(), "notional": fmtFloat(sum), "interval": th.Interval.String(),
						"baseline": fmtFloat(base), "symbol": e.Symbol})
			}
		}
	}
	if e.Symbol != "" {
		set := lookup(m.orders.symbols, cs, func() *symbolSet { return &symbolSet{since: e.Time, seen: map[string]bool{}} })
		sym := safeID(e.Symbol)
		if !set.seen[sym] {
			if e.Time.Sub(set.since) >= th.SymbolLearn {
				add(RuleNewSymbol, SeverityWarning, cs.String(), "first use of symbol "+sym+" by "+cs.String(),
					map[string]string{"client": cs.id, "symbol": sym, "known_symbols": strconv.Itoa(len(set.seen)),
						"decision": e.Decision, "notional": fmtFloat(e.Notional)})
			}
			if len(set.seen) < maxSymbolsPerClient {
				set.seen[sym] = true
			}
		}
	}
	if d := e.PriceDeviation; math.Abs(d) >= th.PriceDeviation && !math.IsInf(d, 0) {
		sev := SeverityWarning
		if math.Abs(d) >= 3*th.PriceDeviation {
			sev = SeverityCritical
		}
		add(RulePriceDeviation, sev, cs.String(), "order far from the market price by "+cs.String(),
			map[string]string{"client": cs.id, "symbol": safeID(e.Symbol), "deviation_pct": strconv.FormatFloat(100*d, 'f', 1, 64),
				"decision": e.Decision, "notional": fmtFloat(e.Notional)})
	}
	if e.Decision != "" && e.Decision != "error" {
		h := lookup(m.orders.hours, cs, func() *hourHistogram { return &hourHistogram{since: e.Time} })
		if share, ok := h.share(e.Time, th); ok && share < th.OffHoursShare {
			add(RuleOffHours, SeverityWarning, cs.String(), "activity outside the usual hours of "+cs.String(),
				map[string]string{"client": cs.id, "hour_utc": e.Time.UTC().Weekday().String()[:3] + " " + strconv.Itoa(e.Time.UTC().Hour()) + ":00",
					"learned_requests": strconv.FormatUint(h.total, 10), "share_pct": strconv.FormatFloat(100*share, 'f', 2, 64)})
		}
		h.add(e.Time)
	}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// sumRate sums a value per interval and keeps an EWMA of past intervals.
type sumRate struct {
	bucket   time.Time
	sum      float64
	baseline float64
	learned  int
}

// add adds v at t and reports the interval's sum, the baseline and
// whether the interval is a surge against a warm baseline.
func (r *sumRate) add(t time.Time, v float64, th Thresholds) (float64, float64, bool) {
	b := t.Truncate(th.Interval)
	switch {
	case r.bucket.IsZero():
		r.bucket = b
	case b.After(r.bucket):
		r.fold(r.sum, th)
		gaps := int(b.Sub(r.bucket)/th.Interval) - 1
		for i := 0; i < gaps && i < maxDecayIntervals; i++ {
			r.fold(0, th)
		}
		r.bucket, r.sum = b, 0
	}
	r.sum += v
	if r.learned < th.WarmIntervals {
		return r.sum, r.baseline, false
	}
	limit := max(th.NotionalFactor*r.baseline, th.NotionalMin)
	return r.sum, r.baseline, r.sum > limit
}

func (r *sumRate) fold(v float64, th Thresholds) {
	if r.learned == 0 {
		r.baseline = v
	} else {
		r.baseline = th.Alpha*v + (1-th.Alpha)*r.baseline
	}
	r.learned++
}

// symbolSet is the symbols one client used, learned from since.
type symbolSet struct {
	since time.Time
	seen  map[string]bool
}

// hourHistogram counts a client's requests per hour of the week (UTC).
type hourHistogram struct {
	since  time.Time
	counts [hoursPerWeek]uint32
	total  uint64
}

func hourOfWeek(t time.Time) int {
	t = t.UTC()
	return int(t.Weekday())*24 + t.Hour()
}

func (h *hourHistogram) add(t time.Time) {
	i := hourOfWeek(t)
	if h.counts[i] < math.MaxUint32 {
		h.counts[i]++
		h.total++
	}
}

// share returns the share of the learned requests that fell in t's hour
// and its two neighbours; ok is false while the histogram is still being
// learned.
func (h *hourHistogram) share(t time.Time, th Thresholds) (float64, bool) {
	if t.Sub(h.since) < th.OffHoursLearn || h.total < uint64(th.OffHoursMin) {
		return 0, false
	}
	i := hourOfWeek(t)
	n := uint64(h.counts[i]) + uint64(h.counts[(i+1)%hoursPerWeek]) + uint64(h.counts[(i+hoursPerWeek-1)%hoursPerWeek])
	return float64(n) / float64(h.total), true
}
