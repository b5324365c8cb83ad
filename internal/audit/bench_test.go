package audit

import (
	"context"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func benchLog(b *testing.B) *Log {
	b.Helper()
	l, err := Open(Options{Dir: b.TempDir(), Signer: testKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkAppendSingle is one appender: every record pays a full
// write + fdatasync.
func BenchmarkAppendSingle(b *testing.B) {
	l := benchLog(b)
	r := intentRecord(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel64 is 64 concurrent appenders sharing group
// commits; ns/op is per record.
func BenchmarkAppendParallel64(b *testing.B) {
	l := benchLog(b)
	r := intentRecord(1)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(64 / max(1, runtimeProcs()))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// runtimeProcs is GOMAXPROCS; SetParallelism multiplies by it.
func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// TestLoadReport runs a bounded load (64 writers, 3 s or 300k records) and
// prints records/s and acknowledgement latency percentiles. It asserts
// nothing about speed; set KEYWARDEN_AUDIT_LOAD=1 to run it.
func TestLoadReport(t *testing.T) {
	if os.Getenv("KEYWARDEN_AUDIT_LOAD") == "" {
		t.Skip("set KEYWARDEN_AUDIT_LOAD=1 to run the load report")
	}
	type cfg struct {
		writers int
		noSync  bool
	}
	for _, c := range []cfg{{1, false}, {16, false}, {64, false}, {256, false}, {64, true}} {
		writers := c.writers
		l, err := Open(Options{Dir: t.TempDir(), Signer: testKey(), NoSync: c.noSync})
		if err != nil {
			t.Fatal(err)
		}
		const maxRecords = 300_000
		deadline := time.Now().Add(3 * time.Second)
		var n atomic.Int64
		lat := make([][]time.Duration, writers)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range writers {
			wg.Go(func() {
				r := intentRecord(w)
				for n.Add(1) <= maxRecords && time.Now().Before(deadline) {
					t0 := time.Now()
					if _, err := l.Append(context.Background(), r); err != nil {
						t.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		l.Close()
		all := slices.Concat(lat...)
		slices.Sort(all)
		pct := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
		t.Logf("sync=%v writers=%d records=%d elapsed=%v records/s=%.0f p50=%v p99=%v p99.9=%v",
			!c.noSync, writers, len(all), elapsed.Round(time.Millisecond), float64(len(all))/elapsed.Seconds(),
			pct(0.50), pct(0.99), pct(0.999))
	}
}
