package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/operator"
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

// TestServeReplicasOnPostgres runs two `keywarden serve` replicas on one
// PostgreSQL database: a credential issued through one works on the other,
// and a revocation, the stop switch and a panic on one reach the other.
func TestServeReplicasOnPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	kit := sim.NewKit()
	exKey := "EXKEYPG0123456789abcd"
	exSecret := marker + "pg0123456789abcdef0123456789"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()

	var nodes []*cli
	var bases []string
	for range 2 {
		c := newCLI(t)
		addr := freePort(t)
		c.usePostgres(t, dsn, addr, up.URL)
		nodes, bases = append(nodes, c), append(bases, "http://"+addr)
	}
	a, b := nodes[0], nodes[1]
	writeFile(t, filepath.Join(a.dir, "admin-pass"), "the first admin's password\n", 0o600)
	seed := totpSeed(t, a.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", filepath.Join(a.dir, "admin-pass")))
	a.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan error
	for i, c := range nodes {
		done := make(chan error, 1)
		dones = append(dones, done)
		go func() {
			getenv := func(k string) string {
				if k == "KEYWARDEN_CONFIG" {
					return c.config
				}
				return ""
			}
			var out, errOut bytes.Buffer
			done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), &out, &errOut)
		}()
		waitHealthy(t, bases[i], done)
	}
	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() {
			cancel()
			for _, d := range dones {
				if err := <-d; err != nil {
					t.Errorf("serve = %v", err)
				}
			}
		})
	}
	defer stopAll()
	// until polls a bot call on base until it answers want.
	until := func(base string, cred *exchange.Credential, want int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			code, _ := botCall(t, base, cred)
			if code == want {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("call on %s = %d after 5s, want %d", base, code, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	out := a.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil {
		t.Fatalf("client issue output: %v\n%s", err, out)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	until(bases[1], cred, 200)

	b.ok("", "gateway", "stop")
	until(bases[0], cred, 503)
	a.ok(operator.Code(seed, time.Now())+"\n", "gateway", "resume", "--operator", "root", "--reason", "test over")
	until(bases[1], cred, 200)

	start := time.Now()
	a.ok("", "client", "revoke", iss.ID)
	until(bases[1], cred, 401)
	t.Logf("revocation on one replica refused on the other after %s (CLI and control socket included)", time.Since(start))

	// An exchange key revoked through one replica is refused by the other,
	// which had its secret cached from the calls above.
	out = a.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss2 issuedCredential
	if err := json.Unmarshal([]byte(out), &iss2); err != nil {
		t.Fatal(err)
	}
	cred2 := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss2.ID, Secret: exchange.Secret(iss2.SecretText)}
	until(bases[1], cred2, 200)
	a.ok("", "key", "revoke", "binance/main", "--reason", "drill")
	start = time.Now()
	for {
		if code, _ := botCall(t, bases[1], cred2); code != 200 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the other replica still signs with a revoked exchange key after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	b.ok("", "panic", "--all", "--reason", "drill")
	until(bases[0], cred, 503)

	// Stopped replicas have sent their last audit checkpoints: each one's
	// log verifies against them, and both replicas are listed.
	stopAll()
	for _, c := range append(nodes, a) {
		out := c.ok("", "cluster", "verify-audit")
		if !strings.Contains(out, "OK against") {
			t.Errorf("cluster verify-audit:\n%s", out)
		}
		if c == a && strings.Count(out, "replica ") == 2 {
			return
		}
	}
	t.Error("cluster verify-audit does not list both replicas")
}

// usePostgres appends to c's configuration a gateway on addr in plain HTTP
// over the PostgreSQL store at dsn (read from a file), a binance venue at
// upstream and a "trader" policy, with the admin listener off.
func (c *cli) usePostgres(t *testing.T, dsn, addr, upstream string) {
	t.Helper()
	writeFile(t, filepath.Join(c.dir, "dsn"), dsn+"\n", 0o600)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`
[store]
driver = "postgres"
dsn_file = "dsn"

[gateway]
listen = "` + addr + `"
plaintext = true

[[venue]]
name = "binance"
upstream = "` + upstream + `"

[policy.trader]
scopes = ["read", "trade"]

[admin]
disabled = true
`); err != nil {
		t.Fatal(err)
	}
}
