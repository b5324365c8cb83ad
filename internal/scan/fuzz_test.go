package scan

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzScanBytes: any input is scanned without panicking, and findings
// point inside it and never show more than four characters.
func FuzzScanBytes(f *testing.F) {
	for _, seed := range []string{
		"BINANCE_API_SECRET=abc\n",
		"okx:\n  apiKey: 00000000-0000-0000-0000-000000000000\n  passphrase: \"pw\n",
		"-----BEGIN EC PRIVATE KEY-----\\nMHcC\\n-----END EC PRIVATE KEY-----",
		"-----BEGIN PRIVATE KEY-----\n",
		"= : => ( , \"'\n\n\n",
		"kraken secret: " + strings.Repeat("A+/", 30) + "==\n",
		"password=\npassphrase:",
	} {
		f.Add([]byte(seed))
	}
	s := New(Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		lines := bytes.Count(in, []byte{'\n'}) + 1
		for _, fd := range s.ScanBytes("fuzz", in) {
			if fd.Line < 1 || fd.Line > lines || fd.Column < 1 || fd.Length <= 0 {
				t.Fatalf("finding at %d:%d (%d long) in %d lines", fd.Line, fd.Column, fd.Length, lines)
			}
			shown, _, _ := strings.Cut(fd.Redacted, "…")
			if len(shown) > 4 {
				t.Fatalf("redacted form %q shows more than four characters", fd.Redacted)
			}
		}
	})
}
