package incident

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// TestPostMortemReport: the draft lists the incident's subjects, timeline,
// checklist and the calls of its subjects within its window, in Markdown
// and in HTML, with hostile text escaped.
func TestPostMortemReport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := t0
	l, err := audit.Open(audit.Options{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	call := func(when time.Time, client, decision string) {
		now = when
		typ := audit.TypeIntent
		if decision == audit.DecisionDeny {
			typ = audit.TypeDenied
		}
		if _, err := l.Append(ctx, audit.Record{Type: typ, RequestID: "r", Intent: &audit.Intent{Client: client, Key: "main", Venue: "binance",
			Call: exchange.Call{Endpoint: "POST /sapi/v1/capital/withdraw/apply"}, Decision: decision}}); err != nil {
			t.Fatal(err)
		}
	}
	call(t0.Add(-3*time.Hour), "c1", audit.DecisionDeny) // before the window
	call(t0.Add(-5*time.Minute), "c1", audit.DecisionDeny)
	call(t0.Add(1*time.Minute), "c1", audit.DecisionDeny)
	call(t0.Add(2*time.Minute), "other", audit.DecisionAllow) // not a subject
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	in, err := m.RecordAlert(ctx, alert(c, monitor.RuleWithdraw, monitor.SeverityCritical, "binance/c1"))
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	if in, err = m.Note(ctx, in.ID, "alice", "pipe | and <script>alert(1)</script>"); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	if in, err = m.Check(ctx, in.ID, 1, "bob"); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	if in, err = m.Close(ctx, in.ID, "alice", "contained"); err != nil {
		t.Fatal(err)
	}
	calls, err := Calls(dir, in, 0, 0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []CallSummary{{Subject: "binance/c1", Decision: "deny", Endpoint: "POST /sapi/v1/capital/withdraw/apply", Count: 2,
		First: t0.Add(-5 * time.Minute), Last: t0.Add(time.Minute)}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("Calls() (-want +got):\n%s", diff)
	}
	var md bytes.Buffer
	if err := WriteReport(&md, in, calls, "md", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# Post-mortem (draft): ", "| Incident | " + in.ID + " |", "- binance/c1", "| binance/c1 | deny | POST /sapi/v1/capital/withdraw/apply | 2 |",
		`pipe \| and &lt;script&gt;`, "- [x] **", "— bob, ", "contained", "## Root cause"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("markdown report lacks %q:\n%s", w, md.String())
		}
	}
	var html bytes.Buffer
	if err := WriteReport(&html, in, calls, "html", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<script>") || !strings.Contains(html.String(), "&lt;script&gt;") {
		t.Errorf("html report does not escape the note:\n%s", html.String())
	}
	if err := WriteReport(&html, in, calls, "pdf", t0); err == nil {
		t.Errorf("WriteReport(pdf) = nil error")
	}
}
