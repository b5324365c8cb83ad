// Package sealtest is the conformance suite every external seal backend
// (vault.SealWrapper) passes: wrap and unwrap round trip, a wrong key, a
// tampered blob and wrong additional data all fail, and an unreachable
// backend leaves a vault sealed with an error that names the backend and
// carries no secret.
package sealtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// Backend makes seals of the backend under test. Each function is called
// once per subtest.
type Backend struct {
	// Seal returns a working seal.
	Seal func(t *testing.T) vault.SealWrapper
	// OtherKey returns a working seal of the same backend under another
	// key.
	OtherKey func(t *testing.T) vault.SealWrapper
	// Unavailable returns a seal with the same type and key id as Seal
	// whose backend cannot be reached (closed server, missing module).
	Unavailable func(t *testing.T) vault.SealWrapper
	// Secrets are strings (tokens, PINs) that must never appear in an
	// error.
	Secrets []string
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, b) })
	t.Run("WrongKey", func(t *testing.T) { wrongKey(t, b) })
	t.Run("Tampered", func(t *testing.T) { tampered(t, b) })
	t.Run("WrongAAD", func(t *testing.T) { wrongAAD(t, b) })
	t.Run("Unavailable", func(t *testing.T) { unavailable(t, b) })
	t.Run("VaultInitUnseal", func(t *testing.T) { vaultInitUnseal(t, b) })
	t.Run("VaultFailsClosed", func(t *testing.T) { vaultFailsClosed(t, b) })
}

var aad = []byte("sealtest aad v1")

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b Backend) clean(t *testing.T, err error, plaintext []byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range b.Secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
	if len(plaintext) > 0 && (bytes.Contains([]byte(msg), plaintext) || strings.Contains(msg, string(plaintext))) {
		t.Errorf("error %q contains the plaintext", msg)
	}
}

