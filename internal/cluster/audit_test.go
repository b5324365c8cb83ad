package cluster

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// writeAudit appends n event records to the audit log in dir, with a
// checkpoint every 5 records, and closes it (which writes one more).
func writeAudit(t *testing.T, dir string, priv ed25519.PrivateKey, n int) {
	t.Helper()
	l, err := audit.Open(audit.Options{Dir: dir, Signer: priv, HashKey: make([]byte, 32), CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test", Actor: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditWitnessDetectsTruncation collects two replicas' checkpoints in
// PostgreSQL; each log verifies against its own collected checkpoints, and
// a log cut short after collection no longer does.
func TestAuditWitnessDetectsTruncation(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{"r1": filepath.Join(t.TempDir(), "audit"), "r2": filepath.Join(t.TempDir(), "audit")}
	for name, dir := range dirs {
		writeAudit(t, dir, priv, 12)
		w, err := NewAuditWitness(ctx, db, name, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := w.Collect(ctx)
		if err != nil || n == 0 {
			t.Fatalf("Collect(%s) = %d, %v, want some checkpoints", name, n, err)
		}
		if n, err := w.Collect(ctx); err != nil || n != 0 {
			t.Fatalf("second Collect(%s) = %d, %v, want 0 new", name, n, err)
		}
	}
	reps, err := AuditReplicas(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reps {
		names = append(names, r.Replica)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "r1,r2" {
		t.Fatalf("replicas = %v, want r1,r2", names)
	}
	witness := func(name string) string {
		f := filepath.Join(t.TempDir(), name+".witness")
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := WriteAuditWitness(ctx, db, name, out); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for name, dir := range dirs {
		if _, err := audit.VerifyWithWitness(dir, pub, witness(name)); err != nil {
			t.Errorf("VerifyWithWitness(%s) = %v, want nil", name, err)
		}
	}
	// Cut r1's log short: drop its last 4 lines.
	segs, err := filepath.Glob(filepath.Join(dirs["r1"], "seg-*.jsonl"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v, %v", segs, err)
	}
	last := segs[len(segs)-1]
	raw, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	if err := os.WriteFile(last, []byte(strings.Join(lines[:len(lines)-5], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(dirs["r1"], pub); err != nil {
		t.Fatalf("Verify of the truncated log alone = %v; the test needs a truncation that only a witness catches", err)
	}
	if _, err := audit.VerifyWithWitness(dirs["r1"], pub, witness("r1")); err == nil {
		t.Error("VerifyWithWitness of a truncated log = nil, want an error")
	}
	if _, err := audit.VerifyWithWitness(dirs["r2"], pub, witness("r2")); err != nil {
		t.Errorf("VerifyWithWitness(r2) after r1 was cut = %v, want nil", err)
	}
}
