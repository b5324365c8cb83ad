package posture

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/monitor"
)

// RuleChange is the monitor rule of posture alerts.
const RuleChange = "posture_change"

// ScheduleOptions configure a Scheduler.
type ScheduleOptions struct {
	// Interval is the time between runs; it must be positive.
	Interval time.Duration
	// Check runs one posture check of the configured keys.
	Check func(ctx context.Context) (Run, error)
	// History keeps the runs; each run is compared with the one before.
	History *History
	// Alert raises an alert (monitor.Monitor.Raise).
	Alert  func(monitor.Alert) bool
	Logger *slog.Logger
	Now    func() time.Time
}

// Scheduler runs posture checks at an interval, keeps their findings and
// alerts on what changed since the previous run: a new or worsened finding
// raises a warning (critical when the finding is high or critical), a
// resolved or improved one an info alert. Runs never overlap.
type Scheduler struct {
	o  ScheduleOptions
	mu sync.Mutex // one run at a time
}

// NewScheduler returns a Scheduler.
func NewScheduler(o ScheduleOptions) (*Scheduler, error) {
	if o.Interval <= 0 || o.Check == nil || o.History == nil || o.Alert == nil {
		return nil, fmt.Errorf("posture schedule: interval, check, history and alert are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Scheduler{o: o}, nil
}

// RunOnce runs one check, stores it, and alerts on the changes from the
// stored run before it (on the first run, every finding is new). It
// returns the changes.
func (s *Scheduler) RunOnce(ctx context.Context) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run, err := s.o.Check(ctx)
	if err != nil {
		return nil, fmt.Errorf("posture check: %w", err)
	}
	if run.Time.IsZero() {
		run.Time = s.o.Now().UTC()
	}
	prev, _, err := s.o.History.Latest(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.o.History.Add(ctx, run); err != nil {
		return nil, err
	}
	changes := Compare(prev, run)
	for _, a := range Alerts(changes, run.Time) {
		s.o.Alert(a)
	}
	s.o.Logger.Info("posture check", "keys", len(run.Keys), "findings", len(run.Findings), "changes", len(changes))
	return changes, nil
}

// Run runs a check at once and then every Interval until ctx ends.
// Failed runs are logged and retried at the next tick.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Error("posture check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Alerts turns changes into one alert per key: its severity is that of the
// worst change (critical for a new or worsened high or critical finding,
// warning for another new or worsened one, info when findings only went
// away or eased).
func Alerts(changes []Change, at time.Time) []monitor.Alert {
	var out []monitor.Alert
	var cur *monitor.Alert
	var lines []string
	flush := func() {
		if cur != nil {
			cur.Evidence["changes"] = strings.Join(lines, "; ")
			out = append(out, *cur)
		}
		cur, lines = nil, nil
	}
	for _, c := range changes {
		if cur == nil || cur.Subject != c.Finding.Key {
			flush()
			cur = &monitor.Alert{Rule: RuleChange, Severity: monitor.SeverityInfo, Subject: c.Finding.Key, Time: at,
				Evidence: map[string]string{"key": c.Finding.Key}}
		}
		sev := monitor.SeverityInfo
		if c.Kind == ChangeNew || c.Kind == ChangeWorsened {
			sev = monitor.SeverityWarning
			if c.Finding.Severity >= High {
				sev = monitor.SeverityCritical
			}
		}
		if rank(sev) > rank(cur.Severity) {
			cur.Severity = sev
		}
		line := fmt.Sprintf("%s %s (%s)", c.Kind, c.Finding.Code, c.Finding.Severity)
		if c.Before != nil && c.Kind != ChangeResolved {
			line = fmt.Sprintf("%s %s (%s -> %s)", c.Kind, c.Finding.Code, *c.Before, c.Finding.Severity)
		}
		lines = append(lines, line)
		if cur.Summary == "" {
			cur.Summary = "posture of " + c.Finding.Key + ": " + line
		} else if !strings.HasSuffix(cur.Summary, " and more") {
			cur.Summary += " and more"
		}
	}
	flush()
	return out
}

func rank(s monitor.Severity) int {
	switch s {
	case monitor.SeverityCritical:
		return 2
	case monitor.SeverityWarning:
		return 1
	}
	return 0
}
