//go:build race

package deribit

// raceEnabled: the race detector is on; sync.Pool then drops a quarter of
// what is put back, so allocation counts are not asserted.
const raceEnabled = true
