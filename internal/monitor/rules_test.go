package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

func order(client, symbol string, notional, deviation float64) gateway.Observation {
	o := obs(client, "main", exchange.ScopeTrade, "allow", 200)
	o.Symbol, o.Notional, o.PriceDeviation = symbol, notional, deviation
	return o
}

// only returns the alerts of rule.
func only(rule string, as []Alert) []Alert {
	var out []Alert
	for _, a := range as {
		if a.Rule == rule {
			out = append(out, a)
		}
	}
	return out
}

func TestNotionalSurge(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	// Baseline: 1000 USDT a minute in ten orders, for an hour.
	for minute := 0; minute < 60; minute++ {
		for i := 0; i < 10; i++ {
			if got := only(RuleNotionalSurge, m.Record(Event{Observation: order("c1", "BTCUSDT", 100, 0)})); len(got) != 0 {
				t.Fatalf("minute %d: notional surge on the baseline: %v", minute, rules(got))
			}
			c.advance(6 * time.Second)
		}
	}
	// Then 6000 USDT orders: the second makes 12000 in one minute, above
	// both 5x the baseline and the 10000 floor; repeats are deduplicated.
	var got []Alert
	for i := 0; i < 5; i++ {
		got = append(got, only(RuleNotionalSurge, m.Record(Event{Observation: order("c1", "BTCUSDT", 6000, 0)}))...)
		c.advance(time.Second)
	}
	if d := cmp.Diff([]string{"notional_surge binance/c1", "notional_surge binance/main"}, rules(got)); d != "" {
		t.Fatalf("alerts (-want +got):\n%s", d)
	}
	if ev := got[0].Evidence; ev["notional"] != "12000.00" || ev["baseline"] != "1000.00" || ev["symbol"] != "BTCUSDT" {
		t.Errorf("evidence %v, want notional 12000.00 against baseline 1000.00 for BTCUSDT", ev)
	}
}

func TestNotionalSurgeNeedsTheFloor(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	// A tiny bot: 10 USDT a minute, then 9000 in a minute: 900x the
	// baseline but under the 10000 floor.
	for minute := 0; minute < 30; minute++ {
		m.Record(Event{Observation: order("c1", "BTCUSDT", 10, 0)})
		c.advance(time.Minute)
	}
	for i := 0; i < 9; i++ {
		if got := only(RuleNotionalSurge, m.Record(Event{Observation: order("c1", "BTCUSDT", 1000, 0)})); len(got) != 0 {
			t.Fatalf("surge below the floor: %v", rules(got))
		}
	}
	// Denied orders move no money and count for nothing.
	denied := order("c1", "BTCUSDT", 1e9, 0)
	denied.Decision = "deny"
	if got := only(RuleNotionalSurge, m.Record(Event{Observation: denied})); len(got) != 0 {
		t.Fatalf("surge from a denied order: %v", rules(got))
	}
}

func TestNewSymbol(t *testing.T) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	for _, s := range []string{"BTCUSDT", "ETHUSDT"} {
		if got := only(RuleNewSymbol, m.Record(Event{Observation: order("c1", s, 100, 0)})); len(got) != 0 {
			t.Fatalf("new symbol while learning: %v", rules(got))
		}
	}
	c.advance(25 * time.Hour)
	if got := only(RuleNewSymbol, m.Record(Event{Observation: order("c1", "ETHUSDT", 100, 0)})); len(got) != 0 {
		t.Fatalf("a known symbol raised %v", rules(got))
	}
	got := only(RuleNewSymbol, m.Record(Event{Observation: order("c1", "PEPEUSDT", 100, 0)}))
	if len(got) != 1 || got[0].Subject != "binance/c1" || got[0].Evidence["symbol"] != "PEPEUSDT" || got[0].Evidence["known_symbols"] != "2" {
		t.Fatalf("first use of PEPEUSDT after learning = %+v", got)
	}
	c.advance(time.Hour)
	if got := only(RuleNewSymbol, m.Record(Event{Observation: order("c1", "PEPEUSDT", 100, 0)})); len(got) != 0 {
		t.Fatalf("second use raised %v", rules(got))
	}
	// Another client's first days are its own learning period.
	if got := only(RuleNewSymbol, m.Record(Event{Observation: order("c2", "DOGEUSDT", 100, 0)})); len(got) != 0 {
		t.Fatalf("new client's first symbol raised %v", rules(got))
	}
}

