package monitor

import (
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func BenchmarkObserve(b *testing.B) {
	c := &clock{t0}
	m := newMonitor(c, Options{})
	o := obs("c1", "main", exchange.ScopeTrade, "allow", 200)
	b.ReportAllocs()
	for b.Loop() {
		c.advance(time.Millisecond)
		m.Observe(o)
	}
}
