// Package incident keeps keywarden's incident records. An incident opens on
// a critical monitor alert or on a panic (the panic switch, from the CLI,
// the admin API or an automatic response), and holds a timeline (alerts,
// panics, automatic responses, resumptions, operator notes), a checklist of
// the response playbook's phases (detect, contain, eradicate, recover,
// post-mortem) and, once closed, a summary. Export writes an evidence
// bundle for an incident (see export.go).
//
// Incidents are stored as JSON records under "incidents/" in the store
// (they hold names, counts and operator text, never secrets). Panics are
// learned from the audit log: the Manager is an audit.Sink, so every panic
// recorded there opens or joins an incident exactly once, whoever caused it.
//
// A Manager is safe for concurrent use. Alert never blocks: alerts queue
// for Run, which records them and runs the automatic response.
package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/store"
)

// Store is where incidents are kept; store.Store implements it.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error) // store.ErrNotFound
	Put(ctx context.Context, key string, val []byte) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// ErrNotFound is returned for an unknown incident id.
var ErrNotFound = errors.New("incident not found")

// ErrClosed is returned when changing a closed incident.
var ErrClosed = errors.New("incident is closed")

// ErrConflict is returned when an incident changed between a read and the
// write that followed it; the Manager retries such edits (up to
// maxAttempts times) before returning it.
var ErrConflict = errors.New("incident changed concurrently")

// maxAttempts bounds the retries of one edit on ErrConflict.
const maxAttempts = 50

// Status of an incident.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Timeline entry kinds.
const (
	KindOpened   = "opened"
	KindAlert    = "alert"
	KindPanic    = "panic"
	KindResponse = "response"
	KindResume   = "resume"
	KindNote     = "note"
	KindCheck    = "check"
	KindClosed   = "closed"
	// KindVenue is a panic's action at a venue (orders cancelled, key
	// deleted, or why not).
	KindVenue = "venue"
)

// Entry is one line of an incident's timeline.
type Entry struct {
	Time     time.Time         `json:"time"`
	Kind     string            `json:"kind"`
	Actor    string            `json:"actor,omitempty"`
	Text     string            `json:"text"`
	Rule     string            `json:"rule,omitempty"`
	Severity string            `json:"severity,omitempty"`
	Subject  string            `json:"subject,omitempty"`
	Evidence map[string]string `json:"evidence,omitempty"`
	// AuditSeq is the audit record the entry came from, if any.
	AuditSeq uint64 `json:"audit_seq,omitempty"`
}

// Item is one checklist step of a playbook phase.
type Item struct {
	Phase string    `json:"phase"`
	Text  string    `json:"text"`
	Done  bool      `json:"done"`
	By    string    `json:"by,omitempty"`
	At    time.Time `json:"at,omitzero"`
}

// Incident is one incident record.
type Incident struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Severity  string    `json:"severity"`
	Status    string    `json:"status"`
	Opened    time.Time `json:"opened"`
	Closed    time.Time `json:"closed,omitzero"`
	Subjects  []string  `json:"subjects,omitempty"`
	Timeline  []Entry   `json:"timeline"`
	Checklist []Item    `json:"checklist"`
	Summary   string    `json:"summary,omitempty"`
	// Version counts the record's writes. A write succeeds only over the
	// version it read (compare-and-swap), so replicas sharing a store
	// never lose each other's edits.
	Version uint64 `json:"version"`
}

// LastActivity is the time of the newest timeline entry.
func (in *Incident) LastActivity() time.Time {
	if n := len(in.Timeline); n > 0 {
		return in.Timeline[n-1].Time
	}
	return in.Opened
}

