package audit

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPreallocatedSegment checks the on-disk shape of pre-allocation: while
// the log is open its segment is the records followed by zeros reserved
// ahead; readers (Verify, Search) see exactly the records; Close cuts the
// zeros; rotation leaves closed segments without a zero tail.
func TestPreallocatedSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, SegmentSize: 64 << 10, CheckpointEvery: 10})
	var last Receipt
	for i := range 20 {
		last = mustAppend(t, l, intentRecord(i))
	}
	seg := filepath.Join(dir, l.gen.Load().st.segName)
	z := l.gen.Load().st.z
	if z == nil {
		t.Fatal("no zeroer on a synced log")
	}
	z.extend() // the zeroer runs in the background: wait for a round
	if z.ahead() == 0 {
		t.Fatal("no zeroed space ahead of the data")
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		t.Fatalf("segment of %d bytes has no zero tail while open", len(b))
	}
	if b[end-1] != '\n' || len(bytes.TrimRight(b[end:], "\x00")) != 0 {
		t.Fatalf("segment is not records followed by zeros only")
	}
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify with a zero tail = %v", err)
	}
	if rep.LastSeq != last.Seq+1 && rep.LastSeq != last.Seq {
		t.Errorf("Verify last seq = %d, want %d or %d (checkpoint)", rep.LastSeq, last.Seq, last.Seq+1)
	}
	if rep.TornTail {
		t.Error("Verify reports a torn tail for a zero tail")
	}
	if n := len(readAll(t, dir)); uint64(n) != rep.Records {
		t.Errorf("Search found %d records, Verify %d", n, rep.Records)
	}
	// Enough to rotate a few times.
	for i := range 400 {
		mustAppend(t, l, intentRecord(100+i))
	}
	l.Close()
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments = %v, %v; want at least 3", segs, err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 || len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("closed segment %s has a zero tail or no final newline (%d bytes)", s, len(b))
		}
	}
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify after Close = %v", err)
	}
}

