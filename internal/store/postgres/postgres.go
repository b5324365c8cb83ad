// Package postgres is keywarden's store on PostgreSQL, for several gateway
// replicas sharing one database. A DB implements store.Store and
// store.Transactional over a pgx connection pool and passes the same
// conformance suite (storetest) as the embedded SQLite store.
//
// Every write commits before it returns (the session forces
// synchronous_commit=on). Update transactions take one exclusive advisory
// lock for the whole database and plain writes take it shared, so a
// transaction sees no write that commits after it began: the same
// single-writer semantics as SQLite's BEGIN IMMEDIATE, across replicas.
//
// The DSN may hold a password. It is never logged, and every error that
// leaves this package has the DSN and the password replaced by "xxxxx"
// (Redact does the same for callers that use Pool or Connect).
//
// Open applies the schema migrations embedded in the binary, one replica at
// a time (under an advisory lock). Versions match the SQLite store's
// migrations one for one; the SQL differs only where the dialects do.
//
// A DB is safe for concurrent use.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keywarden/keywarden/internal/store"
)

// LockClass is the first key of every advisory lock keywarden takes (the
// two-int form pg_advisory_lock(LockClass, id)), so that its locks do not
// collide with other applications sharing the database.
const LockClass int32 = 0x6b77 // "kw"

// Advisory lock ids under LockClass used by this package.
const (
	lockStore   int32 = 1
	lockMigrate int32 = 2
)

//go:embed migrations/*.sql
var coreMigrations embed.FS

// Migrations returns the store's own schema migrations (for tests that
// compare them with the SQLite store's).
func Migrations() fs.FS { return coreMigrations }

// Options configure Open.
type Options struct {
	// DSN is the PostgreSQL connection string (URL or key=value form).
	// It may hold a password: keep it out of argv, logs and errors.
	DSN string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the pool; default 10.
	MaxConns int32
}

// DB is an open PostgreSQL database.
type DB struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	secrets []string
}

var (
	_ store.Store         = (*DB)(nil)
	_ store.Transactional = (*DB)(nil)
)

// ErrBadDSN is returned by Open when the DSN cannot be parsed. The error
// does not quote the DSN.
var ErrBadDSN = errors.New("dsn is not a valid PostgreSQL connection string")

// Open connects to the database opts.DSN and applies the migrations.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if strings.TrimSpace(opts.DSN) == "" {
		return nil, errors.New("postgres open: no dsn")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		// pgx redacts the password in parse errors, but a malformed DSN
		// may hide it anywhere: say nothing of the DSN's content.
		return nil, fmt.Errorf("postgres open: %w", ErrBadDSN)
	}
	d := &DB{log: log, secrets: secretsOf(opts.DSN, cfg.ConnConfig.Password)}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else {
		cfg.MaxConns = 10
	}
	// Durability must not depend on the server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "keywarden"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, d.Redact(fmt.Errorf("postgres open: %w", err))
	}
	d.pool = pool
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, d.Redact(fmt.Errorf("postgres open: %w", err))
	}
	if err := d.Migrate(ctx, "store", coreMigrations); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

func secretsOf(dsn, password string) []string {
	s := []string{dsn}
	if password != "" {
		s = append(s, password)
	}
	// Longest first, so that a secret inside another is not half-replaced.
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return s
}

// redactedError carries a message with the secrets removed, and the
// original error for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Redact returns err with the DSN and password of d removed from its
// message. It keeps err's chain for errors.Is and errors.As.
func (d *DB) Redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range d.secrets {
		clean = strings.ReplaceAll(clean, s, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// errorf formats "postgres op key: err", redacted, and marks a full disk
// as store.ErrFull.
func (d *DB) errorf(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "53100" || pe.Code == "53200") { // disk_full, out_of_memory
		err = fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return d.Redact(fmt.Errorf("postgres %s: %w", op, err))
}

// Pool returns the connection pool for packages with their own tables.
// Pass their errors through Redact.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Connect opens a dedicated connection outside the pool, with the pool's
// settings, for sessions that must stay on one connection (LISTEN, session
// advisory locks). The caller closes it.
func (d *DB) Connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig)
	if err != nil {
		return nil, d.Redact(fmt.Errorf("postgres connect: %w", err))
	}
	return c, nil
}

