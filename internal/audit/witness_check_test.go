package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/merkle"
)

// newWitnessFile creates an empty witness file.
func newWitnessFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "witness")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openWitness(t *testing.T, path, dir string) *Witness {
	t.Helper()
	w, err := OpenWitness(path, dir, testPub())
	if err != nil {
		t.Fatalf("OpenWitness = %v", err)
	}
	return w
}

// sync checks the open log against the witness and appends its new
// checkpoints, as serve does after every durable batch.
func syncWitness(t *testing.T, w *Witness, l *Log) {
	t.Helper()
	if err := w.Follow(l.Head().Seq); err != nil {
		t.Fatalf("Follow(%d) = %v", l.Head().Seq, err)
	}
	if _, err := w.Export(); err != nil {
		t.Fatalf("Export = %v", err)
	}
}

// appendN appends n intent records, numbered from first.
func appendN(t *testing.T, l *Log, first, n int) {
	t.Helper()
	for i := range n {
		mustAppend(t, l, intentRecord(first+i))
	}
}

// rootAt computes the log's Merkle root over its first size records,
// independently of the witness code.
func rootAt(t *testing.T, dir string, size uint64) string {
	t.Helper()
	var leaves []merkle.Hash
	for _, r := range readAll(t, dir) {
		if r.Seq <= size {
			leaves = append(leaves, leafOf(r.Hash))
		}
	}
	if uint64(len(leaves)) != size {
		t.Fatalf("log has %d records, want at least %d", len(leaves), size)
	}
	root := merkle.Root(leaves)
	return hex.EncodeToString(root[:])
}

func TestWitnessFollowsLog(t *testing.T) {
	dir := t.TempDir()
	wf := newWitnessFile(t)
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, SegmentSize: 3000, Now: fixedClock()})
	w := openWitness(t, wf, dir)
	if err := w.Check(l.Head().Seq); err != nil {
		t.Fatalf("Check(empty log) = %v", err)
	}
	for i := 0; i < 40; i += 8 {
		appendN(t, l, i, 8)
		syncWitness(t, w, l)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Follow(ToEnd); err != nil {
		t.Fatalf("Follow(ToEnd) after Close = %v", err)
	}
	if _, err := w.Export(); err != nil {
		t.Fatal(err)
	}
	// The live witness holds exactly what an export of the closed log
	// writes: every checkpoint, the final one included, once.
	var want bytes.Buffer
	if err := ExportCheckpoints(dir, &want); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(wf)
	if diff := cmp.Diff(want.String(), string(got)); diff != "" {
		t.Errorf("witness file (-export +live):\n%s", diff)
	}
	segs, _ := listSegments(dir)
	if len(segs) < 3 {
		t.Errorf("segments = %d, want the follower to have crossed rotations", len(segs))
	}
	rep, err := VerifyWithWitness(dir, testPub(), wf)
	if err != nil || rep.Witnessed == 0 {
		t.Errorf("VerifyWithWitness(live witness) = %+v, %v", rep, err)
	}
	// At the next start, every entry is checked again and nothing new is
	// appended.
	w2 := openWitness(t, wf, dir)
	if err := w2.Check(ToEnd); err != nil {
		t.Fatalf("Check(restart) = %v", err)
	}
	if n, err := w2.Export(); err != nil || n != 0 {
		t.Errorf("Export(restart) = %d, %v; want 0, nil", n, err)
	}
	if w2.Checked() != 2*w2.Entries() {
		t.Errorf("Checked() = %d, want %d (a root and a head per checkpoint)", w2.Checked(), 2*w2.Entries())
	}
}

// forkSetup writes n1 records under a live witness, copies the log
// directory (the backup), then writes n2 more. It returns the log
// directory, the backup and the witness file.
func forkSetup(t *testing.T, n1, n2 int) (dir, backup, wf string) {
	t.Helper()
	dir, backup, wf = t.TempDir(), filepath.Join(t.TempDir(), "backup"), newWitnessFile(t)
	clock := fixedClock()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: clock})
	w := openWitness(t, wf, dir)
	if err := w.Check(l.Head().Seq); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, n1)
	syncWitness(t, w, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	syncClosed(t, w)
	copyDir(t, dir, backup)
	l = openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: clock})
	appendN(t, l, n1, n2)
	syncWitness(t, w, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	syncClosed(t, w)
	return dir, backup, wf
}

