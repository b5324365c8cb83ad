package exchange

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"log/slog"
	"sync"
)

// Secret is secret bytes that redact themselves wherever they could be
// printed, logged or encoded.
type Secret []byte

const redacted = "[REDACTED]"

// String returns a redaction marker, never the secret.
func (Secret) String() string { return redacted }

// GoString returns a redaction marker, never the secret.
func (Secret) GoString() string { return redacted }

// LogValue returns a redaction marker, never the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns a redaction marker, never the secret.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns a redaction marker, never the secret.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Zero overwrites the secret in place.
func (s Secret) Zero() {
	clear(s)
}

// MACPool hands out HMAC states keyed with one secret, reset and ready, so the
// hot path does not rebuild the keyed state per request (0 allocations in the
// steady state). A MACPool is safe for concurrent use.
type MACPool struct {
	pool sync.Pool
}

// NewMACPool returns a pool of HMAC states over h keyed with key. The pool
// keeps a private copy of key to build new states when the pool runs dry;
// drop the pool to drop the copy.
func NewMACPool(h func() hash.Hash, key []byte) *MACPool {
	k := append([]byte(nil), key...)
	p := &MACPool{}
	// hmac.New copies what it needs from k into its pads.
	first := hmac.New(h, k)
	p.pool.New = func() any { return hmac.New(h, k) }
	p.pool.Put(first)
	return p
}

// Get returns a reset HMAC state; give it back with Put.
func (p *MACPool) Get() hash.Hash {
	m := p.pool.Get().(hash.Hash)
	m.Reset()
	return m
}

// Put returns m to the pool.
func (p *MACPool) Put(m hash.Hash) { p.pool.Put(m) }

// HMACSHA256 returns HMAC-SHA256(key, msg) appended to dst.
func HMACSHA256(dst, key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(dst)
}

// HMACSHA512 returns HMAC-SHA512(key, msg) appended to dst.
func HMACSHA512(dst, key, msg []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(msg)
	return m.Sum(dst)
}
