package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultMemoryLimit is the Go runtime's soft memory limit serve starts with
// when GOMEMLIMIT is not set: with the ~30 MiB of the binary's pages that
// are resident, it keeps a gateway like docs/performance.md's under the
// 150 MB RSS budget. It only makes the garbage collector run sooner when
// the heap, stacks and runtime together come near it; below it the
// collector paces as GOGC says.
//
// A fixed limit would make the collector run almost continuously on a
// gateway whose live memory is simply larger (many thousands of clients,
// bigger caches). So serve lets the limit follow the live heap
// (followMemoryLimit): it is raised whenever twice the live heap plus the
// runtime's other memory no longer fits under it, and the limit trims
// garbage only. GOMEMLIMIT, when set, is used as it is ("off" included).
const defaultMemoryLimit = 100 << 20

// defaultGCPercent is the garbage collector's pacing serve starts with when
// GOGC is not set: a collection when the heap has grown by twice the live
// heap instead of once (GOGC=100), so half as many collections and 4 %
// less CPU per request at 64 connections on the reference machine (docs/
// memory.md). The soft memory limit stays the ceiling: near it the
// collector runs as often as it must, never less often than GOGC=100
// would (the limit always leaves room for twice the live heap).
const defaultGCPercent = 200

// memoryCheckEvery is how often serve compares the live heap with the limit.
const memoryCheckEvery = 5 * time.Second

// setMemoryLimit sets defaultGCPercent unless the environment sets GOGC,
// and defaultMemoryLimit unless it sets GOMEMLIMIT (the runtime has already
// applied what the environment sets); it reports whether it set the limit.
func setMemoryLimit() bool {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return false
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	return true
}

// applyMemoryLimit is setMemoryLimit, then returns the memory the start-up
// freed (the passphrase KDF's blocks above all, 64 MiB by default) to the
// operating system; with the default limit it also starts following the
// live heap until ctx ends.
func applyMemoryLimit(ctx context.Context, log *slog.Logger) {
	follow := setMemoryLimit()
	debug.FreeOSMemory()
	if log != nil {
		log.Debug("memory limit", "bytes", debug.SetMemoryLimit(-1), "follows_live_heap", follow)
	}
	if follow {
		go followMemoryLimit(ctx, log, memoryCheckEvery)
	}
}

// followMemoryLimit raises the soft limit as nextMemoryLimit says, every
// interval, until ctx ends. It never lowers it.
func followMemoryLimit(ctx context.Context, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live, other := memoryUse()
		limit := debug.SetMemoryLimit(-1)
		if next := nextMemoryLimit(limit, live, other); next > limit {
			debug.SetMemoryLimit(next)
			if log != nil {
				log.Info("memory limit raised to follow the live heap", "limit_bytes", next, "live_heap_bytes", live)
			}
		}
	}
}

// nextMemoryLimit is the soft limit for a live heap of live bytes and other
// bytes of runtime memory outside the heap's objects (stacks, metadata):
// room for the heap to double between collections (GOGC's default), plus
// 8 MiB; never below limit.
func nextMemoryLimit(limit int64, live, other uint64) int64 {
	need := int64(2*live + other + 8<<20)
	return max(limit, need)
}

// memoryUse reads the live heap after the last collection and the runtime
// memory that is not heap (stacks, metadata, other).
func memoryUse() (live, other uint64) {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	heap := v[2] + v[3] + v[4] + v[5]
	if v[1] > heap {
		other = v[1] - heap
	}
	return v[0], other
}
