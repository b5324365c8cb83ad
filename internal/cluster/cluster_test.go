package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// hangBound fails a test that waits this long for a change: it catches a
// hang, it is not a performance threshold.
const hangBound = 5 * time.Second

// gatewaySwitch records the panic switch like the gateway's.
type gatewaySwitch struct{ stopped atomic.Bool }

func (g *gatewaySwitch) Stop()   { g.stopped.Store(true) }
func (g *gatewaySwitch) Resume() { g.stopped.Store(false) }

// replica is one keywarden replica's shared-state parts.
type replica struct {
	db      *postgres.DB
	clients *client.Registry
	gw      *gatewaySwitch
	r       *Replica
}

func openDB(t testing.TB, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatalf("postgres.Open = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func startReplica(t testing.TB, dsn, name string, poll time.Duration) *replica {
	t.Helper()
	ctx := context.Background()
	db := openDB(t, dsn)
	reg := client.New(client.Options{Store: db})
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	gw := &gatewaySwitch{}
	r, err := Join(ctx, Options{DB: db, Replica: name, Clients: reg, Gateway: gw, PollInterval: poll})
	if err != nil {
		t.Fatalf("Join = %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return &replica{db: db, clients: reg, gw: gw, r: r}
}

func pubPEM(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func issue(t testing.TB, on *replica) client.Client {
	t.Helper()
	iss, err := on.clients.Issue(context.Background(), client.IssueOptions{Venue: "coinbase", Key: "main", Policy: "p",
		TTL: time.Hour, Kind: exchange.KeyEd25519, PublicKeyPEM: pubPEM(t)})
	if err != nil {
		t.Fatalf("Issue = %v", err)
	}
	if err := on.r.ClientsChanged(context.Background()); err != nil {
		t.Fatalf("ClientsChanged = %v", err)
	}
	return iss.Client
}

// waitFor polls cond every millisecond and returns how long it took to
// hold, failing the test after hangBound.
func waitFor(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > hangBound {
			t.Fatalf("%s: not seen after %s", what, hangBound)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func usable(r *replica, c client.Client) bool {
	_, err := r.clients.Lookup(c.Venue, c.ID)
	return err == nil
}

// TestRevocationReachesEveryReplica issues a credential on one replica,
// sees it usable on all, revokes it on another and measures how long every
// replica takes to refuse it, with two and three replicas.
func TestRevocationReachesEveryReplica(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d replicas", n), func(t *testing.T) {
			dsn := pgtest.NewDatabase(t)
			var rs []*replica
			for i := range n {
				rs = append(rs, startReplica(t, dsn, fmt.Sprintf("r%d", i), 0))
			}
			var took []time.Duration
			for round := range 5 {
				c := issue(t, rs[round%n])
				for i, r := range rs {
					waitFor(t, fmt.Sprintf("credential usable on r%d", i), func() bool { return usable(r, c) })
				}
				from := rs[(round+1)%n]
				start := time.Now()
				if err := from.clients.Revoke(context.Background(), c.Venue, c.ID); err != nil {
					t.Fatal(err)
				}
				if err := from.r.ClientsChanged(context.Background()); err != nil {
					t.Fatal(err)
				}
				for i, r := range rs {
					waitFor(t, fmt.Sprintf("revocation on r%d", i), func() bool { return !usable(r, c) })
					if r != from {
						took = append(took, time.Since(start))
					}
				}
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			t.Logf("revocation reached the other replicas in median %s, max %s (%d samples, revoke + publish included)",
				took[len(took)/2], took[len(took)-1], len(took))
		})
	}
}

// TestPanicSwitchReachesEveryReplica stops the gateway on one replica and
// resumes it on another; a replica that joins while stopped starts stopped.
func TestPanicSwitchReachesEveryReplica(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	rs := []*replica{startReplica(t, dsn, "a", 0), startReplica(t, dsn, "b", 0), startReplica(t, dsn, "c", 0)}
	ctx := context.Background()
	start := time.Now()
	if err := rs[0].r.SetGatewayStopped(ctx, true); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		waitFor(t, fmt.Sprintf("stop on replica %d", i), r.gw.stopped.Load)
	}
	t.Logf("stop reached 3 replicas in %s", time.Since(start))

	late := startReplica(t, dsn, "late", 0)
	if !late.gw.stopped.Load() {
		t.Error("a replica joining during a panic is running, want stopped")
	}

	if err := rs[1].r.SetGatewayStopped(ctx, false); err != nil {
		t.Fatal(err)
	}
	for i, r := range append(rs, late) {
		waitFor(t, fmt.Sprintf("resume on replica %d", i), func() bool { return !r.gw.stopped.Load() })
	}
}

// TestPollingWithoutNotifications changes the shared state the way a lost
// notification would leave it (no NOTIFY): replicas converge by polling.
func TestPollingWithoutNotifications(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startReplica(t, dsn, "a", 100*time.Millisecond)
	admin := openDB(t, dsn)
	start := time.Now()
	if _, err := admin.Pool().Exec(context.Background(),
		"UPDATE cluster_state SET gen = gen + 1, value = 'stopped', origin = 'test' WHERE name = 'gateway'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop by polling", a.gw.stopped.Load)
	t.Logf("stop without a notification arrived in %s (poll interval 100ms)", time.Since(start))
}

// TestListenConnectionKilled terminates the replica's LISTEN connection:
// changes still arrive (by polling), and the replica listens again.
func TestListenConnectionKilled(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startReplica(t, dsn, "a", 100*time.Millisecond)
	b := startReplica(t, dsn, "b", 100*time.Millisecond)
	admin := openDB(t, dsn)
	ctx := context.Background()
	killListeners := func() int {
		var n int
		err := admin.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, "both replicas listening", func() bool {
		var n int
		_ = admin.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n)
		return n == 2
	})
	if n := killListeners(); n != 2 {
		t.Fatalf("terminated %d LISTEN connections, want 2", n)
	}
	if err := a.r.SetGatewayStopped(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop after the LISTEN connection died", b.gw.stopped.Load)
	waitFor(t, "listening again", func() bool {
		var n int
		_ = admin.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n)
		return n == 2
	})
}

// TestUnknownStateFailsClosed: a gateway state this binary does not know
// stops the gateway.
func TestUnknownStateFailsClosed(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startReplica(t, dsn, "a", 50*time.Millisecond)
	if _, err := a.db.Pool().Exec(context.Background(),
		"UPDATE cluster_state SET gen = gen + 1, value = 'paused-ish' WHERE name = 'gateway'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fail-closed stop", a.gw.stopped.Load)
}

func TestJoinNeedsItsParts(t *testing.T) {
	if _, err := Join(context.Background(), Options{}); err == nil {
		t.Fatal("Join without parts = nil, want an error")
	}
}

// keyWatcher counts DropDisabled calls.
type keyWatcher struct{ n atomic.Int32 }

func (k *keyWatcher) DropDisabled(context.Context) error { k.n.Add(1); return nil }

// TestStoreWritesPropagate changes the store the way a keywarden command
// run against the database does (no replica publishes anything): the
// trigger on the store's table tells every replica.
func TestStoreWritesPropagate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startReplica(t, dsn, "a", 0)
	c := issue(t, a)
	waitFor(t, "credential usable", func() bool { return usable(a, c) })

	// A registry of its own, as `keywarden client revoke` without a local
	// gateway uses.
	cli := client.New(client.Options{Store: openDB(t, dsn)})
	if err := cli.Revoke(context.Background(), c.Venue, c.ID); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "revocation from a direct store write", func() bool { return !usable(a, c) })
	t.Logf("a revocation written straight to the store reached the replica in %s", took)
}