// Close closes the pool.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

// Migrate applies, in one transaction and under an advisory lock (so that
// replicas starting together migrate once), the migrations in files (named
// NNNN_description.sql, applied in NNNN order) that component has not
// applied yet, and records the new version in schema_version. It is
// idempotent. A database whose recorded version is newer than the newest
// file is refused: it was written by a newer keywarden.
func (d *DB) Migrate(ctx context.Context, component string, files fs.FS) error {
	ms, err := migrationList(files)
	if err != nil {
		return fmt.Errorf("postgres migrate %s: %w", component, err)
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return d.errorf("migrate "+component, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", LockClass, lockMigrate); err != nil {
		return d.errorf("migrate "+component, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		component TEXT NOT NULL PRIMARY KEY,
		version INTEGER NOT NULL
	)`); err != nil {
		return d.errorf("migrate "+component, err)
	}
	current := 0
	err = tx.QueryRow(ctx, "SELECT version FROM schema_version WHERE component = $1", component).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return d.errorf("migrate "+component, err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	if current > latest {
		return fmt.Errorf("postgres migrate %s: database schema version %d is newer than this keywarden knows (%d)", component, current, latest)
	}
	applied := 0
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		body, err := fs.ReadFile(files, m.Name)
		if err != nil {
			return fmt.Errorf("postgres migrate %s: %w", component, err)
		}
		// No arguments: the simple protocol, which runs several statements.
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return d.errorf("migrate "+component+": "+m.Name, err)
		}
		current = m.Version
		applied++
	}
	if applied == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_version (component, version) VALUES ($1, $2)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, current); err != nil {
		return d.errorf("migrate "+component, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return d.errorf("migrate "+component, err)
	}
	d.log.Info("schema migrated", "component", component, "version", current, "applied", applied)
	return nil
}

// Migration is one numbered schema migration file.
type Migration struct {
	Version int
	Name    string
}

// MigrationList returns the migrations in files in version order, refusing
// badly named files and duplicate versions.
func MigrationList(files fs.FS) ([]Migration, error) { return migrationList(files) }

func migrationList(files fs.FS) ([]Migration, error) {
	var ms []Migration
	err := fs.WalkDir(files, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".sql") {
			return err
		}
		num, _, ok := strings.Cut(filepath.Base(p), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return fmt.Errorf("migration %s: name must start with a positive number and '_'", p)
		}
		ms = append(ms, Migration{v, p})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations numbered %d", ms[i].Version)
		}
	}
	return ms, nil
}

// SchemaVersion returns the migration version component has applied, or 0.
func (d *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	var v int
	err := d.pool.QueryRow(ctx, "SELECT version FROM schema_version WHERE component = $1", component).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, d.errorf("schema version", err)
	}
	return v, nil
}

// Check reads every record and the schema version: PostgreSQL reports a
// damaged page (or a checksum failure, when the cluster has data checksums)
// on read, and a schema newer than this binary knows is refused.
func (d *DB) Check(ctx context.Context) error {
	var n, size int64
	if err := d.pool.QueryRow(ctx, "SELECT count(*), coalesce(sum(length(key) + length(val)), 0) FROM kv").Scan(&n, &size); err != nil {
		return d.errorf("check", err)
	}
	v, err := d.SchemaVersion(ctx, "store")
	if err != nil {
		return err
	}
	ms, err := migrationList(coreMigrations)
	if err != nil {
		return fmt.Errorf("postgres check: %w", err)
	}
	if latest := ms[len(ms)-1].Version; v != latest {
		return fmt.Errorf("postgres check: store schema version %d, want %d", v, latest)
	}
	return nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Plain writes take the store lock shared, inside their own one-statement
// transaction, so that they wait for a running Update.
const (
	sqlPutLocked = `WITH l AS (SELECT pg_advisory_xact_lock_shared($3, $4))
		INSERT INTO kv (key, val) SELECT $1, $2 FROM l
		ON CONFLICT (key) DO UPDATE SET val = excluded.val`
	sqlPut       = `INSERT INTO kv (key, val) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET val = excluded.val`
	sqlDelLocked = `WITH l AS (SELECT pg_advisory_xact_lock_shared($2, $3))
		DELETE FROM kv WHERE key = $1 AND EXISTS (SELECT 1 FROM l)`
	sqlDel = `DELETE FROM kv WHERE key = $1`
)

// Get implements store.Store.
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) { return d.get(ctx, d.pool, key) }

// Put implements store.Store.
func (d *DB) Put(ctx context.Context, key string, val []byte) error {
	_, err := d.pool.Exec(ctx, sqlPutLocked, []byte(key), nonNil(val), LockClass, lockStore)
	if err != nil {
		return d.errorf("put "+key, err)
	}
	return nil
}

// Delete implements store.Store.
func (d *DB) Delete(ctx context.Context, key string) error {
	return d.del(ctx, d.pool, sqlDelLocked, key, LockClass, lockStore)
}

// List implements store.Store.
func (d *DB) List(ctx context.Context, prefix string) ([]string, error) {
	return d.list(ctx, d.pool, prefix)
}

// Update implements store.Transactional. The transaction takes the store's
// exclusive advisory lock first, so transactions (on every replica) run one
// at a time and never fail on a serialization conflict.
func (d *DB) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	pgTx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return d.errorf("update", err)
	}
	// Roll back on error and on panic; after Commit this is a no-op.
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	if _, err := pgTx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", LockClass, lockStore); err != nil {
		return d.errorf("update", err)
	}
	if err := fn(&tx{d: d, tx: pgTx}); err != nil {
		return err
	}
	if err := pgTx.Commit(ctx); err != nil {
		return d.errorf("update: commit", err)
	}
	return nil
}

type tx struct {
	d  *DB
	tx pgx.Tx
}

func (t *tx) Get(ctx context.Context, key string) ([]byte, error) { return t.d.get(ctx, t.tx, key) }

func (t *tx) Put(ctx context.Context, key string, val []byte) error {
	if _, err := t.tx.Exec(ctx, sqlPut, []byte(key), nonNil(val)); err != nil {
		return t.d.errorf("put "+key, err)
	}
	return nil
}

func (t *tx) Delete(ctx context.Context, key string) error {
	return t.d.del(ctx, t.tx, sqlDel, key)
}

func (t *tx) List(ctx context.Context, prefix string) ([]string, error) {
	return t.d.list(ctx, t.tx, prefix)
}

func (t *tx) Create(ctx context.Context, key string, val []byte) error {
	tag, err := t.tx.Exec(ctx, "INSERT INTO kv (key, val) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", []byte(key), nonNil(val))
	if err != nil {
		return t.d.errorf("create "+key, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrExists
	}
	return nil
}

func (d *DB) get(ctx context.Context, q querier, key string) ([]byte, error) {
	var v []byte
	err := q.QueryRow(ctx, "SELECT val FROM kv WHERE key = $1", []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, d.errorf("get "+key, err)
	}
	return nonNil(v), nil
}

func (d *DB) del(ctx context.Context, q querier, sql, key string, lock ...any) error {
	tag, err := q.Exec(ctx, sql, append([]any{[]byte(key)}, lock...)...)
	if err != nil {
		return d.errorf("delete "+key, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (d *DB) list(ctx context.Context, q querier, prefix string) ([]string, error) {
	// bytea compares bytewise, so the keys with prefix are exactly those
	// in [prefix, successor(prefix)).
	var (
		rows pgx.Rows
		err  error
	)
	if hi, ok := successor(prefix); ok {
		rows, err = q.Query(ctx, "SELECT key FROM kv WHERE key >= $1 AND key < $2 ORDER BY key", []byte(prefix), []byte(hi))
	} else {
		rows, err = q.Query(ctx, "SELECT key FROM kv WHERE key >= $1 ORDER BY key", []byte(prefix))
	}
	if err != nil {
		return nil, d.errorf("list "+prefix, err)
	}
	defer rows.Close()
	keys := []string{}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, d.errorf("list "+prefix, err)
		}
		keys = append(keys, string(k))
	}
	if err := rows.Err(); err != nil {
		return nil, d.errorf("list "+prefix, err)
	}
	return keys, nil
}

// successor returns the smallest string greater than every string with
// prefix p, or false when there is none (p empty or all 0xff bytes).
func successor(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
