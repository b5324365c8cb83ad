// Package storetest is the conformance suite every store.Store
// implementation must pass: Run(t, newStore) from the implementation's tests.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/store"
)

// Run checks that stores made by newStore behave as the store contract says.
// newStore must return an empty store each time. Transaction tests run when
// the store also implements store.Transactional.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("GetMissing", func(t *testing.T) { testGetMissing(t, newStore(t)) })
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("ConcurrentPut", func(t *testing.T) { testConcurrentPut(t, newStore(t)) })
	t.Run("Update", func(t *testing.T) {
		s := newStore(t)
		ts, ok := s.(store.Transactional)
		if !ok {
			t.Skip("store is not transactional")
		}
		t.Run("Commit", func(t *testing.T) { testCommit(t, s, ts) })
		t.Run("Rollback", func(t *testing.T) { testRollback(t, newStore(t)) })
		t.Run("Create", func(t *testing.T) { testCreate(t, newStore(t)) })
		t.Run("Concurrent", func(t *testing.T) { testConcurrentUpdate(t, newStore(t)) })
	})
}

func mustPut(t *testing.T, s store.Store, key, val string) {
	t.Helper()
	if err := s.Put(context.Background(), key, []byte(val)); err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
}

func wantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v, want %q", key, got, err, want)
	}
}

func wantMissing(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v, want ErrNotFound", key, got, err)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	wantMissing(t, s, "nothing/here")
}

func testPutGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	binary := string([]byte{0, 1, 2, 0xff, 0xfe, '\n', 0})
	tests := []struct {
		name, key, val string
	}{
		{"plain", "a/b", "value"},
		{"empty value", "a/empty", ""},
		{"binary", "a/bin", binary},
		{"unicode key", "keys/ü/ключ", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustPut(t, s, tt.key, tt.val)
			wantValue(t, s, tt.key, tt.val)
		})
	}
	mustPut(t, s, "a/b", "replaced")
	wantValue(t, s, "a/b", "replaced")

	// The returned slice and the slice given to Put are the caller's.
	in := []byte("original")
	if err := s.Put(ctx, "copy", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	got, err := s.Get(ctx, "copy")
	if err != nil {
		t.Fatal(err)
	}
	got[1] = 'Y'
	wantValue(t, s, "copy", "original")
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPut(t, s, "d/1", "one")
	mustPut(t, s, "d/2", "two")
	if err := s.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("Delete(d/1) = %v, want nil", err)
	}
	wantMissing(t, s, "d/1")
	wantValue(t, s, "d/2", "two")
	if err := s.Delete(ctx, "d/1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete(d/1) again = %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, k := range []string{"keys/okx/b", "keys/binance/main", "keys/binance/alt", "keysx", "other/1", "keys/binance/main/sub"} {
		mustPut(t, s, k, "v")
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"keys/binance/", []string{"keys/binance/alt", "keys/binance/main", "keys/binance/main/sub"}},
		{"keys/", []string{"keys/binance/alt", "keys/binance/main", "keys/binance/main/sub", "keys/okx/b"}},
		{"keys", []string{"keys/binance/alt", "keys/binance/main", "keys/binance/main/sub", "keys/okx/b", "keysx"}},
		{"none/", []string{}},
		{"", []string{"keys/binance/alt", "keys/binance/main", "keys/binance/main/sub", "keys/okx/b", "keysx", "other/1"}},
		// LIKE and GLOB metacharacters are plain bytes in a prefix.
		{"keys/%", []string{}},
		{"keys/_", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, err := s.List(ctx, tt.prefix)
			if err != nil {
				t.Fatalf("List(%q) = %v", tt.prefix, err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("List(%q) mismatch (-want +got):\n%s", tt.prefix, diff)
			}
		})
	}
}

