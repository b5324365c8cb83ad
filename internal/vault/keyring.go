package vault

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/awnumar/memguard"
)

// keyring holds the term keys that wrap data keys, and the fingerprint key.
// Its plaintext encoding is
//
//	version(1) | fingerprint key(32) | count(4) | count × (term(4) | created unix(8) | key(32))
//
// and it is stored encrypted under the root key. Version 1 keyrings predate
// the version manifest (versions.go); version 2 says the vault has one in
// a single record, version 3 that it is sharded, so that a manifest
// deleted from the store, or put back in an older format, is refused
// rather than rebuilt.
//
// In memory all keys share one memguard buffer (fingerprint key first,
// then one 32-byte slot per term), so the locked memory stays a page or
// two however often the keyring rotates. A keyring is immutable once
// installed; Rotate builds a new one and destroys the old buffer.
type keyring struct {
	current uint32
	buf     *memguard.LockedBuffer
	slot    map[uint32]int // term → offset of its key in buf
	created map[uint32]time.Time
	// legacy is set for a version 1 keyring: no version manifest yet.
	legacy bool
	// single is set for a version 2 keyring: a single-record manifest.
	single bool
}

const (
	keyringVersion = 3
	termKeySize    = 32
	fpKeySize      = 32
	termEntrySize  = 4 + 8 + termKeySize
)

func newKeyring(now time.Time) (*keyring, error) {
	return &keyring{
		current: 1,
		buf:     memguard.NewBufferRandom(fpKeySize + termKeySize),
		slot:    map[uint32]int{1: fpKeySize},
		created: map[uint32]time.Time{1: now.UTC()},
	}, nil
}

// key returns term's key, or nil.
func (r *keyring) key(term uint32) []byte {
	off, ok := r.slot[term]
	if !ok {
		return nil
	}
	return r.buf.Bytes()[off : off+termKeySize]
}

func (r *keyring) fingerprintKey() []byte { return r.buf.Bytes()[:fpKeySize] }

// withNewTerm returns a keyring with one more term, in a new buffer; r is
// unchanged.
func (r *keyring) withNewTerm(now time.Time) (*keyring, error) {
	if r.current == ^uint32(0) {
		return nil, errors.New("keyring has no terms left")
	}
	old := r.buf.Bytes()
	next := &keyring{
		current: r.current + 1,
		buf:     memguard.NewBuffer(len(old) + termKeySize),
		slot:    make(map[uint32]int, len(r.slot)+1),
		created: make(map[uint32]time.Time, len(r.slot)+1),
		legacy:  r.legacy,
		single:  r.single,
	}
	b := next.buf.Bytes()
	copy(b, old)
	if _, err := rand.Read(b[len(old):]); err != nil {
		next.destroy()
		return nil, err
	}
	for t, off := range r.slot {
		next.slot[t] = off
		next.created[t] = r.created[t]
	}
	next.slot[next.current] = len(old)
	next.created[next.current] = now.UTC()
	return next, nil
}

func (r *keyring) destroy() { r.buf.Destroy() }

// seal encodes the keyring and encrypts it under root.
func (r *keyring) seal(root []byte) ([]byte, error) {
	terms := make([]uint32, 0, len(r.slot))
	for t := range r.slot {
		terms = append(terms, t)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i] < terms[j] })
	plain := memguard.NewBuffer(1 + fpKeySize + 4 + len(terms)*termEntrySize)
	defer plain.Destroy()
	b := plain.Bytes()
	b[0] = keyringVersion
	switch {
	case r.legacy:
		b[0] = 1
	case r.single:
		b[0] = 2
	}
	copy(b[1:], r.fingerprintKey())
	binary.BigEndian.PutUint32(b[1+fpKeySize:], uint32(len(terms)))
	off := 1 + fpKeySize + 4
	for _, t := range terms {
		binary.BigEndian.PutUint32(b[off:], t)
		binary.BigEndian.PutUint64(b[off+4:], uint64(r.created[t].Unix()))
		copy(b[off+12:], r.key(t))
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
	const head = 1 + fpKeySize + 4
	if len(b) < head || b[0] < 1 || b[0] > keyringVersion {
		return nil, fmt.Errorf("keyring: bad encoding: %w", ErrTampered)
	}
	n := int(binary.BigEndian.Uint32(b[1+fpKeySize:]))
	if n < 1 || len(b) != head+n*termEntrySize {
		return nil, fmt.Errorf("keyring: bad encoding: %w", ErrTampered)
	}
	r := &keyring{
		buf:     memguard.NewBuffer(fpKeySize + n*termKeySize),
		slot:    make(map[uint32]int, n),
		created: make(map[uint32]time.Time, n),
		legacy:  b[0] == 1,
		single:  b[0] == 2,
	}
	keys := r.buf.Bytes()
	copy(keys, b[1:1+fpKeySize])
	for i := range n {
		e := b[head+i*termEntrySize:]
		t := binary.BigEndian.Uint32(e)
		if _, dup := r.slot[t]; dup || t == 0 {
			r.destroy()
			return nil, fmt.Errorf("keyring: bad term: %w", ErrTampered)
		}
		off := fpKeySize + i*termKeySize
		copy(keys[off:off+termKeySize], e[12:12+termKeySize])
		r.slot[t] = off
		r.created[t] = time.Unix(int64(binary.BigEndian.Uint64(e[4:])), 0).UTC()
		r.current = max(r.current, t)
	}
	return r, nil
}
