package monitor

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// clock is an injected clock the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) advance(d time.Duration)      { c.t = c.t.Add(d) }
func newMonitor(c *clock, o Options) *Monitor { o.Now = c.now; return New(o) }

func obs(client, key string, scope exchange.Scope, decision string, status int) gateway.Observation {
	return gateway.Observation{Venue: "binance", Client: client, Key: key, Scope: scope, Decision: decision, Status: status}
}

func rules(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Rule+" "+a.Subject)
	}
	return out
}

func TestSingleEventRules(t *testing.T) {
	tests := []struct {
		name string
		ev   gateway.Observation
		want []string
	}{
		{"ordinary trade", obs("c1", "main", exchange.ScopeTrade, "allow", 200), nil},
		{"withdraw denied", obs("c1", "main", exchange.ScopeWithdraw, "deny", 403), []string{"withdraw_attempt binance/c1"}},
		{"withdraw allowed", obs("c1", "main", exchange.ScopeWithdraw, "allow", 200), []string{"withdraw_attempt binance/c1"}},
		{"venue 401", obs("c1", "main", exchange.ScopeRead, "allow", 401), []string{"venue_key_rejected binance/main"}},
		{"venue 403", obs("c1", "main", exchange.ScopeTrade, "allow", 403), []string{"venue_key_rejected binance/main"}},
		{"keywarden 401 once", obs("c1", "main", exchange.ScopeRead, "error", 401), nil},
		{"policy denial once", obs("c1", "main", exchange.ScopeTrade, "deny", 403), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t0}
			m := newMonitor(c, Options{})
			got := rules(m.Record(Event{Observation: tt.ev}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Record(%+v) alerts (-want +got):\n%s", tt.ev, diff)
			}
		})
	}
}

func TestVenueRejectionIsCriticalWithEvidence(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	got := m.Record(Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 401)})
	want := []Alert{{Rule: RuleVenueAuth, Severity: SeverityCritical, Subject: "binance/main",
		Summary:  "venue refused exchange key binance/main (revoked or expired at the venue?)",
		Evidence: map[string]string{"key": "main", "client": "c1", "status": "401", "venue": "binance"}, Time: t0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Record(venue 401) (-want +got):\n%s", diff)
	}
}

func TestBursts(t *testing.T) {
	tests := []struct {
		name      string
		ev        Event
		threshold int
		rule      string
		subject   string
	}{
		{"stolen credential tries", Event{Observation: gateway.Observation{Venue: "binance", Decision: "error", Status: 401}, Claimed: "stolen"},
			5, RuleAuthFailures, "binance/stolen"},
		{"ip refusals of a known client", Event{Observation: obs("c1", "main", "", "error", 403)}, 5, RuleAuthFailures, "binance/c1"},
		{"policy denials", Event{Observation: obs("c1", "main", exchange.ScopeTrade, "deny", 403)}, 10, RuleDenialBurst, "binance/c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t0}
			m := newMonitor(c, Options{})
			for i := 1; i < tt.threshold; i++ {
				if got := m.Record(tt.ev); len(got) != 0 {
					t.Fatalf("Record #%d = %v, want no alert below the threshold", i, rules(got))
				}
				c.advance(time.Second)
			}
			got := m.Record(tt.ev)
			if len(got) != 1 || got[0].Rule != tt.rule || got[0].Subject != tt.subject {
				t.Fatalf("Record #%d = %v, want %s %s", tt.threshold, rules(got), tt.rule, tt.subject)
			}
		})
	}
}

func TestSlowFailuresAreNoBurst(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	ev := Event{Observation: gateway.Observation{Venue: "binance", Decision: "error", Status: 401}, Claimed: "x"}
	for i := 0; i < 50; i++ {
		if got := m.Record(ev); len(got) != 0 {
			t.Fatalf("Record #%d (one failure per 15s) = %v, want none", i, rules(got))
		}
		c.advance(15 * time.Second)
	}
}

