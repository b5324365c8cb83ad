package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/cluster"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

func TestClusterForkAlert(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fork := &cluster.ForkError{Replica: "h:/a", TreeSize: 40, Kind: "head", StoredHead: "aa", LogHead: "bb"}
	missing := &cluster.ForkError{Replica: "h:/a", TreeSize: 40, Kind: "missing", StoredHead: "aa", LogHead: "cc"}
	back := &cluster.RollbackError{Replica: "h:/a", TreeSize: 40, StoredHead: "aa", LogSize: 15, LogHead: "dd"}
	tests := []struct {
		name string
		err  error
		want monitor.Alert
	}{
		{"fork", fork, monitor.Alert{
			Summary: "audit log fork (cluster witness): two different chain heads for tree size 40; keywarden stops",
			Evidence: map[string]string{"witness": "cluster", "replica": "h:/a", "kind": "fork", "tree_size": "40",
				"witness_head": "aa", "log_head": "bb", "error": fork.Error()}}},
		{"no checkpoint in the log", fmt.Errorf("cluster: %w", missing), monitor.Alert{
			Summary: "audit log fork (cluster witness): the log contradicts the checkpoint collected for tree size 40; keywarden stops",
			Evidence: map[string]string{"witness": "cluster", "replica": "h:/a", "kind": "fork", "tree_size": "40",
				"witness_head": "aa", "log_head": "cc", "error": "cluster: " + missing.Error()}}},
		{"rollback", back, monitor.Alert{
			Summary: "audit log rollback (cluster witness): the database holds tree size 40, the log ends at 15; keywarden stops",
			Evidence: map[string]string{"witness": "cluster", "replica": "h:/a", "kind": "rollback", "tree_size": "40",
				"log_tree_size": "15", "witness_head": "aa", "log_head": "dd", "error": back.Error()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Rule, want.Severity, want.Subject, want.Time = ruleAuditFork, monitor.SeverityCritical, "audit", now
			if diff := cmp.Diff(want, clusterForkAlert(tt.err, "h:/a", now)); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
		})
	}
}

// pgReplica is one keywarden installation on a PostgreSQL store, serving
// plain HTTP on loopback in front of a Binance simulator.
type pgReplica struct {
	*cli
	base string
	cred *exchange.Credential
}

func newPGReplica(t *testing.T, dsn string) *pgReplica {
	t.Helper()
	kit := sim.NewKit()
	exKey, exSecret := "EXKEYCW0123456789abcd", marker+"cw0123456789abcdef0123456789"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	t.Cleanup(up.Close)
	c := newCLI(t)
	addr := freePort(t)
	c.usePostgres(t, dsn, addr, up.URL)
	r := &pgReplica{cli: c, base: "http://" + addr}
	r.ok("", "operator", "init")
	r.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	out := r.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil {
		t.Fatalf("client issue output: %v\n%s", err, out)
	}
	r.cred = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	return r
}

func (r *pgReplica) auditDir() string { return filepath.Join(r.dir, "data", "audit") }

func (r *pgReplica) getenv(k string) string {
	if k == "KEYWARDEN_CONFIG" {
		return r.config
	}
	return ""
}

// run starts keywarden serve, makes calls bot calls (an intent and an
// outcome record each), and stops it; serve's close adds a checkpoint.
func (r *pgReplica) run(t *testing.T, calls int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errOut bytes.Buffer
	go func() {
		done <- runIO(ctx, []string{"keywarden", "serve"}, r.getenv, strings.NewReader(""), io.Discard, &errOut)
	}()
	waitHealthy(t, r.base, done)
	for i := range calls {
		if code, body := botCall(t, r.base, r.cred); code != 200 {
			t.Errorf("bot call %d = %d %s, want 200", i, code, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve = %v\n%s", err, errOut.String())
	}
	if strings.Contains(errOut.String(), ruleAuditFork) {
		t.Errorf("serve raised %s on a healthy log:\n%s", ruleAuditFork, errOut.String())
	}
}

// refused runs keywarden serve and wants it to return an error before it
// listens; it returns serve's log and the error.
func (r *pgReplica) refused(t *testing.T) (string, error) {
	t.Helper()
	var errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runIO(ctx, []string{"keywarden", "serve"}, r.getenv, strings.NewReader(""), io.Discard, &errOut)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve = %v, want a refusal at start\n%s", err, errOut.String())
	}
	return errOut.String(), err
}

// auditHeads returns the hash of each record in dir by seq, and the last seq.
func auditHeads(t *testing.T, dir string) (map[uint64]string, uint64) {
	t.Helper()
	out := map[uint64]string{}
	var last uint64
	for r, err := range audit.Search(dir, audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out[r.Seq], last = r.Hash, r.Seq
	}
	return out, last
}

// collected returns the chain heads of replica's collected checkpoints.
func collected(t *testing.T, dsn, replica string) map[uint64]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT count, line FROM cluster_audit_checkpoint WHERE replica = $1", replica)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	var count int64
	var line string
	if _, err := pgx.ForEachRow(rows, []any{&count, &line}, func() error {
		out[uint64(count)] = strings.Fields(line)[3]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func copyAuditDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.RemoveAll(to); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, e.Name()), string(b), 0o600)
	}
}