func TestPriceDeviation(t *testing.T) {
	tests := []struct {
		name      string
		deviation float64
		want      Severity // "" for no alert
	}{
		{"at the market", 0, ""},
		{"5% above", 0.05, ""},
		{"just under 10% below", -0.0999, ""},
		{"12% above", 0.12, SeverityWarning},
		{"40% below", -0.4, SeverityCritical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t0}
			m := newMonitor(c, Options{})
			got := only(RulePriceDeviation, m.Record(Event{Observation: order("c1", "BTCUSDT", 100, tt.deviation)}))
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("deviation %v raised %v", tt.deviation, rules(got))
			case tt.want != "" && (len(got) != 1 || got[0].Severity != tt.want):
				t.Errorf("deviation %v = %+v, want one %s alert", tt.deviation, got, tt.want)
			}
		})
	}
}

// TestOffHours: a bot that trades on weekdays 09:00-17:00 UTC for two
// weeks; then a request at 03:00 on Sunday is off hours, one at noon on
// Wednesday is not, and nothing fires while the histogram is learned.
func TestOffHours(t *testing.T) {
	monday := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	c := &clock{monday}
	m := newMonitor(c, Options{})
	at := func(day, hour, minute int) time.Time {
		return monday.AddDate(0, 0, day).Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
	}
	record := func(when time.Time) []Alert {
		c.t = when
		return only(RuleOffHours, m.Record(Event{Observation: obs("c1", "main", exchange.ScopeRead, "allow", 200)}))
	}
	for day := 0; day < 14; day++ {
		if wd := at(day, 0, 0).Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for hour := 9; hour < 17; hour++ {
			for minute := 0; minute < 60; minute += 10 {
				if got := record(at(day, hour, minute)); len(got) != 0 {
					t.Fatalf("day %d %02d:%02d: off hours inside the usual hours: %v", day, hour, minute, rules(got))
				}
			}
		}
		if day == 2 {
			// Before the histogram is learned a night request is quiet.
			if got := record(at(day, 3, 0)); len(got) != 0 {
				t.Fatalf("off hours while learning: %v", rules(got))
			}
		}
	}
	if got := record(at(16, 12, 0)); len(got) != 0 { // Wednesday noon
		t.Fatalf("Wednesday noon raised %v", rules(got))
	}
	if got := record(at(16, 8, 30)); len(got) != 0 { // next to the usual hours
		t.Fatalf("08:30, next to the usual hours, raised %v", rules(got))
	}
	got := record(at(20, 3, 0)) // Sunday 03:00
	if len(got) != 1 || got[0].Subject != "binance/c1" || got[0].Evidence["hour_utc"] != "Sun 3:00" {
		t.Fatalf("Sunday 03:00 = %+v, want one off_hours alert for binance/c1", got)
	}
}

// TestOnAlertSeesAdmittedAlertsOnly: the hook gets each alert that went
// out, not the repeats the cooldown swallowed.
func TestOnAlertSeesAdmittedAlertsOnly(t *testing.T) {
	c := &clock{t0}
	var seen []string
	m := newMonitor(c, Options{OnAlert: func(a Alert) { seen = append(seen, a.Rule+" "+a.Subject) }})
	for i := 0; i < 3; i++ {
		m.Record(Event{Observation: obs("c1", "main", exchange.ScopeWithdraw, "deny", 403)})
		c.advance(time.Second)
	}
	m.Raise(Alert{Rule: RuleTest, Severity: SeverityInfo, Subject: "test"})
	if d := cmp.Diff([]string{"withdraw_attempt binance/c1", "test test"}, seen); d != "" {
		t.Errorf("OnAlert calls (-want +got):\n%s", d)
	}
}
