package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/vault"
)

// Config is keywarden's whole configuration. Values apply in order:
// defaults, the TOML file, KEYWARDEN_* environment variables, then flags;
// Validate runs once at the end. Decoding is strict: an unknown key is an
// error naming the key and its line.
//
// Config holds references to secrets (a passphrase file), never secrets.
type Config struct {
	// DataDir is the data directory (default $KEYWARDEN_DATA_DIR or
	// ./keywarden-data).
	DataDir string `toml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string      `toml:"log_level"`
	Vault    VaultConfig `toml:"vault"`
	// Gateway, Venues and Policies configure keywarden serve; their types
	// live with the serve command.
	Gateway  GatewayConfig                `toml:"gateway"`
	Venues   []VenueConfig                `toml:"venue"`
	Policies map[string]policy.Definition `toml:"policy"`
	Alerts   AlertsConfig                 `toml:"alerts"`
	Admin    AdminConfig                  `toml:"admin"`
	Store    StoreConfig                  `toml:"store"`
	Posture  PostureConfig                `toml:"posture"`

	// path is the file the config came from, if any.
	path string
}

// VaultConfig is the [vault] section.
type VaultConfig struct {
	// PassphraseFile names a file (mode 0600 or stricter) holding the
	// unseal passphrase. Without it, commands prompt on the terminal.
	PassphraseFile string `toml:"passphrase_file"`
	// Argon2 cost for new passphrase seals (operator init and rekey);
	// zero means the vault's default.
	Argon2Time      uint32 `toml:"argon2_time"`
	Argon2MemoryKiB uint32 `toml:"argon2_memory_kib"`
	Argon2Threads   uint8  `toml:"argon2_threads"`
	// Seal is the URL of an external seal (transit://, awskms://,
	// pkcs11://) that unseals the vault at start; see seal.go.
	Seal string `toml:"seal"`
	// PassphraseKeyring reads the passphrase from the desktop keyring
	// (build tag keyring); see seal_keyring.go.
	PassphraseKeyring bool `toml:"passphrase_keyring"`
	// getenv is the environment, for VAULT_TOKEN.
	getenv func(string) string
}

// KDF returns the Argon2id cost to use for a new passphrase seal.
func (c VaultConfig) KDF() *vault.KDFParams {
	p := vault.DefaultKDF()
	if c.Argon2Time != 0 {
		p.Time = c.Argon2Time
	}
	if c.Argon2MemoryKiB != 0 {
		p.MemoryKiB = c.Argon2MemoryKiB
	}
	if c.Argon2Threads != 0 {
		p.Threads = c.Argon2Threads
	}
	return &p
}

func defaultConfig() Config {
	return Config{DataDir: "keywarden-data", LogLevel: "info"}
}

// loadConfig reads path (if not empty) over the defaults and applies the
// environment.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		if err := cfg.decodeFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) decodeFile(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(text), c)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var msgs []string
		for _, k := range undecoded {
			// A table whose keys are all unknown is reported once, by
			// its keys.
			if md.Type(k...) == "Hash" {
				continue
			}
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", path, lineOf(text, k), k.String()))
		}
		for _, k := range undecoded {
			if md.Type(k...) == "Hash" && len(msgs) == 0 {
				msgs = append(msgs, fmt.Sprintf("%s:%d: unknown table %q", path, lineOf(text, k), k.String()))
			}
		}
		return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
	}
	c.path = path
	// Paths in the file are relative to the file.
	base := filepath.Dir(path)
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) && md.IsDefined("data_dir") {
		c.DataDir = filepath.Join(base, c.DataDir)
	}
	for _, p := range []*string{&c.Vault.PassphraseFile, &c.Gateway.TLSCert, &c.Gateway.TLSKey, &c.Gateway.ClientCA, &c.Gateway.AuditDir, &c.Gateway.AuditHTTPTokenFile, &c.Gateway.AuditWitnessFile, &c.Store.DSNFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return nil
}

// lineOf finds the line that defines key: it tracks [table] headers and
// matches the key's last part at the start of a line in the right table.
// It returns 0 when it cannot tell.
func lineOf(text []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	table := strings.Join(key[:len(key)-1], ".")
	last := key[len(key)-1]
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			h := strings.Trim(line, "[] \t")
			if i := strings.Index(h, "#"); i >= 0 {
				h = strings.TrimSpace(strings.Trim(h[:i], "[] \t"))
			}
			if h == key.String() {
				return n
			}
			current = h
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		if current == table && name == last {
			return n
		}
	}
	return 0
}

// applyEnv applies KEYWARDEN_* variables. Variables that would hold a
// secret themselves are refused.
func (c *Config) applyEnv(getenv func(string) string) error {
	for _, name := range []string{"KEYWARDEN_PASSPHRASE", "KEYWARDEN_UNSEAL_KEY", "KEYWARDEN_SHARES"} {
		if getenv(name) != "" {
			return fmt.Errorf("config: %s is not supported: secrets never come from the environment; put the passphrase in a file (mode 0600) and set KEYWARDEN_PASSPHRASE_FILE", name)
		}
	}
	if v := getenv("KEYWARDEN_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := getenv("KEYWARDEN_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if v := getenv("KEYWARDEN_PASSPHRASE_FILE"); v != "" {
		c.Vault.PassphraseFile = v
	}
	if v := getenv("KEYWARDEN_SEAL"); v != "" {
		c.Vault.Seal = v
	}
	if v := getenv("KEYWARDEN_PASSPHRASE_KEYRING"); v == "1" || v == "true" {
		c.Vault.PassphraseKeyring = true
	}
	c.Vault.getenv = getenv
	return c.Store.applyEnv(getenv)
}

// Validate checks the final configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.Vault.Argon2Time != 0 || c.Vault.Argon2MemoryKiB != 0 || c.Vault.Argon2Threads != 0 {
		p, min := c.Vault.KDF(), vault.MinKDF()
		if p.Time < min.Time || p.MemoryKiB < min.MemoryKiB || p.Threads < min.Threads {
			errs = append(errs, fmt.Errorf("vault argon2 cost is below the minimum (argon2_time >= %d, argon2_memory_kib >= %d, argon2_threads >= %d)", min.Time, min.MemoryKiB, min.Threads))
		}
	}
	if err := c.Store.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Alerts.validate(c.path); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// readPassphraseFile reads a passphrase file, refusing one that other users
// can read. One trailing newline is dropped. The caller zeroes the result.
func readPassphraseFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("passphrase file %s does not exist", path)
		}
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("passphrase file %s has mode %04o, want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
		if n > 0 && b[n-1] == '\r' {
			n--
		}
	}
	p := append([]byte(nil), b[:n]...)
	clear(b)
	if len(p) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return p, nil
}
