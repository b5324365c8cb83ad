// Package sqlite is keywarden's embedded store: one data directory holding a
// SQLite database in WAL mode with synchronous=FULL, so every committed write
// survives a crash or power loss once the call returns.
//
// Open refuses a data directory or database file readable by others, takes an
// exclusive lock so that only one keywarden process uses a data directory at
// a time, checks the database for corruption, and applies schema migrations
// embedded in the binary. A DB implements store.Store and
// store.Transactional; SQL gives other packages the database for their own
// tables, which they create with Migrate.
//
// A DB is safe for concurrent use.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	msqlite "modernc.org/sqlite" // also registers the "sqlite" driver

	"github.com/keywarden/keywarden/internal/store"
)

// File names inside the data directory. CreatedFile records that the
// directory has held a database, so that a database file later found empty
// (truncated to zero) is reported as damage rather than taken for a new one.
const (
	DBFile      = "keywarden.db"
	LockFile    = "keywarden.lock"
	CreatedFile = "keywarden.created"
)

// ErrInUse is returned by Open when another process holds the data directory.
var ErrInUse = errors.New("data directory is in use by another keywarden process")

// ErrCorrupt is returned by Open when the database fails its integrity check.
var ErrCorrupt = errors.New("database is corrupt or truncated")

// ErrPermissions is returned by Open when the data directory or a database
// file can be read or written by other users.
var ErrPermissions = errors.New("permissions too open")

//go:embed migrations/*.sql
var coreMigrations embed.FS

// Options configure Open.
type Options struct {
	// Dir is the data directory. It is created with mode 0700 when missing.
	Dir string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// BusyTimeout is how long a write waits for another writer; default 10s.
	BusyTimeout time.Duration
}

// DB is an open data directory.
type DB struct {
	db   *sql.DB
	dir  string
	lock *os.File
	log  *slog.Logger
}

var (
	_ store.Store         = (*DB)(nil)
	_ store.Transactional = (*DB)(nil)
)

// Open opens (creating if needed) the data directory opts.Dir.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Dir == "" {
		return nil, errors.New("sqlite open: no data directory")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	if strings.ContainsAny(dir, "?#") {
		return nil, fmt.Errorf("sqlite open: data directory %s: '?' and '#' are not allowed in the path", dir)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	d := &DB{dir: dir, lock: lock, log: log}
	if err := d.open(ctx, opts.BusyTimeout); err != nil {
		lock.Close()
		return nil, err
	}
	return d, nil
}

func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sqlite open: create data directory: %w", err)
		}
		// MkdirAll applies the umask; make sure the final directory is 0700.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("sqlite open: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("sqlite open: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("sqlite open: data directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("sqlite open: data directory %s has mode %04o, want 0700 (chmod 700 %s): %w", dir, perm, dir, ErrPermissions)
	}
	return nil
}

// lockDir takes an exclusive flock on the lock file. The kernel releases it
// when the process exits, however it exits.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite open: lock file: %w", err)
	}
	for range 100 {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sqlite open: data directory %s is in use by another keywarden process: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("sqlite open: lock %s: %w", path, err)
	}
	return f, nil
}

func (d *DB) open(ctx context.Context, busy time.Duration) error {
	path := filepath.Join(d.dir, DBFile)
	marker := filepath.Join(d.dir, CreatedFile)
	if isEmpty(path) && isEmpty(path+"-wal") {
		if _, err := os.Stat(marker); err == nil {
			return fmt.Errorf("sqlite open: database %s is missing or empty, but this data directory held one (%s exists); restore the data directory from a backup: %w", path, CreatedFile, ErrCorrupt)
		}
	}
	if err := prepareFile(path); err != nil {
		return err
	}
	for _, extra := range []string{path + "-wal", path + "-shm"} {
		if err := checkFileMode(extra); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	q := "_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", path+"?"+q)
	if err != nil {
		return fmt.Errorf("sqlite open %s: %w", path, err)
	}
	d.db = db
	if err := d.QuickCheck(ctx); err != nil {
		db.Close()
		return err
	}
	if err := d.Migrate(ctx, "store", coreMigrations); err != nil {
		db.Close()
		return err
	}
	if err := writeMarker(marker); err != nil {
		db.Close()
		return err
	}
	return nil
}

// isEmpty reports whether path is missing or has no bytes.
func isEmpty(path string) bool {
	fi, err := os.Stat(path)
	return err != nil || fi.Size() == 0
}

// writeMarker creates the CreatedFile once the database holds its schema,
// and syncs it and the directory.
func writeMarker(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite open: %w", err)
	}
	_, err = f.WriteString("This data directory holds a keywarden database.\n")
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite open: %s: %w", path, err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sqlite open: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sqlite open: sync data directory: %w", err)
	}
	return nil
}

func prepareFile(path string) error {
	err := checkFileMode(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite open: create %s: %w", path, err)
	}
	return f.Close()
}

func checkFileMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlite open: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("sqlite open: database file %s has mode %04o, want 0600 (chmod 600 %s): %w", path, perm, path, ErrPermissions)
	}
	return nil
}

