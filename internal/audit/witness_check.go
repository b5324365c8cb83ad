package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/keywarden/keywarden/internal/merkle"
)

// A live witness. Witness keeps a witness file next to a running log: at
// start it checks the log against every checkpoint the file holds, then it
// follows the log, checks each new record against the file and appends the
// log's new signed checkpoints to it. The invariant it holds the log to is
// simple: the witness never holds a tree size the log has not reached, and
// for every tree size it holds, the log has the same chain head and the
// same Merkle root. A log restored from an old backup breaks the first
// half (RollbackError); one restored and written on breaks the second
// (ForkError: two roots for one tree size).
//
// Only one log may write to a witness file. Another writer's entries (a
// copy of the log restored elsewhere, still running) are noticed because
// the file grows by more than this Witness appended; the log is then
// checked again against the whole file.

// ErrWitness is wrapped by ForkError and RollbackError.
var ErrWitness = errors.New("audit: witness")

// ForkError reports a tree size for which the witness and the log hold two
// different values: a Merkle root (from a C2SP note) or a chain head (from
// a witness line). The log was forked: restored from an old state and
// written on, or rewritten.
type ForkError struct {
	TreeSize    uint64
	Kind        string // "root" or "head"
	WitnessHash string // hex, what the witness holds
	LogHash     string // hex, what the log has at that size
	WitnessLine int    // where the witness entry starts in its file
	// WitnessFork is set when the witness file itself holds two
	// different values for the size (LogHash is then the second one).
	WitnessFork bool
}

func (e *ForkError) Error() string {
	what := "Merkle roots"
	if e.Kind == "head" {
		what = "chain heads"
	}
	if e.WitnessFork {
		return fmt.Sprintf("audit: witness: fork: two different %s for tree size %d in the witness file: %s and %s (line %d)",
			what, e.TreeSize, e.WitnessHash, e.LogHash, e.WitnessLine)
	}
	return fmt.Sprintf("audit: witness: fork: two different %s for tree size %d: the witness holds %s (line %d), the log has %s",
		what, e.TreeSize, e.WitnessHash, e.WitnessLine, e.LogHash)
}

func (e *ForkError) Unwrap() error { return ErrWitness }

// RollbackError reports a witness holding a tree size the log has not
// reached: records the witness saw are gone (the log was restored from an
// old backup, or cut short).
type RollbackError struct {
	WitnessSize uint64 // the largest tree size the witness holds
	WitnessHash string // its root (or head) in hex
	WitnessLine int
	LogSize     uint64 // records in the log
	LogRoot     string // the log's Merkle root at LogSize, hex ("" when unknown)
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("audit: witness: rollback: the witness holds tree size %d (%s, line %d) but the log ends at tree size %d (root %s): the witness saw records this log does not have (restored from an old backup, cut short, or another copy of the log writes to this witness)",
		e.WitnessSize, e.WitnessHash, e.WitnessLine, e.LogSize, orUnknown(e.LogRoot))
}

func (e *RollbackError) Unwrap() error { return ErrWitness }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// witnessEntry is what the witness holds for one tree size.
type witnessEntry struct {
	root, head         string // hex; "" when the witness holds no such entry
	rootLine, headLine int
}

// Witness checks a log against a witness file and appends the log's
// checkpoints to it. Its methods are not safe for concurrent use; Run owns
// it while it runs.
type Witness struct {
	path string
	dir  string
	pub  ed25519.PublicKey

	entries map[uint64]*witnessEntry
	max     uint64 // largest tree size held
	maxLine int
	size    int64 // bytes of the file read or appended by us
	lines   int   // lines in the file

	// Position of the follower in the log.
	tree    *merkle.Compact // nil until the tree is known (after a prune: at the first checkpoint)
	seq     uint64          // last record checked
	lastSeg string          // segment holding seq
	off     int64           // offset after record seq in lastSeg
	pending []Record        // checkpoints seen and not yet in the witness
	checked int             // witness entries compared with the log

	f  *os.File // lastSeg, kept open between calls
	br *bufio.Reader
}

// Close releases the segment file the witness keeps open.
func (w *Witness) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// OpenWitness reads the witness file at path for the log in dir and checks
// every entry's signature with pub and that no tree size has two values
// (a *ForkError with WitnessFork set). The file must exist: a missing
// witness is an error, not a fresh start, so that deleting it is noticed;
// create it empty to start a new one.
func OpenWitness(path, dir string, pub ed25519.PublicKey) (*Witness, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: witness: the checkpoint public key is required")
	}
	w := &Witness{path: path, dir: dir, pub: pub}
	if err := w.load(); err != nil {
		return nil, err
	}
	return w, nil
}

