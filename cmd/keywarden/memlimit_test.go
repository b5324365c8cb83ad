package main

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestSetMemoryLimit: the default soft limit applies only when GOMEMLIMIT
// is not set.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	prevGC := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(prev); debug.SetGCPercent(prevGC) })

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "off")
	if setMemoryLimit() {
		t.Error("setMemoryLimit reported setting the limit with GOMEMLIMIT set")
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set the limit became %d", got)
	}
	// t.Setenv restores the variable afterwards; unset it for this part.
	unsetenv(t, "GOMEMLIMIT")
	if !setMemoryLimit() {
		t.Error("setMemoryLimit reported leaving the limit alone without GOMEMLIMIT")
	}
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("limit = %d, want %d", got, defaultMemoryLimit)
	}
}

// TestSetGCPercent: serve paces the collector at defaultGCPercent unless
// GOGC is set, which is then left as the runtime applied it.
func TestSetGCPercent(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })

	t.Setenv("GOGC", "100")
	setMemoryLimit()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the GC percent became %d, want it left at 100", got)
	}
	unsetenv(t, "GOGC")
	setMemoryLimit()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC the GC percent is %d, want %d", got, defaultGCPercent)
	}
}

// unsetenv removes key for the rest of the test (t.Setenv first, so it
// is restored afterwards).
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "")
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}

func TestNextMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		limit       int64
		live, other uint64
		want        int64
	}{
		{limit: 100 * mib, live: 20 * mib, other: 30 * mib, want: 100 * mib},    // fits: unchanged
		{limit: 100 * mib, live: 40 * mib, other: 30 * mib, want: 118 * mib},    // 2×40 + 30 + 8
		{limit: 100 * mib, live: 500 * mib, other: 60 * mib, want: 1068 * mib},  // a big gateway
		{limit: 2000 * mib, live: 500 * mib, other: 60 * mib, want: 2000 * mib}, // never lowered
	} {
		if got := nextMemoryLimit(tc.limit, tc.live, tc.other); got != tc.want {
			t.Errorf("nextMemoryLimit(%d MiB, live %d MiB, other %d MiB) = %d MiB, want %d MiB",
				tc.limit/mib, tc.live/mib, tc.other/mib, got/mib, tc.want/mib)
		}
	}
}

// TestFollowMemoryLimit: with a live heap above half the limit, the
// follower raises the limit above twice the live heap, so the collector is
// not left running against it.
func TestFollowMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const live = 48 << 20
	keep := make([]byte, live)
	for i := range keep {
		keep[i] = byte(i)
	}
	debug.SetMemoryLimit(32 << 20)
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); followMemoryLimit(ctx, nil, 5*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) < 2*live && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got < 2*live {
		t.Errorf("limit = %d MiB with %d MiB live, want at least %d MiB", got>>20, live>>20, 2*live>>20)
	}
	runtime.KeepAlive(keep)
}
