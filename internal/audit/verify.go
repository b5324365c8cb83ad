package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/merkle"
)

// checkpointOrigin names the log in checkpoint notes and witness lines.
const checkpointOrigin = "keywarden.audit/v1"

// checkpointNote is the exact text a checkpoint signature covers, in the
// shape of a C2SP checkpoint body: origin, tree size, head hash (base64),
// then a timestamp extension line.
func checkpointNote(count uint64, head string, t time.Time) []byte {
	h, _ := hex.DecodeString(head)
	return fmt.Appendf(nil, "%s\n%d\n%s\ntime %s\n", checkpointOrigin, count,
		base64.StdEncoding.EncodeToString(h), t.UTC().Format(timeFormat))
}

// anchorNote is the exact text an anchor signature covers.
func anchorNote(seq uint64, hash string, t time.Time) []byte {
	return fmt.Appendf(nil, "%s anchor\n%d\n%s\ntime %s\n", checkpointOrigin, seq, hash, t.UTC().Format(timeFormat))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// KeyID returns the short identifier of a checkpoint key: the first four
// bytes of SHA-256 over the public key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:4])
}

func verifySig(pub ed25519.PublicKey, msg []byte, sig string) bool {
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, msg, b)
}

// VerifyError names the first record that fails verification.
type VerifyError struct {
	Segment string // segment file name
	Line    int    // 1-based line in the segment
	Seq     uint64 // the record's seq when it could be read, else the expected one
	Reason  string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: verify: %s line %d (seq %d): %s", e.Segment, e.Line, e.Seq, e.Reason)
}

// Report summarises a verified log.
type Report struct {
	Segments    int
	Records     uint64 // records present, checkpoints included
	FirstSeq    uint64
	LastSeq     uint64
	Head        string // hash of the last record
	Checkpoints int    // checkpoint records whose signature verified
	Anchor      *Anchor
	// TornTail is set when the last segment ends in an incomplete line: a
	// write in progress, or a crash that Open will repair.
	TornTail bool
	// Witnessed is the number of witness checkpoints checked against the log.
	Witnessed int
	// MerkleCheckpoints counts checkpoints whose Merkle root matched the
	// records (and whose note signature verified, given a key);
	// Consistency counts consecutive pairs of them proved consistent.
	MerkleCheckpoints int
	Consistency       int
	// TreeSize and Root are the latest Merkle checkpoint's (0 and "" if
	// there is none).
	TreeSize uint64
	Root     string
}

// String summarises the report in one line.
func (r Report) String() string {
	s := fmt.Sprintf("%d records (seq %d..%d) in %d segments, head %s, %d checkpoints verified",
		r.Records, r.FirstSeq, r.LastSeq, r.Segments, r.Head, r.Checkpoints)
	if r.Anchor != nil {
		s += fmt.Sprintf(", anchored after seq %d", r.Anchor.Seq)
	}
	if r.MerkleCheckpoints > 0 {
		s += fmt.Sprintf(", %d Merkle checkpoints (%d consistency proofs)", r.MerkleCheckpoints, r.Consistency)
	}
	if r.Witnessed > 0 {
		s += fmt.Sprintf(", %d witness checkpoints matched", r.Witnessed)
	}
	if r.TornTail {
		s += ", incomplete final line"
	}
	return s
}

// Verify checks the log in dir: every record's hash, the links between
// records and across segments, contiguous sequence numbers, non-decreasing
// times, and that every checkpoint matches the chain and carries a valid
// signature by pub (signatures are not checked when pub is nil). It detects
// any edit, deletion, reordering or insertion; cutting records off the end
// is only detectable against checkpoints held elsewhere (VerifyWithWitness).
// The error is a *VerifyError naming the first bad record.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	return verify(dir, pub, nil)
}

// VerifyWithWitness is Verify plus a check of the log against the checkpoints
// in witnessFile (as written by ExportCheckpoints): every witness checkpoint
// must be signed by pub and name a record the log holds, with the same hash.
// A log cut short, rewritten or forked after a checkpoint was exported fails.
func VerifyWithWitness(dir string, pub ed25519.PublicKey, witnessFile string) (Report, error) {
	if pub == nil {
		return Report{}, errors.New("audit: verify: a witness check needs the checkpoint public key")
	}
	f, err := os.Open(witnessFile)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	ws, err := ReadWitness(f, pub)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	if err := checkForks(ws); err != nil {
		return Report{}, err
	}
	return verify(dir, pub, ws)
}

