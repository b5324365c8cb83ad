// Package seal holds what keywarden's external seal backends share: the
// envelope a backend-wrapped data key and the locally sealed root key travel
// in, and reading credential files (tokens, PINs, secret ids) that must not
// be readable by other users. The backends are in subpackages: transit
// (HashiCorp Vault and OpenBao), awskms and pkcs11. Each implements
// vault.SealWrapper.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrAuth is wrapped by errors from Unwrap when a blob, its additional
// data or the key does not authenticate.
var ErrAuth = errors.New("wrapped key failed authentication")

// envelopeMagic starts every envelope, with its version.
const envelopeMagic = "kwse1"

// DataKeySize is the size of the data keys envelopes use (AES-256).
const DataKeySize = 32

// Envelope is a data key wrapped by a backend (opaque to this package)
// and a payload sealed locally under that data key with AES-256-GCM.
type Envelope struct {
	WrappedKey []byte
	Sealed     []byte
}

// Encode returns magic | len(WrappedKey) (2 bytes) | WrappedKey | Sealed.
func (e Envelope) Encode() ([]byte, error) {
	if len(e.WrappedKey) == 0 || len(e.WrappedKey) > 0xffff {
		return nil, errors.New("envelope: wrapped key size out of range")
	}
	out := make([]byte, 0, len(envelopeMagic)+2+len(e.WrappedKey)+len(e.Sealed))
	out = append(out, envelopeMagic...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(e.WrappedKey)))
	out = append(out, e.WrappedKey...)
	return append(out, e.Sealed...), nil
}

// DecodeEnvelope parses what Encode returned. Anything malformed is
// ErrAuth.
func DecodeEnvelope(b []byte) (Envelope, error) {
	h := len(envelopeMagic) + 2
	if len(b) < h || string(b[:len(envelopeMagic)]) != envelopeMagic {
		return Envelope{}, fmt.Errorf("envelope: bad header: %w", ErrAuth)
	}
	n := int(binary.BigEndian.Uint16(b[len(envelopeMagic):]))
	if n == 0 || len(b) < h+n {
		return Envelope{}, fmt.Errorf("envelope: bad length: %w", ErrAuth)
	}
	return Envelope{WrappedKey: b[h : h+n], Sealed: b[h+n:]}, nil
}

// NewDataKey returns a random data key.
func NewDataKey() ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// SealLocal encrypts plaintext under dataKey with AES-256-GCM and aad:
// nonce || ciphertext || tag.
func SealLocal(dataKey, plaintext, aad []byte) ([]byte, error) {
	g, err := gcm(dataKey)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, plaintext, aad), nil
}

// OpenLocal reverses SealLocal; any failure is ErrAuth.
func OpenLocal(dataKey, sealed, aad []byte) ([]byte, error) {
	g, err := gcm(dataKey)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrAuth)
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("sealed payload too short: %w", ErrAuth)
	}
	out, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != DataKeySize {
		return nil, errors.New("data key is not 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// ReadSecretFile reads a credential file (a token, PIN or secret id),
// refusing one that group or others can access. Surrounding white space
// is dropped. what names the credential in errors; the content never
// appears in one. The caller zeroes the result.
func ReadSecretFile(what, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s file %s does not exist", what, path)
		}
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s file %s is not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s file %s has mode %04o, want 0600 or stricter (chmod 600 %s)", what, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	t := append([]byte(nil), bytes.TrimSpace(b)...)
	clear(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("%s file %s is empty", what, path)
	}
	return t, nil
}
