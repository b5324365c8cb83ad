package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: the default soft limit applies only when GOMEMLIMIT
// is not set.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "off")
	setMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set the limit became %d", got)
	}
	// t.Setenv restores the variable afterwards; unset it for this part.
	unsetenv(t, "GOMEMLIMIT")
	setMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("limit = %d, want %d", got, defaultMemoryLimit)
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
