package admin

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/audit"
)

// TestExportedCheckpoints reads a real log's checkpoint export back: both
// kinds, every signature checked, and a wrong key or an edited line refused.
func TestExportedCheckpoints(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, CheckpointEvery: 2, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := l.Append(t.Context(), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := audit.ExportCheckpoints(dir, &buf); err != nil {
		t.Fatal(err)
	}
	cps, err := exportedCheckpoints(buf.Bytes(), pub)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, c := range cps {
		kinds[c.Kind]++
		if c.Count == 0 || c.Signature == "" || (c.Kind == "chain" && c.Head == "") || (c.Kind == "merkle" && c.Root == "") {
			t.Errorf("checkpoint %+v is missing a field", c)
		}
	}
	if kinds["chain"] == 0 || kinds["merkle"] == 0 {
		t.Fatalf("checkpoint kinds = %v, want chain and merkle ones (export:\n%s)", kinds, buf.String())
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := exportedCheckpoints(buf.Bytes(), other); err == nil {
		t.Error("an export read with another key was accepted")
	}
	// Change one character of a chain head.
	text := buf.String()
	i := strings.Index(text, "keywarden-checkpoint ")
	fields := strings.Fields(text[i : strings.IndexByte(text[i:], '\n')+i])
	head := fields[3]
	bad := strings.Replace(text, head, strings.Repeat("0", len(head)), 1)
	if _, err := exportedCheckpoints([]byte(bad), pub); err == nil {
		t.Error("an export with an edited chain head was accepted")
	}
}
