package postgres

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
	"github.com/keywarden/keywarden/internal/store/storetest"
)

func open(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{DSN: dsn})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}

// TestReplicasShareRecords opens the database twice, as two replicas do.
func TestReplicasShareRecords(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	if err := a.Put(ctx, "clients/c1", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "clients/c1")
	if err != nil || string(got) != "sealed" {
		t.Fatalf("Get on the other replica = %q, %v, want %q", got, err, "sealed")
	}
}

// TestUpdatesSerializeAcrossReplicas runs read-modify-write transactions on
// one counter from two replicas; no increment is lost.
func TestUpdatesSerializeAcrossReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dbs := []*DB{open(t, dsn), open(t, dsn)}
	ctx := context.Background()
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*4)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := dbs[i%2]
			for range each {
				err := db.Update(ctx, func(tx store.Tx) error {
					v, err := tx.Get(ctx, "n")
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return tx.Put(ctx, "n", append(v, 'x'))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update = %v", err)
	}
	got, err := dbs[0].Get(ctx, "n")
	if err != nil || len(got) != 8*each {
		t.Fatalf("counter = %d bytes, %v, want %d", len(got), err, 8*each)
	}
}

func TestMigrateIdempotentAndRefusesNewer(t *testing.T) {
	db := open(t, pgtest.NewDatabase(t))
	ctx := context.Background()
	files := fstest.MapFS{
		"1_a.sql": {Data: []byte("CREATE TABLE a (x INT); CREATE TABLE b (y INT);")},
		"2_c.sql": {Data: []byte("ALTER TABLE a ADD COLUMN z INT;")},
	}
	for range 2 {
		if err := db.Migrate(ctx, "test", files); err != nil {
			t.Fatalf("Migrate = %v", err)
		}
	}
	if v, err := db.SchemaVersion(ctx, "test"); err != nil || v != 2 {
		t.Fatalf("SchemaVersion = %d, %v, want 2", v, err)
	}
	delete(files, "2_c.sql")
	if err := db.Migrate(ctx, "test", files); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate with an older binary = %v, want a refusal", err)
	}
	bad := fstest.MapFS{"x_a.sql": {Data: []byte("SELECT 1")}}
	if err := db.Migrate(ctx, "bad", bad); err == nil {
		t.Fatal("Migrate with a badly named file = nil, want an error")
	}
}

// TestConcurrentOpenMigratesOnce starts replicas together on an empty
// database: the advisory lock lets one migrate and the others see it done.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(context.Background(), Options{DSN: dsn})
			if err != nil {
				errs <- err
				return
			}
			db.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Open = %v", err)
	}
}

// TestMigrationsMatchSQLite keeps the two dialects' migration lists in step:
// the same versions and names, so a schema change lands in both.
func TestMigrationsMatchSQLite(t *testing.T) {
	pg, err := MigrationList(Migrations())
	if err != nil {
		t.Fatal(err)
	}
	lite, err := MigrationList(os.DirFS("../sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var liteMigrations []Migration
	for _, m := range lite {
		if strings.HasPrefix(m.Name, "migrations/") {
			liteMigrations = append(liteMigrations, m)
		}
	}
	if len(pg) == 0 {
		t.Fatal("no PostgreSQL migrations")
	}
	if diff := cmp.Diff(liteMigrations, pg); diff != "" {
		t.Errorf("PostgreSQL migrations differ from SQLite's (-sqlite +postgres):\n%s", diff)
	}
}

// TestErrorsNeverShowTheDSN checks that a DSN's password appears in no
// error: a bad password, an unreachable server, a malformed DSN.
func TestErrorsNeverShowTheDSN(t *testing.T) {
	const secret = "s3cr3t-Pa55word"
	dsn := pgtest.NewDatabase(t)
	tests := []struct {
		name, dsn string
	}{
		{"wrong password url", "postgres://keywarden:" + secret + "@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"},
		{"wrong password kv", dsnWithPassword(t, dsn, secret)},
		{"malformed", "postgres://keywarden:" + secret + "@[::1"},
		{"malformed kv", "host=127.0.0.1 password='" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(context.Background(), Options{DSN: tt.dsn})
			if err == nil {
				db.Close()
				t.Fatal("Open = nil, want an error")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), tt.dsn) {
				t.Fatalf("Open error shows the secret: %v", err)
			}
		})
	}
}

func dsnWithPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	i := strings.Index(dsn, "password=")
	if i < 0 {
		t.Fatalf("test DSN has no password")
	}
	return dsn[:i] + "password='" + password + "'"
}

func TestRedact(t *testing.T) {
	d := &DB{secrets: secretsOf("postgres://u:pw123@h/db", "pw123")}
	base := errors.New("dial postgres://u:pw123@h/db: pw123 refused")
	got := d.Redact(base)
	if want := "dial xxxxx: xxxxx refused"; got.Error() != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if !errors.Is(got, base) {
		t.Error("Redact lost the error chain")
	}
	if d.Redact(nil) != nil {
		t.Error("Redact(nil) != nil")
	}
}
