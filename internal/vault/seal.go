package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/awnumar/memguard"
	"golang.org/x/crypto/argon2"

	"github.com/keywarden/keywarden/internal/shamir"
)

// Additional data that separates the uses of AES-GCM in the vault.
const (
	rootAAD    = "keywarden root key v1"
	keyringAAD = "keywarden keyring v1"
)

// KDFParams is the Argon2id cost for a passphrase seal.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF returns the Argon2id cost Init and Rekey use unless told
// otherwise.
func DefaultKDF() KDFParams { return KDFParams{Time: 2, MemoryKiB: 64 * 1024, Threads: 2} }

// MinKDF returns the weakest Argon2id cost the vault accepts, at Init and
// when it reads a stored seal (OWASP's floor: 19 MiB, two passes). A seal
// below it is refused: someone weakened it.
func MinKDF() KDFParams { return KDFParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1} }

// maxKDF bounds the cost read from the store, so a tampered seal cannot make
// an unseal attempt exhaust memory.
func maxKDF() KDFParams { return KDFParams{Time: 64, MemoryKiB: 4 * 1024 * 1024, Threads: 64} }

// kdfConfig is the stored form of a passphrase seal's key derivation.
type kdfConfig struct {
	Algorithm string `json:"algorithm"` // "argon2id"
	Version   int    `json:"version"`   // argon2.Version
	KDFParams
	Salt []byte `json:"salt"`
}

func (k *kdfConfig) check() error {
	lo, hi := MinKDF(), maxKDF()
	switch {
	case k.Algorithm != "argon2id" || k.Version != argon2.Version:
		return fmt.Errorf("unsupported key derivation %s version %d", k.Algorithm, k.Version)
	case k.Time < lo.Time || k.MemoryKiB < lo.MemoryKiB || k.Threads < lo.Threads:
		return fmt.Errorf("argon2id cost (time %d, memory %d KiB, threads %d) is below the minimum (time %d, memory %d KiB, threads %d)",
			k.Time, k.MemoryKiB, k.Threads, lo.Time, lo.MemoryKiB, lo.Threads)
	case k.Time > hi.Time || k.MemoryKiB > hi.MemoryKiB || k.Threads > hi.Threads:
		return errors.New("argon2id cost is above the maximum")
	case len(k.Salt) < 16:
		return errors.New("argon2id salt is shorter than 16 bytes")
	}
	return nil
}

// sealConfig is the stored, non-secret description of the seal, with the
// wrapped root key.
type sealConfig struct {
	Version   int        `json:"version"`
	Type      string     `json:"type"`
	KDF       *kdfConfig `json:"kdf,omitempty"`
	Shares    int        `json:"shares,omitempty"`
	Threshold int        `json:"threshold,omitempty"`
	ShareSet  string     `json:"share_set,omitempty"`
	// Backend and KeyID name an external SealWrapper and its key.
	Backend string    `json:"backend,omitempty"`
	KeyID   string    `json:"key_id,omitempty"`
	Root    []byte    `json:"root"`
	Created time.Time `json:"created"`
}

func (c *sealConfig) encode() ([]byte, error) {
	return json.Marshal(c)
}

func decodeSeal(b []byte) (*sealConfig, error) {
	var c sealConfig
	if err := json.Unmarshal(b, &c); err != nil || c.Version != 1 {
		return nil, fmt.Errorf("seal configuration: %w", ErrTampered)
	}
	switch c.Type {
	case SealPassphrase:
		if c.KDF == nil {
			return nil, fmt.Errorf("seal configuration: %w", ErrTampered)
		}
		if err := c.KDF.check(); err != nil {
			return nil, fmt.Errorf("seal configuration: %w", err)
		}
	case SealShamir:
		if c.Threshold < 2 || c.Shares < c.Threshold {
			return nil, fmt.Errorf("seal configuration: %w", ErrTampered)
		}
	case SealExternal:
		if (c.Backend == "") != (c.KeyID == "") {
			return nil, fmt.Errorf("seal configuration: %w", ErrTampered)
		}
	default:
		return nil, fmt.Errorf("seal configuration: unknown seal type %q", c.Type)
	}
	return &c, nil
}

