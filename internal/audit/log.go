package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/merkle"
)

// ErrUnavailable is returned by Append while the log is in its failed state:
// a write or flush failed, and nothing more is accepted until the log has
// recovered (on its own, see Options.RetryInterval, or through Reopen).
var ErrUnavailable = errors.New("audit: log unavailable")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// Defaults for Options.
const (
	DefaultSegmentSize        = 64 << 20
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	DefaultRetryInterval      = 100 * time.Millisecond
	maxRetryInterval          = 5 * time.Second
	probeBytes                = 64 << 10
	maxBatch                  = 1024
	queueSize                 = 4096
)

// File is what the log writes segments through. Sync must make every byte
// written so far durable.
type File interface {
	io.Writer
	Sync() error
}

// Options configures Open.
type Options struct {
	Dir    string
	Logger *slog.Logger
	// Signer signs checkpoints and prune anchors. Without it the log writes
	// no checkpoints, and truncation cannot be detected.
	Signer             ed25519.PrivateKey
	CheckpointEvery    int           // records between checkpoints; default 1000
	CheckpointInterval time.Duration // longest time between checkpoints; default 1 min
	SegmentSize        int64         // rotate after this many bytes; default 64 MiB
	// HashKey keys the HMAC of the fields named in HashFields (FieldClient,
	// FieldKey, FieldSourceIP, FieldAddress or event detail keys). Open
	// fails when HashFields is set and HashKey is shorter than 16 bytes.
	HashKey    []byte
	HashFields []string
	// NoSync skips the flush after each batch. Records then survive a
	// process crash but not a power loss. Tests and benchmarks only.
	NoSync bool
	// NoPreallocate turns off writing zeros ahead of the records (see
	// prealloc.go): every flush then also commits the file's new size.
	// For comparison in benchmarks; NoSync implies it.
	NoPreallocate bool
	// RetryInterval is the wait before the first attempt to leave the
	// failed state (a write or flush failed, e.g. on a full disk); it
	// doubles after each failed attempt up to 5 s. An attempt reserves
	// space after the last durable record (write + flush) and, when that
	// works, reopens the log there, cutting any torn record. Default
	// 100 ms; negative: stay failed until Reopen.
	RetryInterval time.Duration
	// OnHealth, if set, is called when the log enters its failed state
	// (with the cause) and when it leaves it (with nil), to raise and clear
	// an alert. It must not block or call into the log.
	OnHealth func(err error)
	// WrapFile, if set, wraps each segment file the log writes to. It exists
	// to inject write and flush faults in tests.
	WrapFile func(File) File
	// Now is the clock; default time.Now. Record times never go backwards
	// even when it does.
	Now func() time.Time
}

// String describes o without its keys.
func (o Options) String() string {
	return fmt.Sprintf("audit.Options{Dir:%q Signer:%s HashKey:%s HashFields:%v CheckpointEvery:%d CheckpointInterval:%v SegmentSize:%d NoSync:%v}",
		o.Dir, redactedIf(len(o.Signer) > 0), redactedIf(len(o.HashKey) > 0), o.HashFields,
		o.CheckpointEvery, o.CheckpointInterval, o.SegmentSize, o.NoSync)
}

// GoString describes o without its keys.
func (o Options) GoString() string { return o.String() }

// LogValue describes o without its keys.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

func redactedIf(set bool) string {
	if set {
		return Redacted
	}
	return "none"
}

// Log is an open audit log. It is safe for concurrent use; one process owns a
// log directory at a time (an advisory lock enforces it).
type Log struct {
	opts   Options
	log    *slog.Logger
	hash   *hasher
	lock   *os.File
	pubKey ed25519.PublicKey
	keyID  string

	life   sync.Mutex // serialises Close, Reopen and Prune
	mu     sync.Mutex // guards the writer's segment switch against Prune
	gen    atomic.Pointer[generation]
	failed atomic.Pointer[error]
	closed atomic.Bool

	head atomic.Pointer[Receipt] // last durable record
	// notify is closed and replaced after every durable batch, waking
	// every reader waiting for new records.
	notify atomic.Pointer[chan struct{}]

	pool sync.Pool

	closing    chan struct{} // closed by Close: stops the recovery loop
	bgMu       sync.Mutex    // orders closing against bg.Add
	recovering atomic.Bool
	outage     atomic.Pointer[outage] // since the log failed, until it recovers
	bg         sync.WaitGroup
}

