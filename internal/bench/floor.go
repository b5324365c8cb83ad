package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// The flush floor. A durable gateway makes each request wait for one
// fdatasync of the audit log before it forwards, so its added latency at
// one connection can never be lower than what the disk takes for a bare
// flush. The bench measures that floor itself, once per round, in the same
// directory and the same way the audit log writes (small records over a
// pre-zeroed, already flushed file), so a report says how much of the
// durable path's latency is the disk's.
const (
	floorRecord = 300     // bytes per write, about one audit record
	floorFile   = 4 << 20 // pre-zeroed region the writes go over
	floorFlush  = 200     // flushes per round, at most
	floorTime   = 2 * time.Second
)

// FlushSample is one round's bare write+fdatasync latencies.
type FlushSample struct {
	Round   int     `json:"round"`
	Flushes int     `json:"flushes"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
}

// measureFlush writes floorRecord bytes and fdatasyncs them, at most
// floorFlush times and for at most floorTime, over a file pre-zeroed in
// dir, and returns the latency percentiles.
func measureFlush(dir string, round int) (FlushSample, error) {
	f, err := os.CreateTemp(dir, "flush-floor-")
	if err != nil {
		return FlushSample{}, fmt.Errorf("bench: flush floor: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	zero := make([]byte, 1<<20)
	for off := 0; off < floorFile; off += len(zero) {
		if _, err := f.Write(zero); err != nil {
			return FlushSample{}, fmt.Errorf("bench: flush floor: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return FlushSample{}, fmt.Errorf("bench: flush floor: %w", err)
	}
	rec := make([]byte, floorRecord)
	for i := range rec {
		rec[i] = 'x'
	}
	rec[len(rec)-1] = '\n'
	lat := make([]time.Duration, 0, floorFlush)
	deadline := time.Now().Add(floorTime)
	var off int64
	for len(lat) < floorFlush && time.Now().Before(deadline) {
		start := time.Now()
		if _, err := f.WriteAt(rec, off); err != nil {
			return FlushSample{}, fmt.Errorf("bench: flush floor: %w", err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return FlushSample{}, fmt.Errorf("bench: flush floor: fdatasync %s: %w", filepath.Base(f.Name()), err)
		}
		lat = append(lat, time.Since(start))
		off += floorRecord
		if off+floorRecord > floorFile {
			off = 0
		}
	}
	slices.Sort(lat)
	return FlushSample{Round: round, Flushes: len(lat), P50us: us(pct(lat, 50)), P99us: us(pct(lat, 99))}, nil
}

// pct is the p-th percentile of sorted, indexed as internal/loadgen does.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}
