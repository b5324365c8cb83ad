//go:build !linux

package main

// harden has nothing to do where the process cannot be marked not
// dumpable; core dumps are still off (memguard sets RLIMIT_CORE to 0).
func harden() bool { return false }
