package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/merkle"
)

const (
	segPrefix = "seg-"
	segSuffix = ".jsonl"
	// maxLine bounds one record line; the gateway caps bodies at 64 KiB, so
	// a longer line is corruption.
	maxLine = 4 << 20
)

// segmentName names the segment whose first record is seq; names sort in
// sequence order.
func segmentName(seq uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, seq, segSuffix) }

// segmentSeq returns the first seq a segment name claims.
func segmentSeq(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix)
	if len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// listSegments returns the segment file names in dir, in order.
func listSegments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if _, ok := segmentSeq(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// liveSegments drops from segs (in order) those an anchor fully covers: a
// crash between writing the anchor and removing them can leave them behind.
func liveSegments(segs []string, a *Anchor) []string {
	if a == nil {
		return segs
	}
	for len(segs) > 1 {
		next, _ := segmentSeq(segs[1])
		if next > a.Seq+1 {
			break
		}
		segs = segs[1:]
	}
	return segs
}

// errLineTooLong reports a line over maxLine.
var errLineTooLong = errors.New("record line too long")

// readLines calls fn for each line of the file at path (without its
// newline), with its 1-based line number and byte offset. complete is false
// for a final line that has no newline. The data ends at the file's end or
// at its first NUL byte, whichever comes first. fn's line is only valid during the
// call.
func readLines(path string, fn func(line []byte, n int, off int64, complete bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var off int64
	var long []byte
	for n := 1; ; n++ {
		long = long[:0]
		var line []byte
		for {
			chunk, err := br.ReadSlice('\n')
			if i := bytes.IndexByte(chunk, 0); i >= 0 {
				// The first NUL ends the data: what follows is the
				// pre-allocated zero tail (or bytes a crash left past it).
				line = append(long, chunk[:i]...)
				if len(line) == 0 {
					return nil
				}
				return fn(line, n, off, false)
			}
			if err == bufio.ErrBufferFull {
				long = append(long, chunk...)
				if len(long) > maxLine {
					return fmt.Errorf("line %d: %w", n, errLineTooLong)
				}
				continue
			}
			if len(long) > 0 {
				long = append(long, chunk...)
				chunk = long
			}
			line = chunk
			if err == io.EOF {
				if len(line) == 0 {
					return nil
				}
				if ferr := fn(line, n, off, false); ferr != nil {
					return ferr
				}
				return nil
			}
			if err != nil {
				return err
			}
			break
		}
		if err := fn(line[:len(line)-1], n, off, true); err != nil {
			return err
		}
		off += int64(len(line))
	}
}

// chain checks that records follow each other: contiguous seq, prev equal to
// the previous hash, time never going backwards.
type chain struct {
	seq  uint64 // last seq seen
	hash string // last hash seen
	time time.Time
}

func (c *chain) check(r *Record) error {
	if r.Seq != c.seq+1 {
		return fmt.Errorf("seq %d follows seq %d", r.Seq, c.seq)
	}
	if r.Prev != c.hash {
		return errors.New("prev does not match the previous record's hash")
	}
	if r.Time.Before(c.time) {
		return errors.New("time goes backwards")
	}
	if r.Checkpoint != nil && (r.Checkpoint.Count != c.seq || r.Checkpoint.Head != c.hash) {
		return errors.New("checkpoint does not match the chain")
	}
	return nil
}

func (c *chain) advance(r *Record) { c.seq, c.hash, c.time = r.Seq, r.Hash, r.Time }

// recovered is the tail of a log found at Open.
type recovered struct {
	lastSeq     uint64
	lastHash    string
	lastTime    time.Time
	lastSegment string
	lastCkptSeq uint64 // seq of the last checkpoint record, or of the anchor
	// tree is the Merkle tree over every record up to lastSeq, when known:
	// from the genesis, or from the last checkpoint that carries one.
	tree     *merkle.Compact
	anchored bool // records were pruned (an anchor stands in for them)
}

// recoverDir walks every segment, checking hashes and links. Any fault in a
// closed segment is an error (corruption is never repaired silently). In the
// last segment, a torn or invalid tail is cut off, but only when no complete
// valid record follows the first bad line; the cut bytes are kept in a
// ".torn" file next to the segment.
func recoverDir(dir string, log *slog.Logger) (recovered, error) {
	var rs recovered
	c := chain{hash: genesisPrev}
	a, err := readAnchor(dir)
	if err != nil {
		return rs, err
	}
	if a != nil {
		c.seq, c.hash = a.Seq, a.Hash
		rs.lastCkptSeq = a.Seq
		rs.anchored = true
	} else {
		rs.tree = &merkle.Compact{}
	}
	segs, err := listSegments(dir)
	if err != nil {
		return rs, err
	}
	segs = liveSegments(segs, a)
	// Only the last two segments are read: the tail is where a crash
	// leaves damage, and reading the whole history at every start would
	// make start-up time grow with retention. Verify checks everything.
	if len(segs) > 2 {
		segs = segs[len(segs)-2:]
		first, err := firstRecord(filepath.Join(dir, segs[0]))
		if err != nil {
			return rs, &VerifyError{Segment: segs[0], Line: 1, Reason: err.Error()}
		}
		c = chain{seq: first.Seq - 1, hash: first.Prev}
		rs.lastCkptSeq = first.Seq - 1 // not known; at worst a checkpoint comes early
		rs.tree = nil                  // from the last checkpoint read, if any
	}
	for i, name := range segs {
		last := i == len(segs)-1
		path := filepath.Join(dir, name)
		first, _ := segmentSeq(name)
		var bad *VerifyError
		var badOff int64 = -1
		var goodEnd int64
		missingNewline := false
		err := readLines(path, func(line []byte, n int, off int64, complete bool) error {
			if badOff >= 0 {
				// after the first bad line: is there any complete, valid
				// record? Then this is not a torn tail.
				if r, err := parseLine(line); err == nil {
					return &VerifyError{Segment: name, Line: n, Seq: r.Seq,
						Reason: fmt.Sprintf("valid record after invalid line %d", bad.Line)}
				}
				return nil
			}
			r, err := parseLine(line)
			if err == nil {
				if n == 1 && r.Seq != first {
					err = fmt.Errorf("segment name says first seq %d", first)
				} else {
					err = c.check(&r)
				}
			}
			if err != nil {
				bad = &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: err.Error()}
				badOff = off
				return nil
			}
			c.advance(&r)
			if r.Type == TypeCheckpoint {
				rs.lastCkptSeq = r.Seq
				if len(r.Checkpoint.Tree) > 0 || r.Checkpoint.Root != "" {
					t, err := compactFromCheckpoint(r.Checkpoint)
					if err != nil {
						return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: err.Error()}
					}
					if rs.tree != nil && rs.tree.Root() != t.Root() {
						return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: "checkpoint Merkle root does not match the records"}
					}
					rs.tree = t
				}
			}
			if rs.tree != nil {
				rs.tree.Append(leafOf(r.Hash))
			}
			goodEnd = off + int64(len(line)) + 1
			if !complete {
				missingNewline = true
				goodEnd--
			}
			return nil
		})
		if err != nil {
			return rs, err
		}
		if bad != nil && !last {
			return rs, bad
		}
		fi, err := os.Stat(path)
		if err != nil {
			return rs, err
		}
		// A zero tail (pre-allocated space) is cut too: the writer resumes
		// at the end of the data and zeroes ahead again.
		if bad != nil || missingNewline || fi.Size() > goodEnd {
			if err := repairTail(path, goodEnd, missingNewline && bad == nil, log); err != nil {
				return rs, err
			}
			if bad != nil {
				log.Warn("audit: cut a torn record at the end of the log",
					"segment", name, "line", bad.Line, "reason", bad.Reason)
			}
		}
		rs.lastSegment = name
	}
	rs.lastSeq, rs.lastHash, rs.lastTime = c.seq, c.hash, c.time
	return rs, nil
}

