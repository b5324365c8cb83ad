package sqlite

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/storetest"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "data"))
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := open(t, dir)
	if err := db.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, DBFile), filepath.Join(dir, DBFile+"-wal"), filepath.Join(dir, LockFile)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("mode of %s = %04o, want no group or other bits", p, perm)
		}
	}
	var mode, sync string
	if err := db.SQL().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v, want wal", mode, err)
	}
	if err := db.SQL().QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != "2" {
		t.Errorf("synchronous = %q, %v, want 2 (FULL)", sync, err)
	}
}

func TestOpenRefusesOpenPermissions(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"directory", func(dir string) error { return os.Chmod(dir, 0o755) }, "mode 0755, want 0700"},
		{"database file", func(dir string) error { return os.Chmod(filepath.Join(dir, DBFile), 0o644) }, "mode 0644, want 0600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			db, err := Open(context.Background(), Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), Options{Dir: dir})
			if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open() = %v, want ErrPermissions mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOpenTwiceInProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := open(t, dir)
	_, err := Open(context.Background(), Options{Dir: dir})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "data directory "+dir+" is in use by another keywarden process") {
		t.Fatalf("second Open() = %v, want ErrInUse naming the directory", err)
	}
	first.Close()
	second, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open() after Close = %v, want nil", err)
	}
	second.Close()
}

// TestOpenFromAnotherProcess holds the directory open here and has a child
// process (this test binary again) try to open it.
func TestOpenFromAnotherProcess(t *testing.T) {
	if dir := os.Getenv("KEYWARDEN_SQLITE_CHILD_DIR"); dir != "" {
		_, err := Open(context.Background(), Options{Dir: dir})
		if err == nil {
			os.Exit(3)
		}
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	dir := filepath.Join(t.TempDir(), "data")
	open(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenFromAnotherProcess$")
	cmd.Env = append(os.Environ(), "KEYWARDEN_SQLITE_CHILD_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child = %v, output %q, want exit code 2", err, out)
	}
	if want := "is in use by another keywarden process"; !strings.Contains(string(out), want) {
		t.Fatalf("child output = %q, want it to contain %q", out, want)
	}
}

func TestOpenDetectsCorruption(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string) error
	}{
		{"truncated", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()/2+100)
		}},
		{"overwritten pages", func(path string) error {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
			_, err = f.WriteAt(junk, 4096)
			return err
		}},
		{"truncated to zero", func(path string) error { return os.Truncate(path, 0) }},
		{"deleted", func(path string) error { return os.Remove(path) }},
		{"not a database", func(path string) error {
			return os.WriteFile(path, []byte(strings.Repeat("this is not sqlite ", 400)), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			db, err := Open(context.Background(), Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 400 {
				key := "records/" + strings.Repeat("k", 20) + string(rune('a'+i%26)) + strings.Repeat("x", i%50) + string(rune('0'+i%10)) + string(rune('A'+i/26))
				if err := db.Put(ctx, key, []byte(strings.Repeat("value", 40))); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			if err := tt.damage(filepath.Join(dir, DBFile)); err != nil {
				t.Fatal(err)
			}
			db, err = Open(ctx, Options{Dir: dir})
			if err == nil {
				db.Close()
				t.Fatal("Open() of a damaged database = nil error, want ErrCorrupt")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Join(dir, DBFile)) {
				t.Fatalf("Open() = %v, want ErrCorrupt naming the file", err)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db := open(t, dir)
	files := fstest.MapFS{
		"m/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"m/0002_b.sql": {Data: []byte("CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (7);")},
	}
	for i := range 3 {
		if err := db.Migrate(ctx, "test", files); err != nil {
			t.Fatalf("Migrate() run %d = %v, want nil", i+1, err)
		}
	}
	var n int
	if err := db.SQL().QueryRow("SELECT count(*) FROM b").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in b = %d, %v, want 1 (migration applied once)", n, err)
	}
	if v, err := db.SchemaVersion(ctx, "test"); err != nil || v != 2 {
		t.Fatalf("SchemaVersion(test) = %d, %v, want 2", v, err)
	}

	// A failing migration leaves nothing behind.
	bad := fstest.MapFS{
		"m/0001_a.sql": files["m/0001_a.sql"],
		"m/0002_b.sql": files["m/0002_b.sql"],
		"m/0003_c.sql": {Data: []byte("CREATE TABLE c (z INTEGER); THIS IS NOT SQL;")},
	}
	if err := db.Migrate(ctx, "test", bad); err == nil {
		t.Fatal("Migrate(bad) = nil, want an error")
	}
	if v, _ := db.SchemaVersion(ctx, "test"); v != 2 {
		t.Errorf("SchemaVersion after failed migration = %d, want 2", v)
	}
	if _, err := db.SQL().Exec("SELECT * FROM c"); err == nil {
		t.Error("table c exists after its migration failed, want rolled back")
	}

	// A database from a newer keywarden is refused.
	older := fstest.MapFS{"m/0001_a.sql": files["m/0001_a.sql"]}
	if err := db.Migrate(ctx, "test", older); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Migrate(older files) = %v, want a newer-schema error", err)
	}

	// Reopening re-runs the core migrations harmlessly.
	db.Close()
	db = open(t, dir)
	if v, err := db.SchemaVersion(ctx, "store"); err != nil || v != 1 {
		t.Fatalf("SchemaVersion(store) = %d, %v, want 1", v, err)
	}
}

func TestSuccessor(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"a", "b", true},
		{"ab\xff", "ac", true},
		{"\xff\xff", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := successor(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("successor(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestFull fills the database to SQLite's page limit, the same error path
// as a full disk: writes fail with store.ErrFull, a failed transaction
// leaves nothing behind, and the database stays usable.
func TestFull(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "data"))
	db.SQL().SetMaxOpenConns(1)
	var pages int
	if err := db.SQL().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec("PRAGMA max_page_count = " + strconv.Itoa(pages+4)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4096)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = db.Put(ctx, "fill/"+strconv.Itoa(i), big)
	}
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("Put() on a full database = %v, want store.ErrFull", err)
	}
	err = db.Update(ctx, func(tx store.Tx) error {
		if err := tx.Put(ctx, "tx/small", []byte("x")); err != nil {
			return err
		}
		return tx.Put(ctx, "tx/big", make([]byte, 64*1024))
	})
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("Update() on a full database = %v, want store.ErrFull", err)
	}
	if _, err := db.Get(ctx, "tx/small"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(tx/small) after a failed Update = %v, want ErrNotFound", err)
	}
	if err := db.QuickCheck(ctx); err != nil {
		t.Fatalf("QuickCheck() after filling up = %v", err)
	}
}
