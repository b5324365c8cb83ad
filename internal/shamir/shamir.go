// Package shamir splits a secret into n shares so that any k of them rebuild
// it and fewer than k reveal nothing about it (Shamir's secret sharing over
// GF(2^8), one random polynomial of degree k-1 per secret byte).
//
// A share is self-describing: it carries a format version, the identifier of
// the split it came from, the threshold, its x coordinate and a checksum, so
// that a mistyped or corrupted share, a duplicate, or a share from another
// split is refused with a clear error instead of silently producing a wrong
// secret. The checksum is computed over the share alone and reveals nothing
// about the secret.
//
// Field arithmetic is branch-free and table-free so that its timing does not
// depend on secret values.
//
// Security: this package protects the vault's unseal key. Changes here need a
// second security review.
package shamir

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Share layout: version(1) | set id(8) | threshold(1) | x(1) | y(len secret) | checksum(4).
const (
	version     = 1
	setIDLen    = 8
	headerLen   = 1 + setIDLen + 1 + 1
	checksumLen = 4
	overhead    = headerLen + checksumLen
	// MaxShares is the largest n Split accepts.
	MaxShares = 255
)

// Errors returned by Combine and Parse. Callers match them with errors.Is.
var (
	ErrCorrupt   = errors.New("share is corrupted or mistyped")
	ErrMixed     = errors.New("shares come from different splits")
	ErrDuplicate = errors.New("duplicate share")
	ErrTooFew    = errors.New("not enough shares")
)

// Info describes a share without revealing anything about the secret.
type Info struct {
	Set       [setIDLen]byte // identifies the Split call the share came from
	Threshold int            // shares needed to rebuild the secret
	X         byte           // the share's x coordinate, 1..255
}

// Split divides secret into n shares, any k of which rebuild it. It needs
// 2 <= k <= n <= 255 and a non-empty secret.
func Split(secret []byte, n, k int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("shamir split: empty secret")
	case k < 2:
		return nil, fmt.Errorf("shamir split: threshold %d is below 2", k)
	case n < k:
		return nil, fmt.Errorf("shamir split: threshold %d is above the number of shares %d", k, n)
	case n > MaxShares:
		return nil, fmt.Errorf("shamir split: %d shares is more than %d", n, MaxShares)
	}
	var set [setIDLen]byte
	if _, err := rand.Read(set[:]); err != nil {
		return nil, fmt.Errorf("shamir split: %w", err)
	}
	shares := make([][]byte, n)
	for i := range shares {
		s := make([]byte, headerLen+len(secret)+checksumLen)
		s[0] = version
		copy(s[1:], set[:])
		s[1+setIDLen] = byte(k)
		s[headerLen-1] = byte(i + 1)
		shares[i] = s
	}
	// coef holds the k-1 random coefficients of one byte's polynomial.
	coef := make([]byte, k-1)
	defer clear(coef)
	for j, b := range secret {
		if _, err := rand.Read(coef); err != nil {
			return nil, fmt.Errorf("shamir split: %w", err)
		}
		for i := range shares {
			shares[i][headerLen+j] = eval(b, coef, byte(i+1))
		}
	}
	for _, s := range shares {
		sum := checksum(s[:len(s)-checksumLen])
		copy(s[len(s)-checksumLen:], sum[:])
	}
	return shares, nil
}

// Parse checks a share's format and checksum and returns what it says about
// itself.
func Parse(share []byte) (Info, error) {
	var info Info
	if len(share) < overhead+1 {
		return info, fmt.Errorf("shamir: share is %d bytes, too short: %w", len(share), ErrCorrupt)
	}
	if share[0] != version {
		return info, fmt.Errorf("shamir: unknown share version %d: %w", share[0], ErrCorrupt)
	}
	body := share[:len(share)-checksumLen]
	want := checksum(body)
	if subtle.ConstantTimeCompare(want[:checksumLen], share[len(share)-checksumLen:]) != 1 {
		return info, fmt.Errorf("shamir: checksum mismatch: %w", ErrCorrupt)
	}
	copy(info.Set[:], share[1:1+setIDLen])
	info.Threshold = int(share[1+setIDLen])
	info.X = share[headerLen-1]
	if info.Threshold < 2 || info.X == 0 {
		return info, fmt.Errorf("shamir: invalid threshold or coordinate: %w", ErrCorrupt)
	}
	return info, nil
}

// Combine rebuilds the secret from at least threshold shares of one split.
// Corrupted, duplicate or mixed shares and too few shares are errors; the
// errors never contain share or secret bytes.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) == 0 {
		return nil, fmt.Errorf("shamir combine: no shares: %w", ErrTooFew)
	}
	var first Info
	xs := make([]byte, len(shares))
	for i, s := range shares {
		info, err := Parse(s)
		if err != nil {
			return nil, fmt.Errorf("shamir combine: share %d: %w", i+1, err)
		}
		if i == 0 {
			first = info
		} else if info.Set != first.Set || info.Threshold != first.Threshold || len(s) != len(shares[0]) {
			return nil, fmt.Errorf("shamir combine: share %d: %w", i+1, ErrMixed)
		}
		if bytes.IndexByte(xs[:i], info.X) >= 0 {
			return nil, fmt.Errorf("shamir combine: share %d: %w", i+1, ErrDuplicate)
		}
		xs[i] = info.X
	}
	if len(shares) < first.Threshold {
		return nil, fmt.Errorf("shamir combine: have %d of %d shares: %w", len(shares), first.Threshold, ErrTooFew)
	}
	// Any threshold shares determine the polynomial; use the first ones.
	use := shares[:first.Threshold]
	xs = xs[:first.Threshold]
	// Lagrange basis values at x=0: l_i = prod_{j!=i} x_j / (x_j - x_i).
	// In GF(2^8) subtraction is XOR.
	basis := make([]byte, len(use))
	for i := range use {
		num, den := byte(1), byte(1)
		for j := range use {
			if i == j {
				continue
			}
			num = mul(num, xs[j])
			den = mul(den, xs[j]^xs[i])
		}
		basis[i] = mul(num, inv(den))
	}
	n := len(shares[0]) - overhead
	secret := make([]byte, n)
	for b := 0; b < n; b++ {
		var acc byte
		for i, s := range use {
			acc ^= mul(basis[i], s[headerLen+b])
		}
		secret[b] = acc
	}
	return secret, nil
}

func checksum(b []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("keywarden shamir share v1\x00"))
	h.Write(b)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// eval returns the polynomial secret + c[0]x + c[1]x^2 + ... at x (Horner).
func eval(secret byte, coef []byte, x byte) byte {
	var acc byte
	for i := len(coef) - 1; i >= 0; i-- {
		acc = mul(acc, x) ^ coef[i]
	}
	return mul(acc, x) ^ secret
}

// mul multiplies in GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1, in
// constant time.
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1)
		hi := a >> 7
		a = a<<1 ^ (0x1b & -hi)
		b >>= 1
	}
	return p
}

// inv returns a^254 = a^-1 (and 0 for 0).
func inv(a byte) byte {
	r := a
	for range 6 {
		r = mul(r, r)
		r = mul(r, a)
	}
	return mul(r, r)
}
