package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// H7: 10^6 nonces from the vault's nonce source (randomBytes, which
// sealAEAD uses) hold no repeat. A repeat would mean a broken source: the
// chance of one among 10^6 random 96-bit values is about 2^-57.
func TestHygiene_H7_NoncesDoNotRepeat(t *testing.T) {
	const n = 1_000_000
	all := make([][12]byte, n)
	for i := range all {
		b, err := randomBytes(12)
		if err != nil {
			t.Fatal(err)
		}
		copy(all[i][:], b)
	}
	slices.SortFunc(all, func(a, b [12]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < n; i++ {
		if all[i] == all[i-1] {
			t.Fatalf("nonce %x drawn twice among %d", all[i], n)
		}
	}
	// sealAEAD puts a fresh nonce in front of every ciphertext.
	key := bytes.Repeat([]byte{1}, 32)
	seen := map[[12]byte]bool{}
	for range 10_000 {
		ct, err := sealAEAD(key, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		nonce := [12]byte(ct[:12])
		if seen[nonce] {
			t.Fatalf("sealAEAD reused nonce %x", nonce)
		}
		seen[nonce] = true
	}
}

// capVault opens a vault over e's store with a term cap.
func (e *env) capVault(t *testing.T, limit uint64) *Vault {
	t.Helper()
	v, err := New(Options{Store: e.store, TermOpsCap: limit,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	return v
}

// recordTerm reads the keyring term a stored secret was sealed under.
func (e *env) recordTerm(t *testing.T, kind, id string) uint32 {
	t.Helper()
	b, err := e.store.Get(context.Background(), secretKey(kind, id))
	if err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(b[4:8])
}

// A4/H7: with a cap of 3 encryptions per term, the vault rotates by itself,
// online, every 3 writes; every term's count stays ≤3; old terms decrypt;
// the counts survive a restart.
func TestHygiene_H7_TermOpsCapRotates(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.capVault(t, 3)
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	var terms []uint32
	for i := range 7 {
		if err := v.PutSecret(ctx, "test", fmt.Sprint(i), []byte(fmt.Sprint("value ", i))); err != nil {
			t.Fatalf("PutSecret(%d) = %v", i, err)
		}
		terms = append(terms, e.recordTerm(t, "test", fmt.Sprint(i)))
	}
	if diff := cmp.Diff([]uint32{1, 1, 1, 2, 2, 2, 3}, terms); diff != "" {
		t.Errorf("terms of the 7 records (-want +got):\n%s", diff)
	}
	ops, limit, err := v.TermOps(ctx)
	if err != nil || ops != 1 || limit != 3 {
		t.Errorf("TermOps() = %d, %d, %v; want 1 of 3", ops, limit, err)
	}
	// Restart: the count of term 3 (1) is read back, so two more writes
	// fill it and the third goes to term 4.
	v.Seal()
	v2 := e.capVault(t, 3)
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	for i := 7; i < 10; i++ {
		if err := v2.PutSecret(ctx, "test", fmt.Sprint(i), []byte(fmt.Sprint("value ", i))); err != nil {
			t.Fatalf("PutSecret(%d) = %v", i, err)
		}
		terms = append(terms, e.recordTerm(t, "test", fmt.Sprint(i)))
	}
	if diff := cmp.Diff([]uint32{3, 3, 4}, terms[7:]); diff != "" {
		t.Errorf("terms after a restart (-want +got):\n%s", diff)
	}
	// Old terms still decrypt.
	for i := range 10 {
		got, err := v2.Secret(ctx, "test", fmt.Sprint(i))
		if err != nil || string(got) != fmt.Sprint("value ", i) {
			t.Errorf("Secret(%d) = %q, %v", i, got, err)
		}
	}
	st, _ := v2.Status(ctx)
	if st.Term != 4 || st.Terms != 4 {
		t.Errorf("status term %d of %d terms, want 4 of 4", st.Term, st.Terms)
	}
	t2, err := getTermOps(ctx, e.store.Get)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[uint32]uint64{1: 3, 2: 3, 3: 3, 4: 1}, t2.Ops); diff != "" {
		t.Errorf("stored counts (-want +got):\n%s", diff)
	}
}

// Another writer (a replica) filled the term: this vault's next write is
// refused inside its transaction, the keyring rotates and the write lands
// under the new term. Exchange keys count too.
func TestHygiene_H7_TermOpsExhaustedElsewhere(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.capVault(t, 5)
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(ctx, termOpsKey, []byte(`{"version":1,"ops":{"1":5}}`)); err != nil {
		t.Fatal(err)
	}
	in := KeyInput{Exchange: "binance", Name: "main", APIKey: "apikey-0001", Secret: []byte(marker)}
	if _, err := v.AddKey(ctx, in); err != nil {
		t.Fatalf("AddKey() at a full term = %v", err)
	}
	if got := e.recordTerm(t, exchangeKind, "binance/main"); got != 2 {
		t.Errorf("key sealed under term %d, want 2 (rotated)", got)
	}
	in.APIKey, in.Secret = "apikey-0002", []byte(marker+"2")
	if _, err := v.ReplaceKeySecret(ctx, "binance", "main", in); err != nil {
		t.Fatal(err)
	}
	t2, _ := getTermOps(ctx, e.store.Get)
	if diff := cmp.Diff(map[uint32]uint64{1: 5, 2: 2}, t2.Ops); diff != "" {
		t.Errorf("stored counts (-want +got):\n%s", diff)
	}
	cred, err := v.Credential(ctx, "binance", "main")
	if err != nil || string(cred.Secret) != marker+"2" {
		t.Errorf("Credential() after rotation = %v", err)
	}
	e.checkClean(t)
}

// A damaged counts record fails closed into a rotation with fresh counts,
// never into writes past an unknown count.
func TestHygiene_H7_TermOpsDamagedRecord(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.capVault(t, 100)
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Put(ctx, termOpsKey, []byte(`{not json`)); err != nil {
		t.Fatal(err)
	}
	if err := v.PutSecret(ctx, "test", "a", []byte("v")); err != nil {
		t.Fatalf("PutSecret() with damaged counts = %v", err)
	}
	if got := e.recordTerm(t, "test", "a"); got != 2 {
		t.Errorf("secret sealed under term %d, want 2 (rotated with fresh counts)", got)
	}
	t2, err := getTermOps(ctx, e.store.Get)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[uint32]uint64{2: 1}, t2.Ops); diff != "" {
		t.Errorf("stored counts (-want +got):\n%s", diff)
	}
}

// Concurrent writers never push a term past its cap.
func TestHygiene_H7_TermOpsConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.capVault(t, 4)
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := v.PutSecret(ctx, "test", fmt.Sprint(w, "-", i), []byte("v")); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("PutSecret() = %v", err)
	}
	perTerm := map[uint32]uint64{}
	for w := range workers {
		for i := range each {
			perTerm[e.recordTerm(t, "test", fmt.Sprint(w, "-", i))]++
		}
	}
	t2, _ := getTermOps(ctx, e.store.Get)
	var total uint64
	for term, n := range t2.Ops {
		if n > 4 {
			t.Errorf("term %d counted %d encryptions, cap 4", term, n)
		}
		if perTerm[term] != n {
			t.Errorf("term %d: %d records, %d counted", term, perTerm[term], n)
		}
		total += n
	}
	if total != workers*each {
		t.Errorf("counted %d encryptions, want %d", total, workers*each)
	}
}

// Two vaults on one store (two replicas): when both find the term full,
// the second adopts the keyring the first rotated to instead of writing a
// second, different term over it; everything each sealed stays readable.
func TestHygiene_H7_TermOpsTwoReplicas(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	a := e.capVault(t, 2)
	if _, err := a.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	b := e.capVault(t, 2)
	if err := b.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	for i, v := range []*Vault{a, a, a, b} {
		if err := v.PutSecret(ctx, "test", fmt.Sprint(i), []byte(fmt.Sprint("value ", i))); err != nil {
			t.Fatalf("PutSecret(%d) = %v", i, err)
		}
	}
	// a filled term 1, rotated to 2 and wrote once under it; b, still at
	// term 1, found it full, adopted a's keyring (overwriting it would
	// make a's term-2 record unreadable) and filled term 2: it rotated
	// to 3.
	var terms []uint32
	for i := range 4 {
		terms = append(terms, e.recordTerm(t, "test", fmt.Sprint(i)))
	}
	if diff := cmp.Diff([]uint32{1, 1, 2, 2}, terms); diff != "" {
		t.Errorf("terms (-want +got):\n%s", diff)
	}
	c := e.capVault(t, 2)
	if err := c.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if got, err := c.Secret(ctx, "test", fmt.Sprint(i)); err != nil || string(got) != fmt.Sprint("value ", i) {
			t.Errorf("Secret(%d) from a fresh vault = %q, %v", i, got, err)
		}
	}
	if st, _ := c.Status(ctx); st.Term != 3 {
		t.Errorf("stored keyring at term %d, want 3", st.Term)
	}
}
