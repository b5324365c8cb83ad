package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/awnumar/memguard"
)

// keyring holds the term keys that wrap data keys, and the fingerprint key.
// Its plaintext encoding is
//
//	version(1) | fingerprint key(32) | count(4) | count × (term(4) | created unix(8) | key(32))
//
// and it is stored encrypted under the root key. A keyring is immutable once
// installed; Rotate builds a new one that shares the old term buffers.
type keyring struct {
	current     uint32
	terms       map[uint32]*memguard.LockedBuffer
	created     map[uint32]time.Time
	fingerprint *memguard.LockedBuffer
}

const (
	keyringVersion = 1
	termKeySize    = 32
	termEntrySize  = 4 + 8 + termKeySize
)

func newKeyring(now time.Time) (*keyring, error) {
	r := &keyring{
		current:     1,
		terms:       map[uint32]*memguard.LockedBuffer{1: memguard.NewBufferRandom(termKeySize)},
		created:     map[uint32]time.Time{1: now.UTC()},
		fingerprint: memguard.NewBufferRandom(32),
	}
	return r, nil
}

// withNewTerm returns a keyring with one more term; the old one is
// unchanged.
func (r *keyring) withNewTerm(now time.Time) (*keyring, error) {
	if r.current == ^uint32(0) {
		return nil, errors.New("keyring has no terms left")
	}
	next := &keyring{
		current:     r.current + 1,
		terms:       make(map[uint32]*memguard.LockedBuffer, len(r.terms)+1),
		created:     make(map[uint32]time.Time, len(r.terms)+1),
		fingerprint: r.fingerprint,
	}
	for t, k := range r.terms {
		next.terms[t] = k
		next.created[t] = r.created[t]
	}
	next.terms[next.current] = memguard.NewBufferRandom(termKeySize)
	next.created[next.current] = now.UTC()
	return next, nil
}

// destroyNewest frees the term a failed rotation added.
func (r *keyring) destroyNewest() {
	r.terms[r.current].Destroy()
}

func (r *keyring) destroy() {
	for _, k := range r.terms {
		k.Destroy()
	}
	r.fingerprint.Destroy()
}

// seal encodes the keyring and encrypts it under root.
func (r *keyring) seal(root []byte) ([]byte, error) {
	buf := memguard.NewBuffer(1 + 32 + 4 + len(r.terms)*termEntrySize)
	defer buf.Destroy()
	b := buf.Bytes()
	b[0] = keyringVersion
	copy(b[1:], r.fingerprint.Bytes())
	binary.BigEndian.PutUint32(b[33:], uint32(len(r.terms)))
	off := 37
	for t := uint32(1); t <= r.current; t++ {
		k, ok := r.terms[t]
		if !ok {
			continue
		}
		binary.BigEndian.PutUint32(b[off:], t)
		binary.BigEndian.PutUint64(b[off+4:], uint64(r.created[t].Unix()))
		copy(b[off+12:], k.Bytes())
		off += termEntrySize
	}
	return sealAEAD(root, b, []byte(keyringAAD))
}

// openKeyring decrypts and decodes a sealed keyring.
func openKeyring(root, sealed []byte) (*keyring, error) {
	b, err := openAEAD(root, sealed, []byte(keyringAAD))
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if len(b) < 37 || b[0] != keyringVersion {
		return nil, fmt.Errorf("keyring: bad encoding: %w", ErrTampered)
	}
	n := int(binary.BigEndian.Uint32(b[33:]))
	if n < 1 || len(b) != 37+n*termEntrySize {
		return nil, fmt.Errorf("keyring: bad encoding: %w", ErrTampered)
	}
	r := &keyring{
		terms:       make(map[uint32]*memguard.LockedBuffer, n),
		created:     make(map[uint32]time.Time, n),
		fingerprint: memguard.NewBufferFromBytes(append([]byte(nil), b[1:33]...)),
	}
	for i := range n {
		e := b[37+i*termEntrySize:]
		t := binary.BigEndian.Uint32(e)
		if _, dup := r.terms[t]; dup || t == 0 {
			r.destroy()
			return nil, fmt.Errorf("keyring: bad term: %w", ErrTampered)
		}
		r.terms[t] = memguard.NewBufferFromBytes(append([]byte(nil), e[12:12+termKeySize]...))
		r.created[t] = time.Unix(int64(binary.BigEndian.Uint64(e[4:])), 0).UTC()
		r.current = max(r.current, t)
	}
	return r, nil
}