// load (re)reads the whole witness file.
func (w *Witness) load() error {
	b, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: witness: %s does not exist (create it empty to start a new witness)", w.path)
	}
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	ws, err := ReadWitness(bytes.NewReader(b), w.pub)
	if err != nil {
		return fmt.Errorf("audit: witness: %s: %w", w.path, err)
	}
	entries := map[uint64]*witnessEntry{}
	var max uint64
	maxLine := 0
	// Notes first, so that a fork inside the file is named by its roots.
	slices.SortStableFunc(ws, func(a, b WitnessCheckpoint) int {
		switch {
		case a.Note == b.Note:
			return 0
		case a.Note:
			return -1
		}
		return 1
	})
	for _, c := range ws {
		e := entries[c.Count]
		if e == nil {
			e = &witnessEntry{}
			entries[c.Count] = e
		}
		val, line, kind := c.Head, c.Line, "head"
		have, haveLine := &e.head, &e.headLine
		if c.Note {
			val, kind = c.Root, "root"
			have, haveLine = &e.root, &e.rootLine
		}
		if *have != "" && *have != val {
			return &ForkError{TreeSize: c.Count, Kind: kind, WitnessHash: *have, LogHash: val, WitnessLine: line, WitnessFork: true}
		}
		if *have == "" {
			*have, *haveLine = val, line
		}
		if c.Count > max || maxLine == 0 {
			max, maxLine = c.Count, line
		}
	}
	w.entries, w.max, w.maxLine = entries, max, maxLine
	w.size = int64(len(b))
	w.lines = bytes.Count(b, []byte{'\n'})
	return nil
}

// Entries returns how many tree sizes the witness holds.
func (w *Witness) Entries() int { return len(w.entries) }

// Checked returns how many witness entries (roots and heads) were compared
// with the log and matched.
func (w *Witness) Checked() int { return w.checked }

// TreeSize returns the number of records checked so far.
func (w *Witness) TreeSize() uint64 { return w.seq }

// ToEnd, as the head given to Check, reads the log to its last complete
// line: for a log no process has open.
const ToEnd = ^uint64(0)

// Check reads the log from its first record up to record head (Log.Head of
// an open log, or ToEnd) and compares it with every witness entry. It
// returns a *ForkError or *RollbackError when the log and the witness
// disagree. It writes nothing: Export appends the checkpoints the witness
// lacks.
func (w *Witness) Check(head uint64) error {
	w.Close()
	w.tree, w.seq, w.lastSeg, w.off, w.pending, w.checked = nil, 0, "", 0, nil, 0
	a, err := readAnchor(w.dir)
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	segs, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	segs = liveSegments(segs, a)
	switch {
	case len(segs) > 0:
		first, _ := segmentSeq(segs[0])
		w.seq, w.lastSeg = first-1, segs[0]
	case a != nil:
		w.seq = a.Seq
	}
	if w.seq == 0 {
		// From the first record; after a prune the tree starts at the
		// first checkpoint that carries it.
		w.tree = &merkle.Compact{}
	}
	if err := w.follow(head); err != nil {
		return err
	}
	return w.rollback()
}

// Follow continues from the last record checked up to record head (a
// durable seq: Log.Head), checking each one. When the witness file grew by
// more than Export appended (another log under the same key writes to it),
// the file is read again and the whole log checked against it.
func (w *Witness) Follow(head uint64) error {
	st, err := os.Stat(w.path)
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	if st.Size() != w.size {
		if st.Size() < w.size {
			return fmt.Errorf("audit: witness: %s shrank from %d to %d bytes: the witness was rewritten", w.path, w.size, st.Size())
		}
		if err := w.load(); err != nil {
			return err
		}
		return w.Check(head)
	}
	if err := w.follow(head); err != nil {
		return err
	}
	return w.rollback()
}

// rollback fails when the witness holds a tree size beyond the log.
func (w *Witness) rollback() error {
	if w.max <= w.seq {
		return nil
	}
	e := w.entries[w.max]
	h := e.root
	if h == "" {
		h = e.head
	}
	re := &RollbackError{WitnessSize: w.max, WitnessHash: h, WitnessLine: w.maxLine, LogSize: w.seq}
	if w.tree != nil {
		r := w.tree.Root()
		re.LogRoot = hex.EncodeToString(r[:])
	}
	return re
}

