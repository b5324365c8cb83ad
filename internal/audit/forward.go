package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one record handed to a Sink: its seq, time and type, and the
// stored line (without newline) that a receiver can verify.
type Entry struct {
	Seq  uint64
	Time time.Time
	Type Type
	Line []byte
}

// Sink is a destination records are forwarded to, in order. Send returns nil
// only once the destination has accepted every entry; on error the
// Forwarder sends the same entries again later. Entries are valid only
// during the call.
type Sink interface {
	Send(ctx context.Context, batch []Entry) error
}

// ForwarderOptions configures NewForwarder.
type ForwarderOptions struct {
	Log  *Log // the durable log to read from
	Sink Sink
	// Name identifies the destination; the cursor is kept in
	// <log dir>/cursor-<Name>.
	Name     string
	Logger   *slog.Logger
	MaxBatch int           // entries per Send; default 256
	Retry    time.Duration // first retry delay after a failed Send; default 500 ms, doubling to 30 s
	// MaxLag is the number of unforwarded records above which Err reports
	// the forwarder as falling behind; default 100,000.
	MaxLag uint64
}

// Forwarder copies the durable log to a Sink. It reads records from the log
// files, never from memory, so a slow or failing destination holds nothing
// back and loses nothing: the records stay in the log and the forwarder's
// cursor (the last seq the destination accepted, persisted in a small file)
// says where to resume. Delivery is at least once: after a crash the last
// batch may be sent again. The in-memory batch is bounded by MaxBatch.
//
// A Forwarder is safe for concurrent use; Run must be called once.
type Forwarder struct {
	o      ForwarderOptions
	log    *slog.Logger
	cursor string // path of the cursor file

	mu      sync.Mutex
	sent    uint64 // last seq accepted by the sink
	lastErr error
	failing time.Time // first failure of the current run of failures

	pos readPos
}

// readPos caches where the next record after sent starts.
type readPos struct {
	seg string
	off int64
	seq uint64 // the seq the record at off must have
}

// ForwardStatus reports a Forwarder's progress.
type ForwardStatus struct {
	Sent      uint64 // last seq the sink accepted
	Head      uint64 // last durable seq in the log
	Lag       uint64 // Head - Sent
	LastError error  // last Send or read error, nil once a Send succeeds
	Since     time.Time
}

