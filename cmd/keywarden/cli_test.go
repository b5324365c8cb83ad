package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// marker is planted in every secret the tests store; it must never appear
// in any output, log or database file.
const marker = "CANARY-51d2e8"

// cli is a keywarden installation in a temporary directory, configured with
// a passphrase file and the cheapest Argon2id cost allowed.
type cli struct {
	t       *testing.T
	dir     string
	config  string
	env     map[string]string
	outputs []string // every stdout and stderr, for the marker check
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	c := &cli{t: t, dir: dir, config: filepath.Join(dir, "keywarden.toml"), env: map[string]string{}}
	writeFile(t, filepath.Join(dir, "pass"), "correct horse battery staple\n", 0o600)
	writeFile(t, c.config, `data_dir = "data"
log_level = "debug"

[vault]
passphrase_file = "pass"
argon2_time = 2
argon2_memory_kib = 19456
argon2_threads = 1
`, 0o600)
	t.Cleanup(func() { c.checkNoMarker() })
	return c
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// run runs keywarden with the test config, stdin and args.
func (c *cli) run(stdin string, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "KEYWARDEN_CONFIG" {
			return c.config
		}
		return c.env[k]
	}
	err = runIO(context.Background(), append([]string{"keywarden"}, args...), getenv, strings.NewReader(stdin), &out, &errOut)
	c.outputs = append(c.outputs, out.String(), errOut.String())
	if err != nil {
		c.outputs = append(c.outputs, err.Error())
	}
	return out.String(), errOut.String(), err
}

// ok runs keywarden and fails the test on error.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("keywarden %s = %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs keywarden and wants an error containing want.
func (c *cli) fails(want, stdin string, args ...string) string {
	c.t.Helper()
	_, _, err := c.run(stdin, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		c.t.Fatalf("keywarden %s = %v, want an error containing %q", strings.Join(args, " "), err, want)
	}
	return err.Error()
}

// checkNoMarker greps every output and every file in the data directory.
func (c *cli) checkNoMarker() {
	for _, o := range c.outputs {
		if strings.Contains(o, marker) {
			c.t.Errorf("output contains the secret marker:\n%s", o)
		}
	}
	filepath.WalkDir(filepath.Join(c.dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(marker)) {
			c.t.Errorf("file %s contains the secret marker", p)
		}
		return nil
	})
}