func verify(dir string, pub ed25519.PublicKey, witness []WitnessCheckpoint) (Report, error) {
	var rep Report
	c := chain{hash: genesisPrev}
	a, err := readAnchor(dir)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if a != nil {
		if pub != nil && !verifySig(pub, anchorNote(a.Seq, a.Hash, a.Time), a.Signature) {
			return rep, &VerifyError{Segment: anchorFile, Line: 1, Seq: a.Seq, Reason: "anchor signature does not verify"}
		}
		c.seq, c.hash, c.time = a.Seq, a.Hash, a.Time
		rep.Anchor = a
	}
	// Witness checkpoints by the seq of the checkpoint record itself, which
	// the writer always puts right after the record it covers.
	want := map[uint64][]WitnessCheckpoint{}
	for _, w := range witness {
		want[w.Count+1] = append(want[w.Count+1], w)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	segs = liveSegments(segs, a)
	rep.Segments = len(segs)
	lastSeg, lastLine := "", 0
	checkWitness := func(r *Record, seg string, line int) error {
		for _, w := range want[r.Seq] {
			cp := r.Checkpoint
			if w.Note {
				if cp == nil || cp.Count != w.Count || cp.Root != w.Root {
					return &VerifyError{Segment: seg, Line: line, Seq: r.Seq,
						Reason: fmt.Sprintf("differs from the witness Merkle checkpoint for tree size %d (log rewritten or forked)", w.Count)}
				}
				rep.Witnessed++
				continue
			}
			if cp == nil || cp.Count != w.Count || cp.Head != w.Head || cp.Signature != w.Signature {
				return &VerifyError{Segment: seg, Line: line, Seq: r.Seq,
					Reason: fmt.Sprintf("differs from the witness checkpoint for %d records (log rewritten or forked)", w.Count)}
			}
			rep.Witnessed++
		}
		delete(want, r.Seq)
		return nil
	}
	mv := merkleVerifier{pub: pub}
	if a == nil {
		mv.tree, mv.fromGenesis = &merkle.Compact{}, true
	}
	for i, name := range segs {
		first, _ := segmentSeq(name)
		lastSeg, lastLine = name, 0
		err := readLines(filepath.Join(dir, name), func(line []byte, n int, off int64, complete bool) error {
			lastLine = n
			if !complete && i == len(segs)-1 {
				if _, err := parseLine(line); err != nil {
					rep.TornTail = true
					lastLine = n - 1
					return nil
				}
			}
			r, err := parseLine(line)
			if err != nil {
				return &VerifyError{Segment: name, Line: n, Seq: c.seq + 1, Reason: err.Error()}
			}
			if n == 1 && r.Seq != first {
				return &VerifyError{Segment: name, Line: n, Seq: r.Seq,
					Reason: fmt.Sprintf("segment name says first seq %d", first)}
			}
			if err := c.check(&r); err != nil {
				return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: err.Error()}
			}
			if cp := r.Checkpoint; cp != nil && pub != nil {
				if !verifySig(pub, checkpointNote(cp.Count, cp.Head, r.Time), cp.Signature) {
					return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: "checkpoint signature does not verify"}
				}
				rep.Checkpoints++
			}
			if err := mv.record(&r); err != nil {
				return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: err.Error()}
			}
			if err := checkWitness(&r, name, n); err != nil {
				return err
			}
			c.advance(&r)
			if rep.FirstSeq == 0 {
				rep.FirstSeq = r.Seq
			}
			rep.Records++
			return nil
		})
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				return rep, err
			}
			return rep, fmt.Errorf("audit: verify: %s: %w", name, err)
		}
	}
	rep.LastSeq, rep.Head = c.seq, c.hash
	rep.MerkleCheckpoints, rep.Consistency = mv.checkpoints, mv.consistency
	if mv.last != nil {
		rep.TreeSize, rep.Root = mv.last.size, hex.EncodeToString(mv.last.root[:])
	}
	for seq, ws := range want {
		if a != nil && seq <= a.Seq {
			continue // pruned away: the signed anchor stands in for it
		}
		if seq <= c.seq {
			continue // visited: every visited seq was checked and deleted
		}
		if lastSeg == "" {
			lastSeg = "(no segments)"
		}
		return rep, &VerifyError{Segment: lastSeg, Line: lastLine + 1, Seq: c.seq + 1,
			Reason: fmt.Sprintf("record missing: the log ends at seq %d but the witness holds a checkpoint for %d records (log truncated)", c.seq, ws[0].Count)}
	}
	return rep, nil
}

