package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWatchMemoryWritesIdleProfile: the idle heap profile is written (a
// gzipped protobuf, what pprof reads) and its statistics file names the
// goroutine count and the heap in use.
func TestWatchMemoryWritesIdleProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.heap")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := watchMemory(ctx, path); err != nil {
		t.Fatal(err)
	}
	prof, err := os.ReadFile(path + ".idle")
	if err != nil {
		t.Fatal(err)
	}
	if len(prof) < 100 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Errorf("idle profile is %d bytes and not gzip", len(prof))
	}
	b, err := os.ReadFile(path + ".idle.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"goroutines ", "heap_inuse ", "stack_inuse "} {
		if !strings.Contains(string(b), w) {
			t.Errorf("statistics lack %q:\n%s", w, b)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("peak profile written before any load: %v", err)
	}
}
