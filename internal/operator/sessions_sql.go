package operator

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrator is a SQL database that applies a component's schema migrations;
// *sqlite.DB implements it.
type Migrator interface {
	Migrate(ctx context.Context, component string, files fs.FS) error
	SQL() *sql.DB
}

// SQLSessions keeps sessions in the operator_sessions table of the data
// directory's database, created by the "operator" migrations. It is safe
// for concurrent use.
type SQLSessions struct {
	db *sql.DB
}

var _ SessionStore = (*SQLSessions)(nil)

// NewSQLSessions applies the operator migrations to db and returns the
// sessions kept there.
func NewSQLSessions(ctx context.Context, db Migrator) (*SQLSessions, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "operator", sub); err != nil {
		return nil, err
	}
	return &SQLSessions{db: db.SQL()}, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Create stores s.
func (q *SQLSessions) Create(ctx context.Context, s Session) error {
	_, err := q.db.ExecContext(ctx, `INSERT INTO operator_sessions (id, operator, created, last_seen, step_up)
		VALUES (?, ?, ?, ?, ?)`, s.ID, s.Operator, unixNano(s.Created), unixNano(s.LastSeen), unixNano(s.StepUp))
	if err != nil {
		return fmt.Errorf("write session: %w", err)
	}
	return nil
}

// Session returns the session id.
func (q *SQLSessions) Session(ctx context.Context, id string) (Session, error) {
	s := Session{ID: id}
	var created, seen, step int64
	err := q.db.QueryRowContext(ctx, `SELECT operator, created, last_seen, step_up FROM operator_sessions WHERE id = ?`, id).
		Scan(&s.Operator, &created, &seen, &step)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	} else if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	s.Created, s.LastSeen, s.StepUp = fromUnixNano(created), fromUnixNano(seen), fromUnixNano(step)
	return s, nil
}

func (q *SQLSessions) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// Touch records activity of the session id.
func (q *SQLSessions) Touch(ctx context.Context, id string, t time.Time) error {
	n, err := q.exec(ctx, "touch session", `UPDATE operator_sessions SET last_seen = ? WHERE id = ?`, unixNano(t), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// SetStepUp records a step-up of the session id.
func (q *SQLSessions) SetStepUp(ctx context.Context, id string, t time.Time) error {
	n, err := q.exec(ctx, "step up session", `UPDATE operator_sessions SET step_up = ? WHERE id = ?`, unixNano(t), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// Delete removes the session id; an unknown id is no error.
func (q *SQLSessions) Delete(ctx context.Context, id string) error {
	_, err := q.exec(ctx, "delete session", `DELETE FROM operator_sessions WHERE id = ?`, id)
	return err
}

// DeleteOperator ends every session of operator.
func (q *SQLSessions) DeleteOperator(ctx context.Context, operator string) error {
	_, err := q.exec(ctx, "delete sessions", `DELETE FROM operator_sessions WHERE operator = ?`, operator)
	return err
}

// DeleteExpired removes sessions created before created or last seen
// before seen.
func (q *SQLSessions) DeleteExpired(ctx context.Context, created, seen time.Time) error {
	_, err := q.exec(ctx, "delete expired sessions", `DELETE FROM operator_sessions WHERE created < ? OR last_seen < ?`,
		unixNano(created), unixNano(seen))
	return err
}
