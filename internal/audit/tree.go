package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/keywarden/keywarden/internal/merkle"
)

// Merkle checkpoints. Besides the hash chain, the log keeps an RFC 6962
// Merkle tree whose leaves are the record hashes (leaf i is record seq
// i+1, checkpoint records included). Every checkpoint record carries the
// tree's root over the records it covers, the compact range of that tree
// (so that Open can resume the tree without reading the whole history), and
// an Ed25519 signature over a C2SP checkpoint note:
//
//	keywarden.audit/merkle/v1
//	<tree size>
//	<base64 root>
//
// Consecutive checkpoints are then provably consistent (one tree extends
// the other), any record can be proved included in a checkpoint, and a
// witness holding two different roots for one size has evidence of a fork.

// MerkleOrigin is the origin line (and signing key name) of the log's C2SP
// checkpoint notes.
const MerkleOrigin = "keywarden.audit/merkle/v1"

// leafOf is the Merkle leaf hash of a record, from its hex hash.
func leafOf(hashHex string) merkle.Hash {
	var b [32]byte
	hex.Decode(b[:], []byte(hashHex))
	return merkle.LeafHash(b[:])
}

// merkleNote is the C2SP checkpoint body a note signature covers.
func merkleNote(size uint64, root merkle.Hash) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", MerkleOrigin, size, b64(root[:]))
}

// NoteKeyHash is the C2SP signed-note key hash of pub under MerkleOrigin:
// the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
func NoteKeyHash(pub ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(MerkleOrigin + "\n"))
	h.Write([]byte{0x01})
	h.Write(pub)
	return h.Sum(nil)[:4]
}

// CheckpointNote renders a checkpoint's C2SP signed note: the body, a
// blank line and the signature line. Empty for a checkpoint without a
// Merkle root.
func CheckpointNote(cp *Checkpoint) string {
	root, err := parseHash(cp.Root)
	if err != nil || cp.NoteSig == "" {
		return ""
	}
	return string(merkleNote(cp.Count, root)) + "\n\u2014 " + MerkleOrigin + " " + cp.NoteSig + "\n"
}

// verifyNoteSig checks a C2SP note signature blob (base64 of the 4-byte
// key hash and the Ed25519 signature) over msg.
func verifyNoteSig(pub ed25519.PublicKey, msg []byte, blob string) bool {
	b, err := base64.StdEncoding.DecodeString(blob)
	if err != nil || len(b) != 4+ed25519.SignatureSize || !bytes.Equal(b[:4], NoteKeyHash(pub)) {
		return false
	}
	return ed25519.Verify(pub, msg, b[4:])
}

func parseHash(s string) (merkle.Hash, error) {
	var h merkle.Hash
	if len(s) != 64 || !isLowerHex([]byte(s)) {
		return h, errors.New("malformed hash")
	}
	hex.Decode(h[:], []byte(s))
	return h, nil
}

// compactFromCheckpoint rebuilds the tree a checkpoint covers from its
// compact range, checking it against the checkpoint's root.
func compactFromCheckpoint(cp *Checkpoint) (*merkle.Compact, error) {
	root, err := parseHash(cp.Root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint root: %w", err)
	}
	nodes := make([]merkle.Hash, len(cp.Tree))
	for i, s := range cp.Tree {
		if nodes[i], err = parseHash(s); err != nil {
			return nil, fmt.Errorf("checkpoint tree: %w", err)
		}
	}
	c, err := merkle.NewCompact(cp.Count, nodes)
	if err != nil {
		return nil, err
	}
	if c.Root() != root {
		return nil, errors.New("checkpoint tree does not hash to its root")
	}
	return c, nil
}

// merkleFields fills a checkpoint's Merkle fields from tree (the tree over
// the records it covers).
func (l *Log) merkleFields(cp *Checkpoint, tree *merkle.Compact) {
	root := tree.Root()
	cp.Root = hex.EncodeToString(root[:])
	nodes := tree.Nodes()
	cp.Tree = make([]string, len(nodes))
	for i, n := range nodes {
		cp.Tree[i] = hex.EncodeToString(n[:])
	}
	sig := ed25519.Sign(l.opts.Signer, merkleNote(cp.Count, root))
	cp.NoteSig = b64(append(NoteKeyHash(l.pubKey), sig...))
}

