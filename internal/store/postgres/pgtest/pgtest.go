// Package pgtest gives tests a fresh PostgreSQL database on the server named
// by KEYWARDEN_TEST_POSTGRES (scripts/setup/postgres.sh starts one on
// loopback). Without that variable, tests skip, unless
// KEYWARDEN_REQUIRE_POSTGRES=1, when they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN and EnvRequire name the environment variables pgtest reads.
const (
	EnvDSN     = "KEYWARDEN_TEST_POSTGRES"
	EnvRequire = "KEYWARDEN_REQUIRE_POSTGRES"
)

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its DSN. The role in KEYWARDEN_TEST_POSTGRES needs CREATEDB.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %s is not set (source scripts/setup/postgres.sh)", EnvRequire, EnvDSN)
		}
		t.Skipf("no PostgreSQL: set %s (source scripts/setup/postgres.sh)", EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("%s is not a valid DSN", EnvDSN)
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to the test server: %v", redact(err, base, cfg.Password))
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var b [6]byte
	rand.Read(b[:])
	name := "kwtest_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", redact(err, base, cfg.Password))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Logf("drop database %s: %v", name, redact(err, base, cfg.Password))
			return
		}
		defer c.Close(ctx)
		// A throwaway server's leftover database harms nothing: retry a
		// few times (an autovacuum worker may hold it), then only log.
		for try := 0; ; try++ {
			_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			if err == nil {
				return
			}
			if try == 4 {
				t.Logf("drop database %s: %v", name, redact(err, base, cfg.Password))
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	own := cfg.Copy()
	own.Database = name
	return dsn(own)
}

// dsn renders cfg as a key=value connection string.
func dsn(cfg *pgx.ConnConfig) string {
	q := func(s string) string {
		out := []byte{'\''}
		for i := 0; i < len(s); i++ {
			if s[i] == '\'' || s[i] == '\\' {
				out = append(out, '\\')
			}
			out = append(out, s[i])
		}
		return string(append(out, '\''))
	}
	s := "host=" + q(cfg.Host) + " port=" + strconv.Itoa(int(cfg.Port)) + " user=" + q(cfg.User) +
		" dbname=" + q(cfg.Database) + " sslmode=disable"
	if cfg.Password != "" {
		s += " password=" + q(cfg.Password)
	}
	return s
}

type redacted struct{ msg string }

func (r redacted) Error() string { return r.msg }

func redact(err error, secrets ...string) error {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return redacted{msg}
}
