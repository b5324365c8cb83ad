package merkle

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// naiveMTH is the RFC 6962 §2.1 definition taken literally, over the leaf
// data, hashing with crypto/sha256 directly: the reference the package is
// checked against.
func naiveMTH(d [][]byte) [32]byte {
	n := len(d)
	if n == 0 {
		return sha256.Sum256(nil)
	}
	if n == 1 {
		return sha256.Sum256(append([]byte{0}, d[0]...))
	}
	k := 1
	for k*2 < n {
		k *= 2
	}
	l, r := naiveMTH(d[:k]), naiveMTH(d[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// rfcLeaves are the leaf inputs of the Certificate Transparency test tree.
func rfcLeaves() [][]byte {
	var out [][]byte
	for _, h := range []string{"", "00", "10", "2021", "3031", "40414243",
		"5051525354555657", "606162636465666768696a6b6c6d6e6f"} {
		b, _ := hex.DecodeString(h)
		out = append(out, b)
	}
	return out
}

func leafHashes(d [][]byte) []Hash {
	out := make([]Hash, len(d))
	for i, b := range d {
		out[i] = LeafHash(b)
	}
	return out
}

func b64h(t *testing.T, s string) Hash {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hash %q", s)
	}
	return Hash(b)
}

// genLeaves returns n distinct leaf inputs.
func genLeaves(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return out
}

func TestRootAgainstDefinition(t *testing.T) {
	for n := 0; n <= 70; n++ {
		d := genLeaves(n)
		want := naiveMTH(d)
		if got := Root(leafHashes(d)); got != Hash(want) {
			t.Errorf("Root(%d leaves) = %x, want %x", n, got, want)
		}
		var c Compact
		for _, l := range leafHashes(d) {
			c.Append(l)
		}
		if got := c.Root(); got != Hash(want) {
			t.Errorf("Compact.Root(%d leaves) = %x, want %x", n, got, want)
		}
		c2, err := NewCompact(c.Size(), c.Nodes())
		if err != nil || c2.Root() != c.Root() {
			t.Errorf("NewCompact(Nodes) = %v, root differs", err)
		}
	}
	if _, err := NewCompact(5, make([]Hash, 1)); err == nil {
		t.Error("NewCompact(5, 1 node) accepted")
	}
}

// TestCompactCopyFrom: a copy reused across sizes has the root of its
// source, and appending to the copy leaves the source as it was.
func TestCompactCopyFrom(t *testing.T) {
	leaves := leafHashes(genLeaves(40))
	var src, dst Compact
	for i, l := range leaves {
		dst.CopyFrom(&src)
		if dst.Size() != src.Size() || dst.Root() != src.Root() {
			t.Fatalf("copy of %d leaves: size %d root %x, want %d %x", i, dst.Size(), dst.Root(), src.Size(), src.Root())
		}
		before := src.Root()
		dst.Append(l)
		if src.Root() != before || src.Size() != uint64(i) {
			t.Fatalf("appending to the copy changed the source at %d leaves", i)
		}
		src.Append(l)
		if dst.Root() != src.Root() {
			t.Fatalf("copy plus leaf %d: root %x, want %x", i, dst.Root(), src.Root())
		}
	}
	if n := testing.AllocsPerRun(100, func() { dst.CopyFrom(&src) }); n != 0 {
		t.Errorf("CopyFrom into a used Compact: %v allocations, want 0", n)
	}
}

// TestPublishedVectors checks values published with the transparency-dev
// Merkle test data (the Certificate Transparency test tree), used as data.
func TestPublishedVectors(t *testing.T) {
	leaves := leafHashes(rfcLeaves())
	root8 := b64h(t, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
	if got := Root(leaves); got != root8 {
		t.Fatalf("root of the 8-leaf test tree = %x", got)
	}
	if hex.EncodeToString(root8[:]) != "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328" {
		t.Fatal("vector decoding")
	}
	incl := []struct {
		index, size uint64
		root, leaf  string
		proof       []string
	}{
		{0, 8, "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
			[]string{"lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=", "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="}},
		{1, 5, "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=", "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
			[]string{"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=", "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="}},
	}
	for _, v := range incl {
		var proof []Hash
		for _, p := range v.proof {
			proof = append(proof, b64h(t, p))
		}
		if err := VerifyInclusion(b64h(t, v.leaf), v.index, v.size, proof, b64h(t, v.root)); err != nil {
			t.Errorf("published inclusion %d/%d: %v", v.index, v.size, err)
		}
		got, _ := InclusionProof(leaves[:v.size], v.index)
		if fmt.Sprint(got) != fmt.Sprint(proof) {
			t.Errorf("InclusionProof(%d/%d) differs from the published proof", v.index, v.size)
		}
		if Root(leaves[:v.size]) != b64h(t, v.root) {
			t.Errorf("root of %d leaves differs from the published one", v.size)
		}
	}
	// consistency 1 -> 8
	cp := []Hash{b64h(t, "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c="), b64h(t, "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4="), b64h(t, "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=")}
	root1 := b64h(t, "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
	if err := VerifyConsistency(1, 8, root1, root8, cp); err != nil {
		t.Errorf("published consistency 1->8: %v", err)
	}
	if got, _ := ConsistencyProof(leaves, 1); fmt.Sprint(got) != fmt.Sprint(cp) {
		t.Error("ConsistencyProof(1, 8) differs from the published proof")
	}
	if err := VerifyConsistency(1, 1, root1, root1, nil); err != nil {
		t.Errorf("published consistency 1->1: %v", err)
	}
}

// mutations returns every way of damaging a proof: flip a bit in each
// node, drop each node, add a node at each position, duplicate one.
func mutations(p []Hash) map[string][]Hash {
	out := map[string][]Hash{}
	for i := range p {
		f := append([]Hash(nil), p...)
		f[i][i%32] ^= 0x01
		out[fmt.Sprintf("flip node %d", i)] = f
		out[fmt.Sprintf("drop node %d", i)] = append(append([]Hash(nil), p[:i]...), p[i+1:]...)
		out[fmt.Sprintf("duplicate node %d", i)] = append(append(append([]Hash(nil), p[:i+1]...), p[i]), p[i+1:]...)
	}
	for i := 0; i <= len(p); i++ {
		extra := sha256.Sum256([]byte{byte(i)})
		out[fmt.Sprintf("insert node at %d", i)] = append(append(append([]Hash(nil), p[:i]...), Hash(extra)), p[i:]...)
	}
	return out
}

func TestInclusionAllSizes(t *testing.T) {
	d := genLeaves(40)
	leaves := leafHashes(d)
	for n := uint64(1); n <= uint64(len(leaves)); n++ {
		root := Hash(naiveMTH(d[:n]))
		for i := uint64(0); i < n; i++ {
			p, err := InclusionProof(leaves[:n], i)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(leaves[i], i, n, p, root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, n, err)
			}
			for name, m := range mutations(p) {
				if VerifyInclusion(leaves[i], i, n, m, root) == nil {
					t.Errorf("inclusion %d/%d with %s verified", i, n, name)
				}
			}
			bad := []struct {
				name        string
				leaf        Hash
				index, size uint64
				root        Hash
			}{
				{"wrong leaf", leaves[(i+1)%n], i, n, root},
				{"index+1", leaves[i], i + 1, n, root},
				{"index-1", leaves[i], i - 1, n, root},
				// A size that keeps the shape of this leaf's path (such as
				// n+1 for some leaves) can verify against the same root:
				// the size is bound by the signed checkpoint, not the
				// proof. Sizes that change the path must fail.
				{"size*2", leaves[i], i, 2 * n, root},
				{"size/2", leaves[i], i, n / 2, root},
				{"size 0", leaves[i], i, 0, root},
				{"wrong root", leaves[i], i, n, Empty},
				{"leaf data not hashed", Hash(sha256.Sum256(d[i])), i, n, root},
			}
			for _, b := range bad {
				if n == 1 && b.name == "wrong leaf" {
					continue // only one leaf
				}
				if VerifyInclusion(b.leaf, b.index, b.size, p, b.root) == nil {
					t.Errorf("inclusion %d/%d with %s verified", i, n, b.name)
				}
			}
		}
	}
	if _, err := InclusionProof(leaves[:3], 3); !errors.Is(err, ErrIndex) {
		t.Errorf("InclusionProof past the end = %v", err)
	}
	if err := VerifyInclusion(leaves[0], 0, 0, nil, Empty); err == nil {
		t.Error("inclusion in the empty tree verified")
	}
}

func TestConsistencyAllSizes(t *testing.T) {
	d := genLeaves(40)
	leaves := leafHashes(d)
	for n := uint64(1); n <= uint64(len(leaves)); n++ {
		rootN := Hash(naiveMTH(d[:n]))
		for m := uint64(1); m <= n; m++ {
			rootM := Hash(naiveMTH(d[:m]))
			p, err := ConsistencyProof(leaves[:n], m)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(m, n, rootM, rootN, p); err != nil {
				t.Fatalf("consistency %d->%d: %v", m, n, err)
			}
			for name, mp := range mutations(p) {
				if VerifyConsistency(m, n, rootM, rootN, mp) == nil {
					t.Errorf("consistency %d->%d with %s verified", m, n, name)
				}
			}
			other := Hash(naiveMTH(append(append([][]byte(nil), d[:m-1]...), []byte("forged"))))
			bad := []struct {
				name         string
				m, n         uint64
				rootM, rootN Hash
			}{
				{"m+1", m + 1, n, rootM, rootN},
				{"m-1", m - 1, n, rootM, rootN},
				{"n*2", m, 2 * n, rootM, rootN},
				{"n/2", m, n / 2, rootM, rootN},
				{"forked old root", m, n, other, rootN},
				{"swapped roots", m, n, rootN, rootM},
				{"wrong new root", m, n, rootM, Empty},
			}
			for _, b := range bad {
				if b.name == "swapped roots" && m == n {
					continue
				}
				if VerifyConsistency(b.m, b.n, b.rootM, b.rootN, p) == nil {
					t.Errorf("consistency %d->%d with %s verified", m, n, b.name)
				}
			}
		}
	}
	if _, err := ConsistencyProof(leaves[:3], 0); !errors.Is(err, ErrSize) {
		t.Errorf("ConsistencyProof(0) = %v", err)
	}
}

func TestLeafAndNodeHashPrefixes(t *testing.T) {
	// RFC 6962: the empty tree, a leaf with its 0x00 prefix, a node with 0x01.
	if hex.EncodeToString(Empty[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root = %x", Empty)
	}
	if got := LeafHash(nil); hex.EncodeToString(got[:]) != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Errorf("LeafHash(empty) = %x", got)
	}
	l, r := LeafHash([]byte("a")), LeafHash([]byte("b"))
	want := sha256.Sum256(bytes.Join([][]byte{{1}, l[:], r[:]}, nil))
	if NodeHash(l, r) != Hash(want) {
		t.Error("NodeHash is not H(0x01 || l || r)")
	}
}
