package audit

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/merkle"
)

// recordLeaves computes the leaf hashes of every record in dir
// independently of the log's own tree.
func recordLeaves(t *testing.T, dir string) ([]merkle.Hash, []Record) {
	t.Helper()
	recs := readAll(t, dir)
	var leaves []merkle.Hash
	for _, r := range recs {
		b, err := hex.DecodeString(r.Hash)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, merkle.LeafHash(b))
	}
	return leaves, recs
}

// TestMerkleCheckpoints: every checkpoint carries the root of the tree over
// the records it covers (computed here from scratch), survives Close/Open
// and rotation, and Verify proves each consistent with the one before.
func TestMerkleCheckpoints(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 { // Close and reopen: the tree resumes from disk
		l := openTest(t, Options{Dir: dir, CheckpointEvery: 7, SegmentSize: 3000})
		for i := range 25 {
			mustAppend(t, l, intentRecord(round*100+i))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if segs, _ := listSegments(dir); len(segs) < 4 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	leaves, recs := recordLeaves(t, dir)
	ckpts := 0
	for _, r := range recs {
		cp := r.Checkpoint
		if cp == nil {
			continue
		}
		ckpts++
		want := merkle.Root(leaves[:cp.Count])
		if cp.Root != hex.EncodeToString(want[:]) {
			t.Errorf("checkpoint at seq %d: root %s, want %x", r.Seq, cp.Root, want)
		}
		if !verifyNoteSig(testPub(), merkleNote(cp.Count, want), cp.NoteSig) {
			t.Errorf("checkpoint at seq %d: note signature does not verify", r.Seq)
		}
	}
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep.MerkleCheckpoints != ckpts || rep.Consistency != ckpts-1 || ckpts < 10 {
		t.Errorf("Verify: %d Merkle checkpoints, %d consistency proofs; want %d and %d", rep.MerkleCheckpoints, rep.Consistency, ckpts, ckpts-1)
	}
	last := recs[len(recs)-1].Checkpoint
	if last == nil || rep.TreeSize != last.Count || rep.Root != last.Root {
		t.Errorf("Verify tree size %d root %s, want the last checkpoint's", rep.TreeSize, rep.Root)
	}
	// A checkpoint note with a wrong root and a resigned witness line still
	// fails: the root is recomputed from the records.
	bad := *last
	bad.Root = strings.Repeat("ab", 32)
	if _, err := compactFromCheckpoint(&bad); err == nil {
		t.Error("a checkpoint whose tree does not hash to its root was accepted")
	}
}

func TestProveRecord(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 6})
	for i := range 30 {
		mustAppend(t, l, intentRecord(i))
	}
	l.Close()
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatal(err)
	}
	leaves, _ := recordLeaves(t, dir)
	root := merkle.Root(leaves[:rep.TreeSize])
	for seq := uint64(1); seq <= rep.TreeSize; seq++ {
		p, err := ProveRecord(dir, testPub(), seq)
		if err != nil {
			t.Fatalf("ProveRecord(%d) = %v", seq, err)
		}
		// checked here with the merkle package directly, against a root
		// computed from scratch
		if err := merkle.VerifyInclusion(leaves[seq-1], seq-1, rep.TreeSize, p.Proof, root); err != nil {
			t.Errorf("proof of %d does not verify: %v", seq, err)
		}
		if !strings.HasPrefix(p.Note, MerkleOrigin+"\n") || !strings.Contains(p.Note, "\n\n\u2014 "+MerkleOrigin+" ") {
			t.Errorf("note = %q", p.Note)
		}
		if len(p.Proof) > 0 {
			q := p
			q.Proof = append([]merkle.Hash(nil), p.Proof...)
			q.Proof[0][0] ^= 1
			if q.Verify() == nil {
				t.Errorf("proof of %d with a flipped byte verified", seq)
			}
		}
		q := p
		q.Seq = seq%rep.TreeSize + 1
		if q.Verify() == nil {
			t.Errorf("proof of %d verified for record %d", seq, q.Seq)
		}
	}
	if _, err := ProveRecord(dir, testPub(), rep.TreeSize+1); err == nil {
		t.Error("ProveRecord past the latest checkpoint succeeded")
	}
	if _, err := ProveRecord(dir, testPub(), 0); err == nil {
		t.Error("ProveRecord(0) succeeded")
	}
}

