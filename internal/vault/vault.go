// Package vault owns keywarden's plaintext secrets: exchange API keys and any
// other secret a component stores. Nobody else keeps them.
//
// Secrets are protected by envelope encryption. Each secret is sealed with
// its own random data key (AES-256-GCM) and the record's identity (kind, id,
// version) as additional data, so a ciphertext copied into another row fails
// to open, and an authenticated version manifest refuses an older copy of a
// record put back (ErrRollback, versions.go). Data keys are wrapped by the current term of the keyring; Rotate
// adds a term online, old terms keep decrypting and new writes use the newest.
// The keyring is encrypted by a root key, and the root key is wrapped by the
// seal: a passphrase stretched with Argon2id, a Shamir k-of-n split of an
// unseal key, or an external KeyWrapper such as a KMS or HSM.
//
// A Vault starts sealed: it knows nothing secret until Unseal, SubmitShare or
// UnsealWith succeeds, and Seal forgets everything again (key material lives
// in memguard buffers that are wiped and freed). Every secret operation on a
// sealed vault returns ErrSealed. The Store is untrusted: it only ever holds
// sealed records and non-secret metadata, and a record that fails
// authentication is reported as ErrTampered, naming the record but never its
// content.
//
// A Vault is safe for concurrent use.
//
// Security: this package holds the keys to every exchange account. Changes
// here need a second security review.
package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/awnumar/memguard"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/shamir"
	"github.com/keywarden/keywarden/internal/store"
)

// Errors callers match with errors.Is.
var (
	ErrSealed         = errors.New("vault is sealed")
	ErrNotInitialized = errors.New("vault is not initialized")
	ErrInitialized    = errors.New("vault is already initialized")
	ErrBadPassphrase  = errors.New("wrong passphrase")
	ErrBadShares      = errors.New("unseal shares do not open the vault")
	ErrTampered       = errors.New("record failed authentication")
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrDisabled       = errors.New("key is disabled")
	// ErrSealBackend wraps every failure of an external seal backend (a
	// KeyWrapper or SealWrapper) to unwrap the root key: unreachable,
	// refused, or another key. The error also names the backend and
	// carries its own error.
	ErrSealBackend = errors.New("seal backend failed")
)

// Seal types recorded in the seal configuration.
const (
	SealPassphrase = "passphrase"
	SealShamir     = "shamir"
	SealExternal   = "external"
)

// Store keys. Everything the vault writes lives under these prefixes.
const (
	sealKey       = "vault/seal"
	keyringKey    = "vault/keyring"
	secretPrefix  = "vault/secret/"
	keyPrefix     = "vault/keys/"
	keyFPPrefix   = "vault/keyfp/"
	exchangeKind  = "exchange-key"
	rootKeySize   = 32
	minPassphrase = 12
)

