package vault

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	"github.com/keywarden/keywarden/internal/exchange"
)

// KeyPrint is what a secret scanner may compare found material with for one
// stored exchange key: keyed fingerprints, never the material itself.
type KeyPrint struct {
	Key KeyInfo
	// APIKey is the fingerprint of the API key id (Key.Fingerprint).
	APIKey string
	// Secret holds the fingerprints that identify the key's secret: of
	// the secret as stored (the HMAC secret, the PEM or base64 private
	// key, surrounding white space removed) and, for asymmetric kinds,
	// PublicKeyFingerprint of its public half, which matches the key
	// however it is encoded where it leaked.
	Secret []string
	// Passphrase is the fingerprint of the key's passphrase, or "".
	Passphrase string
}

// KeyPrints returns the fingerprints of every exchange key's id, secret and
// passphrase, disabled keys included (a leaked disabled key is still worth
// knowing about). It needs the vault unsealed. The fingerprints are the
// vault's keyed Fingerprint, so they say nothing about the material to
// anyone without the vault's fingerprint key; opened secrets are wiped
// before it returns.
func (v *Vault) KeyPrints(ctx context.Context) ([]KeyPrint, error) {
	keys, err := v.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault key prints: %w", err)
	}
	out := make([]KeyPrint, 0, len(keys))
	for _, k := range keys {
		p, err := v.keyPrint(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("vault key prints: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (v *Vault) keyPrint(ctx context.Context, k KeyInfo) (KeyPrint, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return KeyPrint{}, ErrSealed
	}
	rec, err := v.keyRecord(ctx, k.Exchange, k.Name)
	if err != nil {
		return KeyPrint{}, err
	}
	id := rec.ID()
	payload, version, err := v.openChecked(ctx, exchangeKind, id, func() ([]byte, error) {
		blob, err := v.store.Get(ctx, secretKey(exchangeKind, id))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", exchangeKind, id, err)
		}
		return blob, nil
	})
	if err != nil {
		return KeyPrint{}, err
	}
	if version != rec.SecretVersion {
		clear(payload)
		return KeyPrint{}, v.tampered(exchangeKind, id)
	}
	defer clear(payload)
	kind, apiKey, secret, passphrase, err := decodePayload(payload)
	defer clear(secret)
	defer clear(passphrase)
	if err != nil || kind != rec.Kind {
		return KeyPrint{}, v.tampered(exchangeKind, id)
	}
	p := KeyPrint{Key: rec.KeyInfo, APIKey: v.fingerprintLocked([]byte(apiKey))}
	p.Secret = append(p.Secret, v.fingerprintLocked(bytes.TrimSpace(secret)))
	if len(passphrase) > 0 {
		p.Passphrase = v.fingerprintLocked(passphrase)
	}
	if kind != exchange.KeyHMAC {
		cred, err := buildCredential(kind, apiKey, rec.Account, secret, passphrase)
		if err != nil {
			return KeyPrint{}, v.tampered(exchangeKind, id)
		}
		fp, err := v.publicFingerprintLocked(cred.PublicKey)
		zeroCredential(cred)
		if err != nil {
			return KeyPrint{}, fmt.Errorf("%s: %w", id, err)
		}
		p.Secret = append(p.Secret, fp)
	}
	return p, nil
}

// PublicKeyFingerprint returns the Fingerprint of pub's PKIX DER encoding:
// a private key found in any encoding (PEM, PKCS#8, SEC 1, a Coinbase
// base64 Ed25519 key) is matched through its public half. It returns ""
// while sealed.
func (v *Vault) PublicKeyFingerprint(pub crypto.PublicKey) (string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return "", nil
	}
	return v.publicFingerprintLocked(pub)
}

func (v *Vault) publicFingerprintLocked(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("public key fingerprint: %w", err)
	}
	return v.fingerprintLocked(der), nil
}
