package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/store/postgres"
)

// Windows keeps the policies' rolling windows in PostgreSQL, shared by
// every replica: a reservation checks and records a call's use of all its
// windows in one statement (keywarden_window_reserve), under one advisory
// lock per window, so concurrent orders on different replicas never
// overshoot a cap. Each reservation is one round trip to the database; a
// release is another. The window's time is the checking replica's clock:
// keep the replicas' clocks synchronised (they must be for request
// timestamps anyway).
//
// Windows is safe for concurrent use.
type Windows struct {
	db      *postgres.DB
	timeout time.Duration
}

var _ policy.SharedWindows = (*Windows)(nil)

// NewWindows applies the cluster schema to db and returns its windows. A
// reservation that takes longer than timeout (default 2s) fails, and the
// call is denied.
func NewWindows(ctx context.Context, db *postgres.DB, timeout time.Duration) (*Windows, error) {
	if err := db.Migrate(ctx, "cluster", migrations); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Windows{db: db, timeout: timeout}, nil
}

// Reserve implements policy.SharedWindows.
func (w *Windows) Reserve(ctx context.Context, at time.Time, uses []policy.WindowUse) (func(), *policy.WindowRefusal, error) {
	if at.IsZero() {
		return nil, nil, errors.New("cluster windows: no time given")
	}
	n := len(uses)
	keys, expires := make([]string, n), make([]time.Time, n)
	maxN, maxO := make([]int64, n), make([]int32, n)
	notional, orders := make([]int64, n), make([]int32, n)
	for i, u := range uses {
		keys[i], expires[i] = u.Key, at.Add(u.Duration)
		maxN[i], maxO[i] = u.MaxNotional, int32(min(u.MaxOrders, 1<<31-1))
		notional[i], orders[i] = u.Notional, int32(min(u.Orders, 1<<31-1))
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var (
		refused      int32
		usedN, usedO *int64
		ids          []int64
	)
	err := w.db.Pool().QueryRow(ctx, "SELECT * FROM keywarden_window_reserve($1, $2, $3, $4, $5, $6, $7)",
		keys, expires, maxN, maxO, notional, orders, at).Scan(&refused, &usedN, &usedO, &ids)
	if err != nil {
		return nil, nil, w.db.Redact(fmt.Errorf("cluster windows: reserve: %w", err))
	}
	if refused > 0 {
		r := &policy.WindowRefusal{Index: int(refused) - 1}
		if usedN != nil {
			r.UsedNotional = *usedN
		}
		if usedO != nil {
			r.UsedOrders = int(*usedO)
		}
		return nil, r, nil
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A failed release keeps the budget counted until the window ends:
		// it errs on the side of denial.
		_, _ = w.db.Pool().Exec(ctx, "DELETE FROM cluster_window_use WHERE id = ANY($1)", ids)
	}
	return release, nil, nil
}
