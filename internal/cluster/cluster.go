// Package cluster keeps several keywarden replicas sharing one PostgreSQL
// database in step: what one replica changes in memory (a revoked or newly
// issued client credential, a disabled exchange key, the panic switch)
// reaches every other replica, normally within milliseconds. It also keeps
// the policies' rolling windows in the database (Windows) and elects the
// replica that runs the scheduled jobs (Lead).
//
// Changes to client credentials and to exchange keys' state are caught by a
// trigger on the store's table, so they propagate whoever made them: a
// replica, or a keywarden command run against the database directly.
// Changes of the panic switch are published by the replica that received
// them.
//
// The shared state lives in the table cluster_state, one row per subject
// with a generation number that grows on every change. A change updates its
// row and sends a NOTIFY in the same transaction; every replica LISTENs on
// a dedicated connection and, on a notification or at the latest every
// PollInterval (default 250 ms), reads the rows and applies those whose
// generation moved. Notifications only make it faster: a replica whose
// LISTEN connection broke, or that missed a notification, still converges
// within one poll interval, and one that starts late applies the current
// state at once.
//
// Security: a replica that cannot read the shared state keeps its last
// known state and logs the failure every time; it does not resume a stopped
// gateway on its own. Nothing secret goes through the database here: only
// subject names, generations and the gateway's running/stopped flag.
//
// A Replica is safe for concurrent use.
package cluster

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/store/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// channel is the NOTIFY channel.
const channel = "keywarden_cluster"

// Subjects in cluster_state.
const (
	subjectClients = "clients"
	subjectGateway = "gateway"
	subjectKeys    = "keys"
	// subjectPolicies follows the policy edits made through the admin API.
	subjectPolicies = "policies"
)

// Gateway states.
const (
	stateRunning = "running"
	stateStopped = "stopped"
)

// Clients is the client registry a replica reloads when another replica
// changed a credential (*client.Registry).
type Clients interface {
	Load(ctx context.Context) error
}

// Keys drops this replica's cached copies of the exchange keys that another
// replica (or a command run against the database) disabled.
type Keys interface {
	DropDisabled(ctx context.Context) error
}

// Policies compiles the policies again after another replica stored a
// policy edit, and applies them.
type Policies interface {
	Reload(ctx context.Context) error
}

// Switch is the gateway's panic switch (*gateway.Gateway).
type Switch interface {
	Stop()
	Resume()
}

// Options configure Join.
type Options struct {
	DB *postgres.DB
	// Replica names this replica in logs and in cluster_state.origin;
	// default host-pid-random.
	Replica string
	Clients Clients
	Gateway Switch
	// Keys, if set, is told when an exchange key's state changed.
	Keys Keys
	// Policies, if set, is told when a policy edit was stored.
	Policies Policies
	// PollInterval bounds how long a change can take to arrive when
	// notifications are lost; default 250ms.
	PollInterval time.Duration
	Logger       *slog.Logger
	// Applied, if set, is called after a change from the database has been
	// applied (for metrics and tests).
	Applied func(Change)
}

// Change is one applied change of shared state.
type Change struct {
	Subject string
	Gen     int64
	Value   string
	Origin  string
}

// Replica is this process's membership in the cluster.
type Replica struct {
	o    Options
	id   string
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex // serialises apply
	seen map[string]int64
}

