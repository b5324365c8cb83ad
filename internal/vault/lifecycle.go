package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/internal/store"
)

// updateKey applies change to the key's metadata inside tx and writes it.
func updateKey(ctx context.Context, tx store.Tx, ex, name string, change func(*keyRecord) error) (*keyRecord, error) {
	b, err := tx.Get(ctx, keyMetaKey(ex, name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("key %s/%s: %w", ex, name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec keyRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Exchange != ex || rec.Name != name {
		return nil, fmt.Errorf("key %s/%s metadata: %w", ex, name, ErrTampered)
	}
	if err := change(&rec); err != nil {
		return nil, err
	}
	nb, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return &rec, tx.Put(ctx, keyMetaKey(ex, name), nb)
}

// dropCached zeroes and forgets a cached credential.
func (v *Vault) dropCached(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.creds[id]; ok {
		zeroCredential(c)
		delete(v.creds, id)
	}
}

// DisableKey revokes a key locally at once: Credential refuses it from now
// on (ErrDisabled), so every client bound to it fails on its next request.
// reason is recorded in the key's metadata; it must not contain secrets.
// Disabling a disabled key keeps the first time and reason. It works while
// sealed.
func (v *Vault) DisableKey(ctx context.Context, ex, name, reason string) (KeyInfo, error) {
	if err := checkText("reason", reason, 500); err != nil {
		return KeyInfo{}, fmt.Errorf("vault disable key: %w", err)
	}
	now := v.now().UTC()
	var rec *keyRecord
	err := v.tx.Update(ctx, func(tx store.Tx) error {
		var err error
		rec, err = updateKey(ctx, tx, ex, name, func(r *keyRecord) error {
			if r.Disabled.IsZero() {
				r.Disabled, r.DisabledReason = now, reason
			}
			return nil
		})
		return err
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault disable key: %w", err)
	}
	v.dropCached(rec.ID())
	v.log.Warn("exchange key disabled", "key", rec.ID())
	return rec.KeyInfo, nil
}

// ReplaceKeySecret switches the key ex/name to a new venue key (rotation):
// the API key id, secret and passphrase change in one transaction with the
// fingerprint index, the secret version goes up (so the old sealed secret
// can never be replayed), Rotated is set and the cached credential is
// dropped. Name, scopes and the clients bound to the key are unchanged.
// Only Kind, APIKey, Secret, Passphrase and Account of in are used; Account
// keeps its old value when in.Account is empty. The caller zeroes in's
// secrets afterwards.
func (v *Vault) ReplaceKeySecret(ctx context.Context, ex, name string, in KeyInput) (KeyInfo, error) {
	var info KeyInfo
	err := v.withTerm(ctx, func() (err error) {
		info, err = v.replaceKeySecret(ctx, ex, name, in)
		return err
	})
	return info, err
}

func (v *Vault) replaceKeySecret(ctx context.Context, ex, name string, in KeyInput) (KeyInfo, error) {
	old, err := v.keyRecord(ctx, ex, name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault replace key: %w", err)
	}
	in.Exchange, in.Name = ex, name
	if in.Kind == "" {
		in.Kind = old.Kind
	}
	if in.Account == "" {
		in.Account = old.Account
	}
	if err := in.check(); err != nil {
		return KeyInfo{}, fmt.Errorf("vault replace key: %w", err)
	}
	cred, err := buildCredential(in.Kind, in.APIKey, in.Account, in.Secret, in.Passphrase)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault replace key %s/%s: %w", ex, name, err)
	}
	zeroCredential(cred)

	v.mu.RLock()
	if v.ring == nil {
		v.mu.RUnlock()
		return KeyInfo{}, fmt.Errorf("vault replace key: %w", ErrSealed)
	}
	now := v.now().UTC()
	fp := v.fingerprintLocked([]byte(in.APIKey))
	id := ex + "/" + name
	payload := encodePayload(in.Kind, in.APIKey, in.Secret, in.Passphrase)
	defer clear(payload)
	var rec *keyRecord
	err = v.tx.Update(ctx, func(tx store.Tx) error {
		var oldFP string
		m, err := v.loadManifest(ctx, tx.Get)
		if err != nil {
			return v.missingManifest(err)
		}
		rec, err = updateKey(ctx, tx, ex, name, func(r *keyRecord) error {
			if !r.Disabled.IsZero() {
				return fmt.Errorf("key %s: %w", id, ErrDisabled)
			}
			oldFP = r.Fingerprint
			r.Kind, r.Account, r.Fingerprint, r.Rotated = in.Kind, in.Account, fp, now
			r.SecretVersion = nextVersion(m, exchangeKind, id, r.SecretVersion)
			return nil
		})
		if err != nil {
			return err
		}
		if err := v.recordVersionTx(ctx, tx, m, exchangeKind, id, rec.SecretVersion, false); err != nil {
			return err
		}
		if oldFP == fp {
			return fmt.Errorf("key %s: the new API key is the current one: %w", id, ErrExists)
		}
		if err := tx.Create(ctx, keyFPKey(ex, fp), []byte(id)); err != nil {
			if !errors.Is(err, store.ErrExists) {
				return err
			}
			existing, _ := tx.Get(ctx, keyFPKey(ex, fp))
			return fmt.Errorf("this %s API key (%s) is already stored as %s: %w", ex, fp, existing, ErrExists)
		}
		if err := tx.Delete(ctx, keyFPKey(ex, oldFP)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := v.countOp(ctx, tx, v.ring.current); err != nil {
			return err
		}
		blob, err := sealRecord(v.ring, exchangeKind, id, rec.SecretVersion, payload)
		if err != nil {
			return err
		}
		return tx.Put(ctx, secretKey(exchangeKind, id), blob)
	})
	v.mu.RUnlock()
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault replace key: %w", err)
	}
	v.dropCached(id)
	v.log.Info("exchange key secret replaced", "key", id, "fingerprint", fp)
	return rec.KeyInfo, nil
}
