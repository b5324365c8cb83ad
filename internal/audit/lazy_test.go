package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestAppendLazy: lazy records are durable after the next flush or Close,
// share a flush with a waiting record, and never delay it.
func TestAppendLazy(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := l.AppendLazy(ctx, Record{RequestID: "r", Outcome: &Outcome{Status: 200 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := l.Append(ctx, Record{RequestID: "e", Event: &Event{Kind: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq < 4 {
		t.Errorf("durable record seq %d, want it after the 3 lazy ones queued before it", rec.Seq)
	}
	if err := l.AppendLazy(ctx, Record{RequestID: "last", Outcome: &Outcome{Status: 201}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	found := false
	for r := range Search(dir, Filter{RequestID: "last"}) {
		found = found || r.Outcome != nil
	}
	if !found {
		t.Error("a lazy record was not durable after Sync")
	}
	if err := l.Sync(ctx); err != nil { // nothing queued: still returns
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for r, err := range Search(dir, Filter{Types: []Type{TypeOutcome}}) {
		if err != nil {
			t.Fatal(err)
		}
		_ = r
		n++
	}
	if n != 4 {
		t.Errorf("%d outcome records after Close, want 4", n)
	}
	if err := l.AppendLazy(ctx, Record{RequestID: "x", Outcome: &Outcome{}}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendLazy after Close = %v, want ErrClosed", err)
	}
	if _, err := Verify(dir, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAppendLazyFailureFailsClosed: when a lazy record cannot be written,
// the log refuses every later Append.
func TestAppendLazyFailureFailsClosed(t *testing.T) {
	var ff *faultFile
	l := openTest(t, Options{WrapFile: func(f File) File { ff = &faultFile{File: f}; return ff }})
	ff.set(false, true)
	if err := l.AppendLazy(context.Background(), Record{RequestID: "r", Outcome: &Outcome{Status: 200}}); err != nil {
		t.Fatalf("AppendLazy = %v, want it queued", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Healthy() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := l.Append(context.Background(), intentRecord(1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append after a failed lazy write = %v, want ErrUnavailable", err)
	}
}

// TestMixedConcurrentAppend: appenders that each write a lazy record and
// then one they wait for, with Sync barriers among them, while the writer
// and the appenders themselves take turns committing: every acknowledged
// record and every accepted lazy one is in the log once, a lazy record
// accepted before an Append began precedes it in the chain, and the chain
// verifies.
func TestMixedConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 40, SegmentSize: 32 << 10})
	const writers, each = 12, 30
	ctx := context.Background()
	type pair struct{ lazyID, id string }
	acked := make(chan pair, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				lazyID, id := fmt.Sprintf("lazy-%d-%d", w, i), fmt.Sprintf("sync-%d-%d", w, i)
				if err := l.AppendLazy(ctx, Record{RequestID: lazyID, Outcome: &Outcome{Status: 200}}); err != nil {
					t.Errorf("AppendLazy = %v", err)
					return
				}
				if _, err := l.Append(ctx, Record{RequestID: id, Event: &Event{Kind: "test"}}); err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				if i%7 == w%7 {
					if err := l.Sync(ctx); err != nil {
						t.Errorf("Sync = %v", err)
						return
					}
				}
				acked <- pair{lazyID, id}
			}
		})
	}
	wg.Wait()
	close(acked)
	// The last lazy records are written by Close.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]uint64{}
	for r, err := range Search(dir, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.RequestID == "" {
			continue
		}
		if _, dup := seqOf[r.RequestID]; dup {
			t.Errorf("record %s written twice", r.RequestID)
		}
		seqOf[r.RequestID] = r.Seq
	}
	n := 0
	for p := range acked {
		n++
		ls, lok := seqOf[p.lazyID]
		s, ok := seqOf[p.id]
		switch {
		case !lok || !ok:
			t.Errorf("%s (%v) or %s (%v) missing from the log", p.lazyID, lok, p.id, ok)
		case ls >= s:
			t.Errorf("lazy record %s has seq %d, not before %s (seq %d) appended after it", p.lazyID, ls, p.id, s)
		}
	}
	if n != writers*each || len(seqOf) != 2*writers*each {
		t.Errorf("%d pairs acknowledged, %d records in the log; want %d and %d", n, len(seqOf), writers*each, 2*writers*each)
	}
	if _, err := Verify(dir, testPub()); err != nil {
		t.Fatalf("Verify = %v", err)
	}
}
