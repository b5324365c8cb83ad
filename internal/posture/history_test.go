package posture

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/store/memory"
)

func f(key, code string, sev Severity) Finding {
	return Finding{Key: key, Code: code, Severity: sev, Message: code}
}

func sevp(s Severity) *Severity { return &s }

func TestCompare(t *testing.T) {
	keys := []string{"a/1", "b/2"}
	tests := []struct {
		name      string
		prev, cur []Finding
		curKeys   []string
		want      []Change
	}{
		{"nothing", nil, nil, keys, nil},
		{"same", []Finding{f("a/1", CodeNoIP, High)}, []Finding{f("a/1", CodeNoIP, High)}, keys, nil},
		{"new", nil, []Finding{f("a/1", CodeWithdraw, Critical)}, keys,
			[]Change{{Kind: ChangeNew, Finding: f("a/1", CodeWithdraw, Critical)}}},
		{"worsened and improved", []Finding{f("a/1", CodeAge, Low), f("b/2", CodeUnused, Medium)},
			[]Finding{f("a/1", CodeAge, High), f("b/2", CodeUnused, Low)}, keys,
			[]Change{{Kind: ChangeWorsened, Finding: f("a/1", CodeAge, High), Before: sevp(Low)},
				{Kind: ChangeImproved, Finding: f("b/2", CodeUnused, Low), Before: sevp(Medium)}}},
		{"resolved", []Finding{f("b/2", CodeNoIP, High)}, nil, keys,
			[]Change{{Kind: ChangeResolved, Finding: f("b/2", CodeNoIP, High), Before: sevp(High)}}},
		{"key no longer checked", []Finding{f("b/2", CodeNoIP, High)}, nil, []string{"a/1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(Run{Keys: keys, Findings: tt.prev}, Run{Keys: tt.curKeys, Findings: tt.cur})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compare (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistoryKeepsNewest(t *testing.T) {
	ctx := context.Background()
	h := NewHistory(memory.New(), 3)
	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r := Run{Time: t0.Add(time.Duration(i) * time.Hour), Keys: []string{"a/1"}, Findings: []Finding{f("a/1", CodeAge, Severity(i%5))}}
		if err := h.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := h.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for _, r := range runs {
		times = append(times, r.Time)
	}
	want := []time.Time{t0.Add(4 * time.Hour), t0.Add(3 * time.Hour), t0.Add(2 * time.Hour)}
	if diff := cmp.Diff(want, times); diff != "" {
		t.Errorf("Runs times (-want +got):\n%s", diff)
	}
	if one, _ := h.Runs(ctx, 1); len(one) != 1 || !one[0].Time.Equal(want[0]) {
		t.Errorf("Runs(1) = %v, want the newest", one)
	}
	snaps, err := h.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || !snaps[0].Time.Equal(want[2]) || snaps[2].Counts["critical"] != 1 {
		t.Errorf("Snapshots = %+v, want 3 oldest first, the last with one critical", snaps)
	}
}

func TestSchedulerAlertsOnChanges(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	keys := []string{"binance/main", "okx/spot"}
	script := []Run{
		{Time: t0, Keys: keys, Findings: []Finding{f("okx/spot", CodeNoIP, High)}},
		{Time: t0.Add(6 * time.Hour), Keys: keys, Findings: []Finding{f("okx/spot", CodeNoIP, High)}},
		{Time: t0.Add(12 * time.Hour), Keys: keys, Findings: []Finding{f("binance/main", CodeWithdraw, Critical), f("binance/main", CodeAge, Low)}},
	}
	i := 0
	var alerts []monitor.Alert
	h := NewHistory(memory.New(), 0)
	s, err := NewScheduler(ScheduleOptions{Interval: 6 * time.Hour, History: h,
		Check: func(context.Context) (Run, error) {
			if i >= len(script) {
				return Run{}, errors.New("venue down")
			}
			i++
			return script[i-1], nil
		},
		Alert: func(a monitor.Alert) bool { alerts = append(alerts, a); return true }})
	if err != nil {
		t.Fatal(err)
	}
	type alert struct {
		Severity monitor.Severity
		Subject  string
		Changes  string
	}
	summarize := func() []alert {
		var out []alert
		for _, a := range alerts {
			if a.Rule != RuleChange {
				t.Errorf("alert rule = %q, want %q", a.Rule, RuleChange)
			}
			out = append(out, alert{a.Severity, a.Subject, a.Evidence["changes"]})
		}
		alerts = nil
		return out
	}
	steps := []struct {
		name string
		want []alert
	}{
		{"first run: every finding is new", []alert{{monitor.SeverityCritical, "okx/spot", "new no-ip-restriction (high)"}}},
		{"nothing changed", nil},
		{"new critical, new low, one resolved", []alert{
			{monitor.SeverityCritical, "binance/main", "new key-age (low); new withdraw-undeclared (critical)"},
			{monitor.SeverityInfo, "okx/spot", "resolved no-ip-restriction (high)"},
		}},
	}
	for _, st := range steps {
		if _, err := s.RunOnce(ctx); err != nil {
			t.Fatalf("%s: RunOnce = %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, summarize()); diff != "" {
			t.Errorf("%s: alerts (-want +got):\n%s", st.name, diff)
		}
	}
	// A failed check stores nothing and alerts nothing.
	if _, err := s.RunOnce(ctx); err == nil {
		t.Errorf("RunOnce with a failing check = nil, want an error")
	}
	if runs, _ := h.Runs(ctx, 0); len(runs) != 3 {
		t.Errorf("stored runs = %d, want 3", len(runs))
	}
	if len(alerts) != 0 {
		t.Errorf("alerts after a failed check = %v", alerts)
	}
}
