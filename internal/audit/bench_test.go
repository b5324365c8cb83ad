package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	for _, writers := range []int{1, 64} {
		rps, p50, p99 := rawGroupCommit(t, writers)
		t.Logf("bare group commit (same disk, same moment, 850 B records): writers=%d records/s=%.0f p50=%v p99=%v",
			writers, rps, p50, p99)
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

// rawGroupCommit is the floor the log is compared with: producers hand a
// fixed 850-byte record to one committer that writes and fdatasyncs each
// batch, with no encoding, hashing or chaining. Bounded like TestLoadReport.
func rawGroupCommit(t *testing.T, writers int) (float64, time.Duration, time.Duration) {
	f, err := os.Create(filepath.Join(t.TempDir(), "raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type req struct{ done chan struct{} }
	q := make(chan req, 4096)
	stop := make(chan struct{})
	rec := bytes.Repeat([]byte("x"), 849)
	rec = append(rec, '\n')
	go func() {
		var buf []byte
		var batch []req
		for {
			select {
			case r := <-q:
				batch = append(batch[:0], r)
			case <-stop:
				return
			}
		fill:
			for len(batch) < maxBatch {
				select {
				case r := <-q:
					batch = append(batch, r)
				default:
					break fill
				}
			}
			buf = buf[:0]
			for range batch {
				buf = append(buf, rec...)
			}
			f.Write(buf)
			dataSyncFile{f}.Sync()
			for _, r := range batch {
				r.done <- struct{}{}
			}
		}
	}()
	defer close(stop)
	deadline := time.Now().Add(2 * time.Second)
	var n atomic.Int64
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			r := req{done: make(chan struct{}, 1)}
			for n.Add(1) <= 200_000 && time.Now().Before(deadline) {
				t0 := time.Now()
				q <- r
				<-r.done
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	return float64(len(all)) / elapsed.Seconds(), all[len(all)/2], all[len(all)*99/100]
}
