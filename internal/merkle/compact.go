package merkle

import (
	"errors"
	"math/bits"
)

// Compact is a growing tree kept as the roots of its perfect subtrees, left
// to right (one per set bit of the size, largest first). The zero value is
// the empty tree.
type Compact struct {
	size  uint64
	nodes []Hash
}

// NewCompact rebuilds a compact range from its size and nodes (as returned
// by Nodes). It fails when the number of nodes does not fit the size.
func NewCompact(size uint64, nodes []Hash) (*Compact, error) {
	if len(nodes) != bits.OnesCount64(size) {
		return nil, errors.New("merkle: compact range: node count does not match the size")
	}
	return &Compact{size: size, nodes: append([]Hash(nil), nodes...)}, nil
}

// Append adds a leaf (its leaf hash).
func (c *Compact) Append(leaf Hash) {
	c.nodes = append(c.nodes, leaf)
	// every trailing one bit of the old size is a perfect subtree that the
	// new leaf completes into one of twice the size
	for s := c.size; s&1 == 1; s >>= 1 {
		n := len(c.nodes)
		c.nodes[n-2] = NodeHash(c.nodes[n-2], c.nodes[n-1])
		c.nodes = c.nodes[:n-1]
	}
	c.size++
}

// CopyFrom makes c a copy of src, reusing c's memory: a Compact that is
// copied into again and again allocates only the first time.
func (c *Compact) CopyFrom(src *Compact) {
	c.size = src.size
	c.nodes = append(c.nodes[:0], src.nodes...)
}

// Size is the number of leaves.
func (c *Compact) Size() uint64 { return c.size }

// Nodes returns a copy of the subtree roots, largest subtree first.
func (c *Compact) Nodes() []Hash { return append([]Hash(nil), c.nodes...) }

// Root is the Merkle tree hash of the leaves appended so far.
func (c *Compact) Root() Hash {
	if len(c.nodes) == 0 {
		return Empty
	}
	r := c.nodes[len(c.nodes)-1]
	for i := len(c.nodes) - 2; i >= 0; i-- {
		r = NodeHash(c.nodes[i], r)
	}
	return r
}