// generation is one run of the writer goroutine; Reopen starts a new one.
type generation struct {
	queue chan *pending
	stop  chan struct{} // closed to ask the writer to drain and exit
	done  chan struct{} // closed when the writer has exited
	st    *state

	// commit is held by whoever writes st: the writer goroutine, or an
	// Append that found the writer idle and commits its record itself
	// (commitAndWait), which spares it two hand-overs between goroutines.
	commit sync.Mutex
	// lazy holds the records of AppendLazy until a commit takes them
	// along; kick asks the writer to commit them after lazyWait if no
	// commit comes sooner. lazyClosed is set once the final drain has
	// taken them: later ones are refused.
	lazyMu     sync.Mutex
	lazy       []*pending
	lazyClosed bool
	kick       chan struct{}
}

// takeLazy appends the waiting lazy records to batch, oldest first.
func (g *generation) takeLazy(batch []*pending, final bool) []*pending {
	g.lazyMu.Lock()
	batch = append(batch, g.lazy...)
	clear(g.lazy)
	g.lazy = g.lazy[:0]
	if final {
		g.lazyClosed = true
	}
	g.lazyMu.Unlock()
	return batch
}

// stopping reports whether the writer has been asked to stop.
func (g *generation) stopping() bool {
	select {
	case <-g.stop:
		return true
	default:
		return false
	}
}

// state is the writer's view of the chain; only the holder of its
// generation's commit lock touches it.
type state struct {
	f       *os.File
	w       File
	segName string
	segSize int64   // end of the data in the segment
	z       *zeroer // nil without pre-allocation
	spare   *spare  // the next segment, prepared ahead; nil without pre-allocation
	// tree is the Merkle tree over every durable record; nil when it
	// cannot be known (records before a prune anchor without a tree).
	tree      *merkle.Compact
	nextTree  *merkle.Compact // a commit's copy of tree, reused: tree once its batch is durable
	nextSeq   uint64
	prev      string
	lastTime  time.Time
	sinceCkpt int
	lastCkpt  time.Time
	buf       []byte
	batch     []*pending // an inline commit's batch, reused
}

type pending struct {
	body []byte
	done chan struct{}
	rec  Receipt
	err  error
}

// lazyWait is how long lazy records wait for a record that needs a flush,
// so that they share it, before the writer commits them on their own.
const lazyWait = 5 * time.Millisecond

// Open opens (or creates) the log in opts.Dir, recovers from a crash that
// left a torn final record, and starts the writer.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("audit: open: no directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	l := &Log{opts: opts, log: opts.Logger, closing: make(chan struct{})}
	nc := make(chan struct{})
	l.notify.Store(&nc)
	if len(opts.HashFields) > 0 {
		if len(opts.HashKey) < 16 {
			return nil, errors.New("audit: open: hash fields configured without a hash key of at least 16 bytes")
		}
		l.hash = &hasher{key: append([]byte(nil), opts.HashKey...), fields: map[string]bool{}}
		for _, f := range opts.HashFields {
			l.hash.fields[f] = true
		}
	}
	if opts.Signer != nil {
		if len(opts.Signer) != ed25519.PrivateKeySize {
			return nil, errors.New("audit: open: bad checkpoint key size")
		}
		l.pubKey = opts.Signer.Public().(ed25519.PublicKey)
		l.keyID = KeyID(l.pubKey)
	}
	l.pool.New = func() any { return &pending{done: make(chan struct{}, 1)} }
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if fi, err := os.Stat(opts.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		l.log.Warn("audit directory was accessible to others; restricted to 0700", "dir", opts.Dir)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: open: directory in use by another process: %w", err)
	}
	l.lock = lock
	if err := l.start(false); err != nil {
		lock.Close()
		return nil, err
	}
	return l, nil
}