// TestSpareSegment: the next segment is prepared whole ahead of a rotation
// and used by it; records written to it verify like any others, and a
// spare left by a closed log is reused after Open.
func TestSpareSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, SegmentSize: 64 << 10, CheckpointEvery: 50})
	st := func() *state { return l.gen.Load().st }
	waitReady := func() {
		t.Helper()
		for i := 0; !st().spare.ready.Load(); i++ {
			if i == 6000 { // a bound on a hung test, not a timing assertion
				t.Fatal("the spare segment was never prepared")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	n := 0
	for st().segSize < 40<<10 { // past half the segment: the spare may be complete
		mustAppend(t, l, intentRecord(n))
		n++
	}
	waitReady()
	spareFile, err := os.Stat(filepath.Join(dir, spareName))
	if err != nil || spareFile.Size() != l.segmentLimit() {
		t.Fatalf("spare file = %v, %v; want %d bytes", spareFile, err, l.segmentLimit())
	}
	first := st().segName
	for st().segName == first {
		mustAppend(t, l, intentRecord(n))
		n++
	}
	if st().spare.taken != 1 {
		t.Fatalf("rotation did not use the prepared segment (taken %d)", st().spare.taken)
	}
	if fi, err := os.Stat(filepath.Join(dir, st().segName)); err != nil || !os.SameFile(fi, spareFile) {
		t.Errorf("the new segment is not the prepared file: %v", err)
	}
	// The next spare may already be under way, but as a new file.
	if fi, err := os.Stat(filepath.Join(dir, spareName)); err == nil && os.SameFile(fi, spareFile) {
		t.Error("spare still there after it was used")
	}
	// Fill the new segment past half again, let the spare be prepared,
	// close: the next Open keeps that spare.
	for st().segSize < 40<<10 {
		mustAppend(t, l, intentRecord(n))
		n++
	}
	waitReady()
	l.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	l = openTest(t, Options{Dir: dir, SegmentSize: 64 << 10, CheckpointEvery: 50})
	if !st().spare.ready.Load() {
		t.Error("a complete spare was not kept across Close and Open")
	}
	// An incomplete spare is removed at Open.
	l.Close()
	os.Truncate(filepath.Join(dir, spareName), 1000)
	l = openTest(t, Options{Dir: dir, SegmentSize: 64 << 10, CheckpointEvery: 50})
	if st().spare.ready.Load() {
		t.Error("an incomplete spare was taken as ready")
	}
	if fi, err := os.Stat(filepath.Join(dir, spareName)); err == nil && fi.Size() == 1000 {
		t.Error("an incomplete spare was left in place")
	}
	for range 200 {
		mustAppend(t, l, intentRecord(n))
		n++
	}
	l.Close()
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep.Records < uint64(n) {
		t.Errorf("Verify found %d records, want at least %d", rep.Records, n)
	}
}

// TestZeroerNeverOverwritesData races the zeroer against a writer that
// outruns it: every byte the writer reserved and wrote must stay.
func TestZeroerNeverOverwritesData(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const limit = 4 << 20
	z := startZeroer(f, 0, 0, limit, slog.New(slog.DiscardHandler))
	line := bytes.Repeat([]byte("r"), 4095)
	line = append(line, '\n')
	var off int64
	for off+int64(len(line)) <= limit {
		z.reserve(off, int64(len(line)))
		if _, err := f.WriteAt(line, off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(line))
	}
	z.close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < off {
		t.Fatalf("file has %d bytes, want at least %d", len(b), off)
	}
	if i := bytes.IndexByte(b[:off], 0); i >= 0 {
		t.Fatalf("zero byte at %d inside the written data (%d bytes)", i, off)
	}
}

// TestSparePacing: the spare is zeroed only as far as the active segment's
// fill allows (spareLead times its fraction, in whole chunks), and is
// flushed and ready once that reaches its size.
func TestSparePacing(t *testing.T) {
	dir := t.TempDir()
	const seg = 8 << 20
	size := int64(seg + 256<<10)
	s := newSpare(dir, size, seg, slog.New(slog.DiscardHandler))
	fileSize := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, spareName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	tests := []struct {
		fill      int64
		wantSize  int64
		wantReady bool
	}{
		{fill: 0, wantSize: 0},
		{fill: 1000, wantSize: spareChunk},         // any progress: one chunk
		{fill: seg / 8, wantSize: 9 * spareChunk},  // 2.06 MiB allowed
		{fill: seg / 8, wantSize: 9 * spareChunk},  // no progress, no zeroing
		{fill: seg / 4, wantSize: 17 * spareChunk}, // 4.125 MiB allowed
		{fill: seg / 2, wantSize: size, wantReady: true},
	}
	for i, tc := range tests {
		s.fill.Store(tc.fill)
		if err := s.advance(); err != nil {
			t.Fatalf("step %d: advance = %v", i, err)
		}
		if got := fileSize(); got != tc.wantSize {
			t.Errorf("step %d (fill %d): spare is %d bytes, want %d", i, tc.fill, got, tc.wantSize)
		}
		if got := s.ready.Load(); got != tc.wantReady {
			t.Errorf("step %d: ready = %v, want %v", i, got, tc.wantReady)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, spareName))
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimLeft(b, "\x00")) != 0 {
		t.Error("the spare holds non-zero bytes")
	}
	// Stopping half-way leaves no incomplete spare behind.
	os.Remove(filepath.Join(dir, spareName))
	s = startSpare(dir, size, seg, slog.New(slog.DiscardHandler))
	s.progress(seg / 8)
	s.close()
	if fi, err := os.Stat(filepath.Join(dir, spareName)); err == nil && fi.Size() != size {
		t.Errorf("an incomplete spare of %d bytes was left after close", fi.Size())
	}
}

// TestSegmentFlags: with segmentDSync a flushing log writes its segments
// with O_DSYNC (each write durable on return), through every rotation,
// while the zeroer of the segment resumed at Open writes through a handle
// without it; a log without flushes never uses it, nor does a default log
// (whose flush is the fdatasync the C2 check looks for).
func TestSegmentFlags(t *testing.T) {
	dsync := func(f *os.File) bool {
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fl&unix.O_DSYNC != 0
	}
	if l := openTest(t, Options{}); dsync(l.gen.Load().st.f) {
		t.Error("a default log opened its segment with O_DSYNC")
	}
	segmentDSync = true
	defer func() { segmentDSync = false }()
	l := openTest(t, Options{SegmentSize: 64 << 10})
	st := func() *state { return l.gen.Load().st }
	if !dsync(st().f) {
		t.Error("segment opened at Open without O_DSYNC")
	}
	if z := st().z; z == nil || dsync(z.f) || !z.owned {
		t.Error("the zeroer does not write through its own handle without O_DSYNC")
	}
	first := st().segName
	for i := 0; st().segName == first; i++ {
		mustAppend(t, l, intentRecord(i))
	}
	if !dsync(st().f) {
		t.Error("segment opened at rotation without O_DSYNC")
	}
	l2 := openTest(t, Options{NoSync: true})
	if dsync(l2.gen.Load().st.f) {
		t.Error("a log without flushes opened its segment with O_DSYNC")
	}
}
