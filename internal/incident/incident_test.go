package incident

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/store/memory"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func alert(c *clock, rule string, sev monitor.Severity, subject string) monitor.Alert {
	return monitor.Alert{Rule: rule, Severity: sev, Subject: subject, Summary: rule + " for " + subject,
		Evidence: map[string]string{"client": "c1", "venue": "binance"}, Time: c.now()}
}

func kinds(in *Incident) []string {
	var out []string
	for _, e := range in.Timeline {
		out = append(out, e.Kind)
	}
	return out
}

func TestAlertsOpenAndJoinIncidents(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	if in, err := m.RecordAlert(ctx, alert(c, monitor.RuleNewSourceIP, monitor.SeverityWarning, "binance/c1")); err != nil || in != nil {
		t.Fatalf("a warning with no open incident = %v, %v; want none", in, err)
	}
	in, err := m.RecordAlert(ctx, alert(c, monitor.RuleWithdraw, monitor.SeverityCritical, "binance/c1"))
	if err != nil || in == nil {
		t.Fatalf("critical alert: %v, %v", in, err)
	}
	first := in.ID
	c.advance(10 * time.Minute)
	in, err = m.RecordAlert(ctx, alert(c, monitor.RuleRateSurge, monitor.SeverityWarning, "binance/main"))
	if err != nil || in == nil || in.ID != first {
		t.Fatalf("warning within the merge window joined %v (%v), want %s", in, err, first)
	}
	if d := cmp.Diff([]string{KindOpened, KindAlert, KindAlert}, kinds(in)); d != "" {
		t.Errorf("timeline kinds (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"binance/c1", "binance/main"}, in.Subjects); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
	c.advance(2 * time.Hour)
	in, err = m.RecordAlert(ctx, alert(c, monitor.RuleVenueAuth, monitor.SeverityCritical, "binance/main"))
	if err != nil || in == nil || in.ID == first {
		t.Fatalf("critical alert two hours later = %v (%v), want a new incident", in, err)
	}
	all, err := m.List(ctx)
	if err != nil || len(all) != 2 || all[0].ID != in.ID {
		t.Fatalf("List = %d incidents (%v), want 2, newest first", len(all), err)
	}
}

func TestAutomaticResponseIsRecorded(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	var got []string
	fail := false
	m := New(Options{Store: memory.New(), Now: c.now, Respond: func(_ context.Context, a monitor.Alert) (string, error) {
		got = append(got, a.Rule)
		if fail {
			return "", errors.New("client store unavailable")
		}
		return "suspended client binance/c1", nil
	}})
	in, err := m.RecordAlert(ctx, alert(c, monitor.RuleAuthFailures, monitor.SeverityCritical, "binance/c1"))
	if err != nil {
		t.Fatal(err)
	}
	if last := in.Timeline[len(in.Timeline)-1]; last.Kind != KindResponse || last.Text != "suspended client binance/c1" {
		t.Errorf("last entry = %+v, want the response", last)
	}
	if _, err := m.RecordAlert(ctx, alert(c, monitor.RuleNewSymbol, monitor.SeverityWarning, "binance/c1")); err != nil {
		t.Fatal(err)
	}
	fail = true
	in, err = m.RecordAlert(ctx, alert(c, monitor.RuleWithdraw, monitor.SeverityCritical, "binance/c1"))
	if err != nil {
		t.Fatal(err)
	}
	if last := in.Timeline[len(in.Timeline)-1]; !strings.Contains(last.Text, "automatic response failed: client store unavailable") {
		t.Errorf("last entry = %+v, want the failed response", last)
	}
	if d := cmp.Diff([]string{monitor.RuleAuthFailures, monitor.RuleWithdraw}, got); d != "" {
		t.Errorf("responder ran for (-want +got):\n%s", d)
	}
}

func panicEntry(t *testing.T, seq uint64, when time.Time, kind string) audit.Entry {
	t.Helper()
	r := audit.Record{Seq: seq, Time: when, Type: audit.TypeEvent, Event: &audit.Event{Kind: kind, Actor: "control-socket",
		Detail: map[string]string{"target": "binance", "reason": "leaked config", "revoked": "2"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Entry{Seq: seq, Time: when, Type: audit.TypeEvent, Line: b}
}

func TestPanicsFromTheAuditLog(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	batch := []audit.Entry{
		panicEntry(t, 1, t0.Add(-time.Hour), "panic"), // history: before Since
		panicEntry(t, 2, t0, "panic"),
		panicEntry(t, 3, t0.Add(time.Minute), "admin.gateway.resume"),
	}
	for range 2 { // at-least-once delivery: the batch comes twice
		if err := m.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all, err := m.List(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %d (%v), want one incident", len(all), err)
	}
	in := all[0]
	if d := cmp.Diff([]string{KindOpened, KindPanic, KindResume}, kinds(&in)); d != "" {
		t.Errorf("timeline kinds (-want +got):\n%s", d)
	}
	if p := in.Timeline[1]; p.Text != "panic: binance (leaked config)" || p.AuditSeq != 2 || p.Evidence["revoked"] != "2" {
		t.Errorf("panic entry = %+v", p)
	}
}

func TestNotesChecklistAndClose(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	in, err := m.Open(ctx, "alice", "suspicious orders on binance")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Note(ctx, in.ID, "alice", "bot host\x1b[31m reimaged"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, in.ID, 3, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, in.ID, 99, "bob"); err == nil {
		t.Error("checking item 99 succeeded")
	}
	if _, err := m.Close(ctx, in.ID, "alice", ""); err == nil {
		t.Error("closing without a summary succeeded")
	}
	c.advance(time.Hour)
	in, err = m.Close(ctx, in.ID, "alice", "key rotated; no loss")
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != StatusClosed || !in.Closed.Equal(t0.Add(time.Hour)) || in.Progress() != "1/10" {
		t.Errorf("closed incident: status %s closed %v progress %s", in.Status, in.Closed, in.Progress())
	}
	if it := in.Checklist[2]; !it.Done || it.By != "bob" || it.Phase != "contain" {
		t.Errorf("checklist item 3 = %+v", it)
	}
	if n := in.Timeline[1].Text; strings.ContainsRune(n, 0x1b) {
		t.Errorf("note kept a control character: %q", n)
	}
	if _, err := m.Note(ctx, in.ID, "alice", "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("note on a closed incident: %v, want ErrClosed", err)
	}
	if _, err := m.Get(ctx, "../keys/binance/main"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a path: %v, want ErrNotFound", err)
	}
}

// untar returns the bundle's files by name.
func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = body
	}
	return out
}

func TestExportBundle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := t0
	l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	appendAt := func(when time.Time, kind string) {
		now = when
		if _, err := l.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: kind, Actor: "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	appendAt(t0.Add(-3*time.Hour), "long.before")
	appendAt(t0.Add(-10*time.Minute), "just.before")
	appendAt(t0.Add(5*time.Minute), "during")
	appendAt(t0.Add(3*time.Hour), "long.after")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	in, err := m.RecordAlert(ctx, alert(c, monitor.RuleWithdraw, monitor.SeverityCritical, "binance/c1"))
	if err != nil {
		t.Fatal(err)
	}
	c.advance(30 * time.Minute)
	in, err = m.Close(ctx, in.ID, "alice", "contained")
	if err != nil {
		t.Fatal(err)
	}
	const configMarker = "KWCONFIGMARKER"
	sum := sha256.Sum256([]byte("[gateway]\n# " + configMarker + "\n"))
	var buf bytes.Buffer
	_, signKey, _ := ed25519.GenerateKey(nil)
	man, err := Export(&buf, in, Evidence{AuditDir: dir, AuditKey: pub, ConfigDigest: hex.EncodeToString(sum[:]), Now: t0.Add(time.Hour), SignKey: signKey})
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	var names []string
	for _, f := range man.Files {
		names = append(names, f.Name)
		body, ok := files[in.ID+"/"+f.Name]
		got := sha256.Sum256(body)
		if !ok || hex.EncodeToString(got[:]) != f.SHA256 || len(body) != f.Size {
			t.Errorf("%s: in bundle %v, manifest hash or size does not match", f.Name, ok)
		}
	}
	if d := cmp.Diff([]string{"incident.json", "alerts.json", "audit.jsonl", "audit-verify.json", "config.sha256"}, names); d != "" {
		t.Errorf("manifest files (-want +got):\n%s", d)
	}
	for _, name := range []string{"manifest.json", "manifest.sig", "evidence.pub"} {
		if _, ok := files[in.ID+"/"+name]; !ok {
			t.Errorf("no %s in the bundle", name)
		}
	}
	seed := signKey.Seed()
	for name, body := range files {
		for _, enc := range []string{hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed), base64.StdEncoding.EncodeToString(signKey)} {
			if bytes.Contains(body, []byte(enc)) {
				t.Errorf("%s holds the signing key", name)
			}
		}
	}
	recs := string(files[in.ID+"/audit.jsonl"])
	for _, k := range []string{"just.before", "during"} {
		if !strings.Contains(recs, k) {
			t.Errorf("audit.jsonl lacks the %s record", k)
		}
	}
	for _, k := range []string{"long.before", "long.after"} {
		if strings.Contains(recs, k) {
			t.Errorf("audit.jsonl holds the %s record, outside the window", k)
		}
	}
	var vr VerifyResult
	if err := json.Unmarshal(files[in.ID+"/audit-verify.json"], &vr); err != nil || !vr.OK || !strings.Contains(vr.Report, "checkpoints verified") {
		t.Errorf("audit-verify.json = %+v (%v), want a verified chain", vr, err)
	}
	var back Incident
	if err := json.Unmarshal(files[in.ID+"/incident.json"], &back); err != nil || back.ID != in.ID || back.Summary != "contained" {
		t.Errorf("incident.json = %+v (%v)", back, err)
	}
	if !bytes.Contains(files[in.ID+"/config.sha256"], []byte(hex.EncodeToString(sum[:]))) {
		t.Error("config.sha256 lacks the digest")
	}
	for name, body := range files {
		if bytes.Contains(body, []byte(configMarker)) {
			t.Errorf("%s contains the configuration's content", name)
		}
	}
}

// TestExportReportsATamperedChain: an edited audit record makes the bundle
// say the chain does not verify, and where.
func TestExportReportsATamperedChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "bob"} {
		if _, err := l.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test", Actor: who}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.jsonl"))
	if len(segs) == 0 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("no segment file in %v", entries)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segs[0], bytes.Replace(b, []byte(`"bob"`), []byte(`"eve"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	in, err := m.Open(ctx, "alice", "tamper check")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, signKey, _ := ed25519.GenerateKey(nil)
	if _, err := Export(&buf, in, Evidence{AuditDir: dir, Now: t0, SignKey: signKey}); err != nil {
		t.Fatal(err)
	}
	var vr VerifyResult
	if err := json.Unmarshal(untar(t, buf.Bytes())[in.ID+"/audit-verify.json"], &vr); err != nil {
		t.Fatal(err)
	}
	if vr.OK || !strings.Contains(vr.Error, "line 2") || vr.ExportError == "" {
		t.Errorf("audit-verify.json after tampering = %+v, want a failure naming line 2 and an incomplete export", vr)
	}
}

func TestPanicVenueActionsJoinTheIncident(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	m := New(Options{Store: memory.New(), Now: c.now})
	venue := func(seq uint64, when time.Time, d map[string]string) audit.Entry {
		r := audit.Record{Seq: seq, Time: when, Type: audit.TypeEvent, Event: &audit.Event{Kind: "panic.venue", Actor: "control-socket", Detail: d}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return audit.Entry{Seq: seq, Time: when, Type: audit.TypeEvent, Line: b}
	}
	// A venue action with no open incident opens none.
	if err := m.Send(ctx, []audit.Entry{venue(1, t0, map[string]string{"action": "cancel-orders", "key": "binance/main", "ok": "true"})}); err != nil {
		t.Fatal(err)
	}
	if all, _ := m.List(ctx); len(all) != 0 {
		t.Fatalf("a venue action alone opened %d incidents", len(all))
	}
	batch := []audit.Entry{
		panicEntry(t, 2, t0, "panic"),
		venue(3, t0.Add(time.Second), map[string]string{"action": "cancel-orders", "venue": "binance", "key": "binance/main", "ok": "true",
			"result": "3 open orders cancelled (BTCUSDT)", "cancelled": "3"}),
		venue(4, t0.Add(2*time.Second), map[string]string{"action": "delete-key", "key": "binance/main", "ok": "false",
			"result": "delete key: status 403"}),
	}
	if err := m.Send(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all, err := m.List(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %d (%v), want one incident", len(all), err)
	}
	in := all[0]
	if d := cmp.Diff([]string{KindOpened, KindPanic, KindVenue, KindVenue}, kinds(&in)); d != "" {
		t.Errorf("timeline kinds (-want +got):\n%s", d)
	}
	want := []string{"panic cancel-orders at binance binance/main done: 3 open orders cancelled (BTCUSDT)",
		"panic delete-key at binance/main FAILED: delete key: status 403"}
	if d := cmp.Diff(want, []string{in.Timeline[2].Text, in.Timeline[3].Text}); d != "" {
		t.Errorf("venue entries (-want +got):\n%s", d)
	}
}

func TestOnPanicIsToldOnce(t *testing.T) {
	ctx := context.Background()
	c := &clock{t0}
	var told []uint64
	var ids []string
	var events []string
	m := New(Options{Store: memory.New(), Now: c.now, OnPanic: func(in Incident, e Entry, event string) {
		told = append(told, e.AuditSeq)
		events = append(events, event)
		ids = append(ids, in.ID)
	}})
	batch := []audit.Entry{panicEntry(t, 2, t0, "panic"), panicEntry(t, 3, t0.Add(time.Minute), "admin.gateway.resume")}
	for range 2 { // delivered twice
		if err := m.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := m.List(ctx)
	if len(told) != 1 || told[0] != 2 || len(all) != 1 || ids[0] != all[0].ID || events[0] != "panic" {
		t.Errorf("OnPanic told %v (%v) for %v, want once for seq 2 of incident %v, event panic", told, events, ids, all)
	}
}