// TestServeClusterWitness runs keywarden serve on PostgreSQL through a
// backup and restore of its audit directory. Restarts of the healthy
// replica start; the log restored from the backup is refused at start
// (rollback: the database holds a checkpoint past it); the restored log
// written on elsewhere (under another audit directory, so another replica
// name) and put back is refused as a fork at the first collected tree
// size past the backup, naming both chain heads, and so is cluster
// verify-audit. Each refusal raises the critical audit_fork alert.
func TestServeClusterWitness(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	r := newPGReplica(t, dsn)
	replica := auditReplica(r.auditDir())
	backup := filepath.Join(t.TempDir(), "backup")

	r.run(t, 3)
	copyAuditDir(t, r.auditDir(), backup)
	_, backupSize := auditHeads(t, backup)
	r.run(t, 3)
	r.run(t, 0) // a healthy restart: collects what the last run wrote
	rows := collected(t, dsn, replica)
	var past []uint64
	for c := range rows {
		if c+1 > backupSize {
			past = append(past, c)
		}
	}
	if len(past) == 0 {
		t.Fatalf("collected %v, want a checkpoint past the backup's %d records", rows, backupSize)
	}
	top := past[0]
	for _, c := range past {
		top = max(top, c)
	}
	r.ok("", "cluster", "verify-audit")

	// Restored from the backup: a rollback.
	copyAuditDir(t, backup, r.auditDir())
	logs, err := r.refused(t)
	var re *cluster.RollbackError
	if !errors.As(err, &re) {
		t.Fatalf("serve after the restore = %v, want a *cluster.RollbackError\n%s", err, logs)
	}
	if re.TreeSize != top || re.LogSize != backupSize || re.StoredHead != rows[top] {
		t.Errorf("rollback = %+v, want tree size %d (head %s), log size %d", *re, top, rows[top], backupSize)
	}
	if !strings.Contains(logs, `"alert":"audit_fork"`) || !strings.Contains(logs, "cluster witness") {
		t.Errorf("serve's log has no audit_fork alert from the cluster witness:\n%s", logs)
	}
	if resp, err := http.Get(r.base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the refused serve answers on its listen address")
	}

	// Written on elsewhere, then put back: a fork.
	elsewhere := filepath.Join(r.dir, "data", "audit-elsewhere")
	if err := os.Rename(r.auditDir(), elsewhere); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, r.config, strings.Replace(string(conf), "[gateway]\n", "[gateway]\naudit_dir = \"data/audit-elsewhere\"\n", 1), 0o600)
	r.run(t, 6)
	r.run(t, 6)
	writeFile(t, r.config, string(conf), 0o600)
	if err := os.Rename(elsewhere, r.auditDir()); err != nil {
		t.Fatal(err)
	}
	heads, size := auditHeads(t, r.auditDir())
	if size <= top+1 {
		t.Fatalf("the log written on has %d records, want more than %d", size, top+1)
	}
	slices.Sort(past)
	forked := past[0]
	logs, err = r.refused(t)
	var fe *cluster.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("serve after the write-on = %v, want a *cluster.ForkError\n%s", err, logs)
	}
	if fe.TreeSize != forked || fe.StoredHead != rows[forked] || fe.LogHead != heads[forked] || fe.StoredHead == fe.LogHead {
		t.Errorf("fork = %+v, want tree size %d, collected head %s, log head %s", *fe, forked, rows[forked], heads[forked])
	}
	for _, s := range []string{"fork", fmt.Sprintf("tree size %d", forked), rows[forked], heads[forked]} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("serve's error %q does not name %q", err, s)
		}
	}
	if !strings.Contains(logs, `"alert":"audit_fork"`) {
		t.Errorf("serve's log has no audit_fork alert:\n%s", logs)
	}
	r.fails("fork", "", "cluster", "verify-audit")
	if diff := cmp.Diff(rows, collected(t, dsn, replica)); diff != "" {
		t.Errorf("the refusals changed the collected checkpoints (-before +after):\n%s", diff)
	}
}

