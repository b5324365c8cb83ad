package audit

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
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
