package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/internal/store"
)

// SealWrapper is an external seal backend: a transit engine, a cloud KMS or
// an HSM that wraps the root key under a key it never reveals. Backends live
// outside this package (internal/seal/...); the vault only uses this
// interface.
//
// Wrap and Unwrap must authenticate aad: Unwrap with other additional data,
// another key or a changed blob fails. Errors must name the backend and
// must never contain key material or credentials.
type SealWrapper interface {
	// Type names the backend, such as "transit", "awskms" or "pkcs11". It
	// is stored in the seal configuration.
	Type() string
	// KeyID names the backend's wrapping key (a key name or ARN, never a
	// secret). It is stored, and an unseal with another key is refused
	// before the backend is asked.
	KeyID() string
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error)
}

// sealWrapperAdapter binds a SealWrapper to the root key's additional data,
// making it a KeyWrapper.
type sealWrapperAdapter struct{ w SealWrapper }

func (a sealWrapperAdapter) Wrap(ctx context.Context, key []byte) ([]byte, error) {
	return a.w.Wrap(ctx, key, []byte(rootAAD))
}

func (a sealWrapperAdapter) Unwrap(ctx context.Context, blob []byte) ([]byte, error) {
	return a.w.Unwrap(ctx, blob, []byte(rootAAD))
}

// UnsealWithSeal opens a vault sealed by an external backend (Init or
// MigrateSeal with a SealWrapper). w must be the backend and key the vault
// was sealed with. If the backend cannot be reached or refuses, the vault
// stays sealed and the error names the backend.
func (v *Vault) UnsealWithSeal(ctx context.Context, w SealWrapper) error {
	cfg, err := v.loadSeal(ctx)
	if err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	if err := checkBackend(cfg, w); err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	if !v.Sealed() {
		return nil
	}
	if err := v.openRoot(ctx, cfg, sealWrapperAdapter{w}, nil); err != nil {
		return fmt.Errorf("vault unseal: %w", err)
	}
	return nil
}

// checkBackend reports whether w is the seal cfg was made with.
func checkBackend(cfg *sealConfig, w SealWrapper) error {
	if cfg.Type != SealExternal || cfg.Backend == "" {
		return fmt.Errorf("vault uses the %s seal, not %s", describeSeal(cfg), w.Type())
	}
	if cfg.Backend != w.Type() || cfg.KeyID != w.KeyID() {
		return fmt.Errorf("vault is sealed by %s key %q, but the configured seal is %s key %q", cfg.Backend, cfg.KeyID, w.Type(), w.KeyID())
	}
	return nil
}

func describeSeal(cfg *sealConfig) string {
	if cfg.Backend != "" {
		return cfg.Backend
	}
	return cfg.Type
}

// sealNextKey holds a seal migration in progress: the new seal
// configuration, written beside the current one until it is verified.
const sealNextKey = "vault/seal-next"

// pendingSeal is the record under sealNextKey.
type pendingSeal struct {
	// From is the SHA-256 of the seal record being replaced.
	From []byte          `json:"from"`
	Next json.RawMessage `json:"next"`
}