// newSeal builds a seal configuration (without the wrapped root key) and the
// wrapper that protects the root key under it.
func newSeal(ctx context.Context, passphrase []byte, n, k int, external KeyWrapper, backend SealWrapper, kdf *KDFParams) (*sealConfig, KeyWrapper, [][]byte, error) {
	chosen := 0
	if backend != nil {
		if external != nil {
			chosen++
		}
		external = sealWrapperAdapter{backend}
	}
	if len(passphrase) > 0 {
		chosen++
	}
	if n != 0 || k != 0 {
		chosen++
	}
	if external != nil {
		chosen++
	}
	if chosen != 1 {
		return nil, nil, nil, errors.New("choose exactly one seal: a passphrase, shares and threshold, or an external wrapper")
	}
	cfg := &sealConfig{Version: 1}
	switch {
	case external != nil:
		cfg.Type = SealExternal
		if backend != nil {
			cfg.Backend, cfg.KeyID = backend.Type(), backend.KeyID()
			if cfg.Backend == "" || cfg.KeyID == "" {
				return nil, nil, nil, errors.New("the external seal has no type or key id")
			}
		}
		return cfg, external, nil, nil
	case len(passphrase) > 0:
		if len(passphrase) < minPassphrase {
			return nil, nil, nil, fmt.Errorf("passphrase is shorter than %d bytes", minPassphrase)
		}
		p := DefaultKDF()
		if kdf != nil {
			p = *kdf
		}
		salt, err := randomBytes(32)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Type = SealPassphrase
		cfg.KDF = &kdfConfig{Algorithm: "argon2id", Version: argon2.Version, KDFParams: p, Salt: salt}
		if err := cfg.KDF.check(); err != nil {
			return nil, nil, nil, err
		}
		w, err := passphraseWrapper(passphrase, cfg.KDF)
		if err != nil {
			return nil, nil, nil, err
		}
		// The wrapper's key is wiped once the root key is wrapped: the
		// wrapper is used exactly once by the caller.
		return cfg, &onceWrapper{w}, nil, nil
	default:
		if k < 2 || n < k || n > shamir.MaxShares {
			return nil, nil, nil, fmt.Errorf("invalid shares %d and threshold %d (want 2 <= threshold <= shares <= %d)", n, k, shamir.MaxShares)
		}
		unseal := memguard.NewBufferRandom(rootKeySize)
		shares, err := shamir.Split(unseal.Bytes(), n, k)
		if err != nil {
			unseal.Destroy()
			return nil, nil, nil, err
		}
		info, err := shamir.Parse(shares[0])
		if err != nil {
			unseal.Destroy()
			return nil, nil, nil, err
		}
		cfg.Type = SealShamir
		cfg.Shares, cfg.Threshold = n, k
		cfg.ShareSet = fmt.Sprintf("%x", info.Set)
		return cfg, &onceWrapper{newAEADWrapper(unseal, rootAAD)}, shares, nil
	}
}

// passphraseWrapper derives the key-encryption key from passphrase.
func passphraseWrapper(passphrase []byte, k *kdfConfig) (*aeadWrapper, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, ErrBadPassphrase
	}
	kek := argon2.IDKey(passphrase, k.Salt, k.Time, k.MemoryKiB, k.Threads, 32)
	return newAEADWrapper(memguard.NewBufferFromBytes(kek), rootAAD), nil
}

// aeadWrapper is a KeyWrapper over an AES-256-GCM key held in a memguard
// buffer: output is nonce || ciphertext || tag.
type aeadWrapper struct {
	key *memguard.LockedBuffer
	aad string
}

var _ KeyWrapper = (*aeadWrapper)(nil)

func newAEADWrapper(key *memguard.LockedBuffer, aad string) *aeadWrapper {
	return &aeadWrapper{key: key, aad: aad}
}

func (w *aeadWrapper) Wrap(_ context.Context, dataKey []byte) ([]byte, error) {
	return sealAEAD(w.key.Bytes(), dataKey, []byte(w.aad))
}

func (w *aeadWrapper) Unwrap(_ context.Context, wrapped []byte) ([]byte, error) {
	return openAEAD(w.key.Bytes(), wrapped, []byte(w.aad))
}

func (w *aeadWrapper) destroy() { w.key.Destroy() }

// onceWrapper wraps one key and then wipes its own key.
type onceWrapper struct{ w *aeadWrapper }

func (o *onceWrapper) Wrap(ctx context.Context, dataKey []byte) ([]byte, error) {
	defer o.w.destroy()
	return o.w.Wrap(ctx, dataKey)
}

func (o *onceWrapper) Unwrap(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("unwrap with a one-time wrapper")
}

// sealAEAD encrypts plaintext with AES-256-GCM under key with a random
// nonce, returning nonce || ciphertext || tag.
func sealAEAD(key, plaintext, aad []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce, err := randomBytes(g.NonceSize())
	if err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, plaintext, aad), nil
}

// openAEAD reverses sealAEAD. Its error says nothing about the content.
func openAEAD(key, sealed, aad []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, ErrTampered
	}
	out, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("aes-256-gcm: key is not 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
