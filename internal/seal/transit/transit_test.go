package transit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/seal"
	"github.com/keywarden/keywarden/internal/seal/transit"
	"github.com/keywarden/keywarden/internal/seal/transit/transittest"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/vault/sealtest"
)

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSeal(t *testing.T, cfg transit.Config) *transit.Seal {
	t.Helper()
	s, err := transit.New(cfg)
	if err != nil {
		t.Fatalf("transit.New() = %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// closedAddress returns the address of a TLS server that is gone.
func closedAddress(t *testing.T) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	return addr
}

func TestConformanceToken(t *testing.T) {
	for _, derived := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "derived"}[derived], func(t *testing.T) {
			f := transittest.New(t)
			dir := t.TempDir()
			f.AddKey("transit", "root", derived)
			f.AddKey("transit", "other", derived)
			tok := f.AddToken("transit/root", "transit/other")
			tokFile := writeFile(t, dir, "token", tok, 0o600)
			ca := f.CAFile(t, dir)
			cfg := transit.Config{Address: f.URL, Key: "root", Derived: derived, CAFile: ca, TokenFile: tokFile}
			down := cfg
			down.Address = closedAddress(t)
			other := cfg
			other.Key = "other"
			sealtest.Run(t, sealtest.Backend{
				Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
				OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, other) },
				Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
				Secrets:     []string{tok},
			})
		})
	}
}

func TestConformanceAppRole(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	f.AddKey("transit", "root", false)
	f.AddKey("transit", "other", false)
	roleID, secretID := f.AddRole(time.Hour, "transit/root", "transit/other")
	cfg := transit.Config{
		Address: f.URL, Key: "root", CAFile: f.CAFile(t, dir), Now: f.Now,
		RoleIDFile:   writeFile(t, dir, "role-id", roleID, 0o600),
		SecretIDFile: writeFile(t, dir, "secret-id", secretID, 0o600),
	}
	down := cfg
	down.Address = closedAddress(t)
	other := cfg
	other.Key = "other"
	sealtest.Run(t, sealtest.Backend{
		Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
		OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, other) },
		Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
		Secrets:     []string{roleID, secretID},
	})
}

// appRoleSeal returns a fake with key transit/root and an AppRole seal on it
// whose tokens live ttl.
func appRoleSeal(t *testing.T, ttl time.Duration) (*transittest.Server, *transit.Seal, string) {
	t.Helper()
	f := transittest.New(t)
	dir := t.TempDir()
	f.AddKey("transit", "root", false)
	roleID, secretID := f.AddRole(ttl, "transit/root")
	s := newSeal(t, transit.Config{
		Address: f.URL, Key: "root", CAFile: f.CAFile(t, dir), Now: f.Now,
		RoleIDFile:   writeFile(t, dir, "role-id", roleID, 0o600),
		SecretIDFile: writeFile(t, dir, "secret-id", secretID, 0o600),
	})
	return f, s, secretID
}

func roundTrip(t *testing.T, s *transit.Seal) {
	t.Helper()
	ctx := context.Background()
	blob, err := s.Wrap(ctx, []byte("root key bytes"), []byte("aad"))
	if err != nil {
		t.Fatalf("Wrap() = %v", err)
	}
	if got, err := s.Unwrap(ctx, blob, []byte("aad")); err != nil || string(got) != "root key bytes" {
		t.Fatalf("Unwrap() = %q, %v", got, err)
	}
}

func TestAppRoleTokenExpiredThenRelogin(t *testing.T) {
	f, s, _ := appRoleSeal(t, time.Minute)
	roundTrip(t, s)
	if got := f.Calls("login"); got != 1 {
		t.Fatalf("logins after first use = %d, want 1", got)
	}
	f.Advance(2 * time.Minute) // the token has expired
	roundTrip(t, s)
	if got := f.Calls("login"); got != 2 {
		t.Errorf("logins after the token expired = %d, want 2", got)
	}
}