func syncClosed(t *testing.T, w *Witness) {
	t.Helper()
	if err := w.Follow(ToEnd); err != nil {
		t.Fatalf("Follow(ToEnd) = %v", err)
	}
	if _, err := w.Export(); err != nil {
		t.Fatal(err)
	}
}

// restore replaces the log directory with the backup.
func restore(t *testing.T, dir, backup string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, dir)
}

func TestWitnessRestoreOldBackup_C3(t *testing.T) {
	tests := []struct {
		name    string
		restore bool
		writeOn int // records appended after the restore (or after the last run)
		want    string
	}{
		{"not restored, written on", false, 30, ""},
		{"restored", true, 0, "rollback"},
		{"restored, written on past the witness", true, 30, "fork"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, backup, wf := forkSetup(t, 12, 12)
			// The original's tree sizes and roots, before any restore.
			var sizes []uint64
			ws, _ := os.ReadFile(wf)
			wcs, err := ReadWitness(bytes.NewReader(ws), testPub())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range wcs {
				if c.Note {
					sizes = append(sizes, c.Count)
				}
			}
			if tt.restore {
				restore(t, dir, backup)
			}
			if tt.writeOn > 0 {
				// Written on without the witness: a run that did not
				// check, or the witness was unreachable.
				l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
				for i := range tt.writeOn {
					r := intentRecord(1000 + i)
					r.Intent.Body += "&branch=restored"
					mustAppend(t, l, r)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			w := openWitness(t, wf, dir)
			err = w.Check(ToEnd)
			var fe *ForkError
			var re *RollbackError
			switch tt.want {
			case "":
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
			case "rollback":
				if !errors.As(err, &re) {
					t.Fatalf("Check = %v, want a *RollbackError", err)
				}
				last := sizes[len(sizes)-1]
				if re.WitnessSize != last || re.LogSize >= last {
					t.Errorf("RollbackError = %+v, want witness size %d and a shorter log", re, last)
				}
				if want := rootAt(t, dir, re.LogSize); re.LogRoot != want {
					t.Errorf("RollbackError.LogRoot = %s, want %s", re.LogRoot, want)
				}
			case "fork":
				if !errors.As(err, &fe) {
					t.Fatalf("Check = %v, want a *ForkError", err)
				}
				// The first witnessed size past the backup is the first
				// tree size with two roots.
				backupSize := uint64(len(readAll(t, backup)))
				var first uint64
				for _, s := range sizes {
					if s > backupSize {
						first = s
						break
					}
				}
				if fe.TreeSize != first || fe.Kind != "root" || fe.WitnessFork {
					t.Errorf("ForkError = %+v, want two roots for tree size %d", fe, first)
				}
				if want := rootAt(t, dir, fe.TreeSize); fe.LogHash != want {
					t.Errorf("ForkError.LogHash = %s, want the restored log's root %s", fe.LogHash, want)
				}
				if fe.WitnessHash == fe.LogHash {
					t.Errorf("ForkError names one root twice: %+v", fe)
				}
				msg := err.Error()
				for _, s := range []string{"fork", fe.WitnessHash, fe.LogHash, "tree size"} {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q does not name %q", msg, s)
					}
				}
			}
			if !errors.Is(err, ErrWitness) && tt.want != "" {
				t.Errorf("errors.Is(%v, ErrWitness) = false", err)
			}
			// The witness file is not touched by a failed check.
			after, _ := os.ReadFile(wf)
			if tt.want != "" && !bytes.Equal(after, ws) {
				t.Errorf("witness file changed by a check that failed")
			}
		})
	}
}