// TestClusterWitnessStopsOnFork: the cluster witness started for an open
// log checks it at start, and when the log is later swapped for a fork
// (restored from a backup and written on elsewhere) it raises audit_fork
// and delivers the error serve stops on.
func TestClusterWitnessStopsOnFork(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatalf("postgres.Open = %v", err)
	}
	defer db.Close()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "audit")
	backup := filepath.Join(t.TempDir(), "backup")
	opts := audit.Options{Dir: dir, Signer: priv, HashKey: make([]byte, 32), CheckpointEvery: 5}
	appendEvents(t, opts, 8, "before")
	copyAuditDir(t, dir, backup)
	appendEvents(t, opts, 12, "after")
	l, err := audit.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	alerts := make(chan monitor.Alert, 4)
	a := &app{log: slog.New(slog.DiscardHandler)}
	cw, err := a.startClusterWitness(ctx, db, l, func(al monitor.Alert) { alerts <- al }, 10*time.Millisecond)
	if err != nil {
		t.Fatalf("startClusterWitness on a healthy log = %v", err)
	}
	m := &clusterMember{errc: cw.errc, close: func() error { cw.stop(); <-cw.done; return nil }}
	defer m.Close()

	forked := filepath.Join(t.TempDir(), "forked")
	copyAuditDir(t, backup, forked)
	appendEvents(t, audit.Options{Dir: forked, Signer: priv, HashKey: make([]byte, 32), CheckpointEvery: 5}, 40, "fork")
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(forked, dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-m.Err():
		if !errors.As(err, new(*cluster.ForkError)) {
			t.Errorf("Err delivered %v, want a *cluster.ForkError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no error delivered within 30s of the fork")
	}
	select {
	case al := <-alerts:
		if al.Rule != ruleAuditFork || al.Severity != monitor.SeverityCritical || al.Evidence["kind"] != "fork" || al.Evidence["witness"] != "cluster" {
			t.Errorf("alert = %+v, want a critical audit_fork fork from the cluster witness", al)
		}
	default:
		t.Error("no alert raised")
	}
	if (&clusterMember{}).Err() != nil {
		t.Error("the SQLite membership delivers errors")
	}
}

// appendEvents appends n event records by actor to the log opts describe
// and closes it (which writes a checkpoint).
func appendEvents(t *testing.T, opts audit.Options, n int, actor string) {
	t.Helper()
	l, err := audit.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(context.Background(), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "test", Actor: actor}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