// NewForwarder returns a Forwarder resuming from its persisted cursor.
func NewForwarder(o ForwarderOptions) (*Forwarder, error) {
	if o.Log == nil || o.Sink == nil {
		return nil, errors.New("audit: forwarder: log and sink are required")
	}
	if o.Name == "" || strings.ContainsAny(o.Name, `/\`) || o.Name != filepath.Clean(o.Name) {
		return nil, errors.New("audit: forwarder: name must be a plain file name")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Retry <= 0 {
		o.Retry = 500 * time.Millisecond
	}
	if o.MaxLag == 0 {
		o.MaxLag = 100_000
	}
	f := &Forwarder{o: o, log: o.Logger.With("sink", o.Name), cursor: filepath.Join(o.Log.Dir(), "cursor-"+o.Name)}
	b, err := os.ReadFile(f.cursor)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("audit: forwarder: %w", err)
	default:
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("audit: forwarder: malformed cursor file %s", f.cursor)
		}
		f.sent = n
	}
	return f, nil
}

// Status returns the forwarder's progress.
func (f *Forwarder) Status() ForwardStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	head := f.o.Log.Head().Seq
	s := ForwardStatus{Sent: f.sent, Head: head, LastError: f.lastErr, Since: f.failing}
	if head > f.sent {
		s.Lag = head - f.sent
	}
	return s
}

// Err returns nil while the forwarder keeps up, and an error while its
// destination fails or it lags more than MaxLag records behind.
func (f *Forwarder) Err() error {
	s := f.Status()
	if s.LastError != nil {
		return fmt.Errorf("audit: forwarder %s: %d records pending since %s: %w",
			f.o.Name, s.Lag, s.Since.UTC().Format(time.RFC3339), s.LastError)
	}
	if s.Lag > f.o.MaxLag {
		return fmt.Errorf("audit: forwarder %s: %d records behind", f.o.Name, s.Lag)
	}
	return nil
}

// Run forwards records until ctx ends, then returns ctx's error.
func (f *Forwarder) Run(ctx context.Context) error {
	delay := f.o.Retry
	for {
		wait := f.o.Log.Notify()
		n, err := f.step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			f.mu.Lock()
			if f.lastErr == nil {
				f.failing = time.Now()
				f.log.Warn("audit: forwarding failed; records retained in the log", "err", err)
			}
			f.lastErr = err
			f.mu.Unlock()
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			delay = min(delay*2, 30*time.Second)
			continue
		}
		delay = f.o.Retry
		if n > 0 {
			continue
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wait:
		case <-t.C:
		}
		t.Stop()
	}
}

// step sends the next batch (up to the durable head) and returns how many
// entries it sent.
func (f *Forwarder) step(ctx context.Context) (int, error) {
	f.mu.Lock()
	after := f.sent
	f.mu.Unlock()
	head := f.o.Log.Head().Seq
	if head <= after {
		return 0, nil
	}
	batch, next, err := f.read(after, head)
	if err != nil {
		f.mu.Lock()
		f.pos = readPos{} // find the position afresh next time
		f.mu.Unlock()
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	if err := f.o.Sink.Send(ctx, batch); err != nil {
		return 0, err
	}
	last := batch[len(batch)-1].Seq
	if err := writeCursor(f.cursor, last); err != nil {
		return 0, fmt.Errorf("persist cursor: %w", err)
	}
	f.mu.Lock()
	f.sent = last
	f.pos = next
	if f.lastErr != nil {
		f.log.Info("audit: forwarding resumed", "since", f.failing)
	}
	f.lastErr = nil
	f.mu.Unlock()
	return len(batch), nil
}

// read returns up to MaxBatch entries with after < seq <= head, and the
// position after them.
func (f *Forwarder) read(after, head uint64) ([]Entry, readPos, error) {
	dir := f.o.Log.Dir()
	pos := f.pos
	if pos.seg == "" || pos.seq != after+1 {
		segs, err := listSegments(dir)
		if err != nil {
			return nil, pos, err
		}
		pos = readPos{}
		for _, s := range segs {
			if first, _ := segmentSeq(s); first <= after+1 {
				pos = readPos{seg: s, seq: first}
			}
		}
		if pos.seg == "" {
			if len(segs) > 0 {
				return nil, pos, fmt.Errorf("records after seq %d were pruned before they were forwarded", after)
			}
			return nil, pos, nil
		}
	}
	var out []Entry
	for range 2 { // the current segment, then at most one rotation per call
		file, err := os.Open(filepath.Join(dir, pos.seg))
		if err != nil {
			return nil, pos, err
		}
		if _, err := file.Seek(pos.off, io.SeekStart); err != nil {
			file.Close()
			return nil, pos, err
		}
		br := bufio.NewReaderSize(file, 64<<10)
		for len(out) < f.o.MaxBatch && pos.seq <= head {
			line, err := br.ReadBytes('\n')
			if err == io.EOF {
				break // incomplete or nothing yet
			}
			if err != nil {
				file.Close()
				return nil, pos, err
			}
			r, perr := parseLine(line[:len(line)-1])
			if perr != nil {
				file.Close()
				return nil, pos, fmt.Errorf("%s offset %d: %w", pos.seg, pos.off, perr)
			}
			if r.Seq != pos.seq {
				if r.Seq < pos.seq { // scanning forward from a segment start
					pos.off += int64(len(line))
					continue
				}
				file.Close()
				return nil, pos, fmt.Errorf("%s offset %d: seq %d, want %d", pos.seg, pos.off, r.Seq, pos.seq)
			}
			pos.off += int64(len(line))
			pos.seq++
			if r.Seq > after {
				out = append(out, Entry{Seq: r.Seq, Time: r.Time, Type: r.Type, Line: line[:len(line)-1]})
			}
		}
		file.Close()
		if len(out) >= f.o.MaxBatch || pos.seq > head {
			break
		}
		// the segment ran out before head: move to the next one
		nextName := segmentName(pos.seq)
		if _, err := os.Stat(filepath.Join(dir, nextName)); err != nil {
			break
		}
		pos = readPos{seg: nextName, seq: pos.seq}
	}
	return out, pos, nil
}

// minCursor returns the smallest seq recorded in the cursor files in dir,
// and false when there are none.
func minCursor(dir string) (uint64, bool, error) {
	names, err := filepath.Glob(filepath.Join(dir, "cursor-*"))
	if err != nil {
		return 0, false, err
	}
	var lowest uint64
	found := false
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return 0, false, err
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("malformed cursor file %s", filepath.Base(name))
		}
		if !found || n < lowest {
			lowest, found = n, true
		}
	}
	return lowest, found, nil
}

func writeCursor(path string, seq uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