// start recovers the directory and runs a new writer generation. With
// probe it first checks that space can be written and flushed after the
// last durable record.
func (l *Log) start(probe bool) error {
	st, err := l.recover()
	if err != nil {
		return err
	}
	if probe {
		if err := probeSpace(st); err != nil {
			st.closeSegment(false)
			return fmt.Errorf("audit: probe: %w: %w", ErrUnavailable, err)
		}
	}
	g := &generation{
		queue: make(chan *pending, queueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		st:    st,
		kick:  make(chan struct{}, 1),
	}
	if !l.opts.NoSync && !l.opts.NoPreallocate {
		st.spare = startSpare(l.opts.Dir, l.segmentLimit(), l.opts.SegmentSize, l.log)
	}
	l.head.Store(&Receipt{Seq: st.nextSeq - 1, Hash: st.prev})
	l.gen.Store(g)
	l.failed.Store(nil)
	go l.run(g)
	return nil
}

// recover scans the segments, truncates a torn tail and opens the last
// segment for appending.
func (l *Log) recover() (*state, error) {
	rs, err := recoverDir(l.opts.Dir, l.log)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	st := &state{nextSeq: rs.lastSeq + 1, prev: rs.lastHash, lastTime: rs.lastTime, lastCkpt: l.opts.Now(), tree: rs.tree}
	if st.tree == nil && !rs.anchored {
		// a log from before Merkle checkpoints: one full read
		if st.tree, err = rebuildTree(l.opts.Dir); err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
	}
	if st.tree == nil {
		l.log.Warn("audit: no Merkle tree for the records before the prune anchor; checkpoints carry no Merkle root")
	}
	st.sinceCkpt = int(rs.lastSeq - rs.lastCkptSeq)
	name := rs.lastSegment
	if name == "" {
		name = segmentName(st.nextSeq)
	}
	if err := l.openSegment(st, name); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	return st, nil
}

func (l *Log) openSegment(st *state, name string) error {
	// Not O_APPEND: records are written over the pre-allocated zeros.
	// Recovery has cut any zero tail, so the data ends at the file's end.
	f, err := os.OpenFile(filepath.Join(l.opts.Dir, name), os.O_CREATE|os.O_RDWR|l.syncFlag(), 0o600)
	if err != nil {
		return err
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return err
	}
	if err := syncDir(l.opts.Dir); err != nil {
		f.Close()
		return err
	}
	st.f, st.segName, st.segSize, st.z = f, name, end, nil
	if !l.opts.NoSync && !l.opts.NoPreallocate {
		// The zeroer writes through its own handle without O_DSYNC: its
		// rounds are flushed once each, not write by write.
		zf := f
		if l.syncFlag() != 0 {
			if zf, err = os.OpenFile(f.Name(), os.O_RDWR, 0); err != nil {
				f.Close()
				return err
			}
		}
		st.z = startZeroer(zf, end, end, l.segmentLimit(), l.log)
		st.z.owned = zf != f
	}
	st.w = l.wrap(f)
	return nil
}

// segmentDSync, set by load reports only, opens segments with O_DSYNC:
// each write returns once its bytes are durable, one system call per batch
// instead of write + fdatasync. It is off because the durability check of
// the security battery (C2) looks for the fdatasync of the segment between
// an intent's write and the forwarded call; docs/performance.md has the
// comparison.
var segmentDSync = false

// syncFlag is the flag segments are opened with: O_DSYNC unless the log
// does not flush.
func (l *Log) syncFlag() int {
	if segmentDSync && !l.opts.NoSync {
		return unix.O_DSYNC
	}
	return 0
}

// wrap returns the File the writer uses for segment f.
func (l *Log) wrap(f *os.File) File {
	var w File = dataSyncFile{File: f, dsync: l.syncFlag() != 0}
	if l.opts.WrapFile != nil {
		w = l.opts.WrapFile(w)
	}
	return w
}

// dataSyncFile flushes with fdatasync: the record bytes and the file size,
// not the modification time. When the file is open with O_DSYNC each
// write is already durable and Sync has nothing left to do.
type dataSyncFile struct {
	*os.File
	dsync bool
}

func (f dataSyncFile) Sync() error {
	if f.dsync {
		return nil
	}
	return fdatasync(f.File)
}

// closeSegment stops the zeroer and closes the segment; when cut is set
// (the log is healthy) it first cuts the zero tail, so that a closed
// segment ends with its last record.
func (st *state) closeSegment(cut bool) error {
	if st.f == nil {
		return nil // a rotation failed after closing the old segment
	}
	if st.z != nil {
		st.z.close()
		st.z = nil
	}
	f := st.f
	st.f = nil
	if cut {
		if err := f.Truncate(st.segSize); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append adds r to the log and returns once it is durable. r must carry
// exactly one of Intent, Outcome or Event; Type may be left empty and is
// then inferred (an Intent with Decision "deny" is TypeDenied). Seq, Time,
// Prev and Hash are assigned by the log. Intent bodies pass through Redact,
// and the fields named in Options.HashFields are stored as keyed HMACs.
//
// If ctx ends before the record is durable, Append returns ctx.Err(); the
// record may still be written.
func (l *Log) Append(ctx context.Context, r Record) (Receipt, error) {
	if l.closed.Load() {
		return Receipt{}, ErrClosed
	}
	if l.failed.Load() != nil {
		return Receipt{}, ErrUnavailable
	}
	body, err := l.prepare(&r)
	if err != nil {
		return Receipt{}, fmt.Errorf("audit: append: %w", err)
	}
	return l.commitAndWait(ctx, body)
}

// Sync returns once every record appended before it, lazy ones included, is
// durable. It writes no record of its own.
func (l *Log) Sync(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.failed.Load() != nil {
		return ErrUnavailable
	}
	_, err := l.commitAndWait(ctx, nil)
	return err
}

// commitAndWait makes body (nil: a barrier that only waits for the flush)
// durable. When nothing is queued and no commit runs, it commits body
// itself, with whatever lazy records wait; otherwise it queues body for
// the writer, which takes everything queued into one flush, and waits.
func (l *Log) commitAndWait(ctx context.Context, body []byte) (Receipt, error) {
	g := l.gen.Load()
	p := l.pool.Get().(*pending)
	p.body, p.err, p.rec = body, nil, Receipt{}
	if len(g.queue) == 0 && g.commit.TryLock() {
		if !g.stopping() {
			st := g.st
			batch := g.takeLazy(st.batch[:0], false)
			batch = append(batch, p)
			batch = fillFrom(g.queue, batch)
			l.commit(st, batch, false)
			clear(batch)
			st.batch = batch[:0]
			g.commit.Unlock()
			<-p.done // commit answered every record of the batch
			rec, err := p.rec, p.err
			p.body = nil
			l.pool.Put(p)
			return rec, err
		}
		g.commit.Unlock()
	}
	select {
	case g.queue <- p:
	case <-g.stop:
		l.pool.Put(p)
		if l.closed.Load() {
			return Receipt{}, ErrClosed
		}
		return Receipt{}, ErrUnavailable
	case <-ctx.Done():
		l.pool.Put(p)
		return Receipt{}, ctx.Err()
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return Receipt{}, ctx.Err() // p stays with the writer; not pooled
	case <-g.done:
		select {
		case <-p.done:
		default:
			if l.closed.Load() {
				return Receipt{}, ErrClosed
			}
			return Receipt{}, ErrUnavailable
		}
	}
	rec, err := p.rec, p.err
	p.body = nil
	l.pool.Put(p)
	return rec, err
}

// AppendLazy adds r to the log without waiting for it to be durable: it is
// written with the next flush, which it does not start on its own for up to
// a few milliseconds. It suits records written after the fact that must not
// delay anyone, such as a request's outcome once the bot has its answer. A
// crash within that window can lose the record; a write failure puts the
// log in its failed state, so every later Append fails (fail closed).
func (l *Log) AppendLazy(ctx context.Context, r Record) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.failed.Load() != nil {
		return ErrUnavailable
	}
	body, err := l.prepare(&r)
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	// Not from the pool: the commit that takes it drops it.
	p := &pending{body: body, done: make(chan struct{}, 1)}
	g := l.gen.Load()
	g.lazyMu.Lock()
	switch {
	case g.lazyClosed:
		g.lazyMu.Unlock()
		if l.closed.Load() {
			return ErrClosed
		}
		return ErrUnavailable
	case len(g.lazy) >= queueSize:
		// Flushes cannot keep up: this one waits for its own, as Append
		// does, which slows the caller down instead of growing the list.
		g.lazyMu.Unlock()
		_, err := l.commitAndWait(ctx, body)
		return err
	}
	g.lazy = append(g.lazy, p)
	first := len(g.lazy) == 1
	g.lazyMu.Unlock()
	if first {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// prepare validates r, applies redaction and hashing to copies of its
// payload and encodes the record body.
func (l *Log) prepare(r *Record) ([]byte, error) {
	r.Checkpoint = nil
	if r.Intent != nil {
		in := *r.Intent
		if r.RequestID == "" {
			r.RequestID = in.RequestID
		}
		if in.Decision != DecisionAllow && in.Decision != DecisionDeny {
			return nil, fmt.Errorf("intent decision %q, want %q or %q", in.Decision, DecisionAllow, DecisionDeny)
		}
		if r.Type == "" {
			r.Type = TypeIntent
			if in.Decision == DecisionDeny {
				r.Type = TypeDenied
			}
		}
		if in.Body != "" {
			in.Body = redactString(in.Body)
		}
		if t := in.Call.Transfer; t != nil {
			tc := *t
			in.Call.Transfer = &tc
		}
		in.Call.Orders = append([]exchange.Order(nil), in.Call.Orders...)
		r.Intent = &in
	}
	if r.Outcome != nil {
		o := *r.Outcome
		if r.RequestID == "" {
			r.RequestID = o.RequestID
		}
		if r.Type == "" {
			r.Type = TypeOutcome
		}
		r.Outcome = &o
	}
	if r.Event != nil {
		ev := *r.Event
		if ev.Kind == "" {
			return nil, errors.New("event without kind")
		}
		if r.Type == "" {
			r.Type = TypeEvent
		}
		if ev.Detail != nil {
			d := make(map[string]string, len(ev.Detail))
			for k, v := range ev.Detail {
				if isSecretName(k, nil) {
					v = Redacted
				}
				d[k] = v
			}
			ev.Detail = d
		}
		r.Event = &ev
	}
	if r.Type == TypeCheckpoint {
		return nil, errors.New("checkpoint records are written by the log itself")
	}
	sanitize(r)
	l.hash.apply(r)
	body, err := encodeBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) > maxLine-1024 {
		// readers refuse longer lines; refusing here keeps the log readable
		return nil, fmt.Errorf("record of %d bytes is over the %d byte limit", len(body), maxLine-1024)
	}
	return body, nil
}

// Healthy returns nil while the log accepts records, and the error that put
// it into its failed state otherwise.
func (l *Log) Healthy() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Head returns the receipt of the last durable record (Seq 0 for an empty
// log).
func (l *Log) Head() Receipt { return *l.head.Load() }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.opts.Dir }

// Notify returns a channel that is closed when more records become durable.
// Call it again for the next change.
func (l *Log) Notify() <-chan struct{} { return *l.notify.Load() }

// Close drains queued records, writes a final checkpoint when records were
// added since the last one, flushes and closes the log.
func (l *Log) Close() error {
	l.bgMu.Lock()
	select {
	case <-l.closing:
	default:
		close(l.closing)
	}
	l.bgMu.Unlock()
	l.bg.Wait() // the recovery loop, if any, has stopped
	l.life.Lock()
	defer l.life.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	err := l.stopWriter()
	l.lock.Close()
	return err
}

func (l *Log) stopWriter() error {
	g := l.gen.Load()
	select {
	case <-g.stop: // already stopped by a failed Reopen
	default:
		close(g.stop)
	}
	<-g.done
	if g.st.spare != nil {
		g.st.spare.close()
	}
	if err := g.st.closeSegment(l.failed.Load() == nil); err != nil && l.failed.Load() == nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Reopen leaves the failed state: it stops the writer, re-reads the
// directory (truncating any torn record the failure left) and resumes. It
// fails, and the log stays unavailable, while the cause persists.
func (l *Log) Reopen() error {
	l.life.Lock()
	defer l.life.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	cause := l.failed.Load()
	fail := errors.New("audit: reopening")
	l.failed.Store(&fail)
	_ = l.stopWriter()
	if err := l.start(true); err != nil {
		l.failed.Store(&err)
		// keep a stopped generation so Append fails fast
		l.gen.Store(stoppedGeneration(l.gen.Load().st))
		return err
	}
	if cause != nil {
		l.log.Warn("audit log recovered; accepting records again", "alert", "audit_recovered",
			"head", l.Head().Seq, "cause", *cause)
		if o := l.outage.Swap(nil); o != nil {
			// The gap goes into the chain: when the log stopped and why.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := l.Append(ctx, Record{Event: &Event{Kind: EventRecovered, Actor: "keywarden",
				Detail: map[string]string{"failed_at": o.since.Format(time.RFC3339Nano), "cause": o.cause}}})
			cancel()
			if err != nil {
				l.log.Warn("audit: could not record the recovery", "err", err)
			}
		}
		if l.opts.OnHealth != nil {
			l.opts.OnHealth(nil)
		}
	}
	return nil
}

// EventRecovered is the kind of the event the log records when it leaves
// its failed state; its detail holds failed_at and cause.
const EventRecovered = "audit.recovered"

// outage is a period in the failed state.
type outage struct {
	since time.Time
	cause string
}

func stoppedGeneration(st *state) *generation {
	g := &generation{queue: make(chan *pending), stop: make(chan struct{}), done: make(chan struct{}), st: st,
		kick: make(chan struct{}, 1), lazyClosed: true}
	close(g.stop)
	close(g.done)
	return g
}

// run is the writer: it collects whatever is queued, writes it with one
// write and one flush, and wakes each waiter. It also commits lazy records
// nobody took along within lazyWait, and checkpoints that fall due.
func (l *Log) run(g *generation) {
	defer close(g.done)
	st := g.st
	batch := make([]*pending, 0, maxBatch)
	tick := time.NewTicker(max(l.opts.CheckpointInterval/4, time.Millisecond))
	defer tick.Stop()
	lazyT := time.NewTimer(lazyWait)
	lazyT.Stop()
	for {
		batch = batch[:0]
		select {
		case p := <-g.queue:
			batch = append(batch, p)
		case <-g.kick:
			lazyT.Reset(lazyWait)
			continue
		case <-lazyT.C:
			g.commit.Lock()
			if batch = g.takeLazy(batch, false); len(batch) > 0 {
				l.commit(st, batch, false)
			}
			g.commit.Unlock()
			clear(batch)
			continue
		case <-tick.C:
			g.commit.Lock()
			if st.sinceCkpt > 0 && l.opts.Now().Sub(st.lastCkpt) >= l.opts.CheckpointInterval {
				l.commit(st, nil, true)
			}
			g.commit.Unlock()
			continue
		case <-g.stop:
			l.drain(g, st)
			return
		}
		g.commit.Lock()
		batch = fillFrom(g.queue, batch)
		lazy := len(batch)
		batch = g.takeLazy(batch, false)
		if lazy < len(batch) {
			// the lazy records are older than what was queued
			rotateRight(batch, len(batch)-lazy)
		}
		l.commit(st, batch, false)
		g.commit.Unlock()
		clear(batch)
	}
}

// fillFrom appends to batch whatever is queued, up to maxBatch records.
func fillFrom(queue chan *pending, batch []*pending) []*pending {
	for len(batch) < maxBatch {
		select {
		case p := <-queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// rotateRight moves the last k elements of b to its front, keeping the
// order within each part.
func rotateRight(b []*pending, k int) {
	slices.Reverse(b)
	slices.Reverse(b[:k])
	slices.Reverse(b[k:])
}

// drain commits the lazy records and everything still queued, then a
// final checkpoint; later lazy records are refused.
func (l *Log) drain(g *generation, st *state) {
	g.commit.Lock()
	defer g.commit.Unlock()
	if lazy := g.takeLazy(nil, true); len(lazy) > 0 {
		l.commit(st, lazy, false)
	}
	for range queueSize/maxBatch + 1 {
		batch := fillFrom(g.queue, make([]*pending, 0, maxBatch))
		if len(batch) == 0 {
			break
		}
		l.commit(st, batch, false)
	}
	if st.sinceCkpt > 0 {
		l.commit(st, nil, true)
	}
}

// commit writes batch (and a checkpoint when one is due or forced) with one
// write and one flush, then wakes the batch's waiters.
func (l *Log) commit(st *state, batch []*pending, forceCkpt bool) {
	if p := l.failed.Load(); p != nil {
		for _, pd := range batch {
			pd.err = ErrUnavailable
			pd.done <- struct{}{}
		}
		return
	}
	if st.segSize >= l.opts.SegmentSize && (len(batch) > 0 || forceCkpt) {
		if err := l.rotate(st); err != nil {
			l.fail(batch, fmt.Errorf("audit: rotate segment: %w: %w", ErrUnavailable, err))
			return
		}
	}
	now := l.opts.Now().UTC()
	if now.Before(st.lastTime) {
		now = st.lastTime // record times never go backwards
	}
	buf := st.buf[:0]
	seq, prev := st.nextSeq, st.prev
	records := 0
	var tree *merkle.Compact // st.tree once this batch is durable
	if st.tree != nil && (len(batch) > 0 || forceCkpt) {
		if st.nextTree == nil {
			st.nextTree = new(merkle.Compact)
		}
		tree = st.nextTree
		tree.CopyFrom(st.tree)
	}
	for _, pd := range batch {
		if pd.body == nil {
			continue // a barrier (Sync): it only waits for the flush
		}
		buf, prev = appendLine(buf, seq, now, pd.body, prev)
		if tree != nil {
			tree.Append(leafOf(prev))
		}
		pd.rec = Receipt{Seq: seq, Hash: prev}
		seq++
		records++
	}
	since := st.sinceCkpt + records
	ckpt := l.opts.Signer != nil && since > 0 &&
		(forceCkpt || since >= l.opts.CheckpointEvery)
	if ckpt {
		body := l.checkpointBody(seq-1, prev, now, tree)
		buf, prev = appendLine(buf, seq, now, body, prev)
		if tree != nil {
			tree.Append(leafOf(prev))
		}
		seq++
	}
	st.buf = buf
	if len(buf) == 0 {
		for _, pd := range batch {
			pd.done <- struct{}{}
		}
		return
	}
	if st.z != nil {
		st.z.reserve(st.segSize, int64(len(buf)))
	}
	if _, err := st.w.Write(buf); err != nil {
		l.fail(batch, fmt.Errorf("audit: write: %w: %w", ErrUnavailable, err))
		return
	}
	st.segSize += int64(len(buf))
	if !l.opts.NoSync {
		if err := st.w.Sync(); err != nil {
			l.fail(batch, fmt.Errorf("audit: flush: %w: %w", ErrUnavailable, err))
			return
		}
	}
	if st.spare != nil {
		// after the flush: the spare's zeros go out between flushes
		st.spare.progress(st.segSize)
	}
	st.nextSeq, st.prev, st.lastTime = seq, prev, now
	if tree != nil {
		st.tree, st.nextTree = tree, st.tree
	}
	if ckpt {
		st.sinceCkpt = 0
		st.lastCkpt = l.opts.Now()
	} else {
		st.sinceCkpt = since
	}
	l.head.Store(&Receipt{Seq: seq - 1, Hash: prev})
	for _, pd := range batch {
		pd.done <- struct{}{}
	}
	nc := make(chan struct{})
	close(*l.notify.Swap(&nc))
	if cap(st.buf) > 4<<20 {
		st.buf = nil // do not keep a huge buffer after a burst
	}
}

// fail puts the log into its failed state and answers the batch with err.
func (l *Log) fail(batch []*pending, err error) {
	if l.failed.CompareAndSwap(nil, &err) {
		l.outage.CompareAndSwap(nil, &outage{since: l.opts.Now().UTC(), cause: err.Error()})
		l.log.Error("audit log failed; refusing new records until it recovers", "alert", "audit_failed", "err", err)
		if l.opts.OnHealth != nil {
			l.opts.OnHealth(err)
		}
		l.startRecovery()
	}
	for _, pd := range batch {
		pd.rec = Receipt{}
		pd.err = err
		pd.done <- struct{}{}
	}
}

// segmentLimit is how far a segment is pre-allocated: its size plus room
// for the batch that crosses it.
func (l *Log) segmentLimit() int64 { return l.opts.SegmentSize + 256<<10 }

// rotate starts a new segment whose first record is st.nextSeq: the spare
// prepared ahead when it is ready, else a new file zeroed in place.
func (l *Log) rotate(st *state) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := st.closeSegment(true); err != nil {
		return err
	}
	name := segmentName(st.nextSeq)
	if st.spare == nil || !st.spare.take(filepath.Join(l.opts.Dir, name)) {
		return l.openSegment(st, name)
	}
	f, err := os.OpenFile(filepath.Join(l.opts.Dir, name), os.O_RDWR|l.syncFlag(), 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(l.opts.Dir); err != nil {
		f.Close()
		return err
	}
	// the whole segment is zeroed already: the zeroer has nothing to do
	st.f, st.segName, st.segSize = f, name, 0
	st.z = startZeroer(f, 0, l.segmentLimit(), l.segmentLimit(), l.log)
	st.w = l.wrap(f)
	return nil
}

func (l *Log) checkpointBody(count uint64, head string, t time.Time, tree *merkle.Compact) []byte {
	sig := ed25519.Sign(l.opts.Signer, checkpointNote(count, head, t))
	cp := &Checkpoint{Count: count, Head: head, KeyID: l.keyID, Signature: b64(sig)}
	if tree != nil && tree.Size() == count {
		l.merkleFields(cp, tree)
	}
	r := Record{Type: TypeCheckpoint, Checkpoint: cp}
	body, err := encodeBody(&r)
	if err != nil {
		panic("audit: encoding a checkpoint cannot fail: " + err.Error())
	}
	return body
}

// sanitize replaces invalid UTF-8 in every string of r's (already copied)
// payload, so that a stored line always decodes to exactly what it encodes.
func sanitize(r *Record) {
	v := func(s *string) {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	v(&r.RequestID)
	if in := r.Intent; in != nil {
		for _, s := range []*string{&in.Client, &in.Key, &in.Venue, &in.Method, &in.Path,
			&in.SourceIP, &in.Rule, &in.Reason, &in.Body, &in.Call.Venue, &in.Call.Method,
			&in.Call.Path, &in.Call.Endpoint, (*string)(&in.Call.Scope)} {
			v(s)
		}
		for i := range in.Call.Orders {
			o := &in.Call.Orders[i]
			for _, s := range []*string{(*string)(&o.Action), &o.Symbol, (*string)(&o.Side), &o.Type, &o.ClientOrderID} {
				v(s)
			}
		}
		if t := in.Call.Transfer; t != nil {
			for _, s := range []*string{&t.Asset, &t.Address, &t.Network, &t.Memo, &t.Destination} {
				v(s)
			}
		}
	}
	if o := r.Outcome; o != nil {
		v(&o.VenueOrderID)
		v(&o.Error)
	}
	if ev := r.Event; ev != nil {
		v(&ev.Kind)
		v(&ev.Actor)
		if len(ev.Detail) > 0 {
			d := make(map[string]string, len(ev.Detail))
			for k, val := range ev.Detail {
				v(&k)
				v(&val)
				d[k] = val
			}
			ev.Detail = d
		}
	}
}