// follow reads records after w.seq up to head (ToEnd: to the last complete
// line) from the segment files.
func (w *Witness) follow(head uint64) error {
	if w.lastSeg == "" {
		segs, err := listSegments(w.dir)
		if err != nil {
			return fmt.Errorf("audit: witness: %w", err)
		}
		if len(segs) == 0 {
			return nil
		}
		w.lastSeg, w.off = segs[0], 0
	}
	for w.seq < head {
		done, err := w.readFrom(head)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		// The segment ended: the next one starts at seq+1.
		next := segmentName(w.seq + 1)
		if _, err := os.Stat(filepath.Join(w.dir, next)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				if head != ToEnd {
					return fmt.Errorf("audit: witness: record %d not found (log head %d)", w.seq+1, head)
				}
				return nil
			}
			return fmt.Errorf("audit: witness: %w", err)
		}
		w.lastSeg, w.off = next, 0
	}
	return nil
}

// readFrom reads records from w.lastSeg at w.off. It reports done when it
// reached head or, with ToEnd, when the data ends before the segment's end
// (an incomplete line or the zero tail). With ToEnd, a malformed line in
// the last segment also ends the data: it is a crash's torn tail, which
// Open cuts (or refuses, when a valid record follows).
func (w *Witness) readFrom(head uint64) (done bool, err error) {
	if w.f == nil || filepath.Base(w.f.Name()) != w.lastSeg {
		w.Close()
		f, err := os.Open(filepath.Join(w.dir, w.lastSeg))
		if err != nil {
			return false, fmt.Errorf("audit: witness: %w", err)
		}
		w.f = f
	}
	if _, err := w.f.Seek(w.off, io.SeekStart); err != nil {
		return false, fmt.Errorf("audit: witness: %w", err)
	}
	if w.br == nil {
		w.br = bufio.NewReaderSize(w.f, 256<<10)
	} else {
		w.br.Reset(w.f)
	}
	br := w.br
	var long []byte
	for w.seq < head {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull && len(long) <= maxLine {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
			if len(line) > maxLine {
				return false, fmt.Errorf("audit: witness: %s: %w", w.lastSeg, errLineTooLong)
			}
		}
		if i := bytes.IndexByte(line, 0); i >= 0 || err == io.EOF {
			// End of the data written so far: a zero tail, an
			// incomplete line, or the end of a closed segment.
			if len(line) == 0 || i == 0 {
				return head == ToEnd && !w.closedSegment(), nil
			}
			return head == ToEnd, nil
		}
		if err != nil {
			return false, fmt.Errorf("audit: witness: %s: %w", w.lastSeg, err)
		}
		if err := w.record(line[:len(line)-1]); err != nil {
			var ve *VerifyError
			if head == ToEnd && errors.As(err, &ve) && !w.closedSegment() {
				return true, nil
			}
			return false, err
		}
		w.off += int64(len(line))
	}
	return true, nil
}

// closedSegment reports whether a later segment exists, i.e. whether the
// end of the current one is final.
func (w *Witness) closedSegment() bool {
	_, err := os.Stat(filepath.Join(w.dir, segmentName(w.seq+1)))
	return err == nil
}

var (
	hashMember = []byte(`,"hash":"`)
	cpMember   = []byte(`,"type":"checkpoint",`)
)

