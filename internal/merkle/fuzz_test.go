package merkle

import (
	"testing"
)

// FuzzMerkleProof builds a tree from the fuzzed leaves and checks that an
// honest inclusion and consistency proof verify, and that the proof with
// one byte changed (at a fuzzed position) or the wrong index or size is
// rejected.
func FuzzMerkleProof(f *testing.F) {
	f.Add([]byte("abcdefgh"), uint8(3), uint8(8), uint8(5), uint16(0))
	f.Add([]byte("x"), uint8(0), uint8(1), uint8(1), uint16(7))
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), uint8(17), uint8(33), uint8(16), uint16(300))
	f.Fuzz(func(t *testing.T, data []byte, idx, size, old uint8, flip uint16) {
		n := uint64(size)%64 + 1
		leaves := make([]Hash, n)
		for i := range leaves {
			var b []byte
			if len(data) > 0 {
				b = []byte{data[i%len(data)], byte(i)}
			}
			leaves[i] = LeafHash(b)
		}
		root := Root(leaves)
		i := uint64(idx) % n
		p, err := InclusionProof(leaves, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(leaves[i], i, n, p, root); err != nil {
			t.Fatalf("honest inclusion %d/%d: %v", i, n, err)
		}
		if len(p) > 0 {
			q := append([]Hash(nil), p...)
			pos := int(flip) % (len(q) * 32)
			q[pos/32][pos%32] ^= 1 << (flip % 8)
			if VerifyInclusion(leaves[i], i, n, q, root) == nil {
				t.Fatalf("inclusion %d/%d with byte %d changed verified", i, n, pos)
			}
		}
		if VerifyInclusion(leaves[i], i, 2*n, p, root) == nil {
			t.Fatalf("inclusion %d/%d verified with size %d", i, n, 2*n)
		}
		m := uint64(old)%n + 1
		rootM := Root(leaves[:m])
		c, err := ConsistencyProof(leaves, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(m, n, rootM, root, c); err != nil {
			t.Fatalf("honest consistency %d->%d: %v", m, n, err)
		}
		if len(c) > 0 {
			q := append([]Hash(nil), c...)
			pos := int(flip) % (len(q) * 32)
			q[pos/32][pos%32] ^= 1 << (flip % 8)
			if VerifyConsistency(m, n, rootM, root, q) == nil {
				t.Fatalf("consistency %d->%d with byte %d changed verified", m, n, pos)
			}
		}
		if m < n && VerifyConsistency(m+1, n, rootM, root, c) == nil {
			t.Fatalf("consistency %d->%d verified as %d->%d", m, n, m+1, n)
		}
	})
}