// MigrateSeal re-wraps the root key under the external seal to, without
// sealing the vault or touching the keyring or any secret: reads and writes
// go on while it runs. The new wrapped root key is written beside the old
// one, unwrapped again through to and compared with the root key, and only
// then does the seal switch, in one store transaction. An error at any step
// leaves the old seal in force. A migration interrupted by a crash is rolled
// back by RecoverSealMigration (and redone by running MigrateSeal again).
// The vault must be unsealed.
func (v *Vault) MigrateSeal(ctx context.Context, to SealWrapper) error {
	v.rekeyMu.Lock()
	defer v.rekeyMu.Unlock()
	if to == nil || to.Type() == "" || to.KeyID() == "" {
		return errors.New("vault migrate seal: the new seal has no type or key id")
	}
	oldBytes, err := v.store.Get(ctx, sealKey)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("vault migrate seal: %w", ErrNotInitialized)
	}
	if err != nil {
		return fmt.Errorf("vault migrate seal: %w", err)
	}
	old, err := decodeSeal(oldBytes)
	if err != nil {
		return fmt.Errorf("vault migrate seal: %w", err)
	}
	if old.Backend == to.Type() && old.KeyID == to.KeyID() {
		return fmt.Errorf("vault migrate seal: the vault is already sealed by %s key %q", to.Type(), to.KeyID())
	}
	cfg := &sealConfig{Version: 1, Type: SealExternal, Backend: to.Type(), KeyID: to.KeyID(), Created: old.Created}
	w := sealWrapperAdapter{to}

	// Wrap and verify under the read lock: the root key cannot go away
	// while it is used, and secret reads and writes (also read-locked)
	// carry on.
	v.mu.RLock()
	if v.ring == nil {
		v.mu.RUnlock()
		return fmt.Errorf("vault migrate seal: %w", ErrSealed)
	}
	cfg.Root, err = w.Wrap(ctx, v.root.Bytes())
	if err != nil {
		v.mu.RUnlock()
		return fmt.Errorf("vault migrate seal: wrap root key: %w", err)
	}
	next, err := cfg.encode()
	if err == nil {
		var p []byte
		from := sha256.Sum256(oldBytes)
		p, err = json.Marshal(pendingSeal{From: from[:], Next: next})
		if err == nil {
			err = v.store.Put(ctx, sealNextKey, p)
		}
	}
	if err != nil {
		v.mu.RUnlock()
		return fmt.Errorf("vault migrate seal: %w", err)
	}
	got, err := w.Unwrap(ctx, cfg.Root)
	ok := err == nil && subtle.ConstantTimeCompare(got, v.root.Bytes()) == 1
	clear(got)
	v.mu.RUnlock()
	if !ok {
		v.rollbackMigration(ctx)
		if err == nil {
			err = errors.New("the new seal returned another key")
		}
		return fmt.Errorf("vault migrate seal: verify the new wrapped root key: %w", err)
	}

	err = v.tx.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, sealKey)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, oldBytes) {
			return errors.New("the seal changed during the migration")
		}
		if err := tx.Put(ctx, sealKey, next); err != nil {
			return err
		}
		return tx.Delete(ctx, sealNextKey)
	})
	if err != nil {
		v.rollbackMigration(ctx)
		return fmt.Errorf("vault migrate seal: switch: %w", err)
	}
	v.log.Info("vault seal migrated", "from", describeSeal(old), "to", cfg.Backend, "key_id", cfg.KeyID)
	return nil
}

func (v *Vault) rollbackMigration(ctx context.Context) {
	if err := v.store.Delete(context.WithoutCancel(ctx), sealNextKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		v.log.Warn("seal migration: could not remove the pending seal; it is removed at next start", "err", err)
	}
}

// RecoverSealMigration finishes what an interrupted MigrateSeal left: the
// switch is one transaction, so a pending seal still beside the current one
// never took effect and is removed (rolled back). It reports whether there
// was one. It needs no unsealing; call it at start.
func (v *Vault) RecoverSealMigration(ctx context.Context) (bool, error) {
	v.rekeyMu.Lock()
	defer v.rekeyMu.Unlock()
	p, err := v.store.Get(ctx, sealNextKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vault recover seal migration: %w", err)
	}
	var pending pendingSeal
	_ = json.Unmarshal(p, &pending) // a damaged record is removed all the same
	if err := v.store.Delete(ctx, sealNextKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("vault recover seal migration: %w", err)
	}
	next, _ := decodeSeal(pending.Next)
	to := "unknown"
	if next != nil {
		to = describeSeal(next)
	}
	v.log.Warn("interrupted seal migration rolled back; the old seal stays in force", "to", to)
	return true, nil
}
