package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/postgres"
)

// AuditWitness copies one replica's signed audit checkpoints into
// PostgreSQL (cluster_audit_checkpoint), where they serve as that
// replica's witness, and checks the replica's log against what it copied
// before: every Collect refuses a log that went back (a checkpoint
// collected for more records than the log holds: a *RollbackError) or
// that disagrees with a collected checkpoint (a *ForkError), as the live
// file witness of package audit does. The log is also checked later, in
// full, with audit.VerifyWithWitness (keywarden cluster verify-audit).
// Checkpoints hold counts, hashes and signatures, nothing secret.
//
// Each replica keeps its own hash chain in its own audit directory; the
// replica name must stay the same across restarts (host name and audit
// directory, for example). Its methods are not safe for concurrent use;
// Run owns it while it runs.
type AuditWitness struct {
	db      *postgres.DB
	replica string
	dir     string
	head    func() uint64
	log     *slog.Logger

	// The log's last record at the previous Collect, and its hash: the
	// records up to it were compared, so the next Collect compares only
	// what came after, unless that record changed under it.
	seen     uint64
	seenHash string
}

// AuditWitnessOptions configures NewAuditWitness.
type AuditWitnessOptions struct {
	DB      *postgres.DB
	Replica string // this replica's name in the database
	Dir     string // its audit directory
	// Head returns the last durable record of the open log (audit.Log's
	// Head().Seq), so that a record a crash may still lose is never
	// collected. Nil: the log is read to its last complete record (a log
	// no process has open).
	Head   func() uint64
	Logger *slog.Logger
}

// NewAuditWitness applies the cluster schema and returns the witness of
// the audit log in o.Dir, kept under o.Replica.
func NewAuditWitness(ctx context.Context, o AuditWitnessOptions) (*AuditWitness, error) {
	if o.DB == nil || o.Replica == "" || o.Dir == "" {
		return nil, fmt.Errorf("cluster audit witness: a database, a replica name and an audit directory are required")
	}
	if err := o.DB.Migrate(ctx, "cluster", migrations); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AuditWitness{db: o.DB, replica: o.Replica, dir: o.Dir, head: o.Head, log: log}, nil
}

// ForkError reports a checkpoint collected for TreeSize records that the
// replica's log contradicts: the log was restored from an old backup and
// written on, or rewritten, or another copy of it writes under the same
// replica name. It holds counts and hashes, nothing secret.
type ForkError struct {
	Replica  string
	TreeSize uint64
	// Kind is "head" (the chain heads after TreeSize records differ),
	// "checkpoint" (same head, but the log's checkpoint record for
	// TreeSize differs) or "missing" (the log's record TreeSize+1 is not
	// that checkpoint).
	Kind       string
	StoredHead string // the collected checkpoint's chain head
	LogHead    string // the log's chain head after TreeSize records ("" when pruned)
}

func (e *ForkError) Error() string {
	var what string
	switch e.Kind {
	case "checkpoint":
		what = fmt.Sprintf("two different checkpoints for tree size %d: the chain head %s is the same, the log's checkpoint record after it differs from the collected one", e.TreeSize, e.StoredHead)
	case "missing":
		what = fmt.Sprintf("the database holds a checkpoint for tree size %d (chain head %s), the log has no checkpoint there (its head is %s)", e.TreeSize, e.StoredHead, orPruned(e.LogHead))
	default:
		what = fmt.Sprintf("two different chain heads for tree size %d: the database holds %s, the log has %s", e.TreeSize, e.StoredHead, e.LogHead)
	}
	return fmt.Sprintf("cluster audit witness: fork: replica %s: %s: the log was restored from an old backup and written on, or rewritten, or another copy of it writes under the same replica name", e.Replica, what)
}

// Unwrap makes a ForkError match audit.ErrWitness.
func (e *ForkError) Unwrap() error { return audit.ErrWitness }

// RollbackError reports a checkpoint collected for more records than the
// replica's log holds: records the cluster saw are gone (the log was
// restored from an old backup, or cut short).
type RollbackError struct {
	Replica    string
	TreeSize   uint64 // the largest tree size collected beyond the log
	StoredHead string // its chain head
	LogSize    uint64 // records in the log
	LogHead    string // the log's chain head ("" when empty)
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("cluster audit witness: rollback: replica %s: the database holds a checkpoint for tree size %d (chain head %s) but the log ends at tree size %d (head %s): records the cluster saw are gone (restored from an old backup, or cut short)",
		e.Replica, e.TreeSize, e.StoredHead, e.LogSize, orPruned(e.LogHead))
}

// Unwrap makes a RollbackError match audit.ErrWitness.
func (e *RollbackError) Unwrap() error { return audit.ErrWitness }

func orPruned(h string) string {
	if h == "" {
		return "unknown"
	}
	return h
}

// errRewritten: the record the previous Collect ended at is not the same
// any more, so everything is compared again.
var errRewritten = errors.New("cluster audit witness: the log changed under the witness")