// playbook is the checklist every incident starts with.
func playbook() []Item {
	return []Item{
		{Phase: "detect", Text: "confirm the trigger is real: read the alerts and the audit records of the window"},
		{Phase: "detect", Text: "name the affected clients, exchange keys and venues"},
		{Phase: "contain", Text: "suspend the affected credentials (keywarden panic) and confirm requests are refused"},
		{Phase: "contain", Text: "check open orders and positions at the venue; cancel what the attacker placed"},
		{Phase: "eradicate", Text: "rotate or delete the affected exchange keys at the venue"},
		{Phase: "eradicate", Text: "find and close how the credential leaked (bot host, config, dependency)"},
		{Phase: "recover", Text: "issue new client credentials and resume the gateway"},
		{Phase: "recover", Text: "watch the affected clients for a day"},
		{Phase: "post-mortem", Text: "export the evidence bundle (keywarden incident export)"},
		{Phase: "post-mortem", Text: "write the post-mortem: timeline, impact, causes, follow-ups"},
	}
}

// Responder runs the automatic response to a critical alert and describes
// what it did; an empty description means it did nothing.
type Responder func(ctx context.Context, a monitor.Alert) (string, error)

// Options configure a Manager.
type Options struct {
	Store  Store
	Now    func() time.Time
	Logger *slog.Logger
	// Merge is how long after an open incident's last activity a new
	// critical alert or panic joins it instead of opening another
	// (default 1h). Warnings join an open incident within Merge and are
	// dropped otherwise (they stay in the alert channels and the logs).
	Merge time.Duration
	// Respond, when set, runs for every critical alert (after it is
	// recorded); its result is added to the timeline.
	Respond Responder
	// Since: audit panics recorded before it are history and open nothing
	// (default: when New ran, less a minute).
	Since time.Time
	// Queue bounds alerts waiting for Run (default 256).
	Queue int
	// OnPanic, when set, is told of every panic recorded from the audit
	// log, once, after it joined or opened its incident, with the audit
	// event's kind ("panic", "admin.gateway.stop", ...): keywarden serve
	// writes the panic's signed evidence snapshot from it, and runs the
	// venue actions an admin API stop asked for. It must not block: Send
	// waits for it.
	OnPanic func(in Incident, panic Entry, event string)
}

// Manager records incidents. Create it with New.
type Manager struct {
	st      Store
	now     func() time.Time
	log     *slog.Logger
	merge   time.Duration
	respond Responder
	since   time.Time
	onPanic func(Incident, Entry, string)
	queue   chan monitor.Alert
	mu      sync.Mutex // serialises read-modify-write of records
}

const prefix = "incidents/"

// New returns a Manager. Call Run to process alerts.
func New(o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Merge <= 0 {
		o.Merge = time.Hour
	}
	if o.Since.IsZero() {
		o.Since = o.Now().Add(-time.Minute)
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	return &Manager{st: o.Store, now: o.Now, log: o.Logger, merge: o.Merge, respond: o.Respond, since: o.Since,
		onPanic: o.OnPanic, queue: make(chan monitor.Alert, o.Queue)}
}

// Alert queues a monitor alert for Run; it fits monitor.Options.OnAlert
// and never blocks.
func (m *Manager) Alert(a monitor.Alert) {
	if a.Severity != monitor.SeverityCritical && a.Severity != monitor.SeverityWarning {
		return
	}
	select {
	case m.queue <- a:
	default:
		m.log.Error("incident queue full: alert not recorded in an incident", "rule", a.Rule, "subject", a.Subject)
	}
}

// Run records queued alerts until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-m.queue:
			if _, err := m.RecordAlert(ctx, a); err != nil {
				m.log.Error("incident: alert not recorded", "rule", a.Rule, "subject", a.Subject, "err", err)
			}
		}
	}
}

