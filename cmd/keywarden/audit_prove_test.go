package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/merkle"
)

// TestAuditProveAndWitnessFork runs the audit CLI on a log written here:
// verify reports the Merkle checkpoints, prove prints a proof that checks
// out against the printed root, and verify --witness flags a witness file
// holding two roots for one tree size (a restored backup written on).
func TestAuditProveAndWitnessFork(t *testing.T) {
	c := newCLI(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	pin := base64.StdEncoding.EncodeToString(pub)
	dir := filepath.Join(c.dir, "data", "audit")
	write := func(from, n int) {
		l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, CheckpointEvery: 4})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := l.Append(context.Background(), audit.Record{Event: &audit.Event{Kind: "test", Actor: "op", Detail: map[string]string{"i": string(rune('a' + from + i))}}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 6)
	backup := t.TempDir()
	cp := func(from, to string) {
		os.RemoveAll(to)
		os.MkdirAll(to, 0o700)
		ents, _ := os.ReadDir(from)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(from, e.Name()))
			os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
		}
	}
	cp(dir, backup)
	write(6, 6)

	out := c.ok("", "audit", "verify", "--public-key", pin)
	if !strings.Contains(out, "OK") || !strings.Contains(out, "Merkle: ") || !strings.Contains(out, "proved consistent") {
		t.Fatalf("audit verify:\n%s", out)
	}
	out = c.ok("", "audit", "prove", "--record", "3", "--public-key", pin)
	var leaf, root merkle.Hash
	var proof []merkle.Hash
	var size uint64
	inProof := false
	dec := func(s string) merkle.Hash {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil || len(b) != 32 {
			t.Fatalf("bad hash in output %q", s)
		}
		return merkle.Hash(b)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "leaf hash "):
			leaf = dec(strings.TrimPrefix(line, "leaf hash "))
		case strings.HasPrefix(line, "root "):
			root = dec(strings.TrimPrefix(line, "root "))
		case strings.HasPrefix(line, "tree size "):
			for _, ch := range strings.TrimPrefix(line, "tree size ") {
				size = size*10 + uint64(ch-'0')
			}
		case strings.HasPrefix(line, "proof "):
			inProof = true
		case inProof && strings.HasPrefix(line, "  "):
			proof = append(proof, dec(line))
		default:
			inProof = false
		}
	}
	if err := merkle.VerifyInclusion(leaf, 2, size, proof, root); err != nil {
		t.Fatalf("the printed proof does not verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, audit.MerkleOrigin+"\n") || !strings.Contains(out, "\u2014 "+audit.MerkleOrigin+" ") {
		t.Errorf("prove output lacks the signed note:\n%s", out)
	}
	c.fails("not covered", "", "audit", "prove", "--record", "999", "--public-key", pin)

	witness := filepath.Join(c.dir, "witness")
	writeFile(t, witness, c.ok("", "audit", "checkpoints"), 0o600)
	if out := c.ok("", "audit", "verify", "--public-key", pin, "--witness", witness); !strings.Contains(out, "no fork") {
		t.Errorf("audit verify --witness (honest):\n%s", out)
	}
	// Restore the backup and write other records: same tree sizes, other roots.
	cp(backup, dir)
	write(20, 6)
	f, _ := os.OpenFile(witness, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(c.ok("", "audit", "checkpoints"))
	f.Close()
	c.fails("fork", "", "audit", "verify", "--public-key", pin, "--witness", witness)
}