// TestWitnessForkAtNextBatch: the original log runs with its witness; a
// restored copy written on elsewhere gets its checkpoints appended to the
// same witness file (keywarden audit checkpoints >> witness). The
// original's witness stops at its next batch, naming two roots for one
// tree size.
func TestWitnessForkAtNextBatch(t *testing.T) {
	dir, _, wf := forkSetup(t, 12, 0)
	other := filepath.Join(t.TempDir(), "copy")
	copyDir(t, dir, other)

	orig := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	ow := openWitness(t, wf, dir)
	if err := ow.Check(orig.Head().Seq); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ow.Run(ctx, orig) }()
	appendN(t, orig, 12, 30)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run(original alone) = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- ow.Run(ctx, orig) }()

	cp := openTest(t, Options{Dir: other, CheckpointEvery: 5, Now: fixedClock()})
	for i := range 30 {
		r := intentRecord(2000 + i)
		r.Intent.Body += "&branch=copy"
		mustAppend(t, cp, r)
	}
	var branch bytes.Buffer
	if err := ExportCheckpointsAfter(other, &branch, 16); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(wf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(branch.Bytes())
	f.Close()

	mustAppend(t, orig, intentRecord(3000)) // the next batch
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the witness gained a conflicting root")
	}
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Kind != "root" {
		t.Fatalf("Run(original) = %v, want a *ForkError naming two roots", err)
	}
	roots := []string{rootAt(t, dir, fe.TreeSize), rootAt(t, other, fe.TreeSize)}
	if got := []string{fe.WitnessHash, fe.LogHash}; !cmp.Equal(got, roots) {
		t.Errorf("ForkError roots = %v, want the original's and the copy's %v", got, roots)
	}
}

func TestWitnessRunKeepsUp(t *testing.T) {
	dir := t.TempDir()
	wf := newWitnessFile(t)
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	w := openWitness(t, wf, dir)
	if err := w.Check(l.Head().Seq); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, l) }()
	appendN(t, l, 0, 23)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	syncClosed(t, w)
	var want bytes.Buffer
	ExportCheckpoints(dir, &want)
	got, _ := os.ReadFile(wf)
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("witness after Run and close:\n%s\nwant:\n%s", got, want.String())
	}
}

func TestWitnessFileErrors(t *testing.T) {
	dir, backup, wf := forkSetup(t, 12, 12)
	// A second witness built from the restored branch: same sizes (a
	// checkpoint every 5 records), other roots.
	restore(t, dir, backup)
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	for i := range 12 {
		r := intentRecord(1000 + i)
		r.Intent.Body += "&branch=restored"
		mustAppend(t, l, r)
	}
	l.Close()
	var branch bytes.Buffer
	ExportCheckpoints(dir, &branch)
	orig, _ := os.ReadFile(wf)

	t.Run("two roots in the file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "w")
		os.WriteFile(p, append(append([]byte{}, orig...), branch.Bytes()...), 0o600)
		_, err := OpenWitness(p, dir, testPub())
		var fe *ForkError
		if !errors.As(err, &fe) || !fe.WitnessFork || fe.Kind != "root" || fe.TreeSize <= uint64(len(readAll(t, backup))) {
			t.Fatalf("OpenWitness(two branches) = %v, want a fork inside the witness", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := OpenWitness(filepath.Join(t.TempDir(), "none"), dir, testPub()); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("OpenWitness(missing) = %v, want an error saying so", err)
		}
	})
	t.Run("other key", func(t *testing.T) {
		if _, err := OpenWitness(wf, dir, ed25519Key(t, 3)); err == nil {
			t.Errorf("OpenWitness(other key) = nil, want an error")
		}
	})
	t.Run("shrunk while followed", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "w")
		os.WriteFile(p, branch.Bytes(), 0o600)
		w := openWitness(t, p, dir)
		if err := w.Check(ToEnd); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, branch.Bytes()[:len(branch.Bytes())/2], 0o600)
		if err := w.Follow(ToEnd); err == nil || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("Follow(shrunk witness) = %v, want an error", err)
		}
	})
}