// DefaultReplicaID returns host-pid-random.
func DefaultReplicaID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Join applies the cluster's schema, applies the current shared state to
// this replica (so a replica started during a panic starts stopped), and
// follows changes until Close.
func Join(ctx context.Context, o Options) (*Replica, error) {
	if o.DB == nil || o.Clients == nil || o.Gateway == nil {
		return nil, errors.New("cluster: a database, clients and a gateway are required")
	}
	if o.Replica == "" {
		o.Replica = DefaultReplicaID()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := o.DB.Migrate(ctx, "cluster", migrations); err != nil {
		return nil, err
	}
	r := &Replica{o: o, id: o.Replica, log: o.Logger.With("replica", o.Replica), seen: map[string]int64{}}
	// The registry was loaded before Join; a change committed since then
	// has a newer generation than the one recorded here, so reload once
	// after recording to close that gap.
	if err := r.sync(ctx, true); err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = stop, make(chan struct{})
	go r.run(rctx)
	return r, nil
}

// ID returns the replica's name.
func (r *Replica) ID() string { return r.id }

// Close stops following changes.
func (r *Replica) Close() error {
	r.stop()
	<-r.done
	return nil
}

// ClientsChanged tells every replica to reload the client credentials
// (after an issue, revocation or rotation that is already in the store).
func (r *Replica) ClientsChanged(ctx context.Context) error {
	_, err := r.publish(ctx, subjectClients, "")
	return err
}

// SetGatewayStopped stops (or resumes) the gateway of every replica.
func (r *Replica) SetGatewayStopped(ctx context.Context, stopped bool) error {
	v := stateRunning
	if stopped {
		v = stateStopped
	}
	_, err := r.publish(ctx, subjectGateway, v)
	return err
}

// publish bumps subject's generation, sets its value and notifies, in one
// transaction. It applies the change here too, at once.
func (r *Replica) publish(ctx context.Context, subject, value string) (int64, error) {
	var gen int64
	err := pgx.BeginFunc(ctx, r.o.DB.Pool(), func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE cluster_state SET gen = gen + 1, value = $2, origin = $3, changed = now()
			WHERE name = $1 RETURNING gen`, subject, value, r.id).Scan(&gen)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", channel, subject+" "+strconv.FormatInt(gen, 10))
		return err
	})
	if err != nil {
		return 0, r.o.DB.Redact(fmt.Errorf("cluster publish %s: %w", subject, err))
	}
	if err := r.sync(ctx, false); err != nil {
		return gen, err
	}
	return gen, nil
}

// run follows notifications on a dedicated connection, and polls.
func (r *Replica) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		conn, err := r.listen(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("cluster: no notification connection, polling only", "err", err)
			}
			r.pollFor(ctx, 4*r.o.PollInterval)
			continue
		}
		r.follow(ctx, conn)
		conn.Close(context.WithoutCancel(ctx))
	}
}

func (r *Replica) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := r.o.DB.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, r.o.DB.Redact(fmt.Errorf("cluster listen: %w", err))
	}
	return conn, nil
}

// follow waits for notifications until the connection breaks or ctx ends,
// syncing after each one and at least every poll interval.
func (r *Replica) follow(ctx context.Context, conn *pgx.Conn) {
	r.syncLogged(ctx) // anything missed while not listening
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, r.o.PollInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.syncLogged(ctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			r.log.Warn("cluster: notification connection lost; reconnecting", "err", r.o.DB.Redact(err))
			return
		}
	}
}

// pollFor syncs every poll interval for d.
func (r *Replica) pollFor(ctx context.Context, d time.Duration) {
	t := time.NewTicker(r.o.PollInterval)
	defer t.Stop()
	end := time.After(d)
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
			r.syncLogged(ctx)
		}
	}
}

func (r *Replica) syncLogged(ctx context.Context) {
	if err := r.sync(ctx, false); err != nil && ctx.Err() == nil {
		r.log.Error("cluster: cannot read the shared state; keeping the last known state", "err", err)
	}
}

// sync reads cluster_state and applies the subjects whose generation moved
// (all of them when first).
func (r *Replica) sync(ctx context.Context, first bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rows, err := r.o.DB.Pool().Query(ctx, "SELECT name, gen, value, origin FROM cluster_state")
	if err != nil {
		return r.o.DB.Redact(fmt.Errorf("cluster sync: %w", err))
	}
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Change, error) {
		var c Change
		err := row.Scan(&c.Subject, &c.Gen, &c.Value, &c.Origin)
		return c, err
	})
	if err != nil {
		return r.o.DB.Redact(fmt.Errorf("cluster sync: %w", err))
	}
	for _, c := range changes {
		last, ok := r.seen[c.Subject]
		if ok && c.Gen <= last && !first {
			continue
		}
		if err := r.apply(ctx, c); err != nil {
			return err
		}
		r.seen[c.Subject] = c.Gen
		if r.o.Applied != nil && !first {
			r.o.Applied(c)
		}
	}
	return nil
}

func (r *Replica) apply(ctx context.Context, c Change) error {
	switch c.Subject {
	case subjectClients:
		if err := r.o.Clients.Load(ctx); err != nil {
			return fmt.Errorf("cluster: reload clients: %w", err)
		}
		r.log.Debug("cluster: client credentials reloaded", "gen", c.Gen, "origin", c.Origin)
	case subjectKeys:
		if r.o.Keys != nil {
			if err := r.o.Keys.DropDisabled(ctx); err != nil {
				return fmt.Errorf("cluster: refresh exchange keys: %w", err)
			}
		}
	case subjectPolicies:
		if r.o.Policies != nil {
			if err := r.o.Policies.Reload(ctx); err != nil {
				return fmt.Errorf("cluster: reload policies: %w", err)
			}
		}
	case subjectGateway:
		switch c.Value {
		case stateStopped:
			r.o.Gateway.Stop()
			r.log.Warn("cluster: gateway stopped by the panic switch", "origin", c.Origin)
		case stateRunning:
			r.o.Gateway.Resume()
			if c.Gen > 0 {
				r.log.Info("cluster: gateway resumed", "origin", c.Origin)
			}
		default:
			// Unknown value: fail closed.
			r.o.Gateway.Stop()
			r.log.Error("cluster: unknown gateway state; stopped", "value", c.Value)
		}
	}
	return nil
}