func TestKeyStateChangesPropagate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	reg := client.New(client.Options{Store: db})
	kw := &keyWatcher{}
	r, err := Join(context.Background(), Options{DB: db, Clients: reg, Gateway: &gatewaySwitch{}, Keys: kw})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	gen := func() int64 {
		var g int64
		if err := db.Pool().QueryRow(ctx, "SELECT gen FROM cluster_state WHERE name = 'keys'").Scan(&g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	put := func(v string) {
		t.Helper()
		if err := db.Put(ctx, "vault/keys/binance/main", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"exchange":"binance","name":"main","secret_version":1}`)
	g0 := gen()
	put(`{"exchange":"binance","name":"main","secret_version":1,"last_used":"2026-03-02T10:00:00Z"}`)
	if g := gen(); g != g0 {
		t.Errorf("a last_used update bumped the keys generation %d -> %d, want unchanged", g0, g)
	}
	before := kw.n.Load()
	put(`{"exchange":"binance","name":"main","secret_version":1,"disabled":"2026-03-02T10:01:00Z"}`)
	if g := gen(); g != g0+1 {
		t.Errorf("disabling bumped the keys generation %d -> %d, want +1", g0, g)
	}
	waitFor(t, "DropDisabled after a key was disabled", func() bool { return kw.n.Load() > before })
	put(`{"exchange":"binance","name":"main","secret_version":2,"disabled":"2026-03-02T10:01:00Z"}`)
	if g := gen(); g != g0+2 {
		t.Errorf("a secret rotation bumped the keys generation %d -> %d, want +2", g0, g)
	}
	put(`not json`)
	if g := gen(); g != g0+3 {
		t.Errorf("unparseable metadata bumped the keys generation %d -> %d, want +3", g0, g)
	}
	if err := db.Put(ctx, "vault/other/x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if g := gen(); g != g0+3 {
		t.Errorf("an unrelated record bumped the keys generation to %d, want %d", g, g0+3)
	}
}

// policyWatcher counts Reload calls.
type policyWatcher struct{ n atomic.Int64 }

func (p *policyWatcher) Reload(context.Context) error { p.n.Add(1); return nil }

// TestPolicyEditsPropagate: a policy edit stored by any process makes every
// replica compile its policies again; other writes do not.
func TestPolicyEditsPropagate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, dsn)
	pw := &policyWatcher{}
	r, err := Join(context.Background(), Options{DB: db, Clients: client.New(client.Options{Store: db}), Gateway: &gatewaySwitch{}, Policies: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	before := pw.n.Load()
	if err := db.Put(ctx, "operators/someone", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := openDB(t, dsn).Put(ctx, "policies/overlay/spot", []byte(`{"name":"spot"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Reload after a policy edit", func() bool { return pw.n.Load() > before })
	if got := pw.n.Load() - before; got != 1 {
		t.Errorf("Reload called %d times after one policy edit and one unrelated write, want 1", got)
	}
}
