package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// writeAudit appends n event records to the audit log in dir, with a
// checkpoint every 5 records, and closes it (which writes one more).
func writeAudit(t *testing.T, dir string, priv ed25519.PrivateKey, n int) {
	t.Helper()
	l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, HashKey: make([]byte, 32), CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test", Actor: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditWitnessDetectsTruncation collects two replicas' checkpoints in
// PostgreSQL; each log verifies against its own collected checkpoints, and
// a log cut short after collection no longer does.
func TestAuditWitnessDetectsTruncation(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"r1": filepath.Join(t.TempDir(), "audit"), "r2": filepath.Join(t.TempDir(), "audit")}
	for name, dir := range dirs {
		writeAudit(t, dir, priv, 12)
		w, err := NewAuditWitness(ctx, AuditWitnessOptions{DB: db, Replica: name, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		n, err := w.Collect(ctx)
		if err != nil || n == 0 {
			t.Fatalf("Collect(%s) = %d, %v, want some checkpoints", name, n, err)
		}
		if n, err := w.Collect(ctx); err != nil || n != 0 {
			t.Fatalf("second Collect(%s) = %d, %v, want 0 new", name, n, err)
		}
	}
	reps, err := AuditReplicas(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.Replica)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "r1,r2" {
		t.Fatalf("replicas = %v, want r1,r2", names)
	}
	witness := func(name string) string {
		f := filepath.Join(t.TempDir(), name+".witness")
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := WriteAuditWitness(ctx, db, name, out); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for name, dir := range dirs {
		if _, err := audit.VerifyWithWitness(dir, pub, witness(name)); err != nil {
			t.Errorf("VerifyWithWitness(%s) = %v, want nil", name, err)
		}
	}
	// Cut r1's log short: drop its last 4 lines.
	segs, err := filepath.Glob(filepath.Join(dirs["r1"], "seg-*.jsonl"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v, %v", segs, err)
	}
	last := segs[len(segs)-1]
	raw, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	if err := os.WriteFile(last, []byte(strings.Join(lines[:len(lines)-5], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(dirs["r1"], pub); err != nil {
		t.Fatalf("Verify of the truncated log alone = %v; the test needs a truncation that only a witness catches", err)
	}
	if _, err := audit.VerifyWithWitness(dirs["r1"], pub, witness("r1")); err == nil {
		t.Error("VerifyWithWitness of a truncated log = nil, want an error")
	}
	if _, err := audit.VerifyWithWitness(dirs["r2"], pub, witness("r2")); err != nil {
		t.Errorf("VerifyWithWitness(r2) after r1 was cut = %v, want nil", err)
	}
}

// appendAudit appends n event records by actor to the audit log in dir,
// with a checkpoint every 5 records and segments of segSize bytes (0: the
// default), and closes it (which writes one more checkpoint).
func appendAudit(t *testing.T, dir string, priv ed25519.PrivateKey, n int, actor string, segSize int64) {
	t.Helper()
	l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, HashKey: make([]byte, 32), CheckpointEvery: 5, SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test", Actor: actor}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the files of the directory from into to, which it
// creates; restoreDir replaces to's content with from's.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func restoreDir(t *testing.T, backup, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, dir)
}

// storedRows returns replica's collected witness lines by count.
func storedRows(t *testing.T, w *AuditWitness) map[uint64]string {
	t.Helper()
	rows, err := w.stored(context.Background(), "count >= $2", int64(0))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// logHeads returns the hash of every record in dir by seq, and the last seq.
func logHeads(t *testing.T, dir string) (map[uint64]string, uint64) {
	t.Helper()
	out := map[uint64]string{}
	var last uint64
	for r, err := range audit.Search(dir, audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out[r.Seq], last = r.Hash, r.Seq
	}
	return out, last
}

type witnessFixture struct {
	t    *testing.T
	db   *postgres.DB
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newWitnessFixture(t *testing.T) *witnessFixture {
	db := openDB(t, pgtest.NewDatabase(t))
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &witnessFixture{t: t, db: db, pub: pub, priv: priv}
}

func (f *witnessFixture) witness(replica, dir string) *AuditWitness {
	f.t.Helper()
	w, err := NewAuditWitness(context.Background(), AuditWitnessOptions{DB: f.db, Replica: replica, Dir: dir})
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// firstPast returns the smallest collected count whose checkpoint record
// lies past size records.
func firstPast(t *testing.T, rows map[uint64]string, size uint64) uint64 {
	t.Helper()
	var counts []uint64
	for c := range rows {
		if c+1 > size {
			counts = append(counts, c)
		}
	}
	if len(counts) == 0 {
		t.Fatalf("no checkpoint collected past %d records: the test needs one", size)
	}
	slices.Sort(counts)
	return counts[0]
}

func maxCount(rows map[uint64]string) uint64 {
	var m uint64
	for c := range rows {
		m = max(m, c)
	}
	return m
}

// TestAuditWitnessHealthyRestart: a replica that stops and starts again on
// its own log (written on in between, as the CLI does) is never flagged,
// copies only what is new, and its log verifies against the copies.
func TestAuditWitnessHealthyRestart(t *testing.T) {
	f := newWitnessFixture(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "audit")
	appendAudit(t, dir, f.priv, 12, "run1", 0)
	if n, err := f.witness("r", dir).Collect(ctx); err != nil || n == 0 {
		t.Fatalf("first start: Collect = %d, %v, want some checkpoints", n, err)
	}
	before := len(storedRows(t, f.witness("r", dir)))
	appendAudit(t, dir, f.priv, 9, "run2", 0)
	w := f.witness("r", dir) // a restart
	n, err := w.Collect(ctx)
	if err != nil || n == 0 {
		t.Fatalf("restart: Collect = %d, %v, want the new checkpoints", n, err)
	}
	if got := len(storedRows(t, w)); got != before+n {
		t.Errorf("rows after the restart = %d, want %d + %d", got, before, n)
	}
	appendAudit(t, dir, f.priv, 3, "run2", 0)
	for i := range 2 {
		if _, err := w.Collect(ctx); err != nil {
			t.Fatalf("Collect %d while running = %v", i, err)
		}
	}
	if n, err := f.witness("r", dir).Collect(ctx); err != nil || n != 0 {
		t.Errorf("another restart: Collect = %d, %v, want 0, nil", n, err)
	}
	out := filepath.Join(t.TempDir(), "w")
	fh, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAuditWitness(ctx, f.db, "r", fh); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := audit.VerifyWithWitness(dir, f.pub, out); err != nil {
		t.Errorf("VerifyWithWitness = %v", err)
	}
}

// TestAuditWitnessRestoredBackupRefused: a log restored from a backup older
// than what was collected is a rollback, at start (a new witness) and at
// the running witness's next Collect; nothing is copied from it.
func TestAuditWitnessRestoredBackupRefused(t *testing.T) {
	f := newWitnessFixture(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "audit")
	backup := filepath.Join(t.TempDir(), "backup")
	appendAudit(t, dir, f.priv, 8, "before", 0)
	copyDir(t, dir, backup)
	appendAudit(t, dir, f.priv, 12, "after", 0)
	running := f.witness("r", dir)
	if _, err := running.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	rows := storedRows(t, running)
	restoreDir(t, backup, dir)
	heads, size := logHeads(t, dir)
	want := &RollbackError{Replica: "r", TreeSize: maxCount(rows), StoredHead: lineHead(rows[maxCount(rows)]), LogSize: size, LogHead: heads[size]}
	for _, tt := range []struct {
		name string
		w    *AuditWitness
	}{{"start", f.witness("r", dir)}, {"running", running}} {
		n, err := tt.w.Collect(ctx)
		var re *RollbackError
		if !errors.As(err, &re) || n != 0 {
			t.Fatalf("%s: Collect after the restore = %d, %v, want a *RollbackError", tt.name, n, err)
		}
		if diff := cmp.Diff(want, re); diff != "" {
			t.Errorf("%s: rollback (-want +got):\n%s", tt.name, diff)
		}
		if !errors.Is(err, audit.ErrWitness) {
			t.Errorf("%s: %v does not match audit.ErrWitness", tt.name, err)
		}
		for _, s := range []string{"rollback", fmt.Sprint(want.TreeSize), want.StoredHead, want.LogHead} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not name %q", tt.name, err, s)
			}
		}
	}
	if diff := cmp.Diff(rows, storedRows(t, running)); diff != "" {
		t.Errorf("rows changed (-before +after):\n%s", diff)
	}
}

// TestAuditWitnessRestoredAndWrittenOn: a log restored from an old backup
// and written on past what was collected is a fork at the first collected
// tree size past the backup, naming both chain heads: at the running
// witness's next Collect and at a restart. Nothing of the fork is copied.
func TestAuditWitnessRestoredAndWrittenOn(t *testing.T) {
	f := newWitnessFixture(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "audit")
	backup := filepath.Join(t.TempDir(), "backup")
	appendAudit(t, dir, f.priv, 8, "before", 0)
	copyDir(t, dir, backup)
	_, backupSize := logHeads(t, dir)
	appendAudit(t, dir, f.priv, 12, "after", 0)
	running := f.witness("r", dir)
	if _, err := running.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	rows := storedRows(t, running)
	restoreDir(t, backup, dir)
	appendAudit(t, dir, f.priv, 30, "fork", 0)
	heads, size := logHeads(t, dir)
	if size <= maxCount(rows)+1 {
		t.Fatalf("the forked log has %d records, want more than the %d collected", size, maxCount(rows)+1)
	}
	forked := firstPast(t, rows, backupSize)
	for _, tt := range []struct {
		name string
		w    *AuditWitness
	}{{"running", running}, {"restart", f.witness("r", dir)}} {
		n, err := tt.w.Collect(ctx)
		var fe *ForkError
		if !errors.As(err, &fe) || n != 0 {
			t.Fatalf("%s: Collect after the restore and write-on = %d, %v, want a *ForkError", tt.name, n, err)
		}
		if fe.TreeSize != forked || fe.StoredHead != lineHead(rows[forked]) || fe.LogHead != heads[forked] || fe.StoredHead == fe.LogHead {
			t.Errorf("%s: fork at %d, heads %s / %s; want tree size %d, collected head %s, log head %s (different)",
				tt.name, fe.TreeSize, fe.StoredHead, fe.LogHead, forked, lineHead(rows[forked]), heads[forked])
		}
		for _, s := range []string{"fork", fmt.Sprintf("tree size %d", forked), fe.StoredHead, fe.LogHead} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not name %q", tt.name, err, s)
			}
		}
	}
	if diff := cmp.Diff(rows, storedRows(t, running)); diff != "" {
		t.Errorf("rows changed (-before +after):\n%s", diff)
	}
	// The copies still hold the original log: verified against them, the
	// forked log fails too.
	out := filepath.Join(t.TempDir(), "w")
	fh, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAuditWitness(ctx, f.db, "r", fh); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := audit.VerifyWithWitness(dir, f.pub, out); err == nil {
		t.Error("VerifyWithWitness of the forked log = nil, want an error")
	}
}

// TestAuditWitnessPrunedLog: checkpoints collected for segments since
// pruned from the log are not flagged, at a restart or while running; a
// pruned log restored from an older backup still is.
func TestAuditWitnessPrunedLog(t *testing.T) {
	f := newWitnessFixture(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "audit")
	backup := filepath.Join(t.TempDir(), "backup")
	const seg = 2 << 10
	appendAudit(t, dir, f.priv, 60, "old", seg)
	running := f.witness("r", dir)
	if _, err := running.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(audit.Options{Dir: dir, Signer: f.priv, HashKey: make([]byte, 32), CheckpointEvery: 5, SegmentSize: seg})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Prune(time.Now().Add(time.Hour)); err != nil || n == 0 {
		t.Fatalf("Prune = %d, %v, want segments removed", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	appendAudit(t, dir, f.priv, 20, "new", seg)
	heads, _ := logHeads(t, dir)
	first := uint64(0)
	for s := range heads {
		if first == 0 || s < first {
			first = s
		}
	}
	rows := storedRows(t, running)
	pruned := 0
	for c := range rows {
		if c+1 < first {
			pruned++
		}
	}
	if pruned == 0 {
		t.Fatalf("no collected checkpoint lies before the log's first record %d: the test needs some", first)
	}
	copyDir(t, dir, backup)
	for _, tt := range []struct {
		name string
		w    *AuditWitness
	}{{"running", running}, {"restart", f.witness("r", dir)}} {
		if n, err := tt.w.Collect(ctx); err != nil {
			t.Errorf("%s: Collect of the pruned log = %d, %v, want no error (%d collected checkpoints are pruned)", tt.name, n, err, pruned)
		}
	}
	appendAudit(t, dir, f.priv, 15, "new", seg)
	if _, err := running.Collect(ctx); err != nil {
		t.Fatalf("Collect after more records = %v", err)
	}
	restoreDir(t, backup, dir)
	if _, err := f.witness("r", dir).Collect(ctx); !errors.As(err, new(*RollbackError)) {
		t.Errorf("Collect of the pruned log restored from its backup = %v, want a *RollbackError", err)
	}
}

// TestAuditWitnessTwoCopiesOneName: two copies of one log run under one
// replica name (a host cloned from a backup) and write different records:
// the second to collect finds the first's checkpoints and refuses.
func TestAuditWitnessTwoCopiesOneName(t *testing.T) {
	f := newWitnessFixture(t)
	ctx := context.Background()
	a := filepath.Join(t.TempDir(), "audit")
	b := filepath.Join(t.TempDir(), "audit")
	appendAudit(t, a, f.priv, 10, "start", 0)
	copyDir(t, a, b)
	wa, wb := f.witness("r", a), f.witness("r", b)
	if _, err := wa.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := wb.Collect(ctx); err != nil || n != 0 {
		t.Fatalf("Collect of an identical copy = %d, %v, want 0, nil", n, err)
	}
	appendAudit(t, a, f.priv, 10, "a", 0)
	appendAudit(t, b, f.priv, 10, "b", 0)
	if _, err := wa.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	rows := storedRows(t, wa)
	if _, err := wb.Collect(ctx); !errors.As(err, new(*ForkError)) {
		t.Fatalf("Collect of the other copy = %v, want a *ForkError", err)
	}
	if diff := cmp.Diff(rows, storedRows(t, wa)); diff != "" {
		t.Errorf("rows changed (-before +after):\n%s", diff)
	}
	if _, err := wa.Collect(ctx); err != nil {
		t.Errorf("Collect of the first copy afterwards = %v, want nil", err)
	}
}

// TestAuditWitnessRunStops: Run returns the fork once the log it follows
// was restored and written on, and nil when its context ends otherwise.
func TestAuditWitnessRunStops(t *testing.T) {
	f := newWitnessFixture(t)
	dir := filepath.Join(t.TempDir(), "audit")
	backup := filepath.Join(t.TempDir(), "backup")
	appendAudit(t, dir, f.priv, 8, "before", 0)
	copyDir(t, dir, backup)
	appendAudit(t, dir, f.priv, 12, "after", 0)
	w := f.witness("r", dir)
	if _, err := w.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, 10*time.Millisecond) }()
	appendAudit(t, dir, f.priv, 4, "after", 0)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run on a healthy log = %v, want nil", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { errc <- w.Run(ctx, 10*time.Millisecond) }()
	// The restored copy is written on elsewhere, then put in place, so
	// that Run sees the fork rather than the rollback before it.
	forked := filepath.Join(t.TempDir(), "forked")
	copyDir(t, backup, forked)
	appendAudit(t, forked, f.priv, 40, "fork", 0)
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(forked, dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.As(err, new(*ForkError)) {
			t.Errorf("Run = %v, want a *ForkError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s of the fork")
	}
}
