package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keywarden/keywarden/internal/store"
)

// Keyring term usage (security.md H7, anchor A4). Every sealed record is one
// AES-GCM encryption under the current term key (the record's data key is
// wrapped with a random 96-bit nonce). Random nonces stay safely unique for
// far fewer than 2^32 encryptions under one key, so the vault counts them
// per term and moves to a new term before the count passes a cap.
//
// The counts live in the store beside the keyring (termOpsKey, not secret)
// and are incremented in the same transaction as the record they count, so
// a restart, or another replica sharing the store, continues from the
// stored count. A write that would pass the cap is refused inside its
// transaction; the vault then rotates the keyring online and writes again
// under the new term. A write that reaches the cap rotates at once, so the
// next one does not wait. Old terms keep decrypting.

// DefaultTermOpsCap is the encryptions allowed under one keyring term
// unless Options.TermOpsCap says otherwise: 2^30, a quarter of the 2^32
// bound for random 96-bit GCM nonces.
const DefaultTermOpsCap = 1 << 30

// termOpsKey holds the per-term encryption counts.
const termOpsKey = "vault/keyring-ops"

// errTermExhausted refuses an encryption under a term at its cap;
// errOpsDamaged, a counts record that does not decode.
var (
	errTermExhausted = errors.New("the keyring term reached its encryption cap")
	errOpsDamaged    = errors.New("keyring operation counts failed to decode")
)

// maxTermRetries bounds how often one write is retried under a new term
// (more than one only when concurrent writers fill each new term first).
const maxTermRetries = 16

// termOps is the record under termOpsKey.
type termOps struct {
	Version int               `json:"version"`
	Ops     map[uint32]uint64 `json:"ops"`
}

func decodeTermOps(b []byte) (termOps, error) {
	t := termOps{Version: 1, Ops: map[uint32]uint64{}}
	if b == nil {
		return t, nil
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Version != 1 {
		return termOps{}, fmt.Errorf("%w: %w", errOpsDamaged, ErrTampered)
	}
	if t.Ops == nil {
		t.Ops = map[uint32]uint64{}
	}
	return t, nil
}

// getTermOps reads the counts; a missing record is all zero.
func getTermOps(ctx context.Context, get func(context.Context, string) ([]byte, error)) (termOps, error) {
	b, err := get(ctx, termOpsKey)
	if errors.Is(err, store.ErrNotFound) {
		b, err = nil, nil
	}
	if err != nil {
		return termOps{}, err
	}
	return decodeTermOps(b)
}

// countOp records, in tx, one encryption under term. It refuses with
// errTermExhausted (and records nothing) when the term is at its cap. A
// damaged counts record refuses every write (fail closed) until a rotation
// writes a new one.
func (v *Vault) countOp(ctx context.Context, tx store.Tx, term uint32) error {
	t, err := getTermOps(ctx, tx.Get)
	if err != nil {
		return err
	}
	n := t.Ops[term] + 1
	if n > v.opsCap {
		return errTermExhausted
	}
	t.Ops[term] = n
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Put(ctx, termOpsKey, b); err != nil {
		return err
	}
	v.lastOps.Store(n)
	return nil
}

// withTerm runs op, a write that seals records under the current term and
// counts them with countOp. When the term is at its cap, the keyring is
// rotated and op runs again (a bounded number of times); when op brought the term to its cap, the
// keyring is rotated before withTerm returns.
func (v *Vault) withTerm(ctx context.Context, op func() error) error {
	err := op()
	for try := 0; try < maxTermRetries && (errors.Is(err, errTermExhausted) || errors.Is(err, errOpsDamaged)); try++ {
		if rerr := v.rotateIfExhausted(ctx); rerr != nil {
			return rerr
		}
		err = op()
	}
	if err == nil && v.lastOps.Load() >= v.opsCap {
		if rerr := v.rotateIfExhausted(ctx); rerr != nil {
			// The write is done; the next one retries the rotation.
			v.log.Error("keyring term at its encryption cap; automatic rotation failed", "err", rerr)
		}
	}
	return err
}

// rotateIfExhausted adds a keyring term if the current one is at its cap
// (as stored: another writer may have rotated already).
func (v *Vault) rotateIfExhausted(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ring == nil {
		return fmt.Errorf("vault rotate: %w", ErrSealed)
	}
	t, err := getTermOps(ctx, v.store.Get)
	damaged := errors.Is(err, errOpsDamaged)
	if err != nil && !damaged {
		return fmt.Errorf("vault rotate: %w", err)
	}
	term := v.ring.current
	if !damaged && t.Ops[term] < v.opsCap {
		v.lastOps.Store(t.Ops[term])
		return nil
	}
	if damaged {
		v.log.Error("keyring operation counts failed to decode; rotating to a new term and counting afresh")
	}
	if err := v.rotateLocked(ctx, damaged); err != nil {
		return err
	}
	v.log.Warn("keyring rotated automatically: the previous term reached its encryption cap",
		"previous_term", term, "keyring_term", v.ring.current, "cap", v.opsCap)
	return nil
}

// TermOps returns how many encryptions the current keyring term has done,
// as stored, and the cap. The vault must be unsealed.
func (v *Vault) TermOps(ctx context.Context) (ops, limit uint64, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.ring == nil {
		return 0, 0, fmt.Errorf("vault term ops: %w", ErrSealed)
	}
	t, err := getTermOps(ctx, v.store.Get)
	if err != nil {
		return 0, 0, fmt.Errorf("vault term ops: %w", err)
	}
	return t.Ops[v.ring.current], v.opsCap, nil
}