// record checks one stored line: its seq must follow, its hash is the
// Merkle leaf, and the witness entries for its tree size must match. The
// line's own hash is taken as stored (Verify checks it against the bytes):
// a tampered line can only change the roots, which fails the check.
func (w *Witness) record(line []byte) error {
	seq := w.seq + 1
	want := strconv.AppendUint([]byte(`{"seq":`), seq, 10)
	want = append(want, ',')
	n := len(line)
	if !bytes.HasPrefix(line, want) || n < len(want)+len(hashMember)+66 ||
		//keywarden:allow H5-compare the record's framing (`,"hash":"`), public text
		!bytes.Equal(line[n-66-len(hashMember):n-66], hashMember) || line[n-2] != '"' || line[n-1] != '}' ||
		!isLowerHex(line[n-66:n-2]) {
		return &VerifyError{Segment: w.lastSeg, Seq: seq, Reason: "malformed record (the witness check expects seq " + strconv.FormatUint(seq, 10) + ")"}
	}
	hash := string(line[n-66 : n-2])
	if bytes.Contains(line, cpMember) {
		r, err := parseLine(line)
		if err != nil {
			return &VerifyError{Segment: w.lastSeg, Seq: seq, Reason: err.Error()}
		}
		if cp := r.Checkpoint; cp != nil {
			if cp.Count != w.seq {
				return &VerifyError{Segment: w.lastSeg, Seq: seq, Reason: fmt.Sprintf("checkpoint for %d records at seq %d", cp.Count, seq)}
			}
			if w.tree == nil && cp.Root != "" {
				// After a prune: the tree starts at the first checkpoint
				// that carries it (its signature is checked at export).
				t, err := compactFromCheckpoint(cp)
				if err != nil {
					return &VerifyError{Segment: w.lastSeg, Seq: seq, Reason: err.Error()}
				}
				w.tree = t
				if e := w.entries[cp.Count]; e != nil && e.root != "" {
					if e.root != cp.Root {
						return &ForkError{TreeSize: cp.Count, Kind: "root", WitnessHash: e.root, LogHash: cp.Root, WitnessLine: e.rootLine}
					}
					w.checked++
				}
			}
			if w.tree != nil && cp.Root != "" {
				root := w.tree.Root()
				if cp.Count != w.tree.Size() || cp.Root != hex.EncodeToString(root[:]) {
					return &VerifyError{Segment: w.lastSeg, Seq: seq, Reason: "checkpoint Merkle root does not match the records"}
				}
			}
			if e := w.entries[cp.Count]; e == nil || e.head == "" || (cp.Root != "" && e.root == "") {
				w.pending = append(w.pending, r)
			}
		}
	}
	if w.tree != nil {
		w.tree.Append(leafOf(hash))
	}
	w.seq = seq
	e := w.entries[seq]
	if e == nil {
		return nil
	}
	// The root first: it names the fork the way a Merkle witness states it.
	if e.root != "" && w.tree != nil {
		root := w.tree.Root()
		if got := hex.EncodeToString(root[:]); e.root != got {
			return &ForkError{TreeSize: seq, Kind: "root", WitnessHash: e.root, LogHash: got, WitnessLine: e.rootLine}
		}
		w.checked++
	}
	if e.head != "" {
		//keywarden:allow H5-compare chain heads are public: they are published to the witness
		if e.head != hash {
			return &ForkError{TreeSize: seq, Kind: "head", WitnessHash: e.head, LogHash: hash, WitnessLine: e.headLine}
		}
		w.checked++
	}
	return nil
}

// Export appends the log's checkpoints that Check and Follow met and the
// witness lacks (one write and one fsync for all of them), and returns how
// many it appended. It checks their signatures first.
func (w *Witness) Export() (int, error) {
	if len(w.pending) == 0 {
		return 0, nil
	}
	var buf bytes.Buffer
	lines := w.lines
	type added struct {
		count      uint64
		head, root string
		hl, rl     int
	}
	var adds []added
	for _, r := range w.pending {
		cp := r.Checkpoint
		if !verifySig(w.pub, checkpointNote(cp.Count, cp.Head, r.Time), cp.Signature) {
			return 0, &VerifyError{Segment: w.lastSeg, Seq: r.Seq, Reason: "checkpoint signature does not verify"}
		}
		wc := WitnessCheckpoint{Count: cp.Count, Head: cp.Head, Time: r.Time, KeyID: cp.KeyID, Signature: cp.Signature}
		buf.WriteString(wc.String() + "\n")
		ad := added{count: cp.Count, head: cp.Head, hl: lines + 1}
		lines++
		if note := CheckpointNote(cp); note != "" {
			root, _ := parseHash(cp.Root)
			if !verifyNoteSig(w.pub, merkleNote(cp.Count, root), cp.NoteSig) {
				return 0, &VerifyError{Segment: w.lastSeg, Seq: r.Seq, Reason: "checkpoint note signature does not verify"}
			}
			buf.WriteString(note + "\n")
			ad.root, ad.rl = cp.Root, lines+1
			lines += bytes.Count([]byte(note), []byte{'\n'}) + 1
		}
		adds = append(adds, ad)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, fmt.Errorf("audit: witness: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return 0, fmt.Errorf("audit: witness: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("audit: witness: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("audit: witness: %w", err)
	}
	w.size += int64(buf.Len())
	w.lines = lines
	for _, ad := range adds {
		e := w.entries[ad.count]
		if e == nil {
			e = &witnessEntry{}
			w.entries[ad.count] = e
		}
		if e.head == "" {
			e.head, e.headLine = ad.head, ad.hl
		}
		if e.root == "" && ad.root != "" {
			e.root, e.rootLine = ad.root, ad.rl
		}
		if ad.count > w.max {
			w.max, w.maxLine = ad.count, ad.hl
		}
	}
	n := len(w.pending)
	w.pending = nil
	return n, nil
}

// Run follows l until ctx ends: after every durable batch it checks the new
// records and appends new checkpoints (Follow). It returns the first error,
// a *ForkError or *RollbackError when the log and the witness disagree, or
// nil when ctx ends. After closing the log, call Follow(ToEnd) and Export
// once more to append its final checkpoint.
func (w *Witness) Run(ctx context.Context, l *Log) error {
	for {
		ch := l.Notify()
		if err := w.Follow(l.Head().Seq); err != nil {
			return err
		}
		if _, err := w.Export(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}
