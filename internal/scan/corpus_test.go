package scan

import (
	"context"
	"testing"
)

// TestFalsePositiveCorpus: realistic non-secrets (lockfile integrity
// hashes, go.sum, checksums, digests, commit ids, UUIDs in order logs,
// base64 images and attachments, certificates and public keys, elided and
// encrypted PEM keys, documentation examples and marked test vectors,
// references to environment variables) yield nothing.
func TestFalsePositiveCorpus(t *testing.T) {
	s := New(Options{})
	r, err := s.Scan(context.Background(), []string{"testdata/fp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		t.Errorf("false positive: %s:%d:%d %s %s", f.Source, f.Line, f.Column, f.Rule, f.Redacted)
	}
	if r.Files < 15 {
		t.Errorf("scanned %d files, want the whole corpus", r.Files)
	}
}