// QuickCheck runs SQLite's quick_check over the database and returns an
// ErrCorrupt error when it finds damage.
func (d *DB) QuickCheck(ctx context.Context) error {
	path := filepath.Join(d.dir, DBFile)
	rows, err := d.db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return d.corrupt(path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return d.corrupt(path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return d.corrupt(path, err)
	}
	if len(problems) > 0 {
		return d.corrupt(path, errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

func (d *DB) corrupt(path string, cause error) error {
	msg := cause.Error()
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) ||
		strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") {
		return fmt.Errorf("sqlite open: %s: %w", path, cause)
	}
	return fmt.Errorf("sqlite open: database %s failed its integrity check (%s); restore the data directory from a backup: %w", path, msg, ErrCorrupt)
}

// Migrate applies, in one transaction, the migrations in files (named
// NNNN_description.sql, applied in NNNN order) that component has not applied
// yet, and records the new version in schema_version. It is idempotent. A
// database whose recorded version is newer than the newest file is refused:
// it was written by a newer keywarden.
func (d *DB) Migrate(ctx context.Context, component string, files fs.FS) error {
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	err := fs.WalkDir(files, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".sql") {
			return err
		}
		base := filepath.Base(p)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return fmt.Errorf("migration %s: name must start with a positive number and '_'", p)
		}
		ms = append(ms, migration{v, p})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return fmt.Errorf("sqlite migrate %s: two migrations numbered %d", component, ms[i].version)
		}
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		component TEXT NOT NULL PRIMARY KEY,
		version INTEGER NOT NULL
	) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	current := 0
	err = tx.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE component = ?", component).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("sqlite migrate %s: database schema version %d is newer than this keywarden knows (%d)", component, current, latest)
	}
	applied := 0
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		body, err := fs.ReadFile(files, m.name)
		if err != nil {
			return fmt.Errorf("sqlite migrate %s: %w", component, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("sqlite migrate %s: %s: %w", component, m.name, err)
		}
		current = m.version
		applied++
	}
	if applied == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (component, version) VALUES (?, ?)
		ON CONFLICT (component) DO UPDATE SET version = excluded.version`, component, current); err != nil {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite migrate %s: %w", component, err)
	}
	d.log.Info("schema migrated", "component", component, "version", current, "applied", applied)
	return nil
}

// SchemaVersion returns the migration version component has applied, or 0.
func (d *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	var v int
	err := d.db.QueryRowContext(ctx, "SELECT version FROM schema_version WHERE component = ?", component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite schema version: %w", err)
	}
	return v, nil
}

// SQL returns the underlying database for packages with their own tables.
func (d *DB) SQL() *sql.DB { return d.db }

// Dir returns the absolute path of the data directory.
func (d *DB) Dir() string { return d.dir }

// Close closes the database and releases the data directory lock.
func (d *DB) Close() error {
	err := d.db.Close()
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("sqlite close: %w", err)
	}
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Get implements store.Store.
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) { return get(ctx, d.db, key) }

// Put implements store.Store.
func (d *DB) Put(ctx context.Context, key string, val []byte) error { return put(ctx, d.db, key, val) }

// Delete implements store.Store.
func (d *DB) Delete(ctx context.Context, key string) error { return del(ctx, d.db, key) }

// List implements store.Store.
func (d *DB) List(ctx context.Context, prefix string) ([]string, error) {
	return list(ctx, d.db, prefix)
}

// Update implements store.Transactional. The transaction takes SQLite's
// write lock when it begins (BEGIN IMMEDIATE), so transactions never fail
// on a lock upgrade; they wait up to the busy timeout instead.
func (d *DB) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	sqlTx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite update: %w", err)
	}
	// Roll back on error and on panic; after Commit this is a no-op.
	defer sqlTx.Rollback()
	if err := fn(&tx{sqlTx}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlite update: commit: %w", full(err))
	}
	return nil
}

type tx struct{ tx *sql.Tx }

func (t *tx) Get(ctx context.Context, key string) ([]byte, error) { return get(ctx, t.tx, key) }
func (t *tx) Put(ctx context.Context, key string, val []byte) error {
	return put(ctx, t.tx, key, val)
}
func (t *tx) Delete(ctx context.Context, key string) error { return del(ctx, t.tx, key) }
func (t *tx) List(ctx context.Context, prefix string) ([]string, error) {
	return list(ctx, t.tx, prefix)
}

func (t *tx) Create(ctx context.Context, key string, val []byte) error {
	res, err := t.tx.ExecContext(ctx, "INSERT INTO kv (key, val) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, nonNil(val))
	if err != nil {
		return fmt.Errorf("sqlite create %s: %w", key, full(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite create %s: %w", key, err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

func get(ctx context.Context, q querier, key string) ([]byte, error) {
	var v []byte
	err := q.QueryRowContext(ctx, "SELECT val FROM kv WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite get %s: %w", key, err)
	}
	return nonNil(v), nil
}

func put(ctx context.Context, q querier, key string, val []byte) error {
	_, err := q.ExecContext(ctx, "INSERT INTO kv (key, val) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET val = excluded.val", key, nonNil(val))
	if err != nil {
		return fmt.Errorf("sqlite put %s: %w", key, full(err))
	}
	return nil
}

func del(ctx context.Context, q querier, key string) error {
	res, err := q.ExecContext(ctx, "DELETE FROM kv WHERE key = ?", key)
	if err != nil {
		return fmt.Errorf("sqlite delete %s: %w", key, full(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite delete %s: %w", key, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func list(ctx context.Context, q querier, prefix string) ([]string, error) {
	// Keys compare bytewise (BINARY collation), so the keys with prefix
	// are exactly those in [prefix, successor(prefix)).
	var (
		rows *sql.Rows
		err  error
	)
	if hi, ok := successor(prefix); ok {
		rows, err = q.QueryContext(ctx, "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key", prefix, hi)
	} else {
		rows, err = q.QueryContext(ctx, "SELECT key FROM kv WHERE key >= ? ORDER BY key", prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite list %s: %w", prefix, err)
	}
	defer rows.Close()
	keys := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqlite list %s: %w", prefix, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite list %s: %w", prefix, err)
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

// full marks SQLite's "database or disk is full" as store.ErrFull.
func full(err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == 13 { // SQLITE_FULL
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
