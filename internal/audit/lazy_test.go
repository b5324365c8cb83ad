package audit

import (
	"context"
	"errors"
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
