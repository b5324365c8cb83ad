// Package battery holds the parts of keywarden's reliability and security
// battery (spec/security.md §4) that need the real binary: crash and
// durability under kill -9 (C), the process-level hygiene checks (H: core
// dumps off, secrets in locked memory, no secret in any output) and the
// SIGSTOP fault (F17). Its tests build cmd/keywarden into a temporary
// directory, run `keywarden serve` on loopback against a venue simulator
// served by the test, and drive it with signed orders.
//
// KEYWARDEN_BATTERY_LONG=1 runs the longer tier (more crash rounds).
package battery