// KeyWrapper protects a data key with a key it never reveals. The seals
// implement it for the root key; a KMS or HSM backend implements it to become
// an external seal (InitOptions.Wrapper, UnsealWith).
type KeyWrapper interface {
	Wrap(ctx context.Context, dataKey []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// Options configure New.
type Options struct {
	// Store holds the sealed records; it must also implement
	// store.Transactional.
	Store store.Store
	// Logger receives seal, unseal, rotation and tamper events; nil
	// discards them. Nothing secret is ever logged.
	Logger *slog.Logger
	// Now is the clock for metadata timestamps; nil means time.Now.
	Now func() time.Time
	// TermOpsCap is how many records may be sealed under one keyring
	// term before the vault rotates the keyring by itself; 0 means
	// DefaultTermOpsCap (2^30).
	TermOpsCap uint64
}

// Vault is keywarden's secret keeper. See the package documentation.
type Vault struct {
	store store.Store
	tx    store.Transactional
	log   *slog.Logger
	now   func() time.Time

	rekeyMu sync.Mutex // one Rekey at a time

	mu     sync.RWMutex
	root   *memguard.LockedBuffer // nil while sealed
	ring   *keyring               // nil while sealed
	shares []*memguard.LockedBuffer
	creds  map[string]*exchange.Credential

	opsCap  uint64        // encryptions per keyring term (termops.go)
	lastOps atomic.Uint64 // the current term's count after the last write

	// The version manifest (versions.go): the highest generation
	// verified, kept across Seal, and the last verified manifest with
	// its stored head.
	verMu  sync.Mutex
	verGen uint64
	verRaw []byte
	verMan *versionTable
	// pendRaw and pendMan are the manifest this vault wrote last; once
	// the store holds those bytes, they are adopted without decoding.
	pendRaw []byte
	pendMan *versionTable
}

// New returns a sealed Vault over opts.Store.
func New(opts Options) (*Vault, error) {
	if opts.Store == nil {
		return nil, errors.New("vault: no store")
	}
	tx, ok := opts.Store.(store.Transactional)
	if !ok {
		return nil, errors.New("vault: store does not support transactions")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	opsCap := opts.TermOpsCap
	if opsCap == 0 {
		opsCap = DefaultTermOpsCap
	}
	return &Vault{store: opts.Store, tx: tx, log: log, now: now, creds: make(map[string]*exchange.Credential), opsCap: opsCap}, nil
}

// InitOptions choose the seal for Init: exactly one of Passphrase, Shares
// and Threshold, or Wrapper.
type InitOptions struct {
	// Passphrase seals with Argon2id. At least 12 bytes. The caller
	// zeroes it.
	Passphrase []byte
	// Shares and Threshold seal with a Shamir split of an unseal key:
	// Threshold of the Shares returned by Init unseal the vault.
	Shares, Threshold int
	// Wrapper seals with an external key (KMS, HSM); unseal with
	// UnsealWith and an equivalent wrapper.
	Wrapper KeyWrapper
	// Seal seals with an external backend (transit, KMS, HSM); unseal
	// with UnsealWithSeal and the same backend and key.
	Seal SealWrapper
	// KDF overrides the Argon2id cost; nil uses DefaultKDF(). It may not
	// be below MinKDF().
	KDF *KDFParams
}

// Init creates the root key, the keyring and the seal. It returns the Shamir
// shares, once: they are never stored. Init leaves the vault unsealed.
func (v *Vault) Init(ctx context.Context, opts InitOptions) ([][]byte, error) {
	root := memguard.NewBufferRandom(rootKeySize)
	cfg, wrapper, shares, err := newSeal(ctx, opts.Passphrase, opts.Shares, opts.Threshold, opts.Wrapper, opts.Seal, opts.KDF)
	if err != nil {
		root.Destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	cfg.Created = v.now().UTC()
	if cfg.Root, err = wrapper.Wrap(ctx, root.Bytes()); err != nil {
		root.Destroy()
		return nil, fmt.Errorf("vault init: wrap root key: %w", err)
	}
	ring, err := newKeyring(v.now())
	if err != nil {
		root.Destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	sealed, err := ring.seal(root.Bytes())
	if err != nil {
		root.Destroy()
		ring.destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	cfgJSON, err := cfg.encode()
	if err != nil {
		root.Destroy()
		ring.destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	versions, err := encodeHead(root.Bytes(), &versionTable{Generation: 1})
	if err != nil {
		root.Destroy()
		ring.destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	err = v.tx.Update(ctx, func(tx store.Tx) error {
		if err := tx.Create(ctx, sealKey, cfgJSON); err != nil {
			if errors.Is(err, store.ErrExists) {
				return ErrInitialized
			}
			return err
		}
		if err := tx.Put(ctx, versionsKey, versions); err != nil {
			return err
		}
		return tx.Put(ctx, keyringKey, sealed)
	})
	if err != nil {
		root.Destroy()
		ring.destroy()
		return nil, fmt.Errorf("vault init: %w", err)
	}
	v.install(root, ring)
	v.log.Info("vault initialized", "seal", cfg.Type, "shares", cfg.Shares, "threshold", cfg.Threshold)
	return shares, nil
}

// Initialized reports whether Init has run on the store.
func (v *Vault) Initialized(ctx context.Context) (bool, error) {
	_, err := v.store.Get(ctx, sealKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vault initialized: %w", err)
	}
	return true, nil
}

func (v *Vault) loadSeal(ctx context.Context) (*sealConfig, error) {
	b, err := v.store.Get(ctx, sealKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	return decodeSeal(b)
}

// Unseal opens a passphrase-sealed vault. A vault that is already unsealed
// stays so. The caller zeroes passphrase.
func (v *Vault) Unseal(ctx context.Context, passphrase []byte) error {
	cfg, err := v.loadSeal(ctx)
	if err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	if cfg.Type != SealPassphrase {
		return fmt.Errorf("vault unseal: vault uses the %s seal, not a passphrase", cfg.Type)
	}
	if !v.Sealed() {
		return nil
	}
	w, err := passphraseWrapper(passphrase, cfg.KDF)
	if err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	defer w.destroy()
	if err := v.openRoot(ctx, cfg, w, ErrBadPassphrase); err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	return nil
}

// UnsealWith opens a vault sealed with an external KeyWrapper.
func (v *Vault) UnsealWith(ctx context.Context, w KeyWrapper) error {
	cfg, err := v.loadSeal(ctx)
	if err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	if cfg.Type != SealExternal || cfg.Backend != "" {
		return fmt.Errorf("vault unseal: vault uses the %s seal, not an external one", describeSeal(cfg))
	}
	if !v.Sealed() {
		return nil
	}
	if err := v.openRoot(ctx, cfg, w, nil); err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	return nil
}

// backendError is an external seal backend's failure, named: "<backend>
// seal: <its error>". It matches ErrSealBackend and the backend's error.
type backendError struct {
	name string
	err  error
}

func (e *backendError) Error() string   { return e.name + " seal: " + e.err.Error() }
func (e *backendError) Unwrap() []error { return []error{ErrSealBackend, e.err} }

// backendName names the seal backend of cfg for errors and logs: the stored
// backend type, or for a bare KeyWrapper its Type method when it has one.
func backendName(cfg *sealConfig, w KeyWrapper) string {
	if cfg.Backend == "" {
		if t, ok := w.(interface{ Type() string }); ok && t.Type() != "" {
			return describeSeal(cfg) + " (" + t.Type() + ")"
		}
	}
	return describeSeal(cfg)
}

// Progress is how far a Shamir unseal has come.
type Progress struct {
	Have, Need int
}

// SubmitShare adds one Shamir share. When Need shares are in, it unseals the
// vault; if they do not open it, progress resets and ErrBadShares is
// returned. A corrupted or duplicate share, or one from another
// initialization, is refused without changing progress. The caller zeroes
// share.
func (v *Vault) SubmitShare(ctx context.Context, share []byte) (Progress, error) {
	cfg, err := v.loadSeal(ctx)
	if err != nil {
		return Progress{}, fmt.Errorf("vault unseal: %w", err)
	}
	if cfg.Type != SealShamir {
		return Progress{}, fmt.Errorf("vault unseal: vault uses the %s seal, not shares", cfg.Type)
	}
	need := cfg.Threshold
	info, err := shamir.Parse(share)
	if err != nil {
		return v.progress(need), fmt.Errorf("vault unseal: %w", err)
	}
	if fmt.Sprintf("%x", info.Set) != cfg.ShareSet || info.Threshold != cfg.Threshold {
		return v.progress(need), errors.New("vault unseal: share belongs to another initialization or rekey of the vault")
	}
	v.mu.Lock()
	if v.ring != nil {
		v.mu.Unlock()
		return Progress{Have: need, Need: need}, nil
	}
	for _, s := range v.shares {
		if got, _ := shamir.Parse(s.Bytes()); got.X == info.X {
			have := len(v.shares)
			v.mu.Unlock()
			return Progress{Have: have, Need: need}, fmt.Errorf("vault unseal: %w", shamir.ErrDuplicate)
		}
	}
	v.shares = append(v.shares, memguard.NewBufferFromBytes(append([]byte(nil), share...)))
	if len(v.shares) < need {
		have := len(v.shares)
		v.mu.Unlock()
		return Progress{Have: have, Need: need}, nil
	}
	parts := make([][]byte, len(v.shares))
	for i, s := range v.shares {
		parts[i] = s.Bytes()
	}
	key, err := shamir.Combine(parts)
	v.dropShares()
	v.mu.Unlock()
	if err != nil {
		return Progress{Need: need}, fmt.Errorf("vault unseal: %w", err)
	}
	w := newAEADWrapper(memguard.NewBufferFromBytes(key), rootAAD)
	defer w.destroy()
	if err := v.openRoot(ctx, cfg, w, ErrBadShares); err != nil {
		return Progress{Need: need}, fmt.Errorf("vault unseal: %w", err)
	}
	return Progress{Have: need, Need: need}, nil
}

func (v *Vault) progress(need int) Progress {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring != nil {
		return Progress{Have: need, Need: need}
	}
	return Progress{Have: len(v.shares), Need: need}
}

// dropShares wipes pending shares; v.mu must be held.
func (v *Vault) dropShares() {
	for _, s := range v.shares {
		s.Destroy()
	}
	v.shares = nil
}

// openRoot unwraps the root key with w, opens the keyring with it and
// installs both. A failed unwrap is reported as bad; with a nil bad, the
// wrapper's own error is returned (an external backend's errors say whether
// it was unreachable or refused, and carry nothing secret).
func (v *Vault) openRoot(ctx context.Context, cfg *sealConfig, w KeyWrapper, bad error) error {
	rootBytes, err := w.Unwrap(ctx, cfg.Root)
	if err != nil || len(rootBytes) != rootKeySize {
		clear(rootBytes)
		v.log.Warn("unseal attempt failed", "seal", backendName(cfg, w))
		if bad != nil {
			return bad
		}
		if err == nil {
			err = fmt.Errorf("unwrapped root key has the wrong size: %w", ErrTampered)
		}
		return &backendError{name: backendName(cfg, w), err: err}
	}
	root := memguard.NewBufferFromBytes(rootBytes)
	blob, err := v.store.Get(ctx, keyringKey)
	if err != nil {
		root.Destroy()
		if errors.Is(err, store.ErrNotFound) {
			v.log.Error("keyring missing from store")
			return fmt.Errorf("keyring: %w", ErrTampered)
		}
		return err
	}
	ring, err := openKeyring(root.Bytes(), blob)
	if err != nil {
		root.Destroy()
		v.log.Error("keyring failed authentication")
		return fmt.Errorf("keyring: %w", ErrTampered)
	}
	v.install(root, ring)
	v.mu.Lock()
	if v.ring != nil {
		err = v.ensureManifest(ctx)
	}
	v.mu.Unlock()
	if err != nil {
		v.Seal()
		return err
	}
	v.log.Info("vault unsealed", "seal", describeSeal(cfg), "keyring_term", ring.current, "versions_generation", v.VersionGeneration())
	return nil
}

func (v *Vault) install(root *memguard.LockedBuffer, ring *keyring) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ring != nil {
		// Lost a race with another unseal; keep the first.
		root.Destroy()
		ring.destroy()
		return
	}
	v.dropShares()
	v.root, v.ring = root, ring
}

// Seal forgets every key and cached credential: memguard buffers are wiped
// and freed, cached secrets zeroed. Sealing a sealed vault does nothing.
func (v *Vault) Seal() {
	v.mu.Lock()
	defer v.mu.Unlock()
	wasOpen := v.ring != nil
	v.dropShares()
	if v.root != nil {
		v.root.Destroy()
		v.root = nil
	}
	if v.ring != nil {
		v.ring.destroy()
		v.ring = nil
	}
	for k, c := range v.creds {
		zeroCredential(c)
		delete(v.creds, k)
	}
	if wasOpen {
		v.log.Info("vault sealed")
	}
}

// Sealed reports whether the vault is sealed.
func (v *Vault) Sealed() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.ring == nil
}

// Status is what the vault says about itself. It holds nothing secret.
type Status struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	SealType    string `json:"seal_type,omitempty"`
	// SealBackend and SealKeyID name an external seal's backend and key.
	SealBackend string `json:"seal_backend,omitempty"`
	SealKeyID   string `json:"seal_key_id,omitempty"`
	Shares      int    `json:"shares,omitempty"`
	Threshold   int    `json:"threshold,omitempty"`
	// Progress is the number of shares submitted toward an unseal.
	Progress int `json:"progress,omitempty"`
	// Term is the current keyring term, and Terms the number of terms;
	// both are zero while sealed.
	Term    uint32    `json:"term,omitempty"`
	Terms   int       `json:"terms,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// Status reports the vault's state.
func (v *Vault) Status(ctx context.Context) (Status, error) {
	cfg, err := v.loadSeal(ctx)
	if errors.Is(err, ErrNotInitialized) {
		return Status{Sealed: true}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("vault status: %w", err)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	st := Status{
		Initialized: true,
		Sealed:      v.ring == nil,
		SealType:    cfg.Type,
		SealBackend: cfg.Backend,
		SealKeyID:   cfg.KeyID,
		Shares:      cfg.Shares,
		Threshold:   cfg.Threshold,
		Progress:    len(v.shares),
		Created:     cfg.Created,
	}
	if v.ring != nil {
		st.Term = v.ring.current
		st.Terms = len(v.ring.slot)
	}
	return st, nil
}

// Rotate adds a new keyring term. New secrets are sealed under it; secrets
// sealed under older terms keep opening. Nothing is re-encrypted.
func (v *Vault) Rotate(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ring == nil {
		return fmt.Errorf("vault rotate: %w", ErrSealed)
	}
	return v.rotateLocked(ctx, false)
}

// rotateLocked adds a term; v.mu is held for writing and the vault is
// unsealed. With resetOps, the term operation counts are rewritten from
// scratch in the same transaction (they failed to decode).
func (v *Vault) rotateLocked(ctx context.Context, resetOps bool) error {
	next, err := v.ring.withNewTerm(v.now())
	if err != nil {
		return fmt.Errorf("vault rotate: %w", err)
	}
	blob, err := next.seal(v.root.Bytes())
	if err != nil {
		next.destroy()
		return fmt.Errorf("vault rotate: %w", err)
	}
	// The stored keyring must still be the one this vault holds: another
	// process on the same store (a replica) may have rotated it. Then its
	// keyring is adopted instead of overwritten, which would lose the
	// term it added.
	var newer *keyring
	err = v.tx.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, keyringKey)
		if err != nil {
			return err
		}
		stored, err := openKeyring(v.root.Bytes(), cur)
		if err != nil {
			return fmt.Errorf("stored keyring: %w", ErrTampered)
		}
		if stored.current != v.ring.current {
			newer = stored
			return nil
		}
		stored.destroy()
		if resetOps {
			if err := tx.Put(ctx, termOpsKey, []byte(`{"version":1,"ops":{}}`)); err != nil {
				return err
			}
		}
		return tx.Put(ctx, keyringKey, blob)
	})
	if err != nil {
		next.destroy()
		return fmt.Errorf("vault rotate: %w", err)
	}
	if newer != nil {
		next.destroy()
		if newer.current < v.ring.current {
			newer.destroy()
			return fmt.Errorf("vault rotate: the stored keyring is at term %d, behind this vault's %d: %w", newer.current, v.ring.current, ErrTampered)
		}
		v.lastOps.Store(0)
		v.ring.destroy()
		v.ring = newer
		v.log.Info("keyring rotated elsewhere; adopted the stored keyring", "keyring_term", newer.current)
		return nil
	}
	v.lastOps.Store(0)
	v.ring.destroy()
	v.ring = next
	v.log.Info("keyring rotated", "keyring_term", next.current)
	return nil
}

// RekeyOptions choose the new seal: a passphrase, or a new Shamir split.
type RekeyOptions struct {
	Passphrase        []byte
	Shares, Threshold int
	Wrapper           KeyWrapper
	Seal              SealWrapper
	KDF               *KDFParams
}

// Rekey replaces the seal (new passphrase, new shares or threshold, or a
// switch between them) without changing the root key or the keyring. The
// vault must be unsealed. It returns the new shares, once.
func (v *Vault) Rekey(ctx context.Context, opts RekeyOptions) ([][]byte, error) {
	v.rekeyMu.Lock()
	defer v.rekeyMu.Unlock()
	old, err := v.loadSeal(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault rekey: %w", err)
	}
	if v.Sealed() {
		return nil, fmt.Errorf("vault rekey: %w", ErrSealed)
	}
	// Derive the new seal (Argon2id is slow) before taking the lock, so
	// that the hot path is not held up.
	cfg, wrapper, shares, err := newSeal(ctx, opts.Passphrase, opts.Shares, opts.Threshold, opts.Wrapper, opts.Seal, opts.KDF)
	if err != nil {
		return nil, fmt.Errorf("vault rekey: %w", err)
	}
	cfg.Created = old.Created
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return nil, fmt.Errorf("vault rekey: %w", ErrSealed)
	}
	if cfg.Root, err = wrapper.Wrap(ctx, v.root.Bytes()); err != nil {
		return nil, fmt.Errorf("vault rekey: wrap root key: %w", err)
	}
	b, err := cfg.encode()
	if err != nil {
		return nil, fmt.Errorf("vault rekey: %w", err)
	}
	if err := v.store.Put(ctx, sealKey, b); err != nil {
		return nil, fmt.Errorf("vault rekey: %w", err)
	}
	v.log.Info("vault rekeyed", "seal", cfg.Type, "shares", cfg.Shares, "threshold", cfg.Threshold)
	return shares, nil
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// String describes the vault without any key material.
func (v *Vault) String() string { return fmt.Sprintf("Vault{sealed:%v}", v.Sealed()) }

// GoString describes the vault without any key material.
func (v *Vault) GoString() string { return v.String() }

// LogValue describes the vault without any key material.
func (v *Vault) LogValue() slog.Value { return slog.GroupValue(slog.Bool("sealed", v.Sealed())) }
