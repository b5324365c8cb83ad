package audit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestObserveCommits: every durable record is reported once, in the batch
// that flushed it, checkpoints included.
func TestObserveCommits(t *testing.T) {
	var mu sync.Mutex
	var batches []int
	l, err := Open(Options{Dir: t.TempDir(), WrapFile: ObserveCommits(nil, func(n int, took time.Duration) {
		if took < 0 {
			t.Errorf("negative commit time %v", took)
		}
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, err := l.Append(ctx, Record{Type: TypeEvent, Event: &Event{Kind: "test.observe", Actor: "op" + string(rune('a'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range batches {
		if n <= 0 {
			t.Errorf("batch of %d records reported", n)
		}
		total += n
	}
	// Close writes no checkpoint without a signer, so the reported records
	// are exactly the log's.
	if total != 5 || head.Seq != 5 {
		t.Errorf("reported %d records in %d batches, log head is seq %d", total, len(batches), head.Seq)
	}
	if len(batches) == 0 || len(batches) > 5 {
		t.Errorf("%d batches for 5 appends each waiting for durability", len(batches))
	}
}
