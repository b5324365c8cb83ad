//go:build pkcs11

package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/keywarden/keywarden/internal/seal"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/vault/sealtest"
)

// token returns the SoftHSM2 token scripts/setup/softhsm.sh prepared.
func token(t *testing.T) Config {
	t.Helper()
	module, label, pinFile := os.Getenv("KEYWARDEN_TEST_PKCS11_MODULE"), os.Getenv("KEYWARDEN_TEST_PKCS11_TOKEN"), os.Getenv("KEYWARDEN_TEST_PKCS11_PIN_FILE")
	if module == "" || label == "" || pinFile == "" {
		if os.Getenv("KEYWARDEN_REQUIRE_SOFTHSM") == "1" {
			t.Fatal("KEYWARDEN_REQUIRE_SOFTHSM=1 but KEYWARDEN_TEST_PKCS11_MODULE, _TOKEN or _PIN_FILE is not set (source scripts/setup/softhsm.sh)")
		}
		t.Skip("no SoftHSM2 token: source scripts/setup/softhsm.sh to run the PKCS#11 tests")
	}
	return Config{Module: module, TokenLabel: label, PINFile: pinFile}
}

func uniqueLabel(t *testing.T, prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func newSeal(t *testing.T, cfg Config) *Seal {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	base := token(t)
	cfg := base
	cfg.KeyLabel, cfg.CreateKey = uniqueLabel(t, "kw-conf"), true
	other := base
	other.KeyLabel, other.CreateKey = uniqueLabel(t, "kw-other"), true
	// Create the other key now, so that the wrong-key case meets a key.
	if _, err := newSeal(t, other).Wrap(context.Background(), []byte("x"), nil); err != nil {
		t.Fatalf("creating the second key: %v", err)
	}
	down := cfg
	down.Module = filepath.Join(t.TempDir(), "libmissing.so")
	pin, _ := os.ReadFile(base.PINFile)
	sealtest.Run(t, sealtest.Backend{
		Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
		OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, other) },
		Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
		Secrets:     []string{strings.TrimSpace(string(pin))},
	})
}

// TestKeyStaysInToken checks the generated key's attributes: sensitive,
// never extractable, an AES key of 32 bytes, stored on the token.
func TestKeyStaysInToken(t *testing.T) {
	cfg := token(t)
	cfg.KeyLabel, cfg.CreateKey = uniqueLabel(t, "kw-attr"), true
	s := newSeal(t, cfg)
	if _, err := s.Wrap(context.Background(), []byte("root"), nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.open(false); err != nil {
		t.Fatal(err)
	}
	defer s.closeLocked()
	attrs, err := s.ctx.GetAttributes(s.key, []crypto11.AttributeType{
		pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_TOKEN, pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN,
	})
	if err != nil {
		t.Fatal(err)
	}
	isTrue := func(a crypto11.AttributeType) bool {
		v := attrs[a]
		return v != nil && len(v.Value) == 1 && v.Value[0] == 1
	}
	if !isTrue(pkcs11.CKA_SENSITIVE) || isTrue(pkcs11.CKA_EXTRACTABLE) || !isTrue(pkcs11.CKA_NEVER_EXTRACTABLE) || !isTrue(pkcs11.CKA_TOKEN) {
		t.Errorf("key attributes: sensitive %v, extractable %v, never extractable %v, token %v; want true, false, true, true",
			isTrue(pkcs11.CKA_SENSITIVE), isTrue(pkcs11.CKA_EXTRACTABLE), isTrue(pkcs11.CKA_NEVER_EXTRACTABLE), isTrue(pkcs11.CKA_TOKEN))
	}
	// The key's value cannot be read.
	if v, err := s.ctx.GetAttribute(s.key, pkcs11.CKA_VALUE); err == nil && v != nil && len(v.Value) > 0 {
		t.Error("the key's value was readable")
	}
}

func TestKeySurvivesReopen(t *testing.T) {
	cfg := token(t)
	cfg.KeyLabel, cfg.CreateKey = uniqueLabel(t, "kw-reopen"), true
	blob, err := newSeal(t, cfg).Wrap(context.Background(), []byte("root"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CreateKey = false
	got, err := newSeal(t, cfg).Unwrap(context.Background(), blob, []byte("aad"))
	if err != nil || string(got) != "root" {
		t.Fatalf("Unwrap in a new session = %q, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	cfg := token(t)
	ctx := context.Background()

	missing := cfg
	missing.KeyLabel = uniqueLabel(t, "kw-missing")
	if _, err := newSeal(t, missing).Unwrap(ctx, []byte(blobMagic+strings.Repeat("x", 40)), nil); err == nil || !strings.Contains(err.Error(), "no key with this label") {
		t.Errorf("Unwrap with a missing key = %v", err)
	}
	if _, err := newSeal(t, missing).Wrap(ctx, []byte("k"), nil); err == nil || !strings.Contains(err.Error(), "no key with this label") {
		t.Errorf("Wrap with a missing key and no CreateKey = %v", err)
	}

	dir := t.TempDir()
	wrongPIN := cfg
	wrongPIN.KeyLabel = uniqueLabel(t, "kw-pin")
	wrongPIN.PINFile = filepath.Join(dir, "pin")
	if err := os.WriteFile(wrongPIN.PINFile, []byte("wrong-pin-77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newSeal(t, wrongPIN).Wrap(ctx, []byte("k"), nil)
	if err == nil || strings.Contains(err.Error(), "wrong-pin-77") || !strings.Contains(err.Error(), "pkcs11") {
		t.Errorf("Wrap with a wrong PIN = %v, want a pkcs11 error without the PIN", err)
	}

	wrongToken := cfg
	wrongToken.TokenLabel = "no-such-token"
	if _, err := newSeal(t, wrongToken).Wrap(ctx, []byte("k"), nil); err == nil || !strings.Contains(err.Error(), "no-such-token") {
		t.Errorf("Wrap with an unknown token = %v", err)
	}

	good := cfg
	good.KeyLabel, good.CreateKey = uniqueLabel(t, "kw-err"), true
	s := newSeal(t, good)
	blob, err := s.Wrap(ctx, []byte("root"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unwrap(ctx, blob, []byte("b")); !errors.Is(err, seal.ErrAuth) {
		t.Errorf("Unwrap with other additional data = %v, want seal.ErrAuth", err)
	}
	if s.KeyID() != good.TokenLabel+"/"+good.KeyLabel {
		t.Errorf("KeyID() = %q", s.KeyID())
	}
}
