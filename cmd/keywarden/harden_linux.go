//go:build linux

package main

import "golang.org/x/sys/unix"

// harden marks the process not dumpable before any secret is read: no core
// file, and no ptrace or /proc/<pid>/mem access by other processes of the
// same user (root with CAP_SYS_PTRACE still can). It reports whether the
// kernel confirms it.
func harden() bool {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return false
	}
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return err == nil && v == 0
}