// Collect checks the log against the checkpoints collected before, then
// copies the checkpoints written since the last Collect and returns how
// many it copied. It returns a *ForkError or *RollbackError, and copies
// nothing, when the log and the collected checkpoints disagree. The first
// Collect compares the whole log; later ones what was written since,
// unless the record the previous one ended at changed (then the whole log
// again). Checkpoints collected for records since pruned from the log are
// not compared: their absence contradicts nothing.
func (w *AuditWitness) Collect(ctx context.Context) (int, error) {
	n, err := w.collect(ctx, w.seen, w.seenHash)
	if errors.Is(err, errRewritten) {
		w.log.Warn("audit log changed since the last collection: checking it all again", "replica", w.replica, "seq", w.seen)
		w.seen, w.seenHash = 0, ""
		n, err = w.collect(ctx, 0, "")
	}
	return n, err
}

// collect compares the log's records after from (whose hash was fromHash)
// with the checkpoints collected for them, then copies the new ones.
func (w *AuditWitness) collect(ctx context.Context, from uint64, fromHash string) (int, error) {
	// Checkpoints are copied up to the log's durable head only: one a
	// crash may still lose must not reach the witness.
	limit := ^uint64(0)
	if w.head != nil {
		limit = w.head()
	}
	// What the database holds for records after from: normally nothing (or
	// what this replica sent last time from further on); another copy of
	// the log under this name, or the whole witness at the first Collect.
	stored, err := w.stored(ctx, "count >= $2", int64(from))
	if err != nil {
		return 0, err
	}
	var (
		first, last, end  uint64
		lastHash, endHash string
		matched           = from == 0
		local             = map[uint64]string{} // count -> witness line, for checkpoint records after from
		localCounts       []uint64
		hashAt            = map[uint64]string{} // chain head after count records, for the stored counts
	)
	// The whole log is read: records past limit (written, not yet durable)
	// are compared too, so that a checkpoint another process read from
	// them (cluster verify-audit on this host) is no rollback; only those
	// up to limit are copied.
	for r, err := range audit.Search(w.dir, audit.Filter{}) {
		if err != nil {
			return 0, fmt.Errorf("cluster audit witness: %w", err)
		}
		if first == 0 {
			first = r.Seq
		}
		end, endHash = r.Seq, r.Hash
		if r.Seq <= limit {
			last, lastHash = r.Seq, r.Hash
		}
		if r.Seq == from {
			//keywarden:allow H5-compare chain heads are public: they are published to the witness
			matched = r.Hash == fromHash
		}
		if _, ok := stored[r.Seq]; ok {
			hashAt[r.Seq] = r.Hash
		}
		if cp := r.Checkpoint; cp != nil && r.Seq > from {
			wc := audit.WitnessCheckpoint{Count: cp.Count, Head: cp.Head, Time: r.Time, KeyID: cp.KeyID, Signature: cp.Signature}
			local[cp.Count] = wc.String()
			if r.Seq <= limit {
				localCounts = append(localCounts, cp.Count)
			}
		}
	}
	if !matched {
		return 0, errRewritten
	}
	if err := w.compare(stored, local, hashAt, first, end, endHash); err != nil {
		return 0, err
	}
	var fresh []uint64
	for _, c := range localCounts {
		if _, ok := stored[c]; !ok {
			fresh = append(fresh, c)
		}
	}
	n, err := w.insert(ctx, fresh, local)
	if err != nil {
		return n, err
	}
	w.seen, w.seenHash = last, lastHash
	return n, nil
}