// firstRecord reads the first record of a segment.
func firstRecord(path string) (Record, error) {
	var r Record
	found := false
	err := readLines(path, func(line []byte, n int, off int64, complete bool) error {
		var err error
		r, err = parseLine(line)
		if err != nil {
			return err
		}
		found = true
		return errStop
	})
	if err != nil && err != errStop {
		return r, err
	}
	if !found {
		return r, errors.New("empty closed segment")
	}
	return r, nil
}

var errStop = errors.New("stop")

// repairTail keeps the first keep bytes of the segment at path (after
// adding the missing final newline when addNewline is set) and cuts the
// rest, saving any non-zero bytes of it in path+".torn.<unix nanos>". A
// tail of zeros is pre-allocated space and is cut silently.
func repairTail(path string, keep int64, addNewline bool, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if addNewline {
		if _, err := f.WriteAt([]byte{'\n'}, keep); err != nil {
			return err
		}
		keep++
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > keep {
		tail, err := nonZeroTail(f, keep, fi.Size(), maxLine+1)
		if err != nil {
			return err
		}
		if len(tail) > 0 {
			torn := fmt.Sprintf("%s.torn.%d", path, time.Now().UnixNano())
			if err := os.WriteFile(torn, tail, 0o600); err != nil {
				return err
			}
			log.Warn("audit: kept cut bytes for inspection", "file", torn, "bytes", len(tail))
		}
		if err := f.Truncate(keep); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
