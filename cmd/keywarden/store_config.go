package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/cluster"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
)

// StoreConfig is the [store] section: where the vault's records live.
//
//	[store]
//	driver = "postgres"            # or "sqlite" (the default)
//	dsn_file = "/etc/keywarden/dsn" # mode 0600; holds the PostgreSQL DSN
//
// The DSN may hold a password, so it is only ever read from a file, never
// from the configuration, the environment or the command line.
type StoreConfig struct {
	Driver  string `toml:"driver"`
	DSNFile string `toml:"dsn_file"`
}

// Store drivers.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

func (c StoreConfig) driver() string {
	if c.Driver == "" {
		return driverSQLite
	}
	return c.Driver
}

// applyEnv reads KEYWARDEN_STORE_DRIVER and KEYWARDEN_STORE_DSN_FILE.
func (c *StoreConfig) applyEnv(getenv func(string) string) error {
	if getenv("KEYWARDEN_STORE_DSN") != "" {
		return errors.New("config: KEYWARDEN_STORE_DSN is not supported: a DSN may hold a password; put it in a file (mode 0600) and set KEYWARDEN_STORE_DSN_FILE")
	}
	if v := getenv("KEYWARDEN_STORE_DRIVER"); v != "" {
		c.Driver = v
	}
	if v := getenv("KEYWARDEN_STORE_DSN_FILE"); v != "" {
		c.DSNFile = v
	}
	return nil
}

func (c StoreConfig) validate() error {
	switch c.driver() {
	case driverSQLite:
		if c.DSNFile != "" {
			return errors.New("store dsn_file is only for driver = \"postgres\"")
		}
	case driverPostgres:
		if c.DSNFile == "" {
			return errors.New("store driver \"postgres\" needs dsn_file (a file, mode 0600, holding the DSN)")
		}
	default:
		return fmt.Errorf("store driver %q: want sqlite or postgres", c.Driver)
	}
	return nil
}

// dataStore is what the commands need from a store: the records, atomic
// updates, the local data directory (audit log, control socket) and Close.
type dataStore interface {
	store.Store
	store.Transactional
	Dir() string
	QuickCheck(ctx context.Context) error
	Close() error
}

// pgStore is a PostgreSQL store with this replica's local data directory.
type pgStore struct {
	*postgres.DB
	dir string
}

func (p pgStore) Dir() string { return p.dir }

func (p pgStore) QuickCheck(ctx context.Context) error { return p.Check(ctx) }