// RecordAlert adds a to an incident: a critical alert opens one unless a
// recent one is open, a warning joins a recent open incident only. Then,
// for a critical alert, it runs the automatic response and records its
// result. It returns the incident, or nil when the alert joined none.
func (m *Manager) RecordAlert(ctx context.Context, a monitor.Alert) (*Incident, error) {
	e := Entry{Time: a.Time, Kind: KindAlert, Text: a.Summary, Rule: a.Rule, Severity: string(a.Severity),
		Subject: a.Subject, Evidence: a.Evidence}
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	critical := a.Severity == monitor.SeverityCritical
	in, err := m.attach(ctx, e, critical, "alert "+a.Rule+" for "+a.Subject, string(a.Severity))
	if err != nil || in == nil || !critical || m.respond == nil {
		return in, err
	}
	did, rerr := m.respond(ctx, a)
	switch {
	case rerr != nil:
		did = "automatic response failed: " + rerr.Error()
	case did == "":
		return in, nil
	}
	return m.update(ctx, in.ID, func(in *Incident) error {
		in.Timeline = append(in.Timeline, Entry{Time: m.now(), Kind: KindResponse, Actor: "keywarden", Text: did,
			Rule: a.Rule, Subject: a.Subject})
		return nil
	})
}

// Send implements audit.Sink: a panic recorded in the audit log opens an
// incident or joins the open one; a resumption and a panic's venue actions
// ("panic.venue": orders cancelled, keys deleted, or the error) join the
// open one.
// Records before Options.Since are history. Each record is used once even
// when delivered twice.
func (m *Manager) Send(ctx context.Context, batch []audit.Entry) error {
	for _, en := range batch {
		if en.Type != audit.TypeEvent || en.Time.Before(m.since) {
			continue
		}
		// Cheap test first: most events are not panics.
		line := string(en.Line)
		if !strings.Contains(line, `"panic`) && !strings.Contains(line, `gateway.stop"`) && !strings.Contains(line, `gateway.resume"`) {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal(en.Line, &r); err != nil || r.Event == nil {
			continue
		}
		var kind string
		switch r.Event.Kind {
		case "panic", "admin.gateway.stop", "gateway.stop":
			kind = KindPanic
		case "admin.gateway.resume", "gateway.resume":
			kind = KindResume
		case "panic.venue":
			kind = KindVenue
		default:
			continue
		}
		e := Entry{Time: r.Time, Kind: kind, Actor: clean(r.Event.Actor, 64), AuditSeq: r.Seq, Evidence: map[string]string{}}
		for k, v := range r.Event.Detail {
			e.Evidence[clean(k, 64)] = clean(v, 512)
		}
		if kind == KindPanic {
			e.Text = "panic: " + orDash(e.Evidence["target"]) + " (" + orDash(e.Evidence["reason"]) + ")"
			if r.Event.Kind != "panic" {
				e.Text = "gateway stopped by " + orDash(e.Actor)
			}
		} else if kind == KindVenue {
			ev := e.Evidence
			where := ev["key"]
			if ev["venue"] != "" {
				where = ev["venue"] + " " + where
			}
			status := "done"
			if ev["ok"] != "true" {
				status = "FAILED"
			}
			e.Text = "panic " + orDash(ev["action"]) + " at " + orDash(where) + " " + status + ": " + orDash(ev["result"])
			e.Subject = ev["key"]
		} else {
			e.Text = "gateway resumed by " + orDash(e.Actor)
		}
		if seen, err := m.seen(ctx, r.Seq); err != nil {
			return err
		} else if seen {
			continue
		}
		// A venue action joins the panic's incident; it opens none.
		in, err := m.attach(ctx, e, kind == KindPanic, e.Text, string(monitor.SeverityCritical))
		if err != nil {
			return err
		}
		if kind == KindPanic && in != nil && m.onPanic != nil {
			m.onPanic(*in, e, r.Event.Kind)
		}
	}
	return nil
}

// seen reports whether an incident already holds the audit record seq.
func (m *Manager) seen(ctx context.Context, seq uint64) (bool, error) {
	all, err := m.List(ctx)
	if err != nil {
		return false, err
	}
	for _, in := range all {
		if in.LastActivity().Before(m.since) {
			continue
		}
		for _, e := range in.Timeline {
			if e.AuditSeq == seq {
				return true, nil
			}
		}
	}
	return false, nil
}

// attach adds e to the open incident active within Merge, or, when open
// is set, to a new incident titled title; otherwise it drops e.
func (m *Manager) attach(ctx context.Context, e Entry, open bool, title, severity string) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var in *Incident
	err := m.retry(ctx, func() error {
		var err error
		in, err = m.attachOnce(ctx, e, open, title, severity)
		return err
	})
	return in, err
}

