package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

func TestStoreConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    StoreConfig
		want string // "" for valid
	}{
		{"default", StoreConfig{}, ""},
		{"sqlite", StoreConfig{Driver: "sqlite"}, ""},
		{"postgres", StoreConfig{Driver: "postgres", DSNFile: "/etc/keywarden/dsn"}, ""},
		{"postgres without dsn", StoreConfig{Driver: "postgres"}, "needs dsn_file"},
		{"dsn for sqlite", StoreConfig{DSNFile: "/x"}, "only for driver"},
		{"unknown", StoreConfig{Driver: "mysql"}, `"mysql": want sqlite or postgres`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStoreDSNNeverFromEnvironment(t *testing.T) {
	var c StoreConfig
	env := map[string]string{"KEYWARDEN_STORE_DSN": "postgres://u:pw@h/db"}
	if err := c.applyEnv(func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Errorf("applyEnv with a DSN = %v, want a refusal that does not quote it", err)
	}
}

func TestReadDSNFile(t *testing.T) {
	dir := t.TempDir()
	const dsn = "postgres://keywarden:secret-pw@127.0.0.1:5432/kw"
	open := filepath.Join(dir, "open")
	writeFile(t, open, dsn+"\n", 0o644)
	if _, err := readDSNFile(open); err == nil || !strings.Contains(err.Error(), "want 0600") || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("readDSNFile(0644) = %v, want a mode refusal without the DSN", err)
	}
	good := filepath.Join(dir, "good")
	writeFile(t, good, dsn+"\n", 0o600)
	if got, err := readDSNFile(good); err != nil || got != dsn {
		t.Errorf("readDSNFile = %q, %v, want %q", got, err, dsn)
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n", 0o600)
	if _, err := readDSNFile(empty); err == nil {
		t.Error("readDSNFile(empty) = nil, want an error")
	}
}

// TestPostgresReplicasShareTheVault runs two installations (two data
// directories, as two replicas have) over one PostgreSQL database: a key
// added on one is listed on the other, and no secret reaches the database
// in the clear.
func TestPostgresReplicasShareTheVault(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := newCLI(t), newCLI(t)
	for _, c := range []*cli{a, b} {
		writeFile(t, filepath.Join(c.dir, "dsn"), dsn+"\n", 0o600)
		c.env["KEYWARDEN_STORE_DRIVER"] = "postgres"
		c.env["KEYWARDEN_STORE_DSN_FILE"] = filepath.Join(c.dir, "dsn")
		t.Cleanup(func() {
			// The marker check covers outputs; also cover the DSN's password.
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil || cfg.Password == "" {
				return
			}
			for _, o := range c.outputs {
				if strings.Contains(o, cfg.Password) {
					t.Errorf("output shows the database password:\n%s", o)
				}
			}
		})
	}
	a.ok("", "operator", "init")
	b.fails("already initialized", "", "operator", "init")
	a.ok("api_key=APIKEY-PG\nsecret=pg-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	if out := b.ok("", "key", "list"); !strings.Contains(out, "binance/main") {
		t.Errorf("key list on the second replica = %q, want binance/main", out)
	}
	b.ok("", "operator", "verify")
	if _, err := os.Stat(filepath.Join(a.dir, "data", "keywarden.db")); err == nil {
		t.Error("a SQLite database was created in PostgreSQL mode")
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM kv WHERE position($1::bytea in val) > 0", []byte(marker)).Scan(&n); err != nil || n != 0 {
		t.Errorf("records holding the secret in the clear = %d, %v, want 0", n, err)
	}
}
