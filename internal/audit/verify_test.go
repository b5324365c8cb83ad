package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// buildLog writes n intent records with a checkpoint every 5 and closes the
// log. It returns the directory.
func buildLog(t *testing.T, n int, segSize int64) string {
	t.Helper()
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 5, SegmentSize: segSize, Now: fixedClock()})
	for i := range n {
		mustAppend(t, l, intentRecord(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readSeg(t *testing.T, dir, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeSeg(t *testing.T, dir, name string, lines []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rechain recomputes the hash of lines[from:] (and their links), as an
// attacker who can write the files but not sign would. With fixHeads it
// also rewrites checkpoint heads to the new chain.
func rechain(t *testing.T, lines []string, from int, fixHeads bool) {
	t.Helper()
	prev := genesisPrev
	if from > 0 {
		r, err := parseLine([]byte(lines[from-1]))
		if err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	for i := from; i < len(lines); i++ {
		r := parseUnchecked(t, lines[i])
		if r.Checkpoint != nil && fixHeads {
			r.Checkpoint.Head = prev
			r.Checkpoint.Count = r.Seq - 1
		}
		body, err := encodeBody(&r)
		if err != nil {
			t.Fatal(err)
		}
		line, h := appendLine(nil, r.Seq, r.Time, body, prev)
		lines[i] = strings.TrimSuffix(string(line), "\n")
		prev = h
	}
}

// parseUnchecked decodes a line whose hash may be wrong.
func parseUnchecked(t *testing.T, line string) Record {
	t.Helper()
	var r Record
	if err := strictUnmarshal([]byte(line), &r); err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
	if r.Intent != nil {
		r.Intent.RequestID = r.RequestID
	}
	return r
}

func TestVerifyTamper(t *testing.T) {
	seg := segmentName(1)
	tests := []struct {
		name     string
		edit     func(t *testing.T, lines []string) []string
		wantLine int
		wantSeq  uint64
		wantWhy  string
	}{
		{"change a field", func(t *testing.T, ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"quantity":0.01`, `"quantity":10`, 1)
			return ls
		}, 7, 7, "hash does not match"},
		{"change a field and rehash the chain", func(t *testing.T, ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"quantity":0.01`, `"quantity":10`, 1)
			rechain(t, ls, 6, false)
			return ls
		}, 12, 12, "checkpoint does not match the chain"},
		{"change a field, rehash, rewrite checkpoint heads", func(t *testing.T, ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"quantity":0.01`, `"quantity":10`, 1)
			rechain(t, ls, 6, true)
			return ls
		}, 12, 12, "checkpoint signature does not verify"},
		{"delete a line", func(t *testing.T, ls []string) []string {
			return slices.Delete(ls, 6, 7)
		}, 7, 8, "seq 8 follows seq 6"},
		{"delete a line and rehash", func(t *testing.T, ls []string) []string {
			ls = slices.Delete(ls, 6, 7)
			rechain(t, ls, 6, true)
			return ls
		}, 7, 8, "seq 8 follows seq 6"},
		{"swap two lines", func(t *testing.T, ls []string) []string {
			ls[6], ls[7] = ls[7], ls[6]
			return ls
		}, 7, 8, "seq 8 follows seq 6"},
		{"insert a copied line", func(t *testing.T, ls []string) []string {
			return slices.Insert(ls, 6, ls[2])
		}, 7, 3, "seq 3 follows seq 6"},
		{"insert a garbage line", func(t *testing.T, ls []string) []string {
			return slices.Insert(ls, 6, `{"seq":7}`)
		}, 7, 7, "malformed"},
		{"duplicate field with valid hash", func(t *testing.T, ls []string) []string {
			// a second "decision" that a lenient reader would take
			r := parseUnchecked(t, ls[6])
			body, _ := encodeBody(&r)
			body = bytes.Replace(body, []byte(`"decision":"allow"`), []byte(`"decision":"allow","decision":"deny"`), 1)
			line, _ := appendLine(nil, r.Seq, r.Time, body, r.Prev)
			ls[6] = strings.TrimSuffix(string(line), "\n")
			return ls
		}, 7, 7, "canonical"},
		{"edit a checkpoint signature", func(t *testing.T, ls []string) []string {
			ls[5] = strings.Replace(ls[5], `"signature":"`, `"signature":"AA`, 1)
			return ls
		}, 6, 6, "hash does not match"},
		{"edit a checkpoint signature and rehash", func(t *testing.T, ls []string) []string {
			r := parseUnchecked(t, ls[5])
			sig := []byte(r.Checkpoint.Signature)
			sig[3] ^= 1
			r.Checkpoint.Signature = string(sig)
			body, _ := encodeBody(&r)
			line, _ := appendLine(nil, r.Seq, r.Time, body, r.Prev)
			ls[5] = strings.TrimSuffix(string(line), "\n")
			rechain(t, ls, 6, false)
			return ls
		}, 6, 6, "checkpoint signature does not verify"},
		{"time moved backwards", func(t *testing.T, ls []string) []string {
			r := parseUnchecked(t, ls[6])
			r.Time = r.Time.Add(-time.Hour)
			body, _ := encodeBody(&r)
			line, _ := appendLine(nil, r.Seq, r.Time, body, r.Prev)
			ls[6] = strings.TrimSuffix(string(line), "\n")
			rechain(t, ls, 7, true)
			return ls
		}, 7, 7, "time goes backwards"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := buildLog(t, 20, 0)
			if _, err := Verify(dir, testPub()); err != nil {
				t.Fatalf("Verify(untouched) = %v", err)
			}
			writeSeg(t, dir, seg, tt.edit(t, readSeg(t, dir, seg)))
			_, err := Verify(dir, testPub())
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify(tampered) = %v, want *VerifyError", err)
			}
			if ve.Segment != seg || ve.Line != tt.wantLine || ve.Seq != tt.wantSeq || !strings.Contains(ve.Reason, tt.wantWhy) {
				t.Errorf("Verify(tampered) = %v, want %s line %d (seq %d): %s", err, seg, tt.wantLine, tt.wantSeq, tt.wantWhy)
			}
		})
	}
}

func exportWitness(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := ExportCheckpoints(dir, &buf); err != nil {
		t.Fatalf("ExportCheckpoints = %v", err)
	}
	w := filepath.Join(t.TempDir(), "witness")
	if err := os.WriteFile(w, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestVerifyTruncationWithWitness(t *testing.T) {
	dir := buildLog(t, 20, 0)
	witness := exportWitness(t, dir)
	// four checkpoints, each exported as a witness line and a C2SP note
	if rep, err := VerifyWithWitness(dir, testPub(), witness); err != nil || rep.Witnessed != 8 {
		t.Fatalf("VerifyWithWitness(untouched) = %+v, %v; want 8 witnessed checkpoints", rep, err)
	}
	seg := segmentName(1)
	lines := readSeg(t, dir, seg)
	writeSeg(t, dir, seg, lines[:len(lines)-4]) // cut the last 4 records
	// Without the witness, a clean cut is invisible.
	if _, err := Verify(dir, testPub()); err != nil {
		t.Fatalf("Verify(truncated, no witness) = %v, want nil", err)
	}
	_, err := VerifyWithWitness(dir, testPub(), witness)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("VerifyWithWitness(truncated) = %v, want *VerifyError", err)
	}
	if ve.Segment != seg || ve.Line != len(lines)-3 || ve.Seq != uint64(len(lines)-3) || !strings.Contains(ve.Reason, "truncated") {
		t.Errorf("VerifyWithWitness(truncated) = %v, want %s line %d (seq %d) truncated", err, seg, len(lines)-3, len(lines)-3)
	}
}

func TestVerifyForkWithWitness(t *testing.T) {
	dir := buildLog(t, 20, 0)
	witness := exportWitness(t, dir)
	// Rewrite history from line 3 on and re-sign nothing: even a rewrite
	// that fixes every link and checkpoint head disagrees with the witness.
	seg := segmentName(1)
	lines := readSeg(t, dir, seg)
	lines[2] = strings.Replace(lines[2], `"quantity":0.01`, `"quantity":10`, 1)
	rechain(t, lines, 2, true)
	writeSeg(t, dir, seg, lines)
	_, err := VerifyWithWitness(dir, testPub(), witness)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 6 {
		t.Errorf("VerifyWithWitness(forked) = %v, want an error at seq 6 (the first checkpoint after the rewrite)", err)
	}
}

func TestWitnessRejectsForgedCheckpoint(t *testing.T) {
	dir := buildLog(t, 10, 0)
	witness := exportWitness(t, dir)
	b, _ := os.ReadFile(witness)
	forged := bytes.Replace(b, []byte(" 5 "), []byte(" 4 "), 1)
	os.WriteFile(witness, forged, 0o600)
	if _, err := VerifyWithWitness(dir, testPub(), witness); err == nil {
		t.Errorf("VerifyWithWitness(forged witness) = nil, want error")
	}
	other := ed25519Key(t, 3)
	os.WriteFile(witness, b, 0o600)
	if _, err := VerifyWithWitness(dir, other, witness); err == nil {
		t.Errorf("VerifyWithWitness(wrong key) = nil, want error")
	}
}

func TestVerifyDeletedSegment(t *testing.T) {
	dir := buildLog(t, 40, 3000)
	segs, _ := listSegments(dir)
	if len(segs) < 3 {
		t.Fatalf("segments = %v, want at least 3", segs)
	}
	os.Remove(filepath.Join(dir, segs[1]))
	_, err := Verify(dir, testPub())
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Segment != segs[2] || ve.Line != 1 {
		t.Errorf("Verify(segment deleted) = %v, want an error at %s line 1", err, segs[2])
	}
}

func TestVerifyRenamedSegment(t *testing.T) {
	dir := buildLog(t, 40, 3000)
	segs, _ := listSegments(dir)
	last := segs[len(segs)-1]
	first, _ := segmentSeq(last)
	os.Rename(filepath.Join(dir, last), filepath.Join(dir, segmentName(first+1)))
	if _, err := Verify(dir, testPub()); err == nil {
		t.Errorf("Verify(renamed segment) = nil, want error")
	}
}

func TestVerifyTornTail(t *testing.T) {
	dir := buildLog(t, 10, 0)
	f, _ := os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":13,"time":"2026`)
	f.Close()
	rep, err := Verify(dir, testPub())
	if err != nil || !rep.TornTail {
		t.Errorf("Verify(torn tail) = %+v, %v; want TornTail and no error", rep, err)
	}
}

func TestExportCheckpointsAfter(t *testing.T) {
	dir := buildLog(t, 20, 0)
	var all, tail bytes.Buffer
	ExportCheckpoints(dir, &all)
	// The witness has the first two checkpoints (records 6 and 12).
	ExportCheckpointsAfter(dir, &tail, 12)
	// each checkpoint: its witness line, then its C2SP note (body, blank
	// line, signature) and a blank line: two pieces ending in a blank line
	entries := strings.SplitAfter(all.String(), "\n\n")
	if got, want := tail.String(), strings.Join(entries[4:], ""); got != want {
		t.Errorf("ExportCheckpointsAfter(12) = %q, want %q", got, want)
	}
}

// FuzzVerify mutates a good log (flip a byte, cut, swap, delete or
// duplicate lines) and checks that VerifyWithWitness rejects every change.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(0), uint16(100), uint8(1), uint16(0))
	f.Add(uint8(1), uint16(2000), uint8(0), uint16(0))
	f.Add(uint8(2), uint16(3), uint8(4), uint16(0))
	f.Add(uint8(3), uint16(5), uint8(0), uint16(0))
	f.Add(uint8(4), uint16(7), uint8(0), uint16(2))
	base := f.TempDir()
	l, err := Open(Options{Dir: base, Signer: testKey(), CheckpointEvery: 4, Now: fixedClock()})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(context.Background(), intentRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	var wb bytes.Buffer
	ExportCheckpoints(base, &wb)
	orig, _ := os.ReadFile(filepath.Join(base, segmentName(1)))
	f.Fuzz(func(t *testing.T, op uint8, a uint16, b uint8, c uint16) {
		data := append([]byte(nil), orig...)
		lines := strings.SplitAfter(string(data), "\n")
		lines = lines[:len(lines)-1] // drop the empty piece after the last newline
		switch op % 5 {
		case 0: // flip bits of one byte
			if b == 0 {
				return
			}
			data[int(a)%len(data)] ^= b
		case 1: // cut the file short
			data = data[:int(a)%len(data)]
		case 2: // swap two lines
			i, j := int(a)%len(lines), int(b)%len(lines)
			lines[i], lines[j] = lines[j], lines[i]
			data = []byte(strings.Join(lines, ""))
		case 3: // delete a line
			i := int(a) % len(lines)
			data = []byte(strings.Join(slices.Delete(lines, i, i+1), ""))
		case 4: // duplicate a line elsewhere
			i, j := int(a)%len(lines), int(c)%(len(lines)+1)
			data = []byte(strings.Join(slices.Insert(lines, j, lines[i]), ""))
		}
		if bytes.Equal(bytes.TrimSuffix(data, []byte("\n")), bytes.TrimSuffix(orig, []byte("\n"))) {
			return // no change (or only the final newline)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600)
		wf := filepath.Join(dir, "witness")
		os.WriteFile(wf, wb.Bytes(), 0o600)
		if rep, err := VerifyWithWitness(dir, testPub(), wf); err == nil {
			t.Errorf("VerifyWithWitness accepted a mutated log (op %d): %+v", op%5, rep)
		}
	})
}

func TestReportString(t *testing.T) {
	r := Report{Segments: 2, Records: 9, FirstSeq: 3, LastSeq: 11, Head: "ab", Checkpoints: 1,
		Anchor: &Anchor{Seq: 2}, Witnessed: 1, TornTail: true}
	want := "9 records (seq 3..11) in 2 segments, head ab, 1 checkpoints verified, anchored after seq 2, 1 witness checkpoints matched, incomplete final line"
	if got := r.String(); got != want {
		t.Errorf("Report.String() = %q, want %q", got, want)
	}
}
