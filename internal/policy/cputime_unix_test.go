//go:build unix

package policy

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used. Benchmarks report
// it per operation besides wall time, because on a shared machine wall
// time mostly measures the other jobs.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
