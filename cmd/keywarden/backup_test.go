package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// usePostgres points c at a PostgreSQL database.
func usePostgres(t *testing.T, c *cli, dsn string) {
	t.Helper()
	writeFile(t, filepath.Join(c.dir, "dsn"), dsn+"\n", 0o600)
	c.env["KEYWARDEN_STORE_DRIVER"] = "postgres"
	c.env["KEYWARDEN_STORE_DSN_FILE"] = filepath.Join(c.dir, "dsn")
}

// TestBackupRestore backs up a store with a sealed exchange key and
// restores it into an empty store of each driver: the key is there and
// opens with the same passphrase; the backup holds no secret in clear.
func TestBackupRestore(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // "sqlite" or "postgres"
	}{
		{"sqlite to sqlite", "sqlite", "sqlite"},
		{"postgres to postgres", "postgres", "postgres"},
		{"sqlite to postgres", "sqlite", "postgres"},
		{"postgres to sqlite", "postgres", "sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newCLI(t), newCLI(t)
			if tt.from == "postgres" {
				usePostgres(t, src, pgtest.NewDatabase(t))
			}
			if tt.to == "postgres" {
				usePostgres(t, dst, pgtest.NewDatabase(t))
			}
			src.ok("", "operator", "init")
			src.ok("api_key=APIKEY-BK\nsecret=bk-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

			file := filepath.Join(src.dir, "kw.backup")
			out := src.ok("", "backup", "--out", file)
			if !strings.Contains(out, "Backed up") {
				t.Errorf("backup output = %q", out)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("backup mode = %04o, want 0600", perm)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), marker) {
				t.Fatal("the backup holds the exchange secret in clear")
			}
			src.fails("already exists", "", "backup", "--out", file)

			dst.ok("", "restore", "--in", file)
			if out := dst.ok("", "key", "list"); !strings.Contains(out, "binance/main") {
				t.Errorf("key list after restore = %q, want binance/main", out)
			}
			// Unsealing with the same passphrase opens every key.
			dst.ok("", "operator", "verify")
			dst.fails("already holds", "", "restore", "--in", file)
		})
	}
}

func TestRestoreRefusesDamagedBackups(t *testing.T) {
	src := newCLI(t)
	src.ok("", "operator", "init")
	file := filepath.Join(src.dir, "kw.backup")
	src.ok("", "backup", "--out", file)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	tests := []struct {
		name, content, want string
	}{
		{"truncated", strings.Join(lines[:len(lines)-2], ""), "checksum"},
		{"changed record", strings.Replace(string(raw), `"v":"`, `"v":"AAAA`, 1), "checksum"},
		{"empty", "", "too short"},
		{"not a backup", "hello\nworld\n", "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newCLI(t)
			bad := filepath.Join(dst.dir, "bad.backup")
			writeFile(t, bad, tt.content, 0o600)
			dst.fails(tt.want, "", "restore", "--in", bad)
			if _, err := os.Stat(filepath.Join(dst.dir, "data")); err == nil {
				t.Error("a refused restore created the data directory")
			}
		})
	}
}
