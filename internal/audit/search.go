package audit

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Filter selects records. Zero fields match everything. Client, Key, Venue,
// Scope and Decision match intent and denied records only; RequestID matches
// any record of that request.
type Filter struct {
	From, To  time.Time // From inclusive, To exclusive
	Client    string
	Key       string
	Venue     string
	Scope     string
	Decision  string
	RequestID string
	AfterSeq  uint64 // only records with a larger seq (for tailing)
	Types     []Type // empty: every type
	// HashKey, when set, lets Client and Key match values stored as keyed
	// HMACs too.
	HashKey []byte
}

// String describes f without its hash key.
func (f Filter) String() string {
	return fmt.Sprintf("audit.Filter{From:%v To:%v Client:%q Key:%q Venue:%q Scope:%q Decision:%q RequestID:%q AfterSeq:%d Types:%v HashKey:%s}",
		f.From, f.To, f.Client, f.Key, f.Venue, f.Scope, f.Decision, f.RequestID, f.AfterSeq, f.Types, redactedIf(len(f.HashKey) > 0))
}

// GoString describes f without its hash key.
func (f Filter) GoString() string { return f.String() }

func (f *Filter) intentOnly() bool {
	return f.Client != "" || f.Key != "" || f.Venue != "" || f.Scope != "" || f.Decision != ""
}

func (f *Filter) matchValue(want, got string) bool {
	if want == "" || want == got {
		return true
	}
	return len(f.HashKey) > 0 && HashValue(f.HashKey, want) == got
}

// Match says whether r passes the filter.
func (f *Filter) Match(r *Record) bool {
	if !f.From.IsZero() && r.Time.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !r.Time.Before(f.To) {
		return false
	}
	if r.Seq <= f.AfterSeq {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	if f.RequestID != "" && r.RequestID != f.RequestID {
		return false
	}
	if !f.intentOnly() {
		return true
	}
	in := r.Intent
	if in == nil {
		return false
	}
	return f.matchValue(f.Client, in.Client) && f.matchValue(f.Key, in.Key) &&
		(f.Venue == "" || f.Venue == in.Venue || f.Venue == in.Call.Venue) &&
		(f.Scope == "" || f.Scope == string(in.Call.Scope)) &&
		(f.Decision == "" || f.Decision == in.Decision)
}

// scan yields every complete record in dir with its raw line, in order.
// Records are parsed and their hashes checked; links between records are
// not (that is Verify's job). An incomplete final line is skipped.
func scan(dir string) iter.Seq2[rawRecord, error] {
	return func(yield func(rawRecord, error) bool) {
		segs, err := listSegments(dir)
		if err != nil {
			yield(rawRecord{}, err)
			return
		}
		for _, name := range segs {
			stop := errors.New("stop")
			err := readLines(filepath.Join(dir, name), func(line []byte, n int, off int64, complete bool) error {
				if !complete {
					return nil
				}
				r, err := parseLine(line)
				if err != nil {
					err = &VerifyError{Segment: name, Line: n, Reason: err.Error()}
				}
				if !yield(rawRecord{Record: r, Line: line}, err) || err != nil {
					return stop
				}
				return nil
			})
			if err == stop {
				return
			}
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // pruned while we read
				}
				yield(rawRecord{}, fmt.Errorf("%s: %w", name, err))
				return
			}
		}
	}
}

type rawRecord struct {
	Record
	Line []byte // valid until the next iteration
}

// Search yields the records in dir that match f, oldest first. It stops at
// the first unreadable record, yielding its error.
func Search(dir string, f Filter) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for rr, err := range scan(dir) {
			if err != nil {
				yield(Record{}, err)
				return
			}
			if f.Match(&rr.Record) && !yield(rr.Record, nil) {
				return
			}
		}
	}
}

// ExportJSONL writes the records in dir that match f to w as stored, one
// line each, so that their hashes still verify.
func ExportJSONL(w io.Writer, dir string, f Filter) error {
	bw := bufio.NewWriter(w)
	for rr, err := range scan(dir) {
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if !f.Match(&rr.Record) {
			continue
		}
		bw.Write(rr.Line)
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// Prune removes whole segments whose records are all older than before,
// never the segment being written and never one holding records a
// Forwarder has not delivered yet (per the cursor files in the directory).
// It first writes a signed anchor holding the seq and hash of the last
// removed record, so the remaining log still verifies from there. It returns
// the number of segments removed.
func (l *Log) Prune(before time.Time) (int, error) {
	l.life.Lock()
	defer l.life.Unlock()
	if l.opts.Signer == nil {
		return 0, errors.New("audit: prune: no signing key for the anchor")
	}
	l.mu.Lock()
	active := l.gen.Load().st.segName
	l.mu.Unlock()
	segs, err := listSegments(l.opts.Dir)
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	forwarded, haveCursor, err := minCursor(l.opts.Dir)
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	var drop []string
	var lastRec Record
	for _, name := range segs {
		if name >= active {
			break
		}
		var last Record
		var bad error
		err := readLines(filepath.Join(l.opts.Dir, name), func(line []byte, n int, off int64, complete bool) error {
			r, err := parseLine(line)
			if err != nil {
				bad = &VerifyError{Segment: name, Line: n, Reason: err.Error()}
				return bad
			}
			last = r
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("audit: prune: %w", err)
		}
		if last.Seq == 0 || !last.Time.Before(before) || (haveCursor && last.Seq > forwarded) {
			break
		}
		drop = append(drop, name)
		lastRec = last
	}
	if len(drop) == 0 {
		return 0, nil
	}
	a := &Anchor{Seq: lastRec.Seq, Hash: lastRec.Hash, Time: lastRec.Time.UTC(), KeyID: l.keyID}
	a.Signature = b64(ed25519.Sign(l.opts.Signer, anchorNote(a.Seq, a.Hash, a.Time)))
	if err := writeAnchor(l.opts.Dir, a); err != nil {
		return 0, fmt.Errorf("audit: prune: write anchor: %w", err)
	}
	for _, name := range drop {
		if err := os.Remove(filepath.Join(l.opts.Dir, name)); err != nil {
			return 0, fmt.Errorf("audit: prune: %w", err)
		}
	}
	if err := syncDir(l.opts.Dir); err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	l.log.Info("audit: pruned old segments", "segments", len(drop), "anchor_seq", a.Seq)
	return len(drop), nil
}

// Orphans returns the allowed intents recorded at or after from that have no
// outcome record: calls that may have reached the venue while keywarden
// crashed. At start-up the gateway records an outcome for each (status 0,
// error "unknown"), as security.md C1 asks. Records are oldest first.
func Orphans(dir string, from time.Time) ([]Record, error) {
	open := map[string]int{} // request id -> index in out
	var out []Record
	for r, err := range Search(dir, Filter{From: from, Types: []Type{TypeIntent, TypeOutcome}}) {
		if err != nil {
			return nil, fmt.Errorf("audit: orphans: %w", err)
		}
		switch {
		case r.Type == TypeIntent && r.Intent.Decision == DecisionAllow && r.RequestID != "":
			open[r.RequestID] = len(out)
			out = append(out, r)
		case r.Type == TypeOutcome:
			if i, ok := open[r.RequestID]; ok {
				out[i].Seq = 0 // answered
				delete(open, r.RequestID)
			}
		}
	}
	orphans := out[:0]
	for _, r := range out {
		if r.Seq != 0 {
			orphans = append(orphans, r)
		}
	}
	return orphans, nil
}
