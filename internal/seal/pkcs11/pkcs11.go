//go:build pkcs11

package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ThalesIgnite/crypto11"

	"github.com/keywarden/keywarden/internal/seal"
)

// blobMagic starts every blob: magic | nonce (12) | ciphertext | tag.
const blobMagic = "kwp11v1"

// Seal is a PKCS#11 seal. Each Wrap and Unwrap opens a session with the
// token, logs in, uses the key and closes the session again: seals are used
// a few times per process (init, unseal, migration), a token that was
// unreachable is simply tried again, and no session stays open. Calls are
// serialised; it is safe for concurrent use.
type Seal struct {
	cfg Config

	mu  sync.Mutex
	ctx *crypto11.Context
	key *crypto11.SecretKey
}

// New checks cfg and returns a seal. It does not open the module yet.
func New(cfg Config) (*Seal, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Seal{cfg: cfg}, nil
}

// Type implements vault.SealWrapper.
func (s *Seal) Type() string { return Type }

// KeyID implements vault.SealWrapper: "<token label>/<key label>".
func (s *Seal) KeyID() string { return s.cfg.KeyID() }

// Close closes the session with the token, if one is open.
func (s *Seal) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Seal) closeLocked() error {
	s.key = nil
	if s.ctx == nil {
		return nil
	}
	err := s.ctx.Close()
	s.ctx = nil
	return err
}

// open returns the AES key, opening the token and, when create is set and
// the key is missing, generating it.
// s.mu must be held.
func (s *Seal) open(create bool) (*crypto11.SecretKey, error) {
	if s.key != nil {
		return s.key, nil
	}
	if s.ctx == nil {
		pin, err := seal.ReadSecretFile("PKCS#11 PIN", s.cfg.PINFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", &s.cfg, err)
		}
		ctx, err := crypto11.Configure(&crypto11.Config{Path: s.cfg.Module, TokenLabel: s.cfg.TokenLabel, Pin: string(pin)})
		clear(pin)
		if err != nil {
			return nil, fmt.Errorf("%s: open module %s: %w", &s.cfg, s.cfg.Module, err)
		}
		s.ctx = ctx
	}
	key, err := s.ctx.FindKey(nil, []byte(s.cfg.KeyLabel))
	if err != nil {
		_ = s.closeLocked()
		return nil, fmt.Errorf("%s: find key: %w", &s.cfg, err)
	}
	if key == nil {
		if !create {
			return nil, fmt.Errorf("%s: the token has no key with this label", &s.cfg)
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		key, err = s.ctx.GenerateSecretKeyWithLabel(id, []byte(s.cfg.KeyLabel), 256, crypto11.CipherAES)
		if err != nil {
			return nil, fmt.Errorf("%s: generate key: %w", &s.cfg, err)
		}
	}
	s.key = key
	return key, nil
}

// Wrap implements vault.SealWrapper.
func (s *Seal) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.closeLocked()
	key, err := s.open(s.cfg.CreateKey)
	if err != nil {
		return nil, err
	}
	g, err := key.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", &s.cfg, err)
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(blobMagic), nonce...)
	ct, err := sealGCM(g, nonce, plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %w", &s.cfg, err)
	}
	return append(out, ct...), nil
}

// Unwrap implements vault.SealWrapper.
func (s *Seal) Unwrap(_ context.Context, blob, aad []byte) ([]byte, error) {
	if len(blob) < len(blobMagic) || string(blob[:len(blobMagic)]) != blobMagic {
		return nil, fmt.Errorf("%s: not a pkcs11 seal blob: %w", &s.cfg, seal.ErrAuth)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.closeLocked()
	key, err := s.open(false)
	if err != nil {
		return nil, err
	}
	g, err := key.NewGCM()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", &s.cfg, err)
	}
	rest := blob[len(blobMagic):]
	if len(rest) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("%s: blob too short: %w", &s.cfg, seal.ErrAuth)
	}
	out, err := g.Open(nil, rest[:g.NonceSize()], rest[g.NonceSize():], aad)
	if err != nil {
		// The token reports a failed tag as an error; it says nothing
		// about the content.
		return nil, fmt.Errorf("%s: decrypt: %w (%w)", &s.cfg, err, seal.ErrAuth)
	}
	return out, nil
}

// sealGCM is cipher.AEAD.Seal, which in crypto11 panics on a token error,
// turned into an error.
func sealGCM(g interface {
	Seal(dst, nonce, plaintext, aad []byte) []byte
}, nonce, plaintext, aad []byte) (ct []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("token error: %v", r)
		}
	}()
	ct = g.Seal(nil, nonce, plaintext, aad)
	if len(ct) == 0 {
		return nil, errors.New("token returned no ciphertext")
	}
	return ct, nil
}