func TestWitnessTornTail(t *testing.T) {
	dir := buildLog(t, 10, 0)
	wf := newWitnessFile(t)
	for _, tail := range []string{`{"seq":13,"time":"2026`, "{\"seq\":13,\"garbage\"}\n"} {
		f, _ := os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(tail)
		f.Close()
		w := openWitness(t, wf, dir)
		if err := w.Check(ToEnd); err != nil {
			t.Errorf("Check(torn tail %q) = %v, want nil", tail, err)
		}
		if w.TreeSize() != 12 {
			t.Errorf("TreeSize() = %d, want 12", w.TreeSize())
		}
		if err := os.Truncate(filepath.Join(dir, segmentName(1)), fileSize(t, dir)-int64(len(tail))); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// BenchmarkWitnessCheck measures the start-up check: one read of a log of
// 100,000 records against a witness holding its checkpoints.
func BenchmarkWitnessCheck(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(Options{Dir: dir, Signer: testKey(), NoSync: true, CheckpointEvery: 1000})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	for i := range n {
		if _, err := l.Append(context.Background(), intentRecord(i)); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	var buf bytes.Buffer
	if err := ExportCheckpoints(dir, &buf); err != nil {
		b.Fatal(err)
	}
	wf := filepath.Join(b.TempDir(), "witness")
	os.WriteFile(wf, buf.Bytes(), 0o600)
	b.ResetTimer()
	for b.Loop() {
		w, err := OpenWitness(wf, dir, testPub())
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Check(ToEnd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
}

// TestWitnessAfterPrune: segments removed by Prune take their records with
// them; the witness check starts at the anchor, compares chain heads until
// the first checkpoint that carries the tree, then roots, and still flags a
// log behind its witness.
func TestWitnessAfterPrune(t *testing.T) {
	dir := t.TempDir()
	wf := newWitnessFile(t)
	clock := fixedClock()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, SegmentSize: 3000, Now: clock})
	w := openWitness(t, wf, dir)
	if err := w.Check(l.Head().Seq); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 40)
	syncWitness(t, w, l)
	n, err := l.Prune(clock())
	if err != nil || n < 2 {
		t.Fatalf("Prune = %d, %v; want at least 2 segments removed", n, err)
	}
	appendN(t, l, 40, 10)
	syncWitness(t, w, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	syncClosed(t, w)
	a, err := readAnchor(dir)
	if err != nil || a == nil {
		t.Fatalf("anchor = %v, %v", a, err)
	}

	w2 := openWitness(t, wf, dir)
	if err := w2.Check(ToEnd); err != nil {
		t.Fatalf("Check(pruned log) = %v", err)
	}
	// Every entry past the anchor is compared: a head for each, and a root
	// for each from the first checkpoint after the anchor on.
	var heads, roots int
	b, _ := os.ReadFile(wf)
	ws, _ := ReadWitness(bytes.NewReader(b), testPub())
	var firstCP uint64
	for r, err := range Search(dir, Filter{Types: []Type{TypeCheckpoint}}) {
		if err != nil {
			t.Fatal(err)
		}
		firstCP = r.Checkpoint.Count
		break
	}
	for _, c := range ws {
		switch {
		case c.Count <= a.Seq:
		case c.Note && c.Count >= firstCP:
			roots++
		case !c.Note:
			heads++
		}
	}
	if w2.Checked() != heads+roots || roots == 0 {
		t.Errorf("Checked() = %d, want %d heads + %d roots", w2.Checked(), heads, roots)
	}

	// Cut the last records: the witness is ahead.
	segs, _ := listSegments(dir)
	last := segs[len(segs)-1]
	lines := readSeg(t, dir, last)
	writeSeg(t, dir, last, lines[:len(lines)-3])
	var re *RollbackError
	if err := openWitness(t, wf, dir).Check(ToEnd); !errors.As(err, &re) || re.LogRoot == "" {
		t.Errorf("Check(pruned, cut short) = %v, want a *RollbackError with the log's root", err)
	}
}

// BenchmarkAppendWitness measures 64 parallel appenders with and without a
// live witness following the log (Run), to show what following costs the
// writers. Run both sub-benchmarks in one invocation, several times, and
// compare them pairwise.
func BenchmarkAppendWitness(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("witness=%v", on), func(b *testing.B) {
			dir := b.TempDir()
			l, err := Open(Options{Dir: dir, Signer: testKey()})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if on {
				wf := filepath.Join(b.TempDir(), "witness")
				os.WriteFile(wf, nil, 0o600)
				w, err := OpenWitness(wf, dir, testPub())
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				go func() { done <- w.Run(ctx, l) }()
			} else {
				close(done)
			}
			r := intentRecord(1)
			b.SetParallelism(32) // 64 writers on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
