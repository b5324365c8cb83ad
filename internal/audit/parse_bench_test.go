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

// BenchmarkPrepare is the appender-side CPU per record: copy, redact,
// hash fields and encode the payload.
func BenchmarkPrepare(b *testing.B) {
	l := &Log{}
	b.ReportAllocs()
	for b.Loop() {
		r := intentRecord(1)
		if _, err := l.prepare(&r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendLine is the writer-side CPU per record: framing and
// SHA-256.
func BenchmarkAppendLine(b *testing.B) {
	r := intentRecord(1)
	l := &Log{}
	body, _ := l.prepare(&r)
	buf := make([]byte, 0, 4096)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendLine(buf[:0], 1, now, body, genesisPrev)
	}
}