// WitnessCheckpoint is one exported checkpoint: a witness line (chain head)
// or, with Note set, a C2SP signed checkpoint note (Merkle root).
type WitnessCheckpoint struct {
	Count     uint64 // records covered; the tree size for a note
	Head      string
	Time      time.Time
	KeyID     string
	Signature string
	Note      bool
	Root      string // hex Merkle root (notes)
	Line      int    // where it starts in the witness file
}

// witnessTag starts every witness line.
const witnessTag = "keywarden-checkpoint"

// String returns the checkpoint's witness line (without newline):
//
//	keywarden-checkpoint keywarden.audit/v1 <count> <head hex> <time> <key id> <signature base64>
func (w WitnessCheckpoint) String() string {
	return fmt.Sprintf("%s %s %d %s %s %s %s", witnessTag, checkpointOrigin, w.Count, w.Head,
		w.Time.UTC().Format(timeFormat), w.KeyID, w.Signature)
}

// ReadWitness parses witness lines and C2SP checkpoint notes and checks
// each signature with pub (a note needs a signature line by pub's key;
// others are ignored, as a C2SP note may carry cosignatures). Blank lines
// and lines starting with '#' are ignored.
func ReadWitness(r io.Reader, pub ed25519.PublicKey) ([]WitnessCheckpoint, error) {
	var out []WitnessCheckpoint
	sc := bufio.NewScanner(r)
	var note []string // lines of the note being read
	noteStart := 0
	endNote := func() error {
		if note == nil {
			return nil
		}
		w, err := parseNote(note, pub)
		if err != nil {
			return fmt.Errorf("witness line %d: %w", noteStart, err)
		}
		w.Line = noteStart
		out = append(out, w)
		note = nil
		return nil
	}
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if note != nil {
			// body lines up to a blank line, then signature lines
			if raw == "" && !slicesContains(note, "") {
				note = append(note, "")
				continue
			}
			if slicesContains(note, "") && strings.HasPrefix(raw, "\u2014 ") {
				note = append(note, raw)
				continue
			}
			if !slicesContains(note, "") && raw != "" {
				note = append(note, raw)
				continue
			}
			if err := endNote(); err != nil {
				return nil, err
			}
		}
		line := strings.TrimSpace(raw)
		if line == MerkleOrigin {
			note, noteStart = []string{line}, n
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 7 || f[0] != witnessTag || f[1] != checkpointOrigin {
			return nil, fmt.Errorf("witness line %d: malformed", n)
		}
		count, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("witness line %d: malformed count", n)
		}
		t, err := time.Parse(time.RFC3339Nano, f[4])
		if err != nil {
			return nil, fmt.Errorf("witness line %d: malformed time", n)
		}
		w := WitnessCheckpoint{Count: count, Head: f[3], Time: t, KeyID: f[5], Signature: f[6]}
		if pub != nil && !verifySig(pub, checkpointNote(w.Count, w.Head, w.Time), w.Signature) {
			return nil, fmt.Errorf("witness line %d: signature does not verify", n)
		}
		w.Line = n
		out = append(out, w)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := endNote(); err != nil {
		return nil, err
	}
	return out, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// parseNote parses a C2SP checkpoint note (its lines, blank separator
// included) and checks the signature by pub's key when pub is set.
func parseNote(lines []string, pub ed25519.PublicKey) (WitnessCheckpoint, error) {
	var w WitnessCheckpoint
	sep := -1
	for i, l := range lines {
		if l == "" {
			sep = i
			break
		}
	}
	if sep < 3 || sep == len(lines)-1 {
		return w, errors.New("malformed checkpoint note (want origin, size, root, a blank line and a signature)")
	}
	body := lines[:sep]
	size, err := strconv.ParseUint(body[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != body[1] {
		return w, errors.New("checkpoint note: malformed tree size")
	}
	root, err := base64.StdEncoding.DecodeString(body[2])
	if err != nil || len(root) != 32 {
		return w, errors.New("checkpoint note: malformed root hash")
	}
	w = WitnessCheckpoint{Count: size, Root: hex.EncodeToString(root), Note: true}
	if pub == nil {
		return w, nil
	}
	text := []byte(strings.Join(body, "\n") + "\n")
	want := NoteKeyHash(pub)
	for _, l := range lines[sep+1:] {
		f := strings.Fields(strings.TrimPrefix(l, "\u2014 "))
		if len(f) != 2 || f[0] != MerkleOrigin {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(b) != 4+ed25519.SignatureSize || !bytes.Equal(b[:4], want) {
			continue
		}
		if ed25519.Verify(pub, text, b[4:]) {
			w.Signature = b64(b[4:])
			w.KeyID = hex.EncodeToString(b[:4])
			return w, nil
		}
		return w, errors.New("checkpoint note: signature does not verify")
	}
	return w, errors.New("checkpoint note: no signature by the log's key")
}

// checkForks flags a witness holding two different checkpoints for the
// same size: the log was forked, for example restored from an old backup
// and written on (C3).
func checkForks(ws []WitnessCheckpoint) error {
	type key struct {
		note  bool
		count uint64
	}
	seen := map[key]WitnessCheckpoint{}
	for _, w := range ws {
		k := key{w.Note, w.Count}
		prev, ok := seen[k]
		if !ok {
			seen[k] = w
			continue
		}
		if w.Note && prev.Root != w.Root {
			return fmt.Errorf("audit: verify: fork: the witness holds two different Merkle roots for tree size %d (lines %d and %d): the log was rewritten or restored from an old state and written on", w.Count, prev.Line, w.Line)
		}
		if !w.Note && prev.Head != w.Head {
			return fmt.Errorf("audit: verify: fork: the witness holds two different heads for %d records (lines %d and %d): the log was rewritten or restored from an old state and written on", w.Count, prev.Line, w.Line)
		}
	}
	return nil
}

// ExportCheckpoints writes every checkpoint in the log to w, oldest first:
// a witness line each, followed by its C2SP signed checkpoint note when it
// has a Merkle root. Append the output to a file kept off this host.
func (l *Log) ExportCheckpoints(w io.Writer) error {
	return ExportCheckpoints(l.opts.Dir, w)
}

// ExportCheckpoints writes every checkpoint in the log in dir to w, one
// witness line each.
func ExportCheckpoints(dir string, w io.Writer) error {
	return ExportCheckpointsAfter(dir, w, 0)
}

// ExportCheckpointsAfter writes the checkpoints recorded after seq to w, so
// a witness can append only what is new since its last line (pass that
// line's count + 1, the seq of the checkpoint record itself).
func ExportCheckpointsAfter(dir string, w io.Writer, seq uint64) error {
	bw := bufio.NewWriter(w)
	for r, err := range Search(dir, Filter{Types: []Type{TypeCheckpoint}, AfterSeq: seq}) {
		if err != nil {
			return fmt.Errorf("audit: export checkpoints: %w", err)
		}
		cp := r.Checkpoint
		wc := WitnessCheckpoint{Count: cp.Count, Head: cp.Head, Time: r.Time, KeyID: cp.KeyID, Signature: cp.Signature}
		if _, err := bw.WriteString(wc.String() + "\n"); err != nil {
			return fmt.Errorf("audit: export checkpoints: %w", err)
		}
		if note := CheckpointNote(cp); note != "" {
			if _, err := bw.WriteString(note + "\n"); err != nil {
				return fmt.Errorf("audit: export checkpoints: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export checkpoints: %w", err)
	}
	return nil
}

// anchorFile holds the anchor left by Prune.
const anchorFile = "anchor.json"

// Anchor stands in for pruned segments: the seq and hash of the last pruned
// record, signed so that verification of the rest can start from it.
type Anchor struct {
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"` // time of the last pruned record
	KeyID     string    `json:"key_id,omitempty"`
	Signature string    `json:"signature,omitempty"`
}

func readAnchor(dir string) (*Anchor, error) {
	b, err := os.ReadFile(filepath.Join(dir, anchorFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a Anchor
	if err := strictUnmarshal(bytes.TrimSpace(b), &a); err != nil {
		return nil, fmt.Errorf("malformed %s: %w", anchorFile, err)
	}
	if len(a.Hash) != 64 || !isLowerHex([]byte(a.Hash)) || a.Seq == 0 {
		return nil, fmt.Errorf("malformed %s", anchorFile)
	}
	return &a, nil
}

func writeAnchor(dir string, a *Anchor) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, anchorFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, anchorFile)); err != nil {
		return err
	}
	return syncDir(dir)
}