func roundTrip(t *testing.T, b Backend) {
	ctx := context.Background()
	w := b.Seal(t)
	if w.Type() == "" || w.KeyID() == "" {
		t.Fatalf("Type() = %q, KeyID() = %q; both must be set", w.Type(), w.KeyID())
	}
	for _, n := range []int{1, 32, 64} {
		plain := random(t, n)
		blob1, err := w.Wrap(ctx, plain, aad)
		if err != nil {
			t.Fatalf("Wrap(%d bytes) = %v", n, err)
		}
		blob2, err := w.Wrap(ctx, plain, aad)
		if err != nil {
			t.Fatalf("Wrap(%d bytes) again = %v", n, err)
		}
		if bytes.Equal(blob1, blob2) {
			t.Errorf("two wraps of the same %d bytes are equal: the wrap is not randomized", n)
		}
		// A short plaintext may appear in a random blob by chance.
		if n >= 16 && bytes.Contains(blob1, plain) {
			t.Errorf("wrapped blob contains the plaintext")
		}
		for i, blob := range [][]byte{blob1, blob2} {
			got, err := w.Unwrap(ctx, blob, aad)
			if err != nil {
				t.Fatalf("Unwrap(blob %d) = %v", i, err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("Unwrap(blob %d) returned other bytes", i)
			}
		}
	}
}

func wrongKey(t *testing.T, b Backend) {
	ctx := context.Background()
	w, other := b.Seal(t), b.OtherKey(t)
	if other.KeyID() == w.KeyID() {
		t.Fatalf("OtherKey has the same key id %q", w.KeyID())
	}
	plain := random(t, 32)
	blob, err := w.Wrap(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.Unwrap(ctx, blob, aad)
	if err == nil {
		t.Fatalf("Unwrap with another key succeeded (equal plaintext: %v)", bytes.Equal(got, plain))
	}
	b.clean(t, err, plain)
}

func tampered(t *testing.T, b Backend) {
	ctx := context.Background()
	w := b.Seal(t)
	plain := random(t, 32)
	blob, err := w.Wrap(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{
		"empty":     {},
		"truncated": blob[:len(blob)-1],
		"half":      blob[:len(blob)/2],
		"appended":  append(bytes.Clone(blob), 0),
	}
	// Every byte, inverted: inverting keeps text encodings from decoding
	// to the same bytes.
	for i := range blob {
		c := bytes.Clone(blob)
		c[i] ^= 0xff
		variants["byte "+itoa(i)] = c
	}
	for name, c := range variants {
		got, err := w.Unwrap(ctx, c, aad)
		if err == nil {
			t.Errorf("Unwrap(%s) succeeded (equal plaintext: %v)", name, bytes.Equal(got, plain))
			continue
		}
		b.clean(t, err, plain)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func wrongAAD(t *testing.T, b Backend) {
	ctx := context.Background()
	w := b.Seal(t)
	plain := random(t, 32)
	blob, err := w.Wrap(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range [][]byte{nil, []byte("sealtest aad v2"), append(bytes.Clone(aad), 0)} {
		if _, err := w.Unwrap(ctx, blob, other); err == nil {
			t.Errorf("Unwrap with additional data %q succeeded", other)
		} else {
			b.clean(t, err, plain)
		}
	}
}

func unavailable(t *testing.T, b Backend) {
	ctx := context.Background()
	w, down := b.Seal(t), b.Unavailable(t)
	if down.Type() != w.Type() || down.KeyID() != w.KeyID() {
		t.Fatalf("Unavailable seal is %s/%s, want %s/%s", down.Type(), down.KeyID(), w.Type(), w.KeyID())
	}
	plain := random(t, 32)
	blob, err := w.Wrap(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Unwrap(ctx, blob, aad); err == nil {
		t.Fatal("Unwrap on an unreachable backend succeeded")
	} else {
		b.clean(t, err, plain)
	}
	if _, err := down.Wrap(ctx, plain, aad); err == nil {
		t.Fatal("Wrap on an unreachable backend succeeded")
	} else {
		b.clean(t, err, plain)
	}
}

func newVault(t *testing.T, st *memory.Store) *vault.Vault {
	t.Helper()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	return v
}

const marker = "SEALTEST-CANARY-51d2"

func vaultInitUnseal(t *testing.T, b Backend) {
	ctx := context.Background()
	st := memory.New()
	v := newVault(t, st)
	w := b.Seal(t)
	if _, err := v.Init(ctx, vault.InitOptions{Seal: w}); err != nil {
		t.Fatalf("Init(Seal) = %v", err)
	}
	if err := v.PutSecret(ctx, "test", "one", []byte(marker)); err != nil {
		t.Fatal(err)
	}
	status, err := v.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.SealType != vault.SealExternal || status.SealBackend != w.Type() || status.SealKeyID != w.KeyID() {
		t.Errorf("Status() seal = %s/%s/%s, want %s/%s/%s", status.SealType, status.SealBackend, status.SealKeyID, vault.SealExternal, w.Type(), w.KeyID())
	}
	v.Seal()

	// A fresh process unseals with an equivalent seal.
	v2 := newVault(t, st)
	if err := v2.UnsealWithSeal(ctx, b.Seal(t)); err != nil {
		t.Fatalf("UnsealWithSeal() = %v", err)
	}
	got, err := v2.Secret(ctx, "test", "one")
	if err != nil || string(got) != marker {
		t.Fatalf("Secret after unseal = %v, want the stored secret", err)
	}
	// Nothing secret in the store in the clear.
	keys, _ := st.List(ctx, "")
	for _, k := range keys {
		val, _ := st.Get(ctx, k)
		if bytes.Contains(val, []byte(marker)) {
			t.Errorf("store record %s holds the secret in the clear", k)
		}
	}
}

func vaultFailsClosed(t *testing.T, b Backend) {
	ctx := context.Background()
	st := memory.New()
	if _, err := newVault(t, st).Init(ctx, vault.InitOptions{Seal: b.Seal(t)}); err != nil {
		t.Fatalf("Init(Seal) = %v", err)
	}

	down := b.Unavailable(t)
	v := newVault(t, st)
	err := v.UnsealWithSeal(ctx, down)
	if err == nil || !v.Sealed() {
		t.Fatalf("UnsealWithSeal(unreachable) = %v, sealed %v; want an error and a sealed vault", err, v.Sealed())
	}
	if !strings.Contains(err.Error(), down.Type()) {
		t.Errorf("error %q does not name the %s backend", err, down.Type())
	}
	b.clean(t, err, nil)
	if _, err := v.Secret(ctx, "test", "one"); !errors.Is(err, vault.ErrSealed) {
		t.Errorf("Secret on the still-sealed vault = %v, want ErrSealed", err)
	}

	other := b.OtherKey(t)
	err = v.UnsealWithSeal(ctx, other)
	if err == nil || !v.Sealed() {
		t.Fatalf("UnsealWithSeal(other key) = %v, sealed %v; want an error and a sealed vault", err, v.Sealed())
	}
	b.clean(t, err, nil)

	// A vault sealed by this backend refuses a passphrase, and the other
	// way round.
	if err := v.Unseal(ctx, []byte("correct horse battery staple")); err == nil || !v.Sealed() {
		t.Errorf("Unseal(passphrase) on an externally sealed vault = %v", err)
	}
	st2 := memory.New()
	fast := vault.MinKDF()
	if _, err := newVault(t, st2).Init(ctx, vault.InitOptions{Passphrase: []byte("correct horse battery staple"), KDF: &fast}); err != nil {
		t.Fatal(err)
	}
	v2 := newVault(t, st2)
	if err := v2.UnsealWithSeal(ctx, b.Seal(t)); err == nil || !v2.Sealed() {
		t.Errorf("UnsealWithSeal on a passphrase-sealed vault = %v", err)
	}
}