func TestKeyLifecycle(t *testing.T) {
	c := newCLI(t)
	out := c.ok("", "operator", "init")
	if !strings.Contains(out, "sealed by a passphrase") {
		t.Errorf("init output = %q, want it to say the seal", out)
	}
	c.fails("already initialized", "", "operator", "init")

	material := "api_key=APIKEY-ONE\nsecret=hmac-" + marker + "\n"
	out = c.ok(material, "key", "add", "--exchange", "binance", "--name", "main", "--label", "grid bot", "--scopes", "read,trade", "--stdin")
	if !regexp.MustCompile(`Added binance/main \(hmac, fingerprint kwfp_[0-9a-f]{16}\)`).MatchString(out) {
		t.Errorf("key add output = %q", out)
	}

	// The same exchange key under another name is refused, naming the entry.
	c.fails("already stored as binance/main", material, "key", "add", "--exchange", "binance", "--name", "second", "--stdin")
	c.fails("binance/main already exists", "api_key=OTHER\nsecret="+marker+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

	// From a file, with a passphrase, for an exchange that needs one.
	file := filepath.Join(c.dir, "okx.txt")
	writeFile(t, file, "# okx key\napi_key = OKXKEY\nsecret = okx-"+marker+"\npassphrase = pp-"+marker+"\n", 0o600)
	c.ok("", "key", "add", "--exchange", "okx", "--name", "main", "--from-file", file)
	writeFile(t, file, "api_key=OKXKEY2\nsecret=okx-"+marker+"\n", 0o600)
	c.fails("okx keys have a passphrase", "", "key", "add", "--exchange", "okx", "--name", "nopass", "--from-file", file)

	out = c.ok("", "key", "list")
	for _, want := range []string{"binance/main", "okx/main", "grid bot", "read,trade"} {
		if !strings.Contains(out, want) {
			t.Errorf("key list output lacks %q:\n%s", want, out)
		}
	}
	for _, secretish := range []string{"APIKEY-ONE", "OKXKEY"} {
		if strings.Contains(out, secretish) {
			t.Errorf("key list shows the API key id %q", secretish)
		}
	}
	out = c.ok("", "key", "show", "binance/main")
	if !strings.Contains(out, "Label:        grid bot") || !strings.Contains(out, "Last used:    never") {
		t.Errorf("key show output = %q", out)
	}
	c.ok("", "operator", "verify")
	out = c.ok("", "operator", "status")
	if !strings.Contains(out, "Exchange keys:  2") {
		t.Errorf("status output = %q, want 2 keys", out)
	}

	c.fails("not confirmed", "okx/other\n", "key", "remove", "okx/main")
	out = c.ok("okx/main\n", "key", "remove", "okx/main")
	if !strings.Contains(out, "Removed okx/main") {
		t.Errorf("remove output = %q", out)
	}
	c.ok("", "key", "remove", "binance/main", "--yes")
	if out := c.ok("", "key", "list"); !strings.Contains(out, "No exchange keys") {
		t.Errorf("key list after removes = %q", out)
	}
	c.fails("not found", "", "key", "show", "binance/main")
}

func TestKeyAddRefusesSecretsOnCommandLine(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"positional secret", []string{"key", "add", "--exchange", "binance", "--name", "m", "hmac-" + marker}, "takes no arguments"},
		{"secret as label", []string{"key", "add", "--exchange", "binance", "--name", "m", "--label", "Xy7" + marker + "AbC123"}, "--label looks like a secret"},
		{"pem as account", []string{"key", "add", "--exchange", "binance", "--name", "m", "--account", "-----BEGIN PRIVATE KEY-----" + marker}, "--account looks like a secret"},
		{"secret flag", []string{"key", "add", "--exchange", "binance", "--name", "m", "--secret=" + marker}, "unknown flag"},
		{"no material off a terminal", []string{"key", "add", "--exchange", "binance", "--name", "m"}, "no key material"},
		{"unknown exchange", []string{"key", "add", "--exchange", "binanse", "--name", "m", "--stdin"}, "unknown exchange"},
		{"unknown subcommand", []string{"key", marker}, "unknown key subcommand"},
		{"malformed line", []string{"key", "add", "--exchange", "binance", "--name", "m", "--stdin"}, "line 1: want name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := ""
			if tt.name == "malformed line" {
				stdin = marker + "\n"
			}
			msg := c.fails(tt.want, stdin, tt.args...)
			if strings.Contains(msg, marker) {
				t.Errorf("error %q echoes the secret", msg)
			}
		})
	}
	if out := c.ok("", "key", "list"); !strings.Contains(out, "No exchange keys") {
		t.Errorf("key list = %q, want nothing added", out)
	}
}

func TestShamirCLI(t *testing.T) {
	c := newCLI(t)
	out := c.ok("", "operator", "init", "--shares", "3", "--threshold", "2")
	shares := regexp.MustCompile(`Share \d: (kws1-\S+)`).FindAllStringSubmatch(out, -1)
	if len(shares) != 3 || !strings.Contains(out, "any 2 of these 3 shares") {
		t.Fatalf("init output = %q, want 3 shares and instructions", out)
	}
	s1, s2, s3 := shares[0][1], shares[1][1], shares[2][1]

	_, stderr, err := c.run(s1+"\n", "operator", "unseal")
	if err == nil || !strings.Contains(err.Error(), "1 of 2") || !strings.Contains(stderr, "1 of 2 shares") {
		t.Fatalf("unseal with one share = %v, stderr %q, want progress 1 of 2 and an error", err, stderr)
	}
	_, stderr, err = c.run(s1+"\n"+s1+"\n"+"kws1-garbage\n"+s3+"\n", "operator", "unseal")
	if err != nil || !strings.Contains(stderr, "duplicate share") || !strings.Contains(stderr, "2 of 2 shares") {
		t.Fatalf("unseal with a duplicate then a good share = %v, stderr:\n%s", err, stderr)
	}

	// key add reads the shares first, then the key material.
	c.ok(s2+"\n"+s3+"\napi_key=K\nsecret="+marker+"\n", "key", "add", "--exchange", "bybit", "--name", "main", "--stdin")
	out = c.ok(s1+"\n"+s2+"\n", "operator", "rotate")
	if !strings.Contains(out, "term 2") {
		t.Errorf("rotate output = %q, want term 2", out)
	}
	out = c.ok(s1+"\n"+s2+"\n", "operator", "rekey", "--shares", "2", "--threshold", "2")
	newShares := regexp.MustCompile(`Share \d: (kws1-\S+)`).FindAllStringSubmatch(out, -1)
	if len(newShares) != 2 {
		t.Fatalf("rekey output = %q, want 2 shares", out)
	}
	_, stderr, err = c.run(s1+"\n"+s2+"\n"+s3+"\n", "operator", "unseal")
	if err == nil || !strings.Contains(stderr, "another initialization or rekey") {
		t.Fatalf("unseal with old shares = %v, stderr %q, want them refused", err, stderr)
	}
	c.ok(newShares[0][1]+"\n"+newShares[1][1]+"\n", "operator", "verify")
	if out := c.ok("", "operator", "status"); !strings.Contains(out, "2 of 2 unseal shares") {
		t.Errorf("status = %q", out)
	}
}

