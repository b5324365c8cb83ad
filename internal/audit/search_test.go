package audit

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestSearch(t *testing.T) {
	dir := t.TempDir()
	clock := fixedClock()
	l := openTest(t, Options{Dir: dir, Now: clock, CheckpointEvery: 4})
	a := intentRecord(1)
	b := intentRecord(2)
	b.Intent.Client, b.Intent.Key, b.Intent.Venue = "kwc_bot2", "okx-main", "okx"
	b.Intent.Call.Scope = exchange.ScopeRead
	c := intentRecord(3)
	c.Intent.Decision = DecisionDeny
	mustAppend(t, l, a)
	mustAppend(t, l, Record{Outcome: &Outcome{RequestID: "req-1", Status: 200}})
	mustAppend(t, l, b)
	mustAppend(t, l, c)
	mustAppend(t, l, Record{Event: &Event{Kind: "panic", Actor: "ops"}})
	l.Close()
	all := readAll(t, dir)
	mid := all[2].Time // record 3

	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"everything", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"request", Filter{RequestID: "req-1"}, []uint64{1, 2}},
		{"client", Filter{Client: "kwc_bot2"}, []uint64{3}},
		{"key", Filter{Key: "binance-main"}, []uint64{1, 4}},
		{"venue", Filter{Venue: "okx"}, []uint64{3}},
		{"scope", Filter{Scope: "trade"}, []uint64{1, 4}},
		{"decision", Filter{Decision: DecisionDeny}, []uint64{4}},
		{"type", Filter{Types: []Type{TypeEvent, TypeCheckpoint}}, []uint64{5, 6, 7}},
		{"from", Filter{From: mid}, []uint64{3, 4, 5, 6, 7}},
		{"to", Filter{To: mid}, []uint64{1, 2}},
		{"nothing", Filter{Client: "nobody"}, nil},
		{"after seq", Filter{AfterSeq: 5}, []uint64{6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for r, err := range Search(dir, tt.f) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, r.Seq)
			}
			if !equalSeqs(got, tt.want) {
				t.Errorf("Search(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	// ExportJSONL writes the stored lines, which verify on their own.
	var buf bytes.Buffer
	if err := ExportJSONL(&buf, dir, Filter{}); err != nil {
		t.Fatal(err)
	}
	seg, _ := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if !bytes.Equal(buf.Bytes(), seg) {
		t.Errorf("ExportJSONL(all) differs from the segment")
	}
	buf.Reset()
	ExportJSONL(&buf, dir, Filter{RequestID: "req-1"})
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("ExportJSONL(req-1) wrote %d lines, want 2", n)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSearchStopsEarly(t *testing.T) {
	l := openTest(t, Options{})
	for i := range 5 {
		mustAppend(t, l, intentRecord(i))
	}
	n := 0
	for range Search(l.Dir(), Filter{}) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("iterations = %d, want 2", n)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		<-mu
		defer func() { mu <- struct{}{} }()
		now = now.Add(time.Minute)
		return now
	}
	l := openTest(t, Options{Dir: dir, Now: clock, SegmentSize: 3000, CheckpointEvery: 3})
	for i := range 30 {
		mustAppend(t, l, intentRecord(i))
	}
	witness := exportWitness(t, dir)
	segsBefore, _ := listSegments(dir)
	recs := readAll(t, dir)
	cut := recs[len(recs)/2].Time
	n, err := l.Prune(cut)
	if err != nil {
		t.Fatalf("Prune = %v", err)
	}
	segsAfter, _ := listSegments(dir)
	if n == 0 || len(segsAfter) != len(segsBefore)-n {
		t.Fatalf("Prune removed %d segments: %d before, %d after", n, len(segsBefore), len(segsAfter))
	}
	for r := range Search(dir, Filter{}) {
		if first, _ := segmentSeq(segsAfter[0]); r.Seq < first {
			t.Errorf("record %d survived pruning", r.Seq)
		}
	}
	// The rest still verifies, from the anchor, with and without witness.
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify after Prune = %v", err)
	}
	if rep.Anchor == nil || rep.FirstSeq != rep.Anchor.Seq+1 {
		t.Errorf("Verify after Prune = %+v, want it to start after the anchor", rep)
	}
	if _, err := VerifyWithWitness(dir, testPub(), witness); err != nil {
		t.Errorf("VerifyWithWitness after Prune = %v", err)
	}
	// Appends continue and the log reopens across the anchor.
	mustAppend(t, l, intentRecord(99))
	l.Close()
	l2 := openTest(t, Options{Dir: dir})
	mustAppend(t, l2, intentRecord(100))
	l2.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify after reopen = %v", err)
	}
	// A forged anchor is rejected.
	b, _ := os.ReadFile(filepath.Join(dir, anchorFile))
	os.WriteFile(filepath.Join(dir, anchorFile), bytes.Replace(b, []byte(`"seq":`), []byte(`"seq":1`), 1), 0o600)
	if _, err := Verify(dir, testPub()); err == nil {
		t.Errorf("Verify with a forged anchor = nil, want error")
	}
}

func TestPruneCrashBeforeRemoval(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, SegmentSize: 3000})
	for i := range 20 {
		mustAppend(t, l, intentRecord(i))
	}
	segs, _ := listSegments(dir)
	second, _ := segmentSeq(segs[1])
	// The anchor is written but the segments it covers are still there.
	var last Record
	for r := range Search(dir, Filter{}) {
		if r.Seq == second-1 {
			last = r
		}
	}
	a := &Anchor{Seq: last.Seq, Hash: last.Hash, Time: last.Time.UTC(), KeyID: KeyID(testPub())}
	a.Signature = b64(ed25519Sign(a))
	if err := writeAnchor(dir, a); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2 := openTest(t, Options{Dir: dir})
	mustAppend(t, l2, intentRecord(50))
	l2.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify with a covered segment left behind = %v", err)
	}
}

func ed25519Sign(a *Anchor) []byte {
	return ed25519.Sign(testKey(), anchorNote(a.Seq, a.Hash, a.Time))
}

func TestPruneKeepsUnforwarded(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, SegmentSize: 3000})
	for i := range 30 {
		mustAppend(t, l, intentRecord(i))
	}
	segs, _ := listSegments(dir)
	second, _ := segmentSeq(segs[1])
	// A sink has delivered only the first segment.
	if err := writeCursor(filepath.Join(dir, "cursor-siem"), second-1); err != nil {
		t.Fatal(err)
	}
	n, err := l.Prune(time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v, want 1 segment (the forwarded one)", n, err)
	}
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify after Prune = %v", err)
	}
}

func TestOrphans(t *testing.T) {
	l := openTest(t, Options{})
	mustAppend(t, l, intentRecord(1))
	mustAppend(t, l, intentRecord(2))
	deny := intentRecord(3)
	deny.Intent.Decision = DecisionDeny
	mustAppend(t, l, deny)
	mustAppend(t, l, Record{Outcome: &Outcome{RequestID: "req-1", Status: 200}})
	mustAppend(t, l, intentRecord(4))
	got, err := Orphans(l.Dir(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.RequestID)
	}
	if want := []string{"req-2", "req-4"}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("Orphans = %v, want %v", ids, want)
	}
}
