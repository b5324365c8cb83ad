//go:build !race

package exchangetest

const raceEnabled = false
