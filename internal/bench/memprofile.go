package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// memProfileEvery is how often the gateway process checks its heap for a
// new peak while a memory profile is asked for.
const memProfileEvery = 500 * time.Millisecond

// watchMemory writes heap profiles of this process for the RSS mode's
// memory breakdown: path+".idle" at once, then path each time the heap in
// use reaches a new peak (1 MiB above the last one written), so path ends
// as the profile at the highest heap of the run. Beside each profile a
// ".txt" file gives the runtime's memory statistics, the goroutine count
// and /proc/self/smaps_rollup (anonymous against file-backed pages) at the
// same moment. It returns when ctx ends.
func watchMemory(ctx context.Context, path string) error {
	if err := writeMemProfile(path + ".idle"); err != nil {
		return err
	}
	var peak uint64
	t := time.NewTicker(memProfileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse < peak+1<<20 {
			continue
		}
		peak = ms.HeapInuse
		if err := writeMemProfile(path); err != nil {
			return err
		}
	}
}

// writeMemProfile writes the heap profile to path and the statistics to
// path+".txt", each through a temporary file so a reader never sees half
// of one.
func writeMemProfile(path string) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rollup, _ := os.ReadFile("/proc/self/smaps_rollup")
	stats := fmt.Sprintf("time %s\ngoroutines %d\n"+
		"heap_inuse %d\nheap_idle %d\nheap_released %d\nheap_alloc %d\nheap_objects %d\n"+
		"stack_inuse %d\nmspan_inuse %d\ngc_sys %d\nother_sys %d\nsys %d\nnum_gc %d\nnext_gc %d\n\n%s",
		time.Now().UTC().Format(time.RFC3339Nano), runtime.NumGoroutine(),
		ms.HeapInuse, ms.HeapIdle, ms.HeapReleased, ms.HeapAlloc, ms.HeapObjects,
		ms.StackInuse, ms.MSpanInuse, ms.GCSys, ms.OtherSys, ms.Sys, ms.NumGC, ms.NextGC, rollup)
	if err := writeAtomic(path+".txt", func(f *os.File) error {
		_, err := f.WriteString(stats)
		return err
	}); err != nil {
		return err
	}
	return writeAtomic(path, func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) })
}

func writeAtomic(path string, write func(*os.File) error) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