// TestWitnessFork (C3): a backup restored and written on produces, for the
// same tree size, a root different from the one a witness saw earlier.
// A witness file holding both is flagged, and so is the restored log
// against the earlier witness.
func TestWitnessFork(t *testing.T) {
	dir := t.TempDir()
	backup := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	for i := range 10 {
		mustAppend(t, l, intentRecord(i))
	}
	l.Close()
	copyDir(t, dir, backup)
	l = openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	for i := range 10 {
		mustAppend(t, l, intentRecord(100+i))
	}
	l.Close()
	var witness bytes.Buffer
	if err := ExportCheckpoints(dir, &witness); err != nil {
		t.Fatal(err)
	}
	wf := filepath.Join(t.TempDir(), "witness")
	os.WriteFile(wf, witness.Bytes(), 0o600)
	if _, err := VerifyWithWitness(dir, testPub(), wf); err != nil {
		t.Fatalf("VerifyWithWitness(honest) = %v", err)
	}
	// Restore the backup and keep writing other records.
	os.RemoveAll(dir)
	copyDir(t, backup, dir)
	l = openTest(t, Options{Dir: dir, CheckpointEvery: 5, Now: fixedClock()})
	for i := range 10 {
		mustAppend(t, l, intentRecord(200+i))
	}
	l.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Fatalf("the restored log is self-consistent, Verify = %v", err)
	}
	if _, err := VerifyWithWitness(dir, testPub(), wf); err == nil || !strings.Contains(err.Error(), "forked") {
		t.Errorf("VerifyWithWitness(restored log, old witness) = %v, want a fork error", err)
	}
	// The witness keeps appending what the restored log exports.
	f, _ := os.OpenFile(wf, os.O_APPEND|os.O_WRONLY, 0)
	if err := ExportCheckpoints(dir, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err := VerifyWithWitness(dir, testPub(), wf)
	if err == nil || !strings.Contains(err.Error(), "fork: the witness holds two different") {
		t.Errorf("VerifyWithWitness(witness with two roots) = %v, want the fork named", err)
	}
	// Notes only (as a C2SP witness would keep them) are enough.
	var notes strings.Builder
	b, _ := os.ReadFile(wf)
	for _, block := range strings.SplitAfter(string(b), "\n\n") {
		if strings.HasPrefix(block, witnessTag) {
			block = block[strings.Index(block, "\n")+1:]
		}
		notes.WriteString(block)
	}
	ws, err := ReadWitness(strings.NewReader(notes.String()), testPub())
	if err != nil || len(ws) == 0 {
		t.Fatalf("ReadWitness(notes only) = %d, %v", len(ws), err)
	}
	if err := checkForks(ws); err == nil {
		t.Error("notes with two roots for one size: no fork reported")
	}
}

func TestReadWitnessRejectsBadNotes(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 3})
	for i := range 3 {
		mustAppend(t, l, intentRecord(i))
	}
	l.Close()
	var buf bytes.Buffer
	ExportCheckpoints(dir, &buf)
	text := buf.String()
	note := text[strings.Index(text, MerkleOrigin+"\n"):]
	if _, err := ReadWitness(strings.NewReader(note), testPub()); err != nil {
		t.Fatalf("ReadWitness(good note) = %v", err)
	}
	lines := strings.Split(note, "\n")
	for name, mut := range map[string]func([]string){
		"root changed":      func(l []string) { l[2] = "AAAA" + l[2][4:] },
		"size changed":      func(l []string) { l[1] += "0" },
		"signature changed": func(l []string) { l[4] = l[4][:len(l[4])-6] + "AAAAA=" },
		"signature dropped": func(l []string) { l[4] = "" },
		"other key":         func(l []string) { l[4] = strings.Replace(l[4], MerkleOrigin, "someone.else", 1) },
	} {
		m := append([]string(nil), lines...)
		mut(m)
		if _, err := ReadWitness(strings.NewReader(strings.Join(m, "\n")), testPub()); err == nil {
			t.Errorf("ReadWitness(%s) accepted", name)
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o700)
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