func TestAppRoleTokenRenewedBeforeExpiry(t *testing.T) {
	f, s, _ := appRoleSeal(t, time.Minute)
	roundTrip(t, s)
	f.Advance(45 * time.Second) // 15 s left: renew first
	roundTrip(t, s)
	if got, want := [2]int{f.Calls("login"), f.Calls("renew")}, [2]int{1, 1}; got != want {
		t.Errorf("logins, renewals = %v, want %v", got, want)
	}
	f.Advance(45 * time.Second) // renewed for a minute: 15 s left again
	roundTrip(t, s)
	if got, want := [2]int{f.Calls("login"), f.Calls("renew")}, [2]int{1, 2}; got != want {
		t.Errorf("logins, renewals = %v, want %v", got, want)
	}
}

func TestAppRoleTokenRevokedThenRelogin(t *testing.T) {
	f, s, _ := appRoleSeal(t, time.Hour)
	roundTrip(t, s)
	f.RevokeAll() // the server now answers 403 for the old token
	roundTrip(t, s)
	if got := f.Calls("login"); got != 2 {
		t.Errorf("logins after revocation = %d, want 2", got)
	}
}

func TestAppRoleBadSecretID(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	f.AddKey("transit", "root", false)
	roleID, _ := f.AddRole(time.Hour, "transit/root")
	s := newSeal(t, transit.Config{
		Address: f.URL, Key: "root", CAFile: f.CAFile(t, dir),
		RoleIDFile:   writeFile(t, dir, "role-id", roleID, 0o600),
		SecretIDFile: writeFile(t, dir, "secret-id", "secret-wrong-0123", 0o600),
	})
	_, err := s.Wrap(context.Background(), []byte("k"), nil)
	var se *transit.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid role or secret ID") {
		t.Fatalf("Wrap with a bad secret id = %v, want the server's 400 errors", err)
	}
	if strings.Contains(err.Error(), "secret-wrong-0123") || strings.Contains(err.Error(), roleID) {
		t.Errorf("error %q contains a credential", err)
	}
}

func TestTokenFileRevokedThenReread(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	f.AddKey("transit", "root", false)
	old := f.AddToken("transit/root")
	tokFile := writeFile(t, dir, "token", old, 0o600)
	s := newSeal(t, transit.Config{Address: f.URL, Key: "root", CAFile: f.CAFile(t, dir), TokenFile: tokFile})
	roundTrip(t, s)
	f.RevokeAll()
	_, err := s.Wrap(context.Background(), []byte("k"), nil)
	var se *transit.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Wrap with a revoked token = %v, want 403 permission denied", err)
	}
	if strings.Contains(err.Error(), old) {
		t.Errorf("error %q contains the token", err)
	}
	// An agent writes a new token into the file: the next call reads it.
	writeFile(t, dir, "token", f.AddToken("transit/root"), 0o600)
	roundTrip(t, s)
}

func TestTokenWithoutPolicy(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	f.AddKey("transit", "root", false)
	s := newSeal(t, transit.Config{Address: f.URL, Key: "root", CAFile: f.CAFile(t, dir), Token: []byte(f.AddToken("transit/other"))})
	if _, err := s.Wrap(context.Background(), []byte("k"), nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Wrap without the policy = %v, want 403", err)
	}
}

func TestMissingKeyAndNamespace(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	s := newSeal(t, transit.Config{Address: f.URL, Key: "nokey", Namespace: "team-a", CAFile: f.CAFile(t, dir), Token: []byte(f.AddToken("transit/nokey"))})
	_, err := s.Wrap(context.Background(), []byte("k"), nil)
	if err == nil || !strings.Contains(err.Error(), "encryption key not found") || !strings.Contains(err.Error(), "transit/nokey") {
		t.Fatalf("Wrap with a missing key = %v, want the server's message and the key name", err)
	}
	if got := f.LastHeaders().Get("X-Vault-Namespace"); got != "team-a" {
		t.Errorf("X-Vault-Namespace = %q, want team-a", got)
	}
}