func TestRateSurge(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	ev := Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 200)}
	// Ten minutes of a steady 10 requests a minute teach the baseline.
	for minute := 0; minute < 10; minute++ {
		for i := 0; i < 10; i++ {
			if got := m.Record(ev); len(got) != 0 {
				t.Fatalf("steady traffic minute %d: Record = %v, want none", minute, rules(got))
			}
			c.advance(time.Second)
		}
		c.advance(50 * time.Second)
	}
	// A surge is more than max(5 x baseline 10, 30) = 50 requests in a minute.
	var got []Alert
	for i := 0; i < 60 && len(got) == 0; i++ {
		got = m.Record(ev)
		if i < 50 && len(got) != 0 {
			t.Fatalf("request %d of the surge minute raised %v, want none until past 5x baseline", i+1, rules(got))
		}
	}
	want := []string{"rate_surge binance/c1", "rate_surge binance/main"}
	if diff := cmp.Diff(want, rules(got)); diff != "" {
		t.Fatalf("surge alerts (-want +got):\n%s", diff)
	}
	if got[0].Evidence["requests"] != "51" || got[0].Evidence["baseline"] != "10.0" {
		t.Errorf("surge evidence = %v, want 51 requests over baseline 10.0", got[0].Evidence)
	}
}

func TestRateSurgeNeedsWarmBaseline(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	ev := Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 200)}
	// A brand-new client bursting at once is not compared to anything.
	for i := 0; i < 500; i++ {
		if got := m.Record(ev); len(got) != 0 {
			t.Fatalf("Record #%d of a new client = %v, want none before the baseline is warm", i, rules(got))
		}
	}
}

func TestRateBaselineDecaysOverIdleTime(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{Thresholds: Thresholds{SurgeMin: 1}})
	ev := Event{Observation: obs("c1", "", exchange.ScopeRead, "allow", 200)}
	for minute := 0; minute < 6; minute++ {
		for i := 0; i < 20; i++ {
			m.Record(ev)
		}
		c.advance(time.Minute)
	}
	// After a long quiet spell the baseline is near zero: 20 is a surge.
	c.advance(2 * time.Hour)
	var got []Alert
	for i := 0; i < 20 && len(got) == 0; i++ {
		got = m.Record(ev)
	}
	if diff := cmp.Diff([]string{"rate_surge binance/c1"}, rules(got)); diff != "" {
		t.Errorf("alerts after idle (-want +got):\n%s", diff)
	}
}

func TestErrorRate(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	ok := Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 200)}
	bad := Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 502)}
	for i := 0; i < 15; i++ {
		m.Record(ok)
	}
	var got []Alert
	for i := 0; i < 15 && len(got) == 0; i++ {
		got = m.Record(bad)
	}
	// 15 ok then 15 errors: the rate reaches 50% at 30 requests.
	if diff := cmp.Diff([]string{"error_rate binance"}, rules(got)); diff != "" {
		t.Fatalf("error-rate alerts (-want +got):\n%s", diff)
	}
	if got[0].Evidence["requests"] != "30" || got[0].Evidence["errors"] != "15" {
		t.Errorf("evidence = %v, want 15 errors of 30", got[0].Evidence)
	}
	// Mostly healthy traffic with a few errors is fine.
	c.advance(time.Hour)
	m2 := newMonitor(c, Options{})
	for i := 0; i < 100; i++ {
		e := ok
		if i%10 == 0 {
			e = bad
		}
		if got := m2.Record(e); len(got) != 0 {
			t.Fatalf("10%% errors: Record #%d = %v, want none", i, rules(got))
		}
	}
}

func TestNewSourceIP(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	ev := func(ip string) Event {
		return Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 200), SourceIP: netip.MustParseAddr(ip)}
	}
	if got := m.Record(ev("10.0.0.1")); len(got) != 0 {
		t.Fatalf("first address = %v, want none (learning)", rules(got))
	}
	if got := m.Record(ev("10.0.0.1")); len(got) != 0 {
		t.Fatalf("known address = %v, want none", rules(got))
	}
	if got := m.Record(ev("::ffff:10.0.0.1")); len(got) != 0 {
		t.Fatalf("known address in IPv4-mapped form = %v, want none", rules(got))
	}
	got := m.Record(ev("203.0.113.9"))
	if diff := cmp.Diff([]string{"new_source_ip binance/c1"}, rules(got)); diff != "" {
		t.Fatalf("new address (-want +got):\n%s", diff)
	}
	if got[0].Evidence["source_ip"] != "203.0.113.9" {
		t.Errorf("evidence = %v, want source_ip 203.0.113.9", got[0].Evidence)
	}
}

