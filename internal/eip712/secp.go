package eip712

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Signature is a recoverable secp256k1 signature as Ethereum wallets give
// it: r, s and v = 27 + recovery id.
type Signature struct {
	R, S [32]byte
	V    byte
}

// PrivateKey is a secp256k1 private key. Zero it when done.
type PrivateKey struct{ k *secp256k1.PrivateKey }

// ParsePrivateKey parses 32 bytes of hex, with or without 0x. The error
// never quotes the input.
func ParsePrivateKey(s string) (*PrivateKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 64 {
		return nil, errors.New("private key must be 32 bytes of hex")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("private key must be 32 bytes of hex")
	}
	defer clear(b)
	return PrivateKeyFromBytes(b)
}

// PrivateKeyFromBytes takes a 32-byte big-endian scalar in [1, n-1].
func PrivateKeyFromBytes(b []byte) (*PrivateKey, error) {
	if len(b) != 32 {
		return nil, errors.New("private key must be 32 bytes")
	}
	var sc secp256k1.ModNScalar
	if overflow := sc.SetByteSlice(b); overflow || sc.IsZero() {
		sc.Zero()
		return nil, errors.New("private key is not a valid secp256k1 scalar")
	}
	return &PrivateKey{k: secp256k1.NewPrivateKey(&sc)}, nil
}

// GenerateKey returns a new private key from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	return &PrivateKey{k: k}, nil
}

// Hex returns the key as 0x-hex. It is the plaintext secret: handle it like one.
func (p *PrivateKey) Hex() string {
	b := p.k.Serialize()
	defer clear(b)
	return "0x" + hex.EncodeToString(b)
}

// Address is the key's account address.
func (p *PrivateKey) Address() Address { return pubAddress(p.k.PubKey()) }

// Zero overwrites the key in memory.
func (p *PrivateKey) Zero() { p.k.Zero() }

// String never shows the key.
func (p *PrivateKey) String() string { return "eip712.PrivateKey{" + p.Address().Hex() + "}" }

// GoString never shows the key.
func (p *PrivateKey) GoString() string { return p.String() }

func pubAddress(pub *secp256k1.PublicKey) Address {
	u := pub.SerializeUncompressed()
	var a Address
	copy(a[:], Keccak256(u[1:])[12:])
	return a
}

// Sign signs a 32-byte digest with an RFC 6979 deterministic nonce and a
// low s, as Ethereum wallets do.
func (p *PrivateKey) Sign(digest []byte) (Signature, error) {
	if len(digest) != 32 {
		return Signature{}, errors.New("digest must be 32 bytes")
	}
	c := ecdsa.SignCompact(p.k, digest, false)
	var sig Signature
	sig.V = c[0]
	copy(sig.R[:], c[1:33])
	copy(sig.S[:], c[33:65])
	return sig, nil
}

// Recover returns the address whose key made sig over digest. It refuses
// v other than 27 or 28 and a high s (the malleable twin of a valid
// signature), so each signed message has exactly one accepted signature.
func Recover(digest []byte, sig Signature) (Address, error) {
	if len(digest) != 32 {
		return Address{}, errors.New("digest must be 32 bytes")
	}
	if sig.V != 27 && sig.V != 28 {
		return Address{}, errors.New("signature v must be 27 or 28")
	}
	var sc secp256k1.ModNScalar
	if overflow := sc.SetBytes(&sig.S); overflow != 0 || sc.IsOverHalfOrder() {
		return Address{}, errors.New("signature s is not canonical (high s)")
	}
	c := make([]byte, 65)
	c[0] = sig.V
	copy(c[1:], sig.R[:])
	copy(c[33:], sig.S[:])
	pub, _, err := ecdsa.RecoverCompact(c, digest)
	if err != nil {
		return Address{}, errors.New("signature does not verify")
	}
	return pubAddress(pub), nil
}

// SameAddress compares two addresses in constant time.
func SameAddress(a, b Address) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// ParseWord parses a 0x-hex number of at most 32 bytes (leading zeros may
// be dropped, as the Hyperliquid SDK prints r and s) into a 32-byte word.
func ParseWord(s string) ([32]byte, error) {
	var w [32]byte
	if !strings.HasPrefix(s, "0x") || len(s) < 3 || len(s) > 66 {
		return w, errors.New("want 0x-hex of at most 32 bytes")
	}
	h := s[2:]
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return w, errors.New("want 0x-hex of at most 32 bytes")
	}
	copy(w[32-len(b):], b)
	return w, nil
}

// WordHex prints a word as 0x-hex of 64 digits.
func WordHex(w [32]byte) string { return "0x" + hex.EncodeToString(w[:]) }
