// Package merkle is an RFC 6962 (Certificate Transparency) Merkle tree over
// SHA-256: leaf hashes H(0x00 || data), interior nodes H(0x01 || left ||
// right), and the tree split at the largest power of two below the size.
// It computes roots, inclusion and consistency proofs from a list of leaf
// hashes, verifies both kinds of proof (RFC 9162 §2.1.3.2 and §2.1.4.2),
// and keeps a compact range: the roots of the perfect subtrees of a growing
// tree, which gives its root after every append in O(log n) memory.
package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest: a leaf hash, a node hash or a root.
type Hash [sha256.Size]byte

// Empty is the root of the empty tree: SHA-256 of no bytes.
var Empty = Hash(sha256.Sum256(nil))

// LeafHash is H(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is H(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*sha256.Size]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[1+sha256.Size:], right[:])
	return sha256.Sum256(b[:])
}

// split is the largest power of two smaller than n (n >= 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// Root is the Merkle tree hash of the leaves (given as leaf hashes).
func Root(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return Empty
	case 1:
		return leaves[0]
	}
	k := split(uint64(len(leaves)))
	return NodeHash(Root(leaves[:k]), Root(leaves[k:]))
}

// Errors returned by the proof functions.
var (
	ErrIndex    = errors.New("merkle: index out of range")
	ErrSize     = errors.New("merkle: bad tree sizes")
	ErrProof    = errors.New("merkle: proof does not verify")
	ErrProofLen = errors.New("merkle: wrong number of proof hashes")
)

// InclusionProof is the audit path of leaf index in the tree of the given
// leaves (RFC 6962 §2.1.1).
func InclusionProof(leaves []Hash, index uint64) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, ErrIndex
	}
	return path(index, leaves), nil
}

func path(m uint64, d []Hash) []Hash {
	n := uint64(len(d))
	if n <= 1 {
		return nil
	}
	k := split(n)
	if m < k {
		return append(path(m, d[:k]), Root(d[k:]))
	}
	return append(path(m-k, d[k:]), Root(d[:k]))
}

// ConsistencyProof proves that the tree of the first m leaves is a prefix of
// the tree of all the leaves (RFC 6962 §2.1.2). 0 < m <= len(leaves).
func ConsistencyProof(leaves []Hash, m uint64) ([]Hash, error) {
	if m == 0 || m > uint64(len(leaves)) {
		return nil, ErrSize
	}
	return subproof(m, leaves, true), nil
}

func subproof(m uint64, d []Hash, complete bool) []Hash {
	n := uint64(len(d))
	if m == n {
		if complete {
			return nil
		}
		return []Hash{Root(d)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, d[:k], complete), Root(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), Root(d[:k]))
}

// VerifyInclusion checks that leaf (a leaf hash) is at index in the tree of
// the given size whose root is root.
func VerifyInclusion(leaf Hash, index, size uint64, proof []Hash, root Hash) error {
	if index >= size {
		return ErrIndex
	}
	if want := inclusionLen(index, size); len(proof) != want {
		return fmt.Errorf("%w: %d, want %d", ErrProofLen, len(proof), want)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return ErrProof
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return ErrProof
	}
	return nil
}

// inclusionLen is the length of the audit path of index in a tree of size.
func inclusionLen(index, size uint64) int {
	// levels where the path has a sibling: below the point where index
	// and the last leaf part ways every level counts; above it, only the
	// levels where the right edge has a left sibling.
	inner := bits.Len64(index ^ (size - 1))
	border := bits.OnesCount64(index >> uint(inner))
	return inner + border
}

// VerifyConsistency checks that the tree of size m with root rootM is a
// prefix of the tree of size n with root rootN. 0 < m <= n.
func VerifyConsistency(m, n uint64, rootM, rootN Hash, proof []Hash) error {
	if m == 0 || m > n {
		return ErrSize
	}
	if m == n {
		if len(proof) != 0 {
			return fmt.Errorf("%w: %d, want 0", ErrProofLen, len(proof))
		}
		if rootM != rootN {
			return ErrProof
		}
		return nil
	}
	if want := consistencyLen(m, n); len(proof) != want {
		return fmt.Errorf("%w: %d, want %d", ErrProofLen, len(proof), want)
	}
	p := proof
	if m&(m-1) == 0 { // m is a power of two: its root is a node of the proof
		p = append([]Hash{rootM}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := p[0], p[0]
	for _, c := range p[1:] {
		if sn == 0 {
			return ErrProof
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || fr != rootM || sr != rootN {
		return ErrProof
	}
	return nil
}

// consistencyLen is the length of a consistency proof from m to n (m < n).
func consistencyLen(m, n uint64) int {
	// The path of leaf m-1 in the tree of size n, less the levels where
	// the tree of size m is a perfect subtree (its root stands in for
	// them), plus that root unless m is a power of two.
	shift := uint(bits.TrailingZeros64(m))
	inner := bits.Len64(((m - 1) ^ (n - 1)) >> shift)
	border := bits.OnesCount64((m - 1) >> (shift + uint(inner)))
	l := inner + border
	if m&(m-1) != 0 {
		l++
	}
	return l
}