func (m *Manager) attachOnce(ctx context.Context, e Entry, open bool, title, severity string) (*Incident, error) {
	all, err := m.list(ctx)
	if err != nil {
		return nil, err
	}
	var cur *Incident
	for i := range all {
		in := &all[i]
		if in.Status == StatusOpen && e.Time.Sub(in.LastActivity()) < m.merge && (cur == nil || in.Opened.After(cur.Opened)) {
			cur = in
		}
	}
	if cur == nil {
		if !open {
			return nil, nil
		}
		cur, err = m.newIncident(title, severity, e.Time)
		if err != nil {
			return nil, err
		}
	}
	cur.Timeline = append(cur.Timeline, e)
	if e.Subject != "" && !slices.Contains(cur.Subjects, e.Subject) && len(cur.Subjects) < 100 {
		cur.Subjects = append(cur.Subjects, e.Subject)
	}
	if severity == string(monitor.SeverityCritical) {
		cur.Severity = severity
	}
	return cur, m.put(ctx, cur)
}

func (m *Manager) newIncident(title, severity string, t time.Time) (*Incident, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := "inc-" + t.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	return &Incident{ID: id, Title: title, Severity: severity, Status: StatusOpen, Opened: t,
		Timeline:  []Entry{{Time: t, Kind: KindOpened, Actor: "keywarden", Text: "incident opened: " + title}},
		Checklist: playbook()}, nil
}