func TestUntrustedCertificateRefused(t *testing.T) {
	f := transittest.New(t)
	f.AddKey("transit", "root", false)
	// No CA file: the fake's certificate is not trusted.
	s := newSeal(t, transit.Config{Address: f.URL, Key: "root", Token: []byte(f.AddToken("transit/root"))})
	_, err := s.Wrap(context.Background(), []byte("k"), nil)
	if !errors.Is(err, transit.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Wrap against an untrusted certificate = %v", err)
	}
	if f.Calls("encrypt") != 0 {
		t.Error("a request reached the server over an unverified connection")
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target := transittest.New(t)
	target.AddKey("transit", "root", false)
	tok := target.AddToken("transit/root")
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	s := newSeal(t, transit.Config{Address: redir.URL, Key: "root", Token: []byte(tok)})
	if _, err := s.Wrap(context.Background(), []byte("k"), nil); err == nil {
		t.Fatal("Wrap through a redirect succeeded")
	}
	if target.Calls("encrypt") != 0 {
		t.Error("the redirect was followed with the token")
	}
}

func TestConfigChecks(t *testing.T) {
	dir := t.TempDir()
	loose := writeFile(t, dir, "loose", "hvs.token", 0o644)
	tests := []struct {
		name string
		cfg  transit.Config
		want string
	}{
		{"no key", transit.Config{Address: "https://vault:8200", Token: []byte("t")}, "key name"},
		{"http off loopback", transit.Config{Address: "http://vault.example:8200", Key: "k", Token: []byte("t")}, "loopback"},
		{"no credentials", transit.Config{Address: "https://vault:8200", Key: "k"}, "no credentials"},
		{"half approle", transit.Config{Address: "https://vault:8200", Key: "k", RoleIDFile: "r"}, "both"},
		{"token and approle", transit.Config{Address: "https://vault:8200", Key: "k", Token: []byte("t"), RoleIDFile: "r", SecretIDFile: "s"}, "not both"},
		{"bad mount", transit.Config{Address: "https://vault:8200", Mount: "a/../b", Key: "k", Token: []byte("t")}, "mount"},
		{"user in url", transit.Config{Address: "https://u:p@vault:8200", Key: "k", Token: []byte("t")}, "address"},
	}
	for _, tt := range tests {
		_, err := transit.New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// A token file other users can read is refused when first used.
	f := transittest.NewPlain(t)
	f.AddKey("transit", "root", false)
	s := newSeal(t, transit.Config{Address: f.URL, Key: "root", TokenFile: loose})
	if _, err := s.Wrap(context.Background(), []byte("k"), nil); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Errorf("Wrap with a 0644 token file = %v, want a mode error", err)
	}
}

func TestKeyIDAndErrAuth(t *testing.T) {
	f := transittest.NewPlain(t)
	f.AddKey("kw-transit", "root", false)
	s := newSeal(t, transit.Config{Address: f.URL, Mount: "kw-transit", Key: "root", Token: []byte(f.AddToken("kw-transit/root"))})
	if s.KeyID() != "kw-transit/root" || s.Type() != "transit" {
		t.Errorf("Type, KeyID = %s, %s", s.Type(), s.KeyID())
	}
	blob, err := s.Wrap(context.Background(), []byte("k"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unwrap(context.Background(), blob, []byte("b")); !errors.Is(err, seal.ErrAuth) {
		t.Errorf("Unwrap with other additional data = %v, want seal.ErrAuth", err)
	}
}

// TestRealServer runs the suite against a real Vault or OpenBao when
// VAULT_ADDR and VAULT_TOKEN are set. The transit keys
// $KEYWARDEN_TEST_TRANSIT_KEY (default keywarden-test) and that name with
// "-other" must exist under the transit mount.
func TestRealServer(t *testing.T) {
	addr, tok := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || tok == "" {
		t.Skip("VAULT_ADDR and VAULT_TOKEN are not set: no real transit server to test against")
	}
	key := os.Getenv("KEYWARDEN_TEST_TRANSIT_KEY")
	if key == "" {
		key = "keywarden-test"
	}
	cfg := transit.Config{Address: addr, Key: key, CAFile: os.Getenv("VAULT_CACERT"), Token: []byte(tok)}
	other, down := cfg, cfg
	other.Key = key + "-other"
	down.Address = closedAddress(t)
	sealtest.Run(t, sealtest.Backend{
		Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
		OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, other) },
		Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
		Secrets:     []string{tok},
	})
}
