// Package store is keywarden's persistence seam. A Store holds sealed records
// and metadata only: it is untrusted, like Vault's physical backend, and
// everything secret in it was sealed by the vault first.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Get and Delete when no record has the key.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by Create when a record already has the key.
var ErrExists = errors.New("already exists")

// ErrFull is wrapped by write errors caused by a full disk or a storage
// quota, so callers can fail closed and alert.
var ErrFull = errors.New("storage is full")

// Store is a key-value store of opaque records. Keys are slash-separated
// paths such as "keys/binance/main". Implementations are safe for concurrent
// use and make every successful write durable before returning.
//
// Get returns a copy of the value that the caller may keep or change. Put
// replaces any existing value. Delete returns ErrNotFound when no record has
// the key. List returns, in ascending byte order, every key that begins with
// prefix (all descendants, not just one level), and an empty list when none
// does.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error) // ErrNotFound
	Put(ctx context.Context, key string, val []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// Tx is a set of reads and writes that commit together or not at all.
type Tx interface {
	Store
	// Create writes val under key only if no record has key (ErrExists).
	Create(ctx context.Context, key string, val []byte) error
}

// Transactional is a Store that can group writes atomically. fn's writes
// are all durable when Update returns nil, and none are visible otherwise.
type Transactional interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
}