// Open opens an incident by hand (an operator's suspicion, a drill).
func (m *Manager) Open(ctx context.Context, actor, title string) (*Incident, error) {
	title = clean(title, 200)
	if title == "" {
		return nil, errors.New("incident: a title is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, err := m.newIncident(title, string(monitor.SeverityWarning), m.now())
	if err != nil {
		return nil, err
	}
	in.Timeline[0].Actor = clean(actor, 64)
	return in, m.put(ctx, in)
}

// Note adds an operator's note to the timeline.
func (m *Manager) Note(ctx context.Context, id, actor, text string) (*Incident, error) {
	text = clean(text, 4000)
	if text == "" {
		return nil, errors.New("incident: an empty note")
	}
	return m.update(ctx, id, func(in *Incident) error {
		if in.Status == StatusClosed {
			return ErrClosed
		}
		in.Timeline = append(in.Timeline, Entry{Time: m.now(), Kind: KindNote, Actor: clean(actor, 64), Text: text})
		return nil
	})
}

// Check marks checklist item n (1-based) done by actor.
func (m *Manager) Check(ctx context.Context, id string, n int, actor string) (*Incident, error) {
	return m.update(ctx, id, func(in *Incident) error {
		if in.Status == StatusClosed {
			return ErrClosed
		}
		if n < 1 || n > len(in.Checklist) {
			return fmt.Errorf("incident: no checklist item %d (1..%d)", n, len(in.Checklist))
		}
		it := &in.Checklist[n-1]
		if it.Done {
			return nil
		}
		it.Done, it.By, it.At = true, clean(actor, 64), m.now()
		in.Timeline = append(in.Timeline, Entry{Time: it.At, Kind: KindCheck, Actor: it.By,
			Text: "done: [" + it.Phase + "] " + it.Text})
		return nil
	})
}

// Close closes the incident with a summary.
func (m *Manager) Close(ctx context.Context, id, actor, summary string) (*Incident, error) {
	summary = clean(summary, 4000)
	if summary == "" {
		return nil, errors.New("incident: closing needs a summary")
	}
	return m.update(ctx, id, func(in *Incident) error {
		if in.Status == StatusClosed {
			return ErrClosed
		}
		in.Status, in.Closed, in.Summary = StatusClosed, m.now(), summary
		in.Timeline = append(in.Timeline, Entry{Time: in.Closed, Kind: KindClosed, Actor: clean(actor, 64), Text: summary})
		return nil
	})
}

// Get returns the incident id.
func (m *Manager) Get(ctx context.Context, id string) (*Incident, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	b, err := m.st.Get(ctx, prefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	var in Incident
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return &in, nil
}

// List returns every incident, newest first.
func (m *Manager) List(ctx context.Context) ([]Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list(ctx)
}

func (m *Manager) list(ctx context.Context) ([]Incident, error) {
	keys, err := m.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	out := make([]Incident, 0, len(keys))
	for _, k := range keys {
		in, err := m.Get(ctx, strings.TrimPrefix(k, prefix))
		if err != nil {
			return nil, err
		}
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Incident) int { return b.Opened.Compare(a.Opened) })
	return out, nil
}

func (m *Manager) update(ctx context.Context, id string, fn func(*Incident) error) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var in *Incident
	err := m.retry(ctx, func() error {
		var err error
		if in, err = m.Get(ctx, id); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
		return m.put(ctx, in)
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// retry runs fn again while it fails with ErrConflict, after a short random
// pause that grows with each attempt, up to maxAttempts times.
func (m *Manager) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if !errors.Is(err, ErrConflict) || attempt == maxAttempts {
			return err
		}
		pause := time.Duration(attempt) * time.Millisecond
		pause += time.Duration(mrand.Int64N(int64(pause)))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// put writes in over the version it was read at (in.Version; 0 for a new
// incident) and bumps in.Version. On a transactional store (SQLite,
// PostgreSQL: store.Transactional) the version check and the write happen
// in one transaction, which both stores run one at a time, across replicas
// for PostgreSQL; a record whose stored version differs fails with
// ErrConflict. A store without transactions (tests' memory stores that do
// not implement it) gets the check and the write without that guarantee.
func (m *Manager) put(ctx context.Context, in *Incident) error {
	read := in.Version
	in.Version = read + 1
	b, err := json.Marshal(in)
	if err != nil {
		in.Version = read
		return err
	}
	key := prefix + in.ID
	tx, ok := m.st.(store.Transactional)
	if !ok {
		err = casWrite(ctx, m.st, key, read, b, nil)
	} else {
		err = tx.Update(ctx, func(t store.Tx) error { return casWrite(ctx, t, key, read, b, t.Create) })
	}
	if err != nil {
		in.Version = read
		if errors.Is(err, ErrConflict) {
			return err
		}
		return fmt.Errorf("incident %s: %w", in.ID, err)
	}
	return nil
}

// casWrite writes b under key if the stored record's version is read (no
// record when read is 0), with create for new records when the store has it.
func casWrite(ctx context.Context, st Store, key string, read uint64, b []byte, create func(context.Context, string, []byte) error) error {
	cur, err := st.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if read != 0 {
			return ErrConflict // deleted meanwhile: nothing to edit
		}
		if create != nil {
			if err := create(ctx, key, b); errors.Is(err, store.ErrExists) {
				return ErrConflict
			} else if err != nil {
				return err
			}
			return nil
		}
	case err != nil:
		return err
	default:
		var v struct {
			Version uint64 `json:"version"`
		}
		if err := json.Unmarshal(cur, &v); err != nil {
			return err
		}
		if v.Version != read {
			return ErrConflict
		}
	}
	return st.Put(ctx, key, b)
}

func validID(id string) bool {
	if !strings.HasPrefix(id, "inc-") || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// clean keeps text printable, on one line where it was meant to be, and
// bounded.
func clean(s string, n int) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Progress describes the checklist as "done/total".
func (in *Incident) Progress() string {
	done := 0
	for _, it := range in.Checklist {
		if it.Done {
			done++
		}
	}
	return strconv.Itoa(done) + "/" + strconv.Itoa(len(in.Checklist))
}