func TestRotateAndRekeyPassphrase(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	c.ok("api_key=K1\nsecret=a-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "a", "--stdin")
	if out := c.ok("", "operator", "rotate"); !strings.Contains(out, "term 2 (2 terms)") {
		t.Errorf("rotate output = %q", out)
	}
	c.ok("api_key=K2\nsecret=b-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "b", "--stdin")

	newPass := filepath.Join(c.dir, "newpass")
	writeFile(t, newPass, "an entirely new passphrase\n", 0o600)
	c.ok("", "operator", "rekey", "--new-passphrase-file", newPass)
	c.fails("wrong passphrase", "", "operator", "verify")
	c.env["KEYWARDEN_PASSPHRASE_FILE"] = newPass
	c.ok("", "operator", "verify")
}

func TestConfigErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")

	bad := filepath.Join(c.dir, "bad.toml")
	writeFile(t, bad, "data_dir = \"data\"\n\n[vault]\npassphrase_file = \"pass\"\npassphrase_fiel = \"x\"\n\n[valut]\nfoo = 1\n", 0o600)
	msg := c.fails("unknown key", "", "--config", bad, "operator", "status")
	for _, want := range []string{`bad.toml:5: unknown key "vault.passphrase_fiel"`, `bad.toml:8: unknown key "valut.foo"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("config error %q lacks %q", msg, want)
		}
	}

	c.env["KEYWARDEN_PASSPHRASE"] = "hunter2-" + marker
	c.fails("secrets never come from the environment", "", "operator", "status")
	delete(c.env, "KEYWARDEN_PASSPHRASE")

	c.env["KEYWARDEN_LOG_LEVEL"] = "loud"
	c.fails(`log_level "loud"`, "", "operator", "status")
	// Flags win over the environment.
	c.ok("", "--log-level", "warn", "operator", "status")
	delete(c.env, "KEYWARDEN_LOG_LEVEL")

	// The environment wins over the file.
	other := filepath.Join(c.dir, "other-data")
	c.env["KEYWARDEN_DATA_DIR"] = other
	if out := c.ok("", "operator", "status"); !strings.Contains(out, "Data directory: "+other) || !strings.Contains(out, "Initialized:    false") {
		t.Errorf("status with KEYWARDEN_DATA_DIR = %q, want the other, empty directory", out)
	}
	if out := c.ok("", "--data-dir", filepath.Join(c.dir, "data"), "operator", "status"); !strings.Contains(out, "Initialized:    true") {
		t.Errorf("status with --data-dir = %q, want the initialized directory", out)
	}
	delete(c.env, "KEYWARDEN_DATA_DIR")

	os.Chmod(filepath.Join(c.dir, "pass"), 0o644)
	c.fails("mode 0644, want 0600", "", "operator", "unseal")
	os.Chmod(filepath.Join(c.dir, "pass"), 0o600)

	os.Chmod(filepath.Join(c.dir, "data"), 0o755)
	c.fails("has mode 0755, want 0700", "", "operator", "status")
}

func TestLooksLikeSecret(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"main", false},
		{"grid bot for BTC 2025", false},
		{"sub-account-7", false},
		{"3f2a9c1e-5b7d-4e2a-9c1e-5b7d4e2a9c1e", false},
		{"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A", true},
		{"-----BEGIN EC PRIVATE KEY-----", true},
	}
	for _, tt := range tests {
		if got := looksLikeSecret(tt.in); got != tt.want {
			t.Errorf("looksLikeSecret(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseMaterial(t *testing.T) {
	pemKey := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oWn7ZKCfT/hUoAoGCCqGSM49\nAwEHoUQDQgAE5lMJhWJ/Ou5V5wrDRfQ4prD0ZAx0gRNSkB1LqUz1l3vBGHn/kGmE\nFRG1kN0sGzoUjD8VO7dkYkAZfp8aDsGjZQ==\n-----END EC PRIVATE KEY-----"
	tests := []struct {
		name    string
		in      string
		apiKey  string
		pemType string
		wantErr string
	}{
		{"lines", "api_key=A\nsecret=S\n", "A", "", ""},
		{"colons", "api_key: A\nsecret: S\n", "A", "", ""},
		{"pem", "api_key=organizations/o/apiKeys/k\n" + pemKey + "\n", "organizations/o/apiKeys/k", "EC PRIVATE KEY", ""},
		{"coinbase json", `{"name": "organizations/o/apiKeys/k", "privateKey": "` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`, "organizations/o/apiKeys/k", "EC PRIVATE KEY", ""},
		{"no secret", "api_key=A\n", "", "", "no secret"},
		{"no api key", "secret=S\n", "", "", "no api_key"},
		{"unknown field", "api_key=A\nsecret=S\ncolor=blue\n", "", "", "line 3: unknown field"},
		{"two secrets", "api_key=A\nsecret=S\n" + pemKey, "", "", "a PEM key and a secret"},
		{"unterminated pem", "api_key=A\n-----BEGIN EC PRIVATE KEY-----\nAAAA\n", "", "", "without its END"},
		{"empty", "  \n", "", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMaterial([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMaterial() = %v, want error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMaterial() = %v", err)
			}
			if m.apiKey != tt.apiKey || m.pemType != tt.pemType || len(m.secret) == 0 {
				t.Errorf("parseMaterial() = api key %q, pem %q, want %q, %q", m.apiKey, m.pemType, tt.apiKey, tt.pemType)
			}
		})
	}
}

func TestErrInputEnded(t *testing.T) {
	p := newPrompter(strings.NewReader("one\n"), &bytes.Buffer{})
	if b, err := p.line(); err != nil || string(b) != "one" {
		t.Fatalf("line() = %q, %v, want one", b, err)
	}
	if _, err := p.line(); !errors.Is(err, errInputEnded) {
		t.Fatalf("line() at EOF = %v, want errInputEnded", err)
	}
}

func TestKeyAddPrivateKeys(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}))
	cdp, _ := json.Marshal(map[string]string{"name": "organizations/o/apiKeys/k1", "privateKey": ecPEM})

	tests := []struct {
		name, file, kind string
		args             []string
	}{
		{"coinbase cdp json", string(cdp), "ecdsa", nil},
		{"pkcs8 ed25519 pem", "api_key=organizations/o/apiKeys/k2\n" + edPEM, "ed25519", nil},
		{"coinbase ed25519 base64", "api_key=organizations/o/apiKeys/k3\nsecret=" + base64.StdEncoding.EncodeToString(edKey) + "\n", "ed25519", []string{"--kind", "ed25519"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(c.dir, fmt.Sprintf("key%d", i))
			writeFile(t, file, tt.file, 0o600)
			args := append([]string{"key", "add", "--exchange", "coinbase", "--name", fmt.Sprintf("k%d", i), "--from-file", file}, tt.args...)
			if out := c.ok("", args...); !strings.Contains(out, "("+tt.kind+",") {
				t.Errorf("key add output = %q, want kind %s", out, tt.kind)
			}
		})
	}
	// A PEM that is not the declared kind is refused before it is stored.
	file := filepath.Join(c.dir, "wrong")
	writeFile(t, file, "api_key=x\n"+ecPEM, 0o600)
	c.fails("rsa private key", "", "key", "add", "--exchange", "coinbase", "--name", "wrong", "--kind", "rsa", "--from-file", file)
	c.ok("", "operator", "verify")
}
