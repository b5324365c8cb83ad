// Package memory is an in-memory store.Store for tests and throwaway
// instances. Nothing survives the process. A Store is safe for concurrent
// use; Update runs transactions one at a time.
package memory

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/internal/store"
)

// Store is an in-memory store.Store and store.Transactional.
type Store struct {
	mu   sync.RWMutex
	data map[string][]byte
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.Transactional = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{data: make(map[string][]byte)}
}

// Get returns a copy of the value under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(v), nil
}

// Put stores a copy of val under key.
func (s *Store) Put(ctx context.Context, key string, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = clone(val)
	return nil
}

// Delete removes key, or returns store.ErrNotFound.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[key]; !ok {
		return store.ErrNotFound
	}
	delete(s.data, key)
	return nil
}

// List returns the sorted keys that begin with prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return listMap(s.data, nil, prefix), nil
}

// Update runs fn in a transaction: fn sees its own writes, and they become
// visible together when fn returns nil, or not at all.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &tx{base: s.data, writes: make(map[string][]byte)}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, v := range tx.writes {
		if v == nil {
			delete(s.data, k)
		} else {
			s.data[k] = v
		}
	}
	return nil
}

// tx overlays pending writes on the committed map; a nil value is a delete.
// It is used only while Update holds the write lock.
type tx struct {
	base   map[string][]byte
	writes map[string][]byte
}

func (t *tx) lookup(key string) ([]byte, bool) {
	if v, ok := t.writes[key]; ok {
		return v, v != nil
	}
	v, ok := t.base[key]
	return v, ok
}

func (t *tx) Get(ctx context.Context, key string) ([]byte, error) {
	v, ok := t.lookup(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(v), nil
}

func (t *tx) Put(ctx context.Context, key string, val []byte) error {
	t.writes[key] = clone(val)
	return nil
}

func (t *tx) Create(ctx context.Context, key string, val []byte) error {
	if _, ok := t.lookup(key); ok {
		return store.ErrExists
	}
	t.writes[key] = clone(val)
	return nil
}

func (t *tx) Delete(ctx context.Context, key string) error {
	if _, ok := t.lookup(key); !ok {
		return store.ErrNotFound
	}
	t.writes[key] = nil
	return nil
}

func (t *tx) List(ctx context.Context, prefix string) ([]string, error) {
	return listMap(t.base, t.writes, prefix), nil
}

func listMap(base, writes map[string][]byte, prefix string) []string {
	keys := []string{}
	for k := range base {
		if strings.HasPrefix(k, prefix) {
			if v, ok := writes[k]; ok && v == nil {
				continue
			}
			keys = append(keys, k)
		}
	}
	for k, v := range writes {
		if v == nil || !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, ok := base[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// clone copies v, keeping a non-nil result for an empty value.
func clone(v []byte) []byte {
	return append([]byte{}, v...)
}