func testConcurrentPut(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("c/%d/%d", w, i)
				if err := s.Put(ctx, key, []byte(key)); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, key)
				if err != nil || string(got) != key {
					errs <- fmt.Errorf("Get(%q) = %q, %v", key, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "c/")
	if err != nil || len(keys) != workers*each {
		t.Fatalf("List(c/) = %d keys, %v, want %d", len(keys), err, workers*each)
	}
}

func testCommit(t *testing.T, s store.Store, ts store.Transactional) {
	ctx := context.Background()
	mustPut(t, s, "t/old", "old")
	err := ts.Update(ctx, func(tx store.Tx) error {
		if err := tx.Put(ctx, "t/a", []byte("a")); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "t/old"); err != nil {
			return err
		}
		// A transaction sees its own writes.
		got, err := tx.Get(ctx, "t/a")
		if err != nil || string(got) != "a" {
			return fmt.Errorf("tx.Get(t/a) = %q, %v, want a", got, err)
		}
		if _, err := tx.Get(ctx, "t/old"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("tx.Get(t/old) after delete = %v, want ErrNotFound", err)
		}
		keys, err := tx.List(ctx, "t/")
		if err != nil || !cmp.Equal(keys, []string{"t/a"}) {
			return fmt.Errorf("tx.List(t/) = %q, %v, want [t/a]", keys, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update() = %v, want nil", err)
	}
	wantValue(t, s, "t/a", "a")
	wantMissing(t, s, "t/old")
}

func testRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	ts := s.(store.Transactional)
	mustPut(t, s, "r/keep", "keep")
	boom := errors.New("boom")
	err := ts.Update(ctx, func(tx store.Tx) error {
		if err := tx.Put(ctx, "r/new", []byte("new")); err != nil {
			return err
		}
		if err := tx.Put(ctx, "r/keep", []byte("changed")); err != nil {
			return err
		}
		if err := tx.Create(ctx, "r/created", []byte("c")); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "r/keep"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update() = %v, want the callback's error", err)
	}
	wantMissing(t, s, "r/new")
	wantMissing(t, s, "r/created")
	wantValue(t, s, "r/keep", "keep")
}

func testCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	ts := s.(store.Transactional)
	mustPut(t, s, "x/existing", "v")
	tests := []struct {
		name string
		fn   func(tx store.Tx) error
		want error
	}{
		{"existing", func(tx store.Tx) error { return tx.Create(ctx, "x/existing", []byte("w")) }, store.ErrExists},
		{"new", func(tx store.Tx) error { return tx.Create(ctx, "x/new", []byte("n")) }, nil},
		{"twice in one tx", func(tx store.Tx) error {
			if err := tx.Create(ctx, "x/twice", []byte("1")); err != nil {
				return err
			}
			return tx.Create(ctx, "x/twice", []byte("2"))
		}, store.ErrExists},
		{"after delete in tx", func(tx store.Tx) error {
			if err := tx.Delete(ctx, "x/existing"); err != nil {
				return err
			}
			return tx.Create(ctx, "x/existing", []byte("again"))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ts.Update(ctx, tt.fn); !errors.Is(err, tt.want) {
				t.Fatalf("Update(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	wantValue(t, s, "x/new", "n")
	wantMissing(t, s, "x/twice")
	wantValue(t, s, "x/existing", "again")
}

// testConcurrentUpdate runs read-modify-write transactions on one counter from
// several goroutines; isolation means no increment is lost.
func testConcurrentUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	ts := s.(store.Transactional)
	mustPut(t, s, "counter", "0")
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := ts.Update(ctx, func(tx store.Tx) error {
					v, err := tx.Get(ctx, "counter")
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						return err
					}
					return tx.Put(ctx, "counter", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update() = %v", err)
	}
	got, err := s.Get(ctx, "counter")
	if err != nil || !bytes.Equal(got, []byte(strconv.Itoa(workers*each))) {
		t.Fatalf("Get(counter) = %q, %v, want %d", got, err, workers*each)
	}
}
