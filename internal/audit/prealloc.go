package audit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Pre-allocation. Appending to a file makes every fdatasync also commit the
// file's new size, a journal commit on ext4 and most other file systems,
// which roughly doubles the cost of each flush. The log therefore writes
// zeros ahead of its records and flushes them once, in the background, so
// that the flush after each batch only has to write data blocks already
// allocated and initialised (fallocate alone is not enough: it leaves
// unwritten extents whose conversion is again a metadata commit).
//
// A segment is thus its records followed by zero bytes. Records are JSON
// lines and never contain a NUL, so the first NUL ends the data: readers
// stop there, recovery truncates the zero tail (and anything after it) and
// the writer resumes at the end of the data.

// The zeroer writes ahead firstZeroChunk bytes at first, doubling with each
// round up to zeroChunk, and starts a round when less than half a round is
// left ahead of the data (so a log that stays small costs little).
const (
	firstZeroChunk = 1 << 20
	zeroChunk      = 8 << 20
)

// zeroBuf is the source of the zeros; never written to.
var zeroBuf = make([]byte, 1<<20)

// zeroer keeps a zeroed, durable region ahead of the writer in one segment.
type zeroer struct {
	f     *os.File
	owned bool  // close f with the zeroer
	limit int64 // never zero past this offset
	chunk int64
	log   *slog.Logger

	mu   sync.Mutex
	cond *sync.Cond
	// [0, zeroEnd) is allocated, initialised and durable (records or zeros).
	zeroEnd int64
	// dataEnd is where the writer's reserved bytes end.
	dataEnd int64
	// busyFrom..busyTo is being zeroed now (busyTo == 0: idle).
	busyFrom, busyTo int64
	failed           bool // a zeroing write failed (e.g. disk full): stop

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// startZeroer starts keeping a zeroed region ahead of dataEnd in f, up to
// limit bytes. size is f's current size.
func startZeroer(f *os.File, dataEnd, size, limit int64, log *slog.Logger) *zeroer {
	z := &zeroer{f: f, limit: limit, chunk: min(firstZeroChunk, max(limit/2, 64<<10)), log: log,
		zeroEnd: max(size, dataEnd), dataEnd: dataEnd,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	z.cond = sync.NewCond(&z.mu)
	go z.run()
	z.kick <- struct{}{}
	return z
}

// reserve is called by the writer before writing n bytes at off: it waits
// while the zeroer is writing over that range, and records the new end of
// data so the zeroer never starts below it.
func (z *zeroer) reserve(off, n int64) {
	z.mu.Lock()
	end := off + n
	if end > z.dataEnd {
		z.dataEnd = end
	}
	for z.busyTo != 0 && off < z.busyTo && end > z.busyFrom {
		z.cond.Wait()
	}
	low := z.zeroEnd-z.dataEnd < z.chunk/2 && z.zeroEnd < z.limit && !z.failed
	z.mu.Unlock()
	if low {
		select {
		case z.kick <- struct{}{}:
		default:
		}
	}
}

// ahead reports how many zeroed bytes lie ahead of the data.
func (z *zeroer) ahead() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return max(0, z.zeroEnd-z.dataEnd)
}

// close stops the zeroer and waits for it.
func (z *zeroer) close() {
	close(z.stop)
	<-z.done
	if z.owned {
		z.f.Close()
	}
}

func (z *zeroer) run() {
	defer close(z.done)
	for {
		select {
		case <-z.stop:
			return
		case <-z.kick:
		}
		for z.extend() {
			select {
			case <-z.stop:
				return
			default:
			}
		}
	}
}

// extend zeroes the next chunk; it reports whether more is wanted.
func (z *zeroer) extend() bool {
	z.mu.Lock()
	for z.busyTo != 0 { // one round at a time
		z.cond.Wait()
	}
	start := max(z.zeroEnd, z.dataEnd)
	if z.failed || start >= z.limit || z.zeroEnd-z.dataEnd >= z.chunk {
		z.mu.Unlock()
		return false
	}
	end := min(start+z.chunk, z.limit)
	z.busyFrom, z.busyTo = start, end
	z.mu.Unlock()

	err := writeZeros(z.f, start, end)
	if err == nil {
		err = fdatasync(z.f)
	}

	z.mu.Lock()
	z.busyFrom, z.busyTo = 0, 0
	if err != nil {
		z.failed = true
		z.log.Warn("audit: could not reserve space ahead of the log; records extend the segment instead", "err", err)
	} else {
		z.zeroEnd = end
		z.chunk = min(2*z.chunk, zeroChunk, max(z.limit/2, 64<<10))
	}
	z.cond.Broadcast()
	// Another round only while less than half a round lies ahead, the
	// rule reserve kicks by: a log that stays small keeps one round.
	more := err == nil && z.zeroEnd-z.dataEnd < z.chunk/2 && z.zeroEnd < z.limit
	z.mu.Unlock()
	return more
}

func writeZeros(f *os.File, start, end int64) error {
	for off := start; off < end; {
		n := min(int64(len(zeroBuf)), end-off)
		if _, err := f.WriteAt(zeroBuf[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func fdatasync(f *os.File) error {
	for range 100 { // EINTR is retried a bounded number of times
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
	return unix.EINTR
}

// nonZeroTail reads f from off to its end and returns the bytes from off
// up to the last non-zero byte, at most max bytes of them; nil when
// everything after off is zero (a pre-allocated tail).
func nonZeroTail(f *os.File, off, size int64, limit int) ([]byte, error) {
	buf := make([]byte, 1<<20)
	last := int64(-1)
	for pos := off; pos < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		if i := lastNonZero(buf[:n]); i >= 0 {
			last = pos + int64(i)
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errors.New("short read")
		}
	}
	if last < 0 {
		return nil, nil
	}
	tail := make([]byte, min(last+1-off, int64(limit)))
	if _, err := f.ReadAt(tail, off); err != nil && err != io.EOF {
		return nil, err
	}
	return tail, nil
}

func lastNonZero(b []byte) int {
	trimmed := bytes.TrimRight(b, "\x00")
	return len(trimmed) - 1
}

// probeSpace writes and flushes probeBytes of zeros after the data end of
// the segment, through the same File as the records: the check that the
// disk has room again before a failed log resumes. The zeros are the start
// of the pre-allocated tail; the writer then resumes at the data end.
func probeSpace(st *state) error {
	if _, err := st.w.Write(zeroBuf[:probeBytes]); err != nil {
		return err
	}
	if err := st.w.Sync(); err != nil {
		return err
	}
	_, err := st.f.Seek(st.segSize, io.SeekStart)
	return err
}

// spareName is the next segment, prepared ahead: SegmentSize (plus slack)
// zero bytes, flushed. It does not look like a segment to readers.
const spareName = "spare-segment.zero"

// Pacing of the spare. Zeroing a whole segment at once and flushing it puts
// megabytes in front of the log's next flush (the disk's cache flush must
// write them too), which showed as flushes of 5–20 ms once per segment and
// an ack p99 several times the median at high rates. The spare is instead
// zeroed in spareChunk writes, each handed to the disk at once
// (sync_file_range starts its write-back, so no burst of dirty pages builds
// up for the kernel to write later), and only as fast as the active segment
// fills: after each flush of the log, the spare may be zeroed up to
// spareLead times the active segment's fill fraction, so it is complete
// when the active segment is 1/spareLead full and a log's flush carries at
// most about spareLead times its own bytes of zeros. One fdatasync at the
// end makes the spare's zeros and its size durable; it is the only flush
// the spare costs per segment.
const (
	spareChunk = 256 << 10
	spareLead  = 2
)

// spareOneShot, set by load reports only, makes spares started after it
// zero the whole segment at once and leave the write-back to the final
// flush, as the log did before pacing, for comparison.
var spareOneShot bool

// spare prepares the next segment file in the background, so that the
// segment after a rotation is pre-zeroed whole and its zeros are never
// written while records are flushed to it: zeroing ahead in the active
// segment changes that file's size, and every flush of the file in the
// meantime has to commit it too. Only the first segment after Open is
// zeroed in place.
type spare struct {
	path    string
	size    int64
	segSize int64 // the log's SegmentSize, for pacing
	oneShot bool  // no pacing (spareOneShot)
	log     *slog.Logger
	ready   atomic.Bool
	busy    atomic.Bool  // zeroing or flushing now (read by load reports)
	fill    atomic.Int64 // bytes of data in the active segment
	segment atomic.Int64 // counts the log's rotations
	taken   int          // touched by the writer goroutine only
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	// touched by run only
	f      *os.File
	zeroed int64
	// failedAt is segment+1 when preparing failed during that segment:
	// no retry until the next rotation. 0: no failure.
	failedAt int64
}

var errStopped = errors.New("stopped")

// startSpare keeps a complete spare left by an earlier run and removes an
// incomplete one. segSize is the log's segment size, which paces the
// zeroing (see spareLead).
func startSpare(dir string, size, segSize int64, log *slog.Logger) *spare {
	s := newSpare(dir, size, segSize, log)
	if fi, err := os.Stat(s.path); err == nil {
		if fi.Mode().IsRegular() && fi.Size() == size {
			s.ready.Store(true)
		} else {
			os.Remove(s.path)
		}
	}
	go s.run()
	return s
}

func newSpare(dir string, size, segSize int64, log *slog.Logger) *spare {
	return &spare{path: filepath.Join(dir, spareName), size: size, segSize: max(segSize, 1), log: log,
		oneShot: spareOneShot, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *spare) run() {
	defer close(s.done)
	defer func() {
		if s.f != nil { // stopped half-way: an incomplete spare is not kept
			s.f.Close()
			os.Remove(s.path)
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		if s.ready.Load() || s.failedAt == s.segment.Load()+1 {
			continue
		}
		s.busy.Store(true)
		err := s.advance()
		s.busy.Store(false)
		if err == errStopped {
			return
		}
		if err != nil {
			s.f.Close()
			s.f = nil
			os.Remove(s.path)
			s.failedAt = s.segment.Load() + 1
			s.log.Warn("audit: could not prepare the next segment; it will be zeroed in place", "err", err)
		}
	}
}

// allowed is how far the spare may be zeroed now: spareLead times the
// active segment's fill fraction of its size.
func (s *spare) allowed() int64 {
	fill := s.fill.Load()
	if s.oneShot {
		if fill >= s.segSize/2 {
			return s.size
		}
		return 0
	}
	if fill >= s.segSize/spareLead {
		return s.size
	}
	return min(s.size, int64(float64(fill)*spareLead*float64(s.size)/float64(s.segSize)))
}

// advance zeroes the spare up to what the pacing allows, and flushes and
// publishes it once it is complete.
func (s *spare) advance() error {
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		s.f, s.zeroed = f, 0
	}
	for s.zeroed < s.size && s.zeroed < s.allowed() {
		select {
		case <-s.stop:
			return errStopped
		default:
		}
		n := min(spareChunk, s.size-s.zeroed)
		if err := writeZeros(s.f, s.zeroed, s.zeroed+n); err != nil {
			return err
		}
		// Start the write-back now rather than leave it to the kernel,
		// which would write a segment's worth at once. Not a flush: the
		// fdatasync below is what makes the spare durable.
		if !s.oneShot {
			err := unix.SyncFileRange(int(s.f.Fd()), s.zeroed, n, unix.SYNC_FILE_RANGE_WRITE)
			if err != nil && err != unix.ENOSYS {
				return err
			}
		}
		s.zeroed += n
	}
	if s.zeroed < s.size {
		return nil
	}
	if err := fdatasync(s.f); err != nil {
		return err
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return err
	}
	s.ready.Store(true)
	return nil
}

// progress tells the spare how much data the active segment holds after a
// flush, letting it zero further (writer goroutine only).
func (s *spare) progress(fill int64) {
	s.fill.Store(fill)
	if s.ready.Load() {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// take renames a ready spare to path, the log's next segment (writer
// goroutine only, at each rotation whether or not it succeeds).
func (s *spare) take(path string) bool {
	s.fill.Store(0)
	s.segment.Add(1)
	if !s.ready.Load() {
		return false
	}
	if err := os.Rename(s.path, path); err != nil {
		s.log.Warn("audit: could not use the prepared segment", "err", err)
		return false
	}
	s.ready.Store(false)
	s.taken++
	return true
}

func (s *spare) close() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
	})
}
