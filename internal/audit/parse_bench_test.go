package audit

import (
	"testing"
	"time"
)

// BenchmarkParseLine is the per-record cost of reading the log back
// (recovery, Verify, Search).
func BenchmarkParseLine(b *testing.B) {
	r := intentRecord(1)
	l := &Log{}
	body, err := l.prepare(&r)
	if err != nil {
		b.Fatal(err)
	}
	line, _ := appendLine(nil, 1, time.Now(), body, genesisPrev)
	line = line[:len(line)-1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
