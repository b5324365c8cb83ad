package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/store/postgres"
)

// LeaderOptions configure Lead.
type LeaderOptions struct {
	DB *postgres.DB
	// Name is what is led ("scheduler"); replicas leading different names
	// do not exclude each other.
	Name string
	// Replica names this replica in logs.
	Replica string
	// Check is how often a follower tries to take the lead and how often
	// the leader checks that its lock connection is alive; default 1s.
	Check  time.Duration
	Logger *slog.Logger
	// OnChange, if set, is told when this replica becomes or stops being
	// the leader (metrics, tests).
	OnChange func(leader bool)
}

// Lead runs fn while this replica is the leader for o.Name, until ctx ends.
//
// Leadership is a PostgreSQL session advisory lock (pg_try_advisory_lock)
// held on a dedicated connection: when the leader's process dies or its
// connection breaks, the server drops the lock and another replica takes it
// within one Check interval. The leader pings its connection every Check
// interval; when the ping fails, fn's context is cancelled and Lead waits
// for fn to return before it tries again. A leader cut off from the
// database can therefore overlap with its successor for up to one Check
// interval (plus the time fn takes to stop), so the work fn does must be
// safe to repeat: the scheduled jobs compare with stored history or resume
// from stored state.
//
// Lead returns nil when ctx ends, after releasing the lock.
func Lead(ctx context.Context, o LeaderOptions, fn func(ctx context.Context)) error {
	if o.DB == nil || o.Name == "" || fn == nil {
		return errors.New("cluster lead: a database, a name and a function are required")
	}
	if o.Check <= 0 {
		o.Check = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With("lead", o.Name, "replica", o.Replica)
	id := lockID(o.Name)
	t := time.NewTicker(o.Check)
	defer t.Stop()
	// A follower keeps its connection between tries.
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		got, err := tryLock(ctx, o.DB, &conn, id)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("cluster lead: cannot reach the database", "err", err)
		case got:
			log.Info("cluster lead: this replica is the leader")
			if o.OnChange != nil {
				o.OnChange(true)
			}
			lead(ctx, o, log, conn, fn)
			conn = nil // lead closed it
			if o.OnChange != nil {
				o.OnChange(false)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// lockID maps a name to the second key of the advisory lock.
func lockID(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte("lead/" + name))
	return int32(h.Sum32())
}

// tryLock tries to take the lock on *conn, connecting first when *conn is
// nil or broken. It reports whether *conn now holds the lock.
func tryLock(ctx context.Context, db *postgres.DB, conn **pgx.Conn, id int32) (bool, error) {
	if *conn != nil && (*conn).IsClosed() {
		*conn = nil
	}
	if *conn == nil {
		c, err := db.Connect(ctx)
		if err != nil {
			return false, err
		}
		*conn = c
	}
	var got bool
	if err := (*conn).QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", postgres.LockClass, id).Scan(&got); err != nil {
		(*conn).Close(context.WithoutCancel(ctx))
		*conn = nil
		return false, db.Redact(fmt.Errorf("cluster lead: %w", err))
	}
	return got, nil
}

// lead runs fn until ctx ends or the lock connection fails.
func lead(ctx context.Context, o LeaderOptions, log *slog.Logger, conn *pgx.Conn, fn func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(lctx)
	}()
	t := time.NewTicker(o.Check)
	defer t.Stop()
	for lctx.Err() == nil {
		select {
		case <-lctx.Done():
		case <-done:
			// fn returned on its own: keep the lead until ctx ends, so
			// that no other replica starts the work again.
			<-ctx.Done()
		case <-t.C:
			pctx, pcancel := context.WithTimeout(lctx, o.Check)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && lctx.Err() == nil {
				log.Warn("cluster lead: lock connection lost; stepping down", "err", o.DB.Redact(err))
				cancel()
			}
		}
	}
	cancel()
	<-done
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer ucancel()
	if !conn.IsClosed() {
		_, _ = conn.Exec(uctx, "SELECT pg_advisory_unlock($1, $2)", postgres.LockClass, lockID(o.Name))
	}
	conn.Close(uctx)
	log.Info("cluster lead: no longer the leader")
}