// stored returns the collected checkpoints of this replica that match
// cond (on count; $2 is arg), by count.
func (w *AuditWitness) stored(ctx context.Context, cond string, arg any) (map[uint64]string, error) {
	rows, err := w.db.Pool().Query(ctx, "SELECT count, line FROM cluster_audit_checkpoint WHERE replica = $1 AND "+cond, w.replica, arg)
	if err != nil {
		return nil, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	out := map[uint64]string{}
	var count int64
	var line string
	_, err = pgx.ForEachRow(rows, []any{&count, &line}, func() error {
		if count < 0 {
			return fmt.Errorf("negative count %d", count)
		}
		out[uint64(count)] = line
		return nil
	})
	if err != nil {
		return nil, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	return out, nil
}

// compare checks every stored checkpoint against the log, whose records
// run from first to last: each one within the log must be the log's own
// checkpoint for that count, and none may lie beyond it. Forks are
// reported before a rollback, lowest tree size first.
func (w *AuditWitness) compare(stored, local, hashAt map[uint64]string, first, last uint64, lastHash string) error {
	counts := make([]uint64, 0, len(stored))
	for c := range stored {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	var back *RollbackError
	for _, c := range counts {
		line := stored[c]
		storedHead := lineHead(line)
		switch {
		case c+1 > last:
			// The checkpoint covering c records is record c+1.
			back = &RollbackError{Replica: w.replica, TreeSize: c, StoredHead: storedHead, LogSize: last, LogHead: lastHash}
		case c+1 < first:
			// Pruned from the log: nothing to compare with.
		default:
			mine, ok := local[c]
			switch {
			case !ok:
				return &ForkError{Replica: w.replica, TreeSize: c, Kind: "missing", StoredHead: storedHead, LogHead: hashAt[c]}
			case mine == line:
			case lineHead(mine) != storedHead:
				return &ForkError{Replica: w.replica, TreeSize: c, Kind: "head", StoredHead: storedHead, LogHead: lineHead(mine)}
			default:
				return &ForkError{Replica: w.replica, TreeSize: c, Kind: "checkpoint", StoredHead: storedHead, LogHead: lineHead(mine)}
			}
		}
	}
	if back != nil {
		return back
	}
	return nil
}

// insert copies the checkpoints counts (lines in local) and returns how
// many it copied. One already there (another copy of the log under this
// name sent it meanwhile) must be the same, or it is a fork.
func (w *AuditWitness) insert(ctx context.Context, counts []uint64, local map[uint64]string) (int, error) {
	if len(counts) == 0 {
		return 0, nil
	}
	batch := &pgx.Batch{}
	for _, c := range counts {
		batch.Queue("INSERT INTO cluster_audit_checkpoint (replica, count, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			w.replica, int64(c), local[c])
	}
	br := w.db.Pool().SendBatch(ctx, batch)
	var taken []int64
	n := 0
	for _, c := range counts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return n, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
		}
		if tag.RowsAffected() == 0 {
			taken = append(taken, int64(c))
			continue
		}
		n++
	}
	if err := br.Close(); err != nil {
		return n, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	if len(taken) == 0 {
		return n, nil
	}
	there, err := w.stored(ctx, "count = ANY($2)", taken)
	if err != nil {
		return n, err
	}
	for _, c := range taken {
		line := there[uint64(c)]
		if line == local[uint64(c)] {
			continue
		}
		kind := "head"
		if lineHead(line) == lineHead(local[uint64(c)]) {
			kind = "checkpoint"
		}
		return n, &ForkError{Replica: w.replica, TreeSize: uint64(c), Kind: kind, StoredHead: lineHead(line), LogHead: lineHead(local[uint64(c)])}
	}
	return n, nil
}

// lineHead returns the chain head of a witness line
// ("keywarden-checkpoint keywarden.audit/v1 <count> <head> ...").
func lineHead(line string) string {
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != witnessTag {
		return ""
	}
	return f[3]
}

// Run collects every interval until ctx ends, and once more then; call
// Collect first, as the check at start. It returns the first *ForkError or
// *RollbackError: the log and its collected checkpoints disagree, and the
// replica must stop writing on that log. Other errors (the database
// unreachable for a while) are logged and the next interval tries again.
// It returns nil when ctx ends and the last collection found no fork.
func (w *AuditWitness) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return w.collectLogged(fctx)
		case <-t.C:
			if err := w.collectLogged(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// collectLogged collects; it logs an error and returns only a fork or a
// rollback.
func (w *AuditWitness) collectLogged(ctx context.Context) error {
	_, err := w.Collect(ctx)
	if errors.Is(err, audit.ErrWitness) {
		return err
	}
	if err != nil && ctx.Err() == nil {
		w.log.Error("audit checkpoints not collected", "replica", w.replica, "err", err)
	}
	return nil
}

// witnessTag starts every witness line of a checkpoint export.
const witnessTag = "keywarden-checkpoint"

// ReplicaCheckpoint is the latest checkpoint collected from one replica.
type ReplicaCheckpoint struct {
	Replica     string
	Count       int64
	Checkpoints int
	Collected   time.Time
}

// AuditReplicas returns, for every replica that ever sent a checkpoint,
// its latest one.
func AuditReplicas(ctx context.Context, db *postgres.DB) ([]ReplicaCheckpoint, error) {
	if err := db.Migrate(ctx, "cluster", migrations); err != nil {
		return nil, err
	}
	rows, err := db.Pool().Query(ctx, `SELECT replica, max(count), count(*), max(collected)
		FROM cluster_audit_checkpoint GROUP BY replica ORDER BY replica`)
	if err != nil {
		return nil, db.Redact(fmt.Errorf("cluster audit replicas: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReplicaCheckpoint, error) {
		var c ReplicaCheckpoint
		err := r.Scan(&c.Replica, &c.Count, &c.Checkpoints, &c.Collected)
		return c, err
	})
	if err != nil {
		return nil, db.Redact(fmt.Errorf("cluster audit replicas: %w", err))
	}
	return out, nil
}

// WriteAuditWitness writes replica's collected checkpoints to out, oldest
// first, in the witness format audit.VerifyWithWitness reads.
func WriteAuditWitness(ctx context.Context, db *postgres.DB, replica string, out io.Writer) (int, error) {
	rows, err := db.Pool().Query(ctx, "SELECT line FROM cluster_audit_checkpoint WHERE replica = $1 ORDER BY count", replica)
	if err != nil {
		return 0, db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	for _, l := range lines {
		if _, err := io.WriteString(out, l+"\n"); err != nil {
			return 0, err
		}
	}
	return len(lines), nil
}
