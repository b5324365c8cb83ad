package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/postgres"
)

// AuditWitness copies one replica's signed audit checkpoints into
// PostgreSQL (cluster_audit_checkpoint), where they serve as that
// replica's witness: its log is later checked against them with
// audit.VerifyWithWitness, which detects a truncated or rewritten log.
// Checkpoints hold counts, hashes and signatures, nothing secret.
//
// Each replica keeps its own hash chain in its own audit directory; the
// replica name must stay the same across restarts (host name and audit
// directory, for example).
type AuditWitness struct {
	db      *postgres.DB
	replica string
	dir     string
	log     *slog.Logger
}

// NewAuditWitness applies the cluster schema and returns the witness of
// the audit log in dir, kept under replica.
func NewAuditWitness(ctx context.Context, db *postgres.DB, replica, dir string, log *slog.Logger) (*AuditWitness, error) {
	if replica == "" || dir == "" {
		return nil, fmt.Errorf("cluster audit witness: a replica name and an audit directory are required")
	}
	if err := db.Migrate(ctx, "cluster", migrations); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AuditWitness{db: db, replica: replica, dir: dir, log: log}, nil
}

// Collect copies the checkpoints written since the last one collected and
// returns how many it copied.
func (w *AuditWitness) Collect(ctx context.Context) (int, error) {
	var last int64
	err := w.db.Pool().QueryRow(ctx, "SELECT coalesce(max(count), -1) FROM cluster_audit_checkpoint WHERE replica = $1", w.replica).Scan(&last)
	if err != nil {
		return 0, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	var buf bytes.Buffer
	// A checkpoint covering count records is record count+1.
	if err := audit.ExportCheckpointsAfter(w.dir, &buf, uint64(last+1)); err != nil {
		return 0, err
	}
	batch := &pgx.Batch{}
	n := 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		// The export also holds the Merkle checkpoints as C2SP signed notes
		// (several lines each); the cluster keeps the signed chain heads,
		// which is what audit.VerifyWithWitness checks a log against.
		if !strings.HasPrefix(line, witnessTag+" ") {
			continue
		}
		count, err := witnessCount(line)
		if err != nil {
			return 0, err
		}
		batch.Queue("INSERT INTO cluster_audit_checkpoint (replica, count, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			w.replica, count, line)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := w.db.Pool().SendBatch(ctx, batch).Close(); err != nil {
		return 0, w.db.Redact(fmt.Errorf("cluster audit witness: %w", err))
	}
	return n, nil
}

// Run collects at once (what the replica wrote before it last stopped),
// then every interval until ctx ends, and once more then.
func (w *AuditWitness) Run(ctx context.Context, interval time.Duration) {
	if _, err := w.Collect(ctx); err != nil && ctx.Err() == nil {
		w.log.Error("audit checkpoints not collected", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := w.Collect(fctx); err != nil {
				w.log.Error("audit checkpoints not collected", "err", err)
			}
			return
		case <-t.C:
			if _, err := w.Collect(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("audit checkpoints not collected", "err", err)
			}
		}
	}
}

// witnessTag starts every witness line of a checkpoint export.
const witnessTag = "keywarden-checkpoint"

// witnessCount reads the count of a witness line
// ("keywarden-checkpoint keywarden.audit/v1 <count> ...").
func witnessCount(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != witnessTag {
		return 0, fmt.Errorf("cluster audit witness: not a witness line")
	}
	return strconv.ParseInt(f[2], 10, 64)
}

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
