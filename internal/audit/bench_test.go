package audit

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
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

// BenchmarkAppendSingleNoSync is one appender without flushes: what is
// left is the encoding, the write and the hand-over between the appender
// and whoever commits its record.
func BenchmarkAppendSingleNoSync(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir(), Signer: testKey(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
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

// TestLoadReport runs bounded loads (2 s or 300k records each, the log's
// after a warm-up, see logLoad) and prints
// records/s and acknowledgement latency percentiles, in rounds that
// interleave the log with a bare group commit on the same disk so the two
// can be compared pairwise on a noisy machine. log-nopre, log-oneshot and
// log-dsync are the log without pre-allocation, with spares zeroed at
// once (as before pacing) and with O_DSYNC writes instead of write +
// fdatasync (segmentDSync). It asserts nothing about
// speed; set KEYWARDEN_AUDIT_LOAD=1 to run it (KEYWARDEN_AUDIT_ROUNDS, default
// 3, sets the number of rounds).
func TestLoadReport(t *testing.T) {
	if os.Getenv("KEYWARDEN_AUDIT_LOAD") == "" {
		t.Skip("set KEYWARDEN_AUDIT_LOAD=1 to run the load report")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("KEYWARDEN_AUDIT_ROUNDS")); err == nil && n > 0 && n <= 20 {
		rounds = n
	}
	type cfg struct {
		name    string
		writers int
		noSync  bool
		raw     bool
		noPre   bool // the log without pre-allocation, as before it
		oneShot bool // the log with spares zeroed at once (spareOneShot)
		prezero bool // bare: records over pre-zeroed, flushed space
		dsync   bool // O_DSYNC writes instead of write + fdatasync (bare, or the log's segmentDSync)
	}
	cfgs := []cfg{
		{name: "bare", writers: 1, raw: true}, {name: "log", writers: 1},
		{name: "bare", writers: 64, raw: true},
		{name: "bare-pre", writers: 64, raw: true, prezero: true},
		{name: "bare-dsync", writers: 64, raw: true, prezero: true, dsync: true},
		{name: "log-nopre", writers: 64, noPre: true}, {name: "log-oneshot", writers: 64, oneShot: true},
		{name: "log", writers: 64}, {name: "log-dsync", writers: 64, dsync: true},
		{name: "log", writers: 16}, {name: "log", writers: 256},
		{name: "log-nosync", writers: 64, noSync: true},
	}
	for round := 1; round <= rounds; round++ {
		for _, c := range cfgs {
			var rps float64
			var p50, p99 time.Duration
			cpu0 := cpuTime()
			if c.raw {
				rps, p50, p99 = rawGroupCommit(t, c.writers, c.prezero, c.dsync)
			} else {
				spareOneShot, segmentDSync = c.oneShot, c.dsync
				rps, p50, p99 = logLoad(t, c.writers, c.noSync, c.noPre)
				spareOneShot, segmentDSync = false, false
			}
			cpu := cpuTime() - cpu0
			n := rps * 2 // both loads run for about 2 s
			t.Logf("round=%d %-11s writers=%-3d records/s=%7.0f p50=%8.1fµs p99=%8.1fµs cpu/record=%5.1fµs",
				round, c.name, c.writers, rps, micros(p50), micros(p99), micros(cpu)/n)
		}
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// loadSegmentSize is the segment size of the load report's logs: small
// enough that a run crosses rotations, as a long-running log does.
const loadSegmentSize = 16 << 20

// logLoad appends from writers goroutines for 2 s or 300k records, after
// a warm-up (unmeasured, 25k records or 10 s) that fills the first
// segment, so the run sees the steady state: segments prepared whole in
// advance rather than the first one, zeroed in place after Open.
func logLoad(t *testing.T, writers int, noSync, noPre bool) (float64, time.Duration, time.Duration) {
	l, err := Open(Options{Dir: t.TempDir(), Signer: testKey(), NoSync: noSync, NoPreallocate: noPre,
		SegmentSize: loadSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var warm sync.WaitGroup
	var wn atomic.Int64
	warmEnd := time.Now().Add(10 * time.Second)
	for w := range writers {
		warm.Go(func() {
			r := intentRecord(w)
			for wn.Add(1) <= 25_000 && time.Now().Before(warmEnd) {
				if _, err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	warm.Wait()
	const maxRecords = 300_000
	deadline := time.Now().Add(2 * time.Second)
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
	all := slices.Concat(lat...)
	slices.Sort(all)
	return float64(len(all)) / elapsed.Seconds(), all[len(all)/2], all[len(all)*99/100]
}

// rawGroupCommit is the floor the log is compared with: producers hand a
// fixed 850-byte record to one committer that writes and fdatasyncs each
// batch, with no encoding, hashing or chaining. Bounded like TestLoadReport.
// With prezero the file is first filled with 160 MiB of zeros (flushed),
// which the records then overwrite: the floor for a pre-allocated log.
// With dsync the file is opened O_DSYNC and each batch is one write, no
// fdatasync (the same guarantee, one system call less).
func rawGroupCommit(t *testing.T, writers int, prezero, dsync bool) (float64, time.Duration, time.Duration) {
	flags := os.O_CREATE | os.O_RDWR | os.O_TRUNC
	if dsync {
		flags |= syscall.O_DSYNC
	}
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "raw"), flags, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if prezero {
		if err := writeZeros(f, 0, 160<<20); err != nil {
			t.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
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
			if !dsync {
				dataSyncFile{File: f}.Sync()
			}
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

// timedFile records how long each flush of the log takes, split by whether
// the spare segment was being zeroed or flushed meanwhile.
type timedFile struct {
	File
	spare func() *spare
	mu    sync.Mutex
	quiet []time.Duration // the spare idle
	busy  []time.Duration // the spare being zeroed or flushed
}

func (f *timedFile) Sync() error {
	s := f.spare()
	busy := s != nil && s.busy.Load()
	t0 := time.Now()
	err := f.File.Sync()
	d := time.Since(t0)
	busy = busy || s != nil && s.busy.Load()
	f.mu.Lock()
	if busy {
		f.busy = append(f.busy, d)
	} else {
		f.quiet = append(f.quiet, d)
	}
	f.mu.Unlock()
	return err
}

// TestFlushReport prints the distribution of the log's flush times at 64
// writers (4 s or 400k records, after a warm-up past the first segment),
// split by whether the spare segment was being prepared meanwhile, next to
// the same load with spares zeroed at once (oneshot, spareOneShot) and on
// a segment zeroed whole before the run (400 MiB, no rotation and no
// zeroing in place; the spare is zeroed alongside, paced by the fill). Rounds
// interleave the two. Like TestLoadReport it asserts nothing about speed
// and runs only with KEYWARDEN_AUDIT_LOAD=1.
func TestFlushReport(t *testing.T) {
	if os.Getenv("KEYWARDEN_AUDIT_LOAD") == "" {
		t.Skip("set KEYWARDEN_AUDIT_LOAD=1 to run the flush report")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("KEYWARDEN_AUDIT_ROUNDS")); err == nil && n > 0 && n <= 20 {
		rounds = n
	}
	for round := 1; round <= rounds; round++ {
		for _, c := range []struct{ whole, oneShot bool }{{false, false}, {false, true}, {true, false}} {
			spareOneShot = c.oneShot
			flushLoad(t, round, c.whole)
			spareOneShot = false
		}
	}
}

func flushLoad(t *testing.T, round int, whole bool) {
	var l *Log
	tf := &timedFile{spare: func() *spare { return l.gen.Load().st.spare }}
	seg := int64(loadSegmentSize)
	if whole {
		seg = 400 << 20
	}
	l, err := Open(Options{Dir: t.TempDir(), Signer: testKey(), SegmentSize: seg,
		WrapFile: func(f File) File { tf.File = f; return tf }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st := l.gen.Load().st // only read while the writer is idle, or in its counters
	var wg sync.WaitGroup
	if whole {
		st.z.close()
		if err := writeZeros(st.f, st.segSize, l.segmentLimit()); err != nil {
			t.Fatal(err)
		}
		if err := fdatasync(st.f); err != nil {
			t.Fatal(err)
		}
		st.z = startZeroer(st.f, st.segSize, l.segmentLimit(), l.segmentLimit(), l.log)
	} else {
		var n atomic.Int64
		end := time.Now().Add(10 * time.Second)
		for w := range 64 { // warm up past the first segment (25k records or 10 s)
			wg.Go(func() {
				r := intentRecord(w)
				for n.Add(1) <= 25_000 && time.Now().Before(end) {
					if _, err := l.Append(context.Background(), r); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		tf.mu.Lock()
		tf.quiet, tf.busy = nil, nil
		tf.mu.Unlock()
	}
	var n atomic.Int64
	deadline := time.Now().Add(4 * time.Second)
	for w := range 64 {
		wg.Go(func() {
			r := intentRecord(w)
			for n.Add(1) <= 400_000 && time.Now().Before(deadline) {
				if _, err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	name := map[bool]string{false: "rotating", true: "whole"}[whole]
	if spareOneShot {
		name = "oneshot"
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	for _, c := range []struct {
		spare string
		d     []time.Duration
	}{{"idle", tf.quiet}, {"busy", tf.busy}} {
		if len(c.d) == 0 {
			continue
		}
		slices.Sort(c.d)
		q := func(p float64) float64 { return micros(c.d[int(float64(len(c.d)-1)*p)]) }
		t.Logf("round=%d %-8s spare=%-4s flushes=%5d p50=%7.0fµs p90=%7.0fµs p99=%7.0fµs max=%7.0fµs",
			round, name, c.spare, len(c.d), q(.5), q(.9), q(.99), q(1))
	}
}
