package vault

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store"
)

// KeyInput is an exchange API key to add. Secret is the HMAC secret as the
// exchange issued it, or the private key (PEM, or base64 for Ed25519) for
// asymmetric kinds. The caller zeroes Secret and Passphrase after AddKey.
type KeyInput struct {
	Exchange string
	Name     string
	Account  string
	Label    string
	Kind     exchange.KeyKind // default hmac
	APIKey   string
	// Secret and Passphrase redact themselves when printed or logged.
	Secret     exchange.Secret
	Passphrase exchange.Secret
	Scopes     []string
}

// LogValue shows the key's identity only.
func (in KeyInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("exchange", in.Exchange), slog.String("name", in.Name), slog.String("kind", string(in.Kind)))
}

// KeyInfo is an exchange key's metadata. It holds nothing secret: the API
// key id appears only as its fingerprint.
type KeyInfo struct {
	Exchange    string           `json:"exchange"`
	Name        string           `json:"name"`
	Account     string           `json:"account,omitempty"`
	Label       string           `json:"label,omitempty"`
	Kind        exchange.KeyKind `json:"kind"`
	Fingerprint string           `json:"fingerprint"`
	Scopes      []string         `json:"scopes,omitempty"`
	Created     time.Time        `json:"created"`
	Rotated     time.Time        `json:"rotated"`
	LastUsed    time.Time        `json:"last_used,omitzero"`
	// Disabled is set when the key was revoked: Credential refuses it.
	Disabled       time.Time `json:"disabled,omitzero"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
}

// ID is the key's "exchange/name".
func (k KeyInfo) ID() string { return k.Exchange + "/" + k.Name }

// keyRecord is KeyInfo as stored, with the version its sealed secret must
// have (a secret rolled back to an older version fails to open).
type keyRecord struct {
	KeyInfo
	SecretVersion uint64 `json:"secret_version"`
}

func keyMetaKey(ex, name string) string { return keyPrefix + ex + "/" + name }
func keyFPKey(ex, fp string) string     { return keyFPPrefix + ex + "/" + fp }

// checkName accepts 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.', starting with a
// letter or digit.
func checkName(what, s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%s must be 1 to 64 characters", what)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok && (i == 0 || (c != '-' && c != '_' && c != '.')) {
			return fmt.Errorf("%s %q may contain only letters, digits, '-', '_' and '.', and must start with a letter or digit", what, s)
		}
	}
	return nil
}

func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", what, max)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s contains a control character", what)
		}
	}
	return nil
}

func (in *KeyInput) check() error {
	if err := checkName("exchange", in.Exchange); err != nil {
		return err
	}
	if strings.ToLower(in.Exchange) != in.Exchange {
		return fmt.Errorf("exchange %q must be lower case", in.Exchange)
	}
	if err := checkName("key name", in.Name); err != nil {
		return err
	}
	if err := checkText("account", in.Account, 256); err != nil {
		return err
	}
	if err := checkText("label", in.Label, 256); err != nil {
		return err
	}
	if in.APIKey == "" {
		return errors.New("api key id is empty")
	}
	if err := checkText("api key id", in.APIKey, 1024); err != nil {
		return err
	}
	if len(in.Secret) == 0 {
		return errors.New("secret is empty")
	}
	switch in.Kind {
	case exchange.KeyHMAC, exchange.KeyEd25519, exchange.KeyRSA, exchange.KeyECDSA:
	default:
		return fmt.Errorf("unknown key kind %q (want hmac, ed25519, rsa or ecdsa)", in.Kind)
	}
	for _, s := range in.Scopes {
		if _, err := exchange.ParseScope(s); err != nil {
			return err
		}
	}
	return nil
}

// AddKey stores an exchange key: its metadata, its sealed secret and its
// fingerprint index are written in one transaction, so a crash leaves either
// all of them or none. A second key with the same exchange and API key id,
// or the same exchange and name, is refused with ErrExists naming the
// existing entry.
func (v *Vault) AddKey(ctx context.Context, in KeyInput) (KeyInfo, error) {
	var info KeyInfo
	err := v.withTerm(ctx, func() (err error) {
		info, err = v.addKey(ctx, in)
		return err
	})
	return info, err
}

func (v *Vault) addKey(ctx context.Context, in KeyInput) (KeyInfo, error) {
	if in.Kind == "" {
		in.Kind = exchange.KeyHMAC
	}
	if err := in.check(); err != nil {
		return KeyInfo{}, fmt.Errorf("vault add key: %w", err)
	}
	// Refuse a secret that will not sign before storing it.
	cred, err := buildCredential(in.Kind, in.APIKey, in.Account, in.Secret, in.Passphrase)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault add key %s/%s: %w", in.Exchange, in.Name, err)
	}
	zeroCredential(cred)

	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return KeyInfo{}, fmt.Errorf("vault add key: %w", ErrSealed)
	}
	now := v.now().UTC()
	rec := keyRecord{
		KeyInfo: KeyInfo{
			Exchange:    in.Exchange,
			Name:        in.Name,
			Account:     in.Account,
			Label:       in.Label,
			Kind:        in.Kind,
			Fingerprint: v.fingerprintLocked([]byte(in.APIKey)),
			Scopes:      slices.Clone(in.Scopes),
			Created:     now,
			Rotated:     now,
		},
	}
	payload := encodePayload(in.Kind, in.APIKey, in.Secret, in.Passphrase)
	defer clear(payload)
	id := rec.ID()
	term := v.ring.current
	err = v.tx.Update(ctx, func(tx store.Tx) error {
		if err := v.countOp(ctx, tx, term); err != nil {
			return err
		}
		// A key added again under a removed key's name continues its
		// versions, so the removed key's sealed secret never opens.
		var err error
		if rec.SecretVersion, err = v.writeVersion(ctx, tx, exchangeKind, id, 0); err != nil {
			return err
		}
		meta, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		blob, err := sealRecord(v.ring, exchangeKind, id, rec.SecretVersion, payload)
		if err != nil {
			return err
		}
		if err := tx.Create(ctx, keyFPKey(in.Exchange, rec.Fingerprint), []byte(id)); err != nil {
			if !errors.Is(err, store.ErrExists) {
				return err
			}
			existing, _ := tx.Get(ctx, keyFPKey(in.Exchange, rec.Fingerprint))
			return fmt.Errorf("this %s API key (%s) is already stored as %s: %w", in.Exchange, rec.Fingerprint, existing, ErrExists)
		}
		if err := tx.Create(ctx, keyMetaKey(in.Exchange, in.Name), meta); err != nil {
			if !errors.Is(err, store.ErrExists) {
				return err
			}
			return fmt.Errorf("a key named %s already exists: %w", id, ErrExists)
		}
		return tx.Put(ctx, secretKey(exchangeKind, id), blob)
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault add key: %w", err)
	}
	v.log.Info("exchange key added", "key", id, "kind", in.Kind, "fingerprint", rec.Fingerprint)
	return rec.KeyInfo, nil
}

func (v *Vault) keyRecord(ctx context.Context, ex, name string) (*keyRecord, error) {
	b, err := v.store.Get(ctx, keyMetaKey(ex, name))
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
	return &rec, nil
}

// Keys lists every exchange key's metadata, ordered by exchange and name.
// It works while sealed.
func (v *Vault) Keys(ctx context.Context) ([]KeyInfo, error) {
	names, err := v.store.List(ctx, keyPrefix)
	if err != nil {
		return nil, fmt.Errorf("vault keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(names))
	for _, n := range names {
		ex, name, ok := strings.Cut(strings.TrimPrefix(n, keyPrefix), "/")
		if !ok {
			continue
		}
		rec, err := v.keyRecord(ctx, ex, name)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("vault keys: %w", err)
		}
		out = append(out, rec.KeyInfo)
	}
	return out, nil
}

// Key returns one exchange key's metadata. It works while sealed.
func (v *Vault) Key(ctx context.Context, ex, name string) (KeyInfo, error) {
	rec, err := v.keyRecord(ctx, ex, name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vault key: %w", err)
	}
	return rec.KeyInfo, nil
}

// RemoveKey deletes an exchange key, its sealed secret and its fingerprint
// index in one transaction, and drops it from the credential cache. It
// works while sealed; the version manifest then marks the secret deleted at
// the next unseal, otherwise at once.
func (v *Vault) RemoveKey(ctx context.Context, ex, name string) error {
	id := ex + "/" + name
	v.mu.RLock()
	unsealed := v.ring != nil
	err := v.tx.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, keyMetaKey(ex, name))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("key %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var rec keyRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("key %s metadata: %w", id, ErrTampered)
		}
		for _, k := range []string{keyMetaKey(ex, name), keyFPKey(ex, rec.Fingerprint), secretKey(exchangeKind, id)} {
			if err := tx.Delete(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if unsealed {
			return v.deleteVersion(ctx, tx, exchangeKind, id)
		}
		return nil
	})
	v.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("vault remove key: %w", err)
	}
	v.mu.Lock()
	if c, ok := v.creds[id]; ok {
		zeroCredential(c)
		delete(v.creds, id)
	}
	v.mu.Unlock()
	v.log.Info("exchange key removed", "key", id)
	return nil
}

// MarkUsed records that the key was used at t. Callers on the hot path
// should throttle it; it is a store write.
func (v *Vault) MarkUsed(ctx context.Context, ex, name string, t time.Time) error {
	err := v.tx.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, keyMetaKey(ex, name))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("key %s/%s: %w", ex, name, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var rec keyRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("key %s/%s metadata: %w", ex, name, ErrTampered)
		}
		if !t.After(rec.LastUsed) {
			return nil
		}
		rec.LastUsed = t.UTC()
		nb, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return tx.Put(ctx, keyMetaKey(ex, name), nb)
	})
	if err != nil {
		return fmt.Errorf("vault mark used: %w", err)
	}
	return nil
}

// Credential opens an exchange key and returns it ready to sign. Credentials
// are cached while the vault is unsealed, so repeated calls cost a map
// lookup; the returned Credential is shared and must not be changed or kept
// beyond one request. Seal zeroes the cached secrets.
func (v *Vault) Credential(ctx context.Context, ex, name string) (*exchange.Credential, error) {
	id := ex + "/" + name
	v.mu.RLock()
	if v.ring == nil {
		v.mu.RUnlock()
		return nil, fmt.Errorf("vault credential: %w", ErrSealed)
	}
	if c, ok := v.creds[id]; ok {
		v.mu.RUnlock()
		return c, nil
	}
	c, err := v.openCredential(ctx, ex, name)
	v.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("vault credential: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ring == nil {
		// Sealed while we were opening it.
		zeroCredential(c)
		return nil, fmt.Errorf("vault credential: %w", ErrSealed)
	}
	if cached, ok := v.creds[id]; ok {
		zeroCredential(c)
		return cached, nil
	}
	v.creds[id] = c
	return c, nil
}

// openCredential reads and opens a key; v.mu must be held.
func (v *Vault) openCredential(ctx context.Context, ex, name string) (*exchange.Credential, error) {
	rec, err := v.keyRecord(ctx, ex, name)
	if err != nil {
		return nil, err
	}
	if !rec.Disabled.IsZero() {
		return nil, fmt.Errorf("key %s: %w", rec.ID(), ErrDisabled)
	}
	id := rec.ID()
	payload, version, err := v.openChecked(ctx, exchangeKind, id, func() ([]byte, error) {
		blob, err := v.store.Get(ctx, secretKey(exchangeKind, id))
		if errors.Is(err, store.ErrNotFound) {
			v.log.Error("exchange key secret missing", "key", id)
			return nil, fmt.Errorf("%s %s: secret missing: %w", exchangeKind, id, ErrTampered)
		}
		return blob, err
	})
	if err != nil {
		return nil, err
	}
	if version != rec.SecretVersion {
		clear(payload)
		return nil, v.tampered(exchangeKind, id)
	}
	defer clear(payload)
	kind, apiKey, secret, passphrase, err := decodePayload(payload)
	if err != nil || kind != rec.Kind {
		clear(secret)
		clear(passphrase)
		return nil, v.tampered(exchangeKind, id)
	}
	defer clear(secret)
	defer clear(passphrase)
	return buildCredential(kind, apiKey, rec.Account, secret, passphrase)
}

// Fingerprint returns "kwfp_" and the first 16 hex digits of HMAC-SHA256
// over data, keyed with the vault's fingerprint key. It identifies an API
// key id (or any value) without revealing it, is stable across restarts and
// rotations, and differs between installations. It returns "" while sealed.
func (v *Vault) Fingerprint(data []byte) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return ""
	}
	return v.fingerprintLocked(data)
}

func (v *Vault) fingerprintLocked(data []byte) string {
	m := hmac.New(sha256.New, v.ring.fingerprintKey())
	m.Write(data)
	return "kwfp_" + hex.EncodeToString(m.Sum(nil)[:8])
}

// encodePayload is len(4) kind | len(4) api key | len(4) secret |
// len(4) passphrase. The kind is sealed with the secret so that editing the
// unauthenticated metadata cannot make the vault use a key as another kind.
func encodePayload(kind exchange.KeyKind, apiKey string, secret, passphrase []byte) []byte {
	b := make([]byte, 0, 16+len(kind)+len(apiKey)+len(secret)+len(passphrase))
	for _, f := range [][]byte{[]byte(kind), []byte(apiKey), secret, passphrase} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodePayload returns copies of the payload's fields.
func decodePayload(b []byte) (kind exchange.KeyKind, apiKey string, secret, passphrase []byte, err error) {
	var fields [4][]byte
	for i := range fields {
		if len(b) < 4 {
			return "", "", nil, nil, errors.New("short payload")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return "", "", nil, nil, errors.New("short payload")
		}
		fields[i] = append([]byte(nil), b[:n]...)
		b = b[n:]
	}
	if len(b) != 0 {
		return "", "", nil, nil, errors.New("trailing payload")
	}
	return exchange.KeyKind(fields[0]), string(fields[1]), fields[2], fields[3], nil
}

// buildCredential turns stored key material into a signing credential. It
// copies secret and passphrase. Errors never contain key material.
func buildCredential(kind exchange.KeyKind, apiKey, account string, secret, passphrase []byte) (*exchange.Credential, error) {
	c := &exchange.Credential{Kind: kind, APIKey: apiKey, Account: account}
	if len(passphrase) > 0 {
		c.Passphrase = exchange.Secret(append([]byte(nil), passphrase...))
	}
	var err error
	switch kind {
	case exchange.KeyHMAC:
		c.Secret = exchange.Secret(append([]byte(nil), secret...))
		return c, nil
	case exchange.KeyEd25519:
		c.PrivateKey, err = parseEd25519(secret)
	case exchange.KeyRSA:
		c.PrivateKey, err = parsePEMKey(secret, func(k crypto.Signer) bool { _, ok := k.(*rsa.PrivateKey); return ok })
	case exchange.KeyECDSA:
		c.PrivateKey, err = parsePEMKey(secret, func(k crypto.Signer) bool { _, ok := k.(*ecdsa.PrivateKey); return ok })
	default:
		err = fmt.Errorf("unknown key kind %q", kind)
	}
	if err != nil {
		zeroCredential(c)
		return nil, fmt.Errorf("%s private key: %w", kind, err)
	}
	c.PublicKey = c.PrivateKey.Public()
	return c, nil
}

// parseEd25519 accepts a PKCS#8 PEM key, or base64 of a 32-byte seed or of
// seed || public key (Coinbase CDP's format).
func parseEd25519(b []byte) (crypto.Signer, error) {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "-----BEGIN") {
		return parsePEMKey(b, func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok })
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not PEM and not base64")
	}
	defer clear(raw)
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !hmac.Equal(k[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			clear(k)
			return nil, errors.New("public half does not match the seed")
		}
		return k, nil
	}
	return nil, fmt.Errorf("base64 decodes to %d bytes, want 32 or 64", len(raw))
}

// parsePEMKey parses a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) PEM private key
// and checks its type with ok.
func parsePEMKey(b []byte, ok func(crypto.Signer) bool) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	defer clear(block.Bytes)
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, errors.New("malformed private key")
	}
	s, isSigner := key.(crypto.Signer)
	if !isSigner || !ok(s) {
		return nil, errors.New("private key is of another kind")
	}
	return s, nil
}

// zeroCredential wipes what can be wiped in place: HMAC secrets,
// passphrases and Ed25519 keys. RSA and ECDSA keys are big integers the
// runtime may have copied; they are dropped for the garbage collector.
func zeroCredential(c *exchange.Credential) {
	if c == nil {
		return
	}
	c.Secret.Zero()
	c.Passphrase.Zero()
	if k, ok := c.PrivateKey.(ed25519.PrivateKey); ok {
		clear(k)
	}
}
