package exchange

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"sync"
)

// MAC computes one HMAC (RFC 2104) on pooled memory, so a signer's MAC
// allocates nothing in the steady state: the message is gathered in the
// MAC's own buffer (Write, WriteString, WriteByte copy into it), Sum keys
// the pads with the secret, hashes and wipes the pads, and Release wipes
// the message and the result and gives the MAC back. Nothing the caller
// passes is kept.
//
// Get one with NewHMACSHA256 or NewHMACSHA512; a MAC is for one goroutine
// and one computation at a time.
type MAC struct {
	h     hash.Hash
	bs    int // the hash's block size: which pool m belongs to
	pad   [sha512.BlockSize]byte
	kh    [sha512.Size]byte // a key longer than a block, hashed
	inner [sha512.Size]byte
	out   [sha512.Size]byte
	msg   []byte
}

var (
	mac256 = sync.Pool{New: func() any { return &MAC{h: sha256.New(), bs: sha256.BlockSize} }}
	mac512 = sync.Pool{New: func() any { return &MAC{h: sha512.New(), bs: sha512.BlockSize} }}
)

// maxMACMessage is the largest message buffer kept for reuse.
const maxMACMessage = 64 << 10

// NewHMACSHA256 returns an empty HMAC-SHA256 computation from the pool.
func NewHMACSHA256() *MAC { return mac256.Get().(*MAC) }

// NewHMACSHA512 returns an empty HMAC-SHA512 computation from the pool.
func NewHMACSHA512() *MAC { return mac512.Get().(*MAC) }

// Write appends p to the message. It never fails.
func (m *MAC) Write(p []byte) (int, error) {
	m.msg = append(m.msg, p...)
	return len(p), nil
}

// WriteString appends s to the message. It never fails.
func (m *MAC) WriteString(s string) (int, error) {
	m.msg = append(m.msg, s...)
	return len(s), nil
}

// WriteByte appends c to the message. It never fails.
func (m *MAC) WriteByte(c byte) error {
	m.msg = append(m.msg, c)
	return nil
}

// Sum returns HMAC(key, message). The result is m's memory: valid until
// Release, and wiped then.
func (m *MAC) Sum(key []byte) []byte {
	h, bs := m.h, m.bs
	// key goes to no interface method, so a caller's key on its stack
	// stays there.
	k := key
	if len(k) > bs {
		if bs == sha512.BlockSize {
			d := sha512.Sum512(key)
			k = append(m.kh[:0], d[:]...)
			clear(d[:])
		} else {
			d := sha256.Sum256(key)
			k = append(m.kh[:0], d[:]...)
			clear(d[:])
		}
	}
	pad := m.pad[:bs]
	for i := range pad {
		pad[i] = 0x36
	}
	for i, c := range k {
		pad[i] ^= c
	}
	h.Reset()
	h.Write(pad)
	h.Write(m.msg)
	inner := h.Sum(m.inner[:0])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad)
	h.Write(inner)
	out := h.Sum(m.out[:0])
	clear(m.pad[:])
	clear(m.kh[:])
	clear(m.inner[:])
	h.Reset()
	return out
}

// Release wipes the message and the result and returns m to its pool. m
// must not be used afterwards.
func (m *MAC) Release() {
	clear(m.msg)
	clear(m.out[:])
	if cap(m.msg) > maxMACMessage {
		m.msg = nil
	}
	m.msg = m.msg[:0]
	if m.bs == sha512.BlockSize {
		mac512.Put(m)
	} else {
		mac256.Put(m)
	}
}
