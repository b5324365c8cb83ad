package vault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/keywarden/keywarden/internal/store"
)

// A sealed record is
//
//	magic "kw1s" | term(4) | version(8) | wrapped data key(60) | nonce(12) | ciphertext | tag(16)
//
// The data key is random per write and wrapped by the keyring term; both the
// wrapping and the ciphertext bind kind, id, version and term as additional
// data, so a record moved to another row or rolled back to another version
// under the same row fails to open.
const (
	recordMagic   = "kw1s"
	wrappedDKSize = 12 + 32 + 16
	recordHeader  = 4 + 4 + 8
)

func recordAAD(purpose, kind, id string, version uint64, term uint32) []byte {
	b := make([]byte, 0, len(purpose)+len(kind)+len(id)+16)
	b = append(b, purpose...)
	b = append(b, 0)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, id...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, version)
	return binary.BigEndian.AppendUint32(b, term)
}

// sealRecord encrypts plaintext for (kind, id, version) under the current
// term of r.
func sealRecord(r *keyring, kind, id string, version uint64, plaintext []byte) ([]byte, error) {
	term := r.current
	dk, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	wrapped, err := sealAEAD(r.key(term), dk, recordAAD("keywarden data key v1", kind, id, version, term))
	if err != nil {
		return nil, err
	}
	ct, err := sealAEAD(dk, plaintext, recordAAD("keywarden secret v1", kind, id, version, term))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, recordHeader+len(wrapped)+len(ct))
	out = append(out, recordMagic...)
	out = binary.BigEndian.AppendUint32(out, term)
	out = binary.BigEndian.AppendUint64(out, version)
	out = append(out, wrapped...)
	return append(out, ct...), nil
}

// recordVersion reads a sealed record's version without opening it.
func recordVersion(blob []byte) (uint64, bool) {
	if len(blob) < recordHeader+wrappedDKSize || string(blob[:4]) != recordMagic {
		return 0, false
	}
	return binary.BigEndian.Uint64(blob[8:]), true
}

// openRecord decrypts a sealed record stored for (kind, id). Any failure is
// ErrTampered; the caller names the record.
func openRecord(r *keyring, kind, id string, blob []byte) ([]byte, uint64, error) {
	version, ok := recordVersion(blob)
	if !ok {
		return nil, 0, ErrTampered
	}
	term := binary.BigEndian.Uint32(blob[4:])
	key := r.key(term)
	if key == nil {
		return nil, 0, ErrTampered
	}
	dk, err := openAEAD(key, blob[recordHeader:recordHeader+wrappedDKSize], recordAAD("keywarden data key v1", kind, id, version, term))
	if err != nil {
		return nil, 0, ErrTampered
	}
	defer clear(dk)
	pt, err := openAEAD(dk, blob[recordHeader+wrappedDKSize:], recordAAD("keywarden secret v1", kind, id, version, term))
	if err != nil {
		return nil, 0, ErrTampered
	}
	return pt, version, nil
}

func checkKind(kind string) error {
	if kind == "" || len(kind) > 64 {
		return errors.New("secret kind must be 1 to 64 characters")
	}
	for _, c := range kind {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("secret kind %q may contain only a-z, 0-9, '-', '_' and '.'", kind)
		}
	}
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > 256 || strings.ContainsRune(id, 0) {
		return errors.New("secret id must be 1 to 256 bytes without NUL")
	}
	return nil
}

func secretKey(kind, id string) string { return secretPrefix + kind + "/" + id }

// tampered logs and returns the error for a record that failed
// authentication.
func (v *Vault) tampered(kind, id string) error {
	v.log.Error("sealed record failed authentication", "kind", kind, "id", id)
	return fmt.Errorf("%s %s: %w", kind, id, ErrTampered)
}

// PutSecret seals secret as (kind, id), replacing any previous value. The
// caller keeps and zeroes secret.
func (v *Vault) PutSecret(ctx context.Context, kind, id string, secret []byte) error {
	return v.withTerm(ctx, func() error { return v.putSecret(ctx, kind, id, secret) })
}

func (v *Vault) putSecret(ctx context.Context, kind, id string, secret []byte) error {
	if err := checkKind(kind); err != nil {
		return fmt.Errorf("vault put secret: %w", err)
	}
	if kind == exchangeKind {
		return fmt.Errorf("vault put secret: kind %q is reserved for AddKey", kind)
	}
	if err := checkID(id); err != nil {
		return fmt.Errorf("vault put secret: %w", err)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return fmt.Errorf("vault put secret: %w", ErrSealed)
	}
	err := v.tx.Update(ctx, func(tx store.Tx) error {
		var prev uint64
		old, err := tx.Get(ctx, secretKey(kind, id))
		switch {
		case err == nil:
			var ok bool
			if prev, ok = recordVersion(old); !ok {
				v.log.Error("sealed record failed authentication", "kind", kind, "id", id)
				return fmt.Errorf("%s %s: %w", kind, id, ErrTampered)
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := v.countOp(ctx, tx, v.ring.current); err != nil {
			return err
		}
		// The version goes up past the manifest's and the stored
		// row's, so an older copy of the record never opens again.
		version, err := v.writeVersion(ctx, tx, kind, id, prev)
		if err != nil {
			return err
		}
		blob, err := sealRecord(v.ring, kind, id, version, secret)
		if err != nil {
			return err
		}
		return tx.Put(ctx, secretKey(kind, id), blob)
	})
	if err != nil {
		return fmt.Errorf("vault put secret: %w", err)
	}
	return nil
}

// Secret opens the secret stored as (kind, id). The caller owns the
// returned bytes and zeroes them after use.
func (v *Vault) Secret(ctx context.Context, kind, id string) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return nil, fmt.Errorf("vault secret: %w", ErrSealed)
	}
	pt, _, err := v.openChecked(ctx, kind, id, func() ([]byte, error) {
		blob, err := v.store.Get(ctx, secretKey(kind, id))
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
		}
		return blob, err
	})
	if err != nil {
		return nil, fmt.Errorf("vault secret: %w", err)
	}
	return pt, nil
}

// DeleteSecret removes the secret stored as (kind, id).
func (v *Vault) DeleteSecret(ctx context.Context, kind, id string) error {
	if kind == exchangeKind {
		return fmt.Errorf("vault delete secret: kind %q is reserved for RemoveKey", kind)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return fmt.Errorf("vault delete secret: %w", ErrSealed)
	}
	err := v.tx.Update(ctx, func(tx store.Tx) error {
		if err := tx.Delete(ctx, secretKey(kind, id)); err != nil {
			return err
		}
		return v.deleteVersion(ctx, tx, kind, id)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("vault delete secret: %s %s: %w", kind, id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("vault delete secret: %w", err)
	}
	return nil
}