// rebuildTree computes the tree over every record in dir from the first;
// for a log written before Merkle checkpoints existed. It returns nil when
// the first records were pruned.
func rebuildTree(dir string) (*merkle.Compact, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) > 0 {
		if first, _ := segmentSeq(segs[0]); first != 1 {
			return nil, nil
		}
	}
	c := &merkle.Compact{}
	for _, name := range segs {
		err := readLines(filepath.Join(dir, name), func(line []byte, n int, off int64, complete bool) error {
			r, err := parseLine(line)
			if err != nil {
				return &VerifyError{Segment: name, Line: n, Reason: err.Error()}
			}
			if r.Seq != c.Size()+1 {
				return &VerifyError{Segment: name, Line: n, Seq: r.Seq, Reason: "seq out of order"}
			}
			c.Append(leafOf(r.Hash))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// merkleVerifier follows the records during Verify: it recomputes the tree,
// checks each Merkle checkpoint against it and proves each one consistent
// with the one before.
type merkleVerifier struct {
	pub         ed25519.PublicKey
	tree        *merkle.Compact // nil until known (after an anchor: the first checkpoint with a tree)
	fromGenesis bool            // leaves holds every leaf from record 1
	leaves      []merkle.Hash
	last        *treeHead
	checkpoints int
	consistency int
}

type treeHead struct {
	size uint64
	root merkle.Hash
}

func (v *merkleVerifier) record(r *Record) error {
	if cp := r.Checkpoint; cp != nil && (cp.Root != "" || len(cp.Tree) > 0 || cp.NoteSig != "") {
		t, err := compactFromCheckpoint(cp)
		if err != nil {
			return err
		}
		root := t.Root()
		if v.pub != nil && !verifyNoteSig(v.pub, merkleNote(cp.Count, root), cp.NoteSig) {
			return errors.New("checkpoint note signature does not verify")
		}
		if v.tree != nil && v.tree.Root() != root {
			return errors.New("checkpoint Merkle root does not match the records")
		}
		if v.last != nil && v.fromGenesis {
			proof, err := merkle.ConsistencyProof(v.leaves[:cp.Count], v.last.size)
			if err == nil {
				err = merkle.VerifyConsistency(v.last.size, cp.Count, v.last.root, root, proof)
			}
			if err != nil {
				return fmt.Errorf("checkpoint for %d records is not consistent with the one for %d: %w", cp.Count, v.last.size, err)
			}
			v.consistency++
		}
		v.tree = t
		v.last = &treeHead{size: cp.Count, root: root}
		v.checkpoints++
	}
	if v.tree != nil {
		leaf := leafOf(r.Hash)
		v.tree.Append(leaf)
		if v.fromGenesis {
			v.leaves = append(v.leaves, leaf)
		}
	}
	return nil
}

// InclusionProof proves that one record is in the Merkle tree of a signed
// checkpoint.
type InclusionProof struct {
	Seq      uint64 // the record; leaf index Seq-1
	Hash     string // the record's hash (hex)
	LeafHash merkle.Hash
	TreeSize uint64
	Root     merkle.Hash
	Proof    []merkle.Hash
	Note     string // the checkpoint's C2SP signed note
}

// Verify checks the proof against its root.
func (p InclusionProof) Verify() error {
	if want := leafOf(p.Hash); want != p.LeafHash {
		return errors.New("leaf hash does not match the record hash")
	}
	return merkle.VerifyInclusion(p.LeafHash, p.Seq-1, p.TreeSize, p.Proof, p.Root)
}

// ProveRecord verifies the log in dir (signatures with pub, when given) and
// returns an inclusion proof of record seq against the latest Merkle
// checkpoint. It needs the whole history: after a prune it fails.
func ProveRecord(dir string, pub ed25519.PublicKey, seq uint64) (InclusionProof, error) {
	var p InclusionProof
	rep, err := Verify(dir, pub)
	if err != nil {
		return p, err
	}
	if rep.Anchor != nil {
		return p, errors.New("audit: prove: records before the prune anchor are gone; a proof needs the whole history")
	}
	if rep.TreeSize == 0 {
		return p, errors.New("audit: prove: the log has no Merkle checkpoint yet")
	}
	if seq == 0 || seq > rep.TreeSize {
		return p, fmt.Errorf("audit: prove: record %d is not covered by the latest Merkle checkpoint (tree size %d)", seq, rep.TreeSize)
	}
	leaves := make([]merkle.Hash, 0, rep.TreeSize)
	segs, err := listSegments(dir)
	if err != nil {
		return p, fmt.Errorf("audit: prove: %w", err)
	}
	for _, name := range segs {
		err := readLines(filepath.Join(dir, name), func(line []byte, n int, off int64, complete bool) error {
			r, err := parseLine(line)
			if err != nil {
				return &VerifyError{Segment: name, Line: n, Reason: err.Error()}
			}
			switch {
			case r.Seq <= rep.TreeSize:
				leaves = append(leaves, leafOf(r.Hash))
				if r.Seq == seq {
					p.Hash = r.Hash
				}
			case r.Seq == rep.TreeSize+1 && r.Checkpoint != nil:
				p.Note = CheckpointNote(r.Checkpoint)
				return errStop
			}
			return nil
		})
		if err == errStop {
			break
		}
		if err != nil {
			return p, fmt.Errorf("audit: prove: %w", err)
		}
	}
	if uint64(len(leaves)) != rep.TreeSize || p.Note == "" {
		return p, errors.New("audit: prove: the log changed while it was read")
	}
	p.Seq, p.TreeSize, p.LeafHash = seq, rep.TreeSize, leaves[seq-1]
	p.Root, _ = parseHash(rep.Root)
	if p.Proof, err = merkle.InclusionProof(leaves, seq-1); err != nil {
		return p, fmt.Errorf("audit: prove: %w", err)
	}
	if err := p.Verify(); err != nil {
		return p, fmt.Errorf("audit: prove: %w", err)
	}
	return p, nil
}