func TestDedupAndRateLimit(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{Cooldown: 10 * time.Minute, MaxPerMinute: 3})
	w := func(client string) Event {
		return Event{Observation: obs(client, "main", exchange.ScopeWithdraw, "deny", 403)}
	}
	if got := m.Record(w("a")); len(got) != 1 {
		t.Fatalf("first withdraw = %v, want one alert", rules(got))
	}
	c.advance(5 * time.Minute)
	if got := m.Record(w("a")); len(got) != 0 {
		t.Fatalf("repeat within cooldown = %v, want none", rules(got))
	}
	c.advance(6 * time.Minute)
	if got := m.Record(w("a")); len(got) != 1 {
		t.Fatalf("repeat after cooldown = %v, want one", rules(got))
	}
	// Rate limit: after a refill, 3 alerts pass, the rest are counted.
	c.advance(time.Hour)
	var passed int
	for _, cl := range []string{"b", "c", "d", "e", "f"} {
		passed += len(m.Record(w(cl)))
	}
	if passed != 3 {
		t.Fatalf("alerts passed in one burst = %d, want 3", passed)
	}
	c.advance(time.Minute)
	got := m.Record(w("g"))
	if len(got) != 1 || got[0].Evidence["suppressed_alerts"] != "2" {
		t.Fatalf("next alert = %+v, want one carrying suppressed_alerts 2", got)
	}
}

type recorder struct {
	mu  sync.Mutex
	as  []Alert
	err error
}

func (r *recorder) Notify(ctx context.Context, a Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.as = append(r.as, a)
	return r.err
}

// stuck is a notifier whose service never answers.
type stuck struct{ calls int }

func (s *stuck) Notify(ctx context.Context, a Alert) error {
	s.calls++
	<-ctx.Done()
	return ctx.Err()
}

func TestRunDeliversToNotifiers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		failing := &recorder{err: errors.New("service down")}
		slow := &stuck{}
		ok := &recorder{}
		m := New(Options{Notifiers: []Notifier{failing, slow, ok}, NotifyTimeout: 30 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		go m.Run(ctx)
		m.Observe(obs("c1", "main", exchange.ScopeWithdraw, "deny", 403))
		if !m.Raise(Alert{Rule: RuleTest, Severity: SeverityInfo, Subject: "test", Summary: "test alert"}) {
			t.Fatal("Raise(test) = false, want true")
		}
		// Each alert waits out the stuck notifier's timeout, and neither a
		// failing nor a stuck notifier keeps the alert from the others.
		time.Sleep(61 * time.Second)
		synctest.Wait()
		for _, r := range []*recorder{failing, ok} {
			if diff := cmp.Diff([]string{"withdraw_attempt binance/c1", "test test"}, rules(r.as)); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			if !r.as[0].Time.Equal(start) {
				t.Errorf("alert time = %v, want the clock's %v", r.as[0].Time, start)
			}
		}
		if slow.calls != 2 {
			t.Errorf("stuck notifier calls = %d, want 2", slow.calls)
		}
		cancel()
		synctest.Wait()
	})
}

func TestAuthFailuresSpreadOverIDs(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	var got []string
	// 20 guesses, each with a fresh id: no id reaches 5, the venue does.
	for i := range 20 {
		ev := Event{Observation: gateway.Observation{Venue: "binance", Decision: "error", Status: 401},
			Claimed: "guess\n" + strconv.Itoa(i) + strings.Repeat("x", 100)}
		got = append(got, rules(m.Record(ev))...)
		c.advance(time.Second)
	}
	if diff := cmp.Diff([]string{"auth_failures binance"}, got); diff != "" {
		t.Fatalf("alerts (-want +got):\n%s", diff)
	}
}

func TestSafeID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"kwABC-1_2.3", "kwABC-1_2.3"},
		{"a\nb c\x1b", "a_b_c_"},
		{strings.Repeat("z", 100), strings.Repeat("z", 64)},
	}
	for _, tt := range tests {
		if got := safeID(tt.in); got != tt.want {
			t.Errorf("safeID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
