package sealtest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"sync/atomic"
)

// Soft is an in-memory SealWrapper for tests of the vault and its callers:
// AES-256-GCM under a random key, with a switch that makes it unreachable.
// It is not a seal to use outside tests: its key lives in ordinary memory.
type Soft struct {
	id   string
	aead cipher.AEAD
	down atomic.Bool
}

// NewSoft returns a Soft seal with a fresh key named id.
func NewSoft(id string) *Soft {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err)
	}
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	return &Soft{id: id, aead: g}
}

// SetDown makes the seal unreachable (true) or reachable again.
func (s *Soft) SetDown(down bool) { s.down.Store(down) }

// Unreachable returns a seal with the same type and key id that always
// fails as an unreachable backend does.
func (s *Soft) Unreachable() *Soft {
	u := &Soft{id: s.id, aead: s.aead}
	u.down.Store(true)
	return u
}

// Type implements vault.SealWrapper.
func (s *Soft) Type() string { return "soft" }

// KeyID implements vault.SealWrapper.
func (s *Soft) KeyID() string { return s.id }

var errDown = errors.New("soft seal: backend unreachable")

// Wrap implements vault.SealWrapper.
func (s *Soft) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Unwrap implements vault.SealWrapper.
func (s *Soft) Unwrap(_ context.Context, blob, aad []byte) ([]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	n := s.aead.NonceSize()
	if len(blob) < n+s.aead.Overhead() {
		return nil, errors.New("soft seal: blob too short")
	}
	out, err := s.aead.Open(nil, blob[:n], blob[n:], aad)
	if err != nil {
		return nil, errors.New("soft seal: blob failed authentication")
	}
	return out, nil
}
