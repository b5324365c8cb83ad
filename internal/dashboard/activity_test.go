package dashboard

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/monitor"
)

func TestActivitySeries(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)}
	a := NewActivity(c.Now)
	obs := func(decision string, status int, lat time.Duration) {
		a.Observe(gateway.Observation{Venue: "binance", Client: "c1", Decision: decision, Status: status, Upstream: lat})
	}
	obs("allow", 200, 10*time.Millisecond)
	obs("allow", 200, 30*time.Millisecond)
	obs("deny", 403, 0)
	c.Add(2 * time.Minute) // 10:02:30
	obs("error", 502, 0)
	obs("allow", 500, 4*time.Millisecond)

	got := a.Series(4)
	want := []Point{
		{Start: time.Date(2026, 5, 1, 9, 59, 0, 0, time.UTC)},
		{Start: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Requests: 3, Denials: 1, MeanLatency: 20 * time.Millisecond, MaxLatency: 30 * time.Millisecond},
		{Start: time.Date(2026, 5, 1, 10, 1, 0, 0, time.UTC)},
		{Start: time.Date(2026, 5, 1, 10, 2, 0, 0, time.UTC), Requests: 2, Errors: 2, MeanLatency: 4 * time.Millisecond, MaxLatency: 4 * time.Millisecond},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Series(4) mismatch (-want +got):\n%s", diff)
	}
	// An hour later the ring slots are reused: old minutes read as zero.
	c.Add(time.Hour)
	obs("allow", 200, 0)
	for _, p := range a.Series(60) {
		if p.Start.Before(c.Now().Add(-time.Hour)) || (p.Requests > 0 && !p.Start.Equal(c.Now().Truncate(time.Minute))) {
			t.Errorf("stale point %+v after an hour", p)
		}
	}
}

func TestActivitySeenBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	a := NewActivity(c.Now)
	for i := range 8 {
		c.Add(time.Second)
		a.Observe(gateway.Observation{Client: "c1", SourceIP: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i))})
	}
	c.Add(time.Second)
	a.Observe(gateway.Observation{Client: "c1", SourceIP: netip.MustParseAddr("192.0.2.4")})
	var got []string
	for _, s := range a.Seen("c1") {
		got = append(got, s.Addr.String())
	}
	want := []string{"192.0.2.4", "192.0.2.7", "192.0.2.6", "192.0.2.5", "192.0.2.3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Seen mismatch (-want +got):\n%s", diff)
	}
	for i := range maxClientsSeen + 10 {
		a.Observe(gateway.Observation{Client: fmt.Sprint("x", i), SourceIP: netip.MustParseAddr("192.0.2.1")})
	}
	a.mu.Lock()
	n := len(a.seen)
	a.mu.Unlock()
	if n != maxClientsSeen {
		t.Errorf("%d clients remembered, want the bound %d", n, maxClientsSeen)
	}
}

func TestActivityAlerts(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	a := NewActivity(c.Now)
	// The monitor, with its hook feeding the activity, behind the observer.
	mon := monitor.New(monitor.Options{Now: c.Now, OnAlert: a.Alert, MaxPerMinute: 1000})
	obs := a.Observer(mon.Observe)
	obs(gateway.Observation{Venue: "binance", Client: "a", Decision: "allow", Scope: "read"})
	for i := range maxAlerts + 5 {
		obs(gateway.Observation{Venue: "binance", Client: fmt.Sprint("c", i), Decision: "deny", Scope: exchange.ScopeWithdraw})
	}
	list := a.Alerts()
	if len(list) != maxAlerts || list[0].Rule != monitor.RuleWithdraw || !strings.Contains(list[0].Subject, fmt.Sprint("c", maxAlerts+4)) {
		t.Fatalf("%d alerts, newest %+v; want %d, newest a withdraw attempt of c%d", len(list), list[0].Alert, maxAlerts, maxAlerts+4)
	}
	if !a.CloseAlert(list[0].ID, "root") || a.CloseAlert(list[0].ID, "root") {
		t.Error("CloseAlert: want true once, then false")
	}
	if got := a.Alerts()[0]; got.ClosedBy != "root" || got.Closed.IsZero() {
		t.Errorf("closed alert = %+v", got)
	}
	if a.Series(1)[0].Requests != maxAlerts+6 {
		t.Errorf("observer did not count every request: %d", a.Series(1)[0].Requests)
	}
}

func TestBarChart(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s := []Point{{Start: base, Requests: 0}, {Start: base.Add(time.Minute), Requests: 5}, {Start: base.Add(2 * time.Minute), Requests: 10}}
	c := barChart("Requests", "req", s, func(p Point) float64 { return float64(p.Requests) }, fmtCount)
	var heights []string
	for _, b := range c.Bars {
		heights = append(heights, b.H)
	}
	// The tallest bar fills the plot below the scale label.
	want := []string{"0.0", num(float64(chartHeight-chartTop) / 2), num(float64(chartHeight - chartTop))}
	if diff := cmp.Diff(want, heights); diff != "" {
		t.Errorf("bar heights mismatch (-want +got):\n%s", diff)
	}
	if c.Max != "10" || !strings.Contains(c.Summary, "now 10, peak 10") {
		t.Errorf("chart max %q summary %q", c.Max, c.Summary)
	}
	if c.Bars[2].Label != "10:02 UTC: 10" {
		t.Errorf("bar label %q", c.Bars[2].Label)
	}
}

func TestDiffLines(t *testing.T) {
	got := diffLines([]string{"a", "b", "c", "d"}, []string{"a", "c", "x", "d", "e"})
	want := []diffLine{{"=", "a"}, {"-", "b"}, {"=", "c"}, {"+", "x"}, {"=", "d"}, {"+", "e"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffLines mismatch (-want +got):\n%s", diff)
	}
}

// TestActivityNotionalPerKey: allowed orders add their notional to their
// key's minute; denials and calls without an order do not; the live panel
// gets one chart per key.
func TestActivityNotionalPerKey(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)}
	a := NewActivity(c.Now)
	for _, o := range []gateway.Observation{
		{Venue: "binance", Key: "main", Decision: "allow", Status: 200, Notional: 1500},
		{Venue: "binance", Key: "main", Decision: "allow", Status: 200, Notional: 500},
		{Venue: "binance", Key: "main", Decision: "deny", Status: 403, Notional: 1e9},
		{Venue: "okx", Key: "bot", Decision: "allow", Status: 200, Notional: 42.5},
		{Venue: "okx", Key: "bot", Decision: "allow", Status: 200},
	} {
		a.Observe(o)
	}
	c.Add(time.Minute)
	a.Observe(gateway.Observation{Venue: "okx", Key: "bot", Decision: "allow", Status: 200, Notional: 10})
	s := a.Series(2)
	want := []map[string]float64{{"binance/main": 2000, "okx/bot": 42.5}, {"okx/bot": 10}}
	if diff := cmp.Diff(want, []map[string]float64{s[0].Notional, s[1].Notional}); diff != "" {
		t.Errorf("notional per key (-want +got):\n%s", diff)
	}
	h := &Handler{o: Options{Activity: a}}
	d := h.liveData()
	var titles []string
	for _, ch := range d.Notional {
		titles = append(titles, ch.Title)
	}
	if diff := cmp.Diff([]string{"Notional allowed per minute, binance/main", "Notional allowed per minute, okx/bot"}, titles); diff != "" {
		t.Errorf("notional charts (-want +got):\n%s", diff)
	}
}
