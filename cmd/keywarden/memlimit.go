package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// defaultMemoryLimit is the Go runtime's soft memory limit for the gateway
// process when GOMEMLIMIT is not set: with the ~30 MiB of the binary's
// pages that are resident, it keeps the process under the 150 MB RSS
// budget of docs/performance.md. It only makes the garbage collector run
// sooner when the heap, stacks and runtime together come near it; below it
// the collector paces as GOGC says. A gateway whose live memory is larger
// (many thousands of clients, bigger caches) needs a higher GOMEMLIMIT (or
// GOMEMLIMIT=off), or the collector runs almost continuously.
const defaultMemoryLimit = 100 << 20

// setMemoryLimit sets defaultMemoryLimit unless the environment sets
// GOMEMLIMIT (which the runtime has already applied; "off" included).
func setMemoryLimit() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// applyMemoryLimit is setMemoryLimit, then returns the memory the start-up
// freed (the passphrase KDF's blocks above all, 64 MiB by default) to the
// operating system.
func applyMemoryLimit(log *slog.Logger) {
	setMemoryLimit()
	debug.FreeOSMemory()
	if log != nil {
		log.Debug("memory limit", "bytes", debug.SetMemoryLimit(-1))
	}
}
