package operator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// KDF is the Argon2id cost for operator passwords.
type KDF struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF is the cost for production: OWASP's first Argon2id choice.
func DefaultKDF() KDF { return KDF{Time: 2, MemoryKiB: 19 * 1024, Threads: 1} }

// MinKDF is the cheapest accepted cost, for tests.
func MinKDF() KDF { return KDF{Time: 1, MemoryKiB: 64, Threads: 1} }

var b64 = base64.RawStdEncoding

// hashPassword returns the PHC-formatted Argon2id hash of pw.
func hashPassword(pw []byte, k KDF) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	sum := argon2.IDKey(pw, salt, k.Time, k.MemoryKiB, k.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, k.MemoryKiB, k.Time, k.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

var errBadHash = errors.New("malformed password hash")

// checkPassword reports whether pw matches the encoded hash, in constant time.
func checkPassword(encoded string, pw []byte) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	var k KDF
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &k.MemoryKiB, &k.Time, &k.Threads); err != nil {
		return false, errBadHash
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || k.Time == 0 || k.Threads == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey(pw, salt, k.Time, k.MemoryKiB, k.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