// openStore opens the configured store. With PostgreSQL the data directory
// still holds this replica's own files (audit log, control socket), so it
// is created (mode 0700) when missing.
func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (dataStore, error) {
	if cfg.Store.driver() != driverPostgres {
		return sqlite.Open(ctx, sqlite.Options{Dir: cfg.DataDir, Logger: log})
	}
	dsn, err := readDSNFile(cfg.Store.DSNFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	db, err := postgres.Open(ctx, postgres.Options{DSN: dsn, Logger: log})
	if err != nil {
		return nil, err
	}
	return pgStore{DB: db, dir: cfg.DataDir}, nil
}

// readDSNFile reads a DSN file, refusing one that other users can read.
// Errors never quote the file's content.
func readDSNFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("store dsn_file %s does not exist", path)
		}
		return "", fmt.Errorf("store dsn_file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("store dsn_file %s has mode %04o, want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("store dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	clear(b)
	if dsn == "" {
		return "", fmt.Errorf("store dsn_file %s is empty", path)
	}
	return dsn, nil
}

// peers tells the other replicas sharing the store about a change this one
// made: the client credentials in the store changed, or the panic switch
// moved. With SQLite there are no other replicas.
type peers interface {
	ClientsChanged(ctx context.Context) error
	SetGatewayStopped(ctx context.Context, stopped bool) error
}

type noPeers struct{}

func (noPeers) ClientsChanged(context.Context) error          { return nil }
func (noPeers) SetGatewayStopped(context.Context, bool) error { return nil }

// joinCluster makes this gateway follow the replicas sharing a PostgreSQL
// store (revocations, new credentials, the panic switch), counts the
// policies' rolling windows across all of them, checks this replica's
// audit log against the checkpoints it sent the database before and keeps
// sending them (a fork or rollback raises audit_fork through raise and
// refuses to start; found later, it is delivered on the membership's Err),
// and returns how to tell the others about its own changes. With SQLite it
// does nothing.
func (a *app) joinCluster(ctx context.Context, db dataStore, srv *server.Server, raise func(monitor.Alert)) (peers, *clusterMember, error) {
	pg, ok := db.(pgStore)
	if !ok {
		return noPeers{}, &clusterMember{}, nil
	}
	r, err := cluster.Join(ctx, cluster.Options{DB: pg.DB, Clients: srv.Clients, Gateway: srv.Gateway,
		Keys: vaultKeys{srv.Vault}, Policies: overlayPolicies{a: a, db: pg, srv: srv}, Logger: a.log.With("component", "cluster")})
	if err != nil {
		return nil, nil, err
	}
	w, err := cluster.NewWindows(ctx, pg.DB, 0)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	srv.ShareWindows(w)
	cw, err := a.startClusterWitness(ctx, pg.DB, srv.Audit, raise, 30*time.Second)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	m := &clusterMember{errc: cw.errc, close: func() error {
		err := r.Close()
		cw.stop()
		<-cw.done
		return err
	}}
	a.log.Info("joined the PostgreSQL replicas", "replica", r.ID())
	return r, m, nil
}

// clusterMember is this replica's place among the PostgreSQL replicas.
// The zero value (SQLite) does nothing.
type clusterMember struct {
	close func() error
	errc  chan error
}

// Close leaves the cluster and sends the last audit checkpoints.
func (m *clusterMember) Close() error {
	if m == nil || m.close == nil {
		return nil
	}
	return m.close()
}

// Err delivers the cluster audit witness's fork or rollback: serve then
// stops. It never delivers with SQLite.
func (m *clusterMember) Err() <-chan error {
	if m == nil {
		return nil
	}
	return m.errc
}

// clusterWitness runs this replica's cluster audit witness.
type clusterWitness struct {
	stop context.CancelFunc
	done chan struct{}
	errc chan error // the fork or rollback that stopped it (buffered, one)
}

// startClusterWitness checks the open log l against the checkpoints this
// replica sent the database before (cluster.AuditWitness), then sends new
// ones every interval, and the last ones when stopped. A fork or rollback
// raises the critical audit_fork alert through raise: at start the error
// is returned (serve must not start), later it is delivered on errc.
func (a *app) startClusterWitness(ctx context.Context, db *postgres.DB, l *audit.Log, raise func(monitor.Alert), interval time.Duration) (*clusterWitness, error) {
	replica := auditReplica(l.Dir())
	log := a.log.With("component", "cluster")
	aw, err := cluster.NewAuditWitness(ctx, cluster.AuditWitnessOptions{DB: db, Replica: replica, Dir: l.Dir(),
		Head: func() uint64 { return l.Head().Seq }, Logger: log})
	if err != nil {
		return nil, err
	}
	n, err := aw.Collect(ctx)
	if err != nil {
		if errors.Is(err, audit.ErrWitness) {
			raise(clusterForkAlert(err, replica, time.Now()))
		}
		return nil, err
	}
	log.Info("audit log checked against its collected checkpoints", "replica", replica, "collected", n)
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	cw := &clusterWitness{stop: stop, done: make(chan struct{}), errc: make(chan error, 1)}
	go func() {
		defer close(cw.done)
		if err := aw.Run(wctx, interval); err != nil {
			raise(clusterForkAlert(err, replica, time.Now()))
			cw.errc <- err
		}
	}()
	return cw, nil
}

// clusterForkAlert is the critical audit_fork alert for a fork or rollback
// found by the cluster audit witness (a *cluster.ForkError or
// *cluster.RollbackError). Its evidence holds tree sizes and chain heads,
// nothing secret.
func clusterForkAlert(err error, replica string, now time.Time) monitor.Alert {
	ev := map[string]string{"witness": "cluster", "replica": replica, "error": err.Error()}
	summary := "cluster audit witness: the audit log cannot be checked; keywarden stops"
	var fe *cluster.ForkError
	var re *cluster.RollbackError
	switch {
	case errors.As(err, &fe):
		summary = fmt.Sprintf("audit log fork (cluster witness): the log contradicts the checkpoint collected for tree size %d; keywarden stops", fe.TreeSize)
		if fe.Kind == "head" {
			summary = fmt.Sprintf("audit log fork (cluster witness): two different chain heads for tree size %d; keywarden stops", fe.TreeSize)
		}
		ev["kind"], ev["tree_size"] = "fork", strconv.FormatUint(fe.TreeSize, 10)
		ev["witness_head"], ev["log_head"] = fe.StoredHead, fe.LogHead
	case errors.As(err, &re):
		summary = fmt.Sprintf("audit log rollback (cluster witness): the database holds tree size %d, the log ends at %d; keywarden stops", re.TreeSize, re.LogSize)
		ev["kind"], ev["tree_size"] = "rollback", strconv.FormatUint(re.TreeSize, 10)
		ev["log_tree_size"] = strconv.FormatUint(re.LogSize, 10)
		ev["witness_head"], ev["log_head"] = re.StoredHead, re.LogHead
	}
	return monitor.Alert{Rule: ruleAuditFork, Severity: monitor.SeverityCritical, Subject: "audit",
		Summary: summary, Evidence: ev, Time: now}
}

// vaultKeys drops the vault's cached credentials when another replica (or
// a command run against the database) changed an exchange key: the next
// request opens the key again, so a disabled key is refused and a rotated
// one signs with its new secret.
type vaultKeys struct{ v *vault.Vault }

func (k vaultKeys) DropDisabled(context.Context) error {
	k.v.DropCached()
	return nil
}

// afterPanic runs the panic handler, then tells the other replicas: a
// panic may have revoked credentials, and --all stops every gateway. The
// operator is told when the other replicas could not be told.
func afterPanic(h http.HandlerFunc, p peers) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeControl(w, nil, fmt.Errorf("bad request: %w", err))
			return
		}
		var req panicRequest
		_ = json.Unmarshal(body, &req)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h(rec, r)
		ctx := context.WithoutCancel(r.Context())
		if req.All {
			err = p.SetGatewayStopped(ctx, true)
		} else {
			err = p.ClientsChanged(ctx)
		}
		if err != nil {
			writeControl(w, nil, fmt.Errorf("panic applied on this replica (%s), but the other replicas were not told: %w",
				strings.TrimSpace(rec.body.String()), err))
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// recorder keeps a handler's response to send it later.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// leaderOnly runs the jobs start begins (scheduled posture checks,
// rotations, reports) on one replica only when the store is PostgreSQL: on
// the replica that holds the scheduler lead, moving to another replica when
// it dies. With SQLite there is one process, and start runs at once. The
// returned stop ends the jobs and waits for them.
func (a *app) leaderOnly(ctx context.Context, db dataStore, start func(ctx context.Context) (stop func(), err error)) (func(), error) {
	pg, ok := db.(pgStore)
	if !ok {
		return start(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cluster.Lead(ctx, cluster.LeaderOptions{DB: pg.DB, Name: "scheduler", Logger: a.log.With("component", "cluster")},
			func(ctx context.Context) {
				stop, err := start(ctx)
				if err != nil {
					a.log.Error("scheduled jobs did not start on the leader", "err", err)
					<-ctx.Done()
					return
				}
				<-ctx.Done()
				stop()
			})
	}()
	return func() { cancel(); <-done }, nil
}

// auditReplica names this replica's audit chain in the database: the host
// and the audit directory, which stay the same across restarts.
func auditReplica(dir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ":" + dir
}

func newClusterCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Replicas on PostgreSQL",
		Args:  noArgs,
	}
	var pinned string
	verify := &cobra.Command{
		Use:   "verify-audit",
		Short: "Check this replica's audit log against the checkpoints collected in PostgreSQL",
		Long: `verify-audit lists every replica's audit checkpoints collected in the database
(each running replica sends its new ones every 30 s and when it stops), then
verifies this replica's audit log, as audit verify does, and against its own
collected checkpoints: a log cut short or rewritten after they were sent
fails. It first sends this replica's checkpoints not collected yet (such as
the one a stopped replica wrote last), after checking the log against those
collected before, as serve does: a log restored from an older backup fails
there (rollback, or fork when written on). Run it on each replica's host.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pub, err := a.auditKey(cmd, pinned)
			if err != nil {
				return err
			}
			db, err := openStore(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			pg, ok := db.(pgStore)
			if !ok {
				return errors.New("cluster verify-audit: the store is not PostgreSQL (use keywarden audit verify)")
			}
			// What this replica wrote since it last sent checkpoints (its
			// final checkpoint, when it stopped) joins its witness first;
			// earlier checkpoints are what the log is held to.
			dir := a.auditDir()
			aw, err := cluster.NewAuditWitness(ctx, cluster.AuditWitnessOptions{DB: pg.DB, Replica: auditReplica(dir), Dir: dir, Logger: a.log})
			if err != nil {
				return err
			}
			if _, err := aw.Collect(ctx); err != nil {
				return err
			}
			reps, err := cluster.AuditReplicas(ctx, pg.DB)
			if err != nil {
				return err
			}
			for _, r := range reps {
				fmt.Fprintf(a.stdout, "replica %s: %d checkpoints, last covers %d records, collected %s\n",
					r.Replica, r.Checkpoints, r.Count, r.Collected.UTC().Format(time.RFC3339))
			}
			f, err := os.CreateTemp("", "keywarden-witness-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			n, err := cluster.WriteAuditWitness(ctx, pg.DB, auditReplica(dir), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("cluster verify-audit: no checkpoints collected for this replica (%s)", auditReplica(dir))
			}
			rep, err := audit.VerifyWithWitness(dir, pub, f.Name())
			if err != nil {
				return fmt.Errorf("cluster verify-audit: %w", err)
			}
			fmt.Fprintf(a.stdout, "audit log %s: OK against %d collected checkpoints — %d records (seq %d–%d), head %s\n",
				dir, n, rep.Records, rep.FirstSeq, rep.LastSeq, rep.Head)
			return nil
		},
	}
	verify.Flags().StringVar(&pinned, "public-key", "", "checkpoint public key (base64, hex or a file); default: from the vault")
	cmd.AddCommand(verify)
	return cmd
}

// overlayPolicies compiles the configured policies with the edits stored
// through the admin API, and hands them to the gateway.
type overlayPolicies struct {
	a   *app
	db  store.Store
	srv *server.Server
}

func (p overlayPolicies) Reload(ctx context.Context) error {
	pols, err := policy.NewOverlay(p.db, p.a.cfg.Policies, nil).Compiled(ctx)
	if err != nil {
		return err
	}
	p.srv.SetPolicies(pols)
	return nil
}
