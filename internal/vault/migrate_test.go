package vault_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/vault/sealtest"
)

var (
	testPass = []byte("correct horse battery staple")
	testKDF  = vault.MinKDF()
)

func open(t *testing.T, st store.Store) *vault.Vault {
	t.Helper()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	return v
}

func initPass(t *testing.T, st store.Store) *vault.Vault {
	t.Helper()
	v := open(t, st)
	if _, err := v.Init(context.Background(), vault.InitOptions{Passphrase: testPass, KDF: &testKDF}); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrateSealUnderLoad migrates passphrase → seal A → seal B while a
// writer and a reader keep using the vault, then checks that every
// acknowledged write survives under the final seal and the old seals no
// longer open it.
func TestMigrateSealUnderLoad(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v := initPass(t, st)
	const ids = 16
	for i := range ids {
		if err := v.PutSecret(ctx, "load", fmt.Sprint(i), []byte("v0")); err != nil {
			t.Fatal(err)
		}
	}

	// Last acknowledged value per id; bounded in operations and time.
	var (
		mu       sync.Mutex
		acked    = make(map[int]string)
		ops      atomic.Int64
		loadErrs = make(chan error, 2)
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(20 * time.Second)
	const maxOps = 20000
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		for n := 0; n < maxOps && time.Now().Before(deadline); n++ {
			select {
			case <-stop:
				return
			default:
			}
			id, val := n%ids, fmt.Sprintf("v%d", n+1)
			if err := v.PutSecret(ctx, "load", fmt.Sprint(id), []byte(val)); err != nil {
				loadErrs <- fmt.Errorf("write %d: %w", n, err)
				return
			}
			mu.Lock()
			acked[id] = val
			mu.Unlock()
			ops.Add(1)
		}
	}()
	go func() { // reader
		defer wg.Done()
		for n := 0; n < maxOps && time.Now().Before(deadline); n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := v.Secret(ctx, "load", fmt.Sprint(n%ids)); err != nil {
				loadErrs <- fmt.Errorf("read %d: %w", n, err)
				return
			}
			ops.Add(1)
		}
	}()

	a, b := sealtest.NewSoft("key-a"), sealtest.NewSoft("key-b")
	waitOps := func(min int64) {
		for ops.Load() < min && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitOps(50)
	if err := v.MigrateSeal(ctx, a); err != nil {
		t.Fatalf("MigrateSeal(passphrase → a) = %v", err)
	}
	waitOps(ops.Load() + 50)
	if err := v.MigrateSeal(ctx, b); err != nil {
		t.Fatalf("MigrateSeal(a → b) = %v", err)
	}
	waitOps(ops.Load() + 50)
	close(stop)
	wg.Wait()
	close(loadErrs)
	for err := range loadErrs {
		t.Errorf("load during migration: %v", err)
	}
	if v.Sealed() {
		t.Fatal("vault sealed itself during the migration")
	}
	t.Logf("%d reads and writes during two migrations", ops.Load())

	v.Seal()
	v2 := open(t, st)
	if err := v2.Unseal(ctx, testPass); err == nil {
		t.Error("the old passphrase still unseals after migration")
	}
	if err := v2.UnsealWithSeal(ctx, a); err == nil {
		t.Error("seal a still unseals after migrating to b")
	}
	if err := v2.UnsealWithSeal(ctx, b); err != nil {
		t.Fatalf("UnsealWithSeal(b) = %v", err)
	}
	for i := range ids {
		got, err := v2.Secret(ctx, "load", fmt.Sprint(i))
		if err != nil {
			t.Fatalf("Secret(%d) = %v", i, err)
		}
		want, ok := acked[i]
		if !ok {
			want = "v0"
		}
		if string(got) != want {
			t.Errorf("Secret(%d) = %q, want last acknowledged %q", i, got, want)
		}
	}
	if pending, err := v2.RecoverSealMigration(ctx); err != nil || pending {
		t.Errorf("RecoverSealMigration() = %v, %v; want nothing pending", pending, err)
	}
}

func TestMigrateSealBackendDownKeepsOldSeal(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v := initPass(t, st)
	down := sealtest.NewSoft("key-a").Unreachable()
	err := v.MigrateSeal(ctx, down)
	if err == nil || v.Sealed() {
		t.Fatalf("MigrateSeal(unreachable) = %v, sealed %v; want an error, still unsealed", err, v.Sealed())
	}
	v.Seal()
	v2 := open(t, st)
	if pending, err := v2.RecoverSealMigration(ctx); err != nil || pending {
		t.Errorf("RecoverSealMigration() = %v, %v; want nothing pending", pending, err)
	}
	if err := v2.Unseal(ctx, testPass); err != nil {
		t.Fatalf("old passphrase after a failed migration: %v", err)
	}
}

// liar returns another key than the one it wrapped.
type liar struct{ *sealtest.Soft }

func (l liar) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	out, err := l.Soft.Unwrap(ctx, blob, aad)
	if err == nil {
		out[0] ^= 1
	}
	return out, err
}

func TestMigrateSealVerifiesBeforeSwitch(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v := initPass(t, st)
	if err := v.MigrateSeal(ctx, liar{sealtest.NewSoft("key-a")}); err == nil {
		t.Fatal("MigrateSeal to a seal that returns another key succeeded")
	}
	st2, err := v.Status(ctx)
	if err != nil || st2.SealType != vault.SealPassphrase {
		t.Fatalf("seal after failed verification = %q, %v; want passphrase", st2.SealType, err)
	}
}

// crashStore fails transactions and deletes on demand, as a process dying
// between writing the pending seal and switching to it would leave things.
type crashStore struct {
	*memory.Store
	crash atomic.Bool
}

var errCrash = errors.New("simulated crash")

func (c *crashStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if c.crash.Load() {
		return errCrash
	}
	return c.Store.Update(ctx, fn)
}

func (c *crashStore) Delete(ctx context.Context, key string) error {
	if c.crash.Load() {
		return errCrash
	}
	return c.Store.Delete(ctx, key)
}

func TestMigrateSealInterruptedRollsBackThenResumes(t *testing.T) {
	ctx := context.Background()
	st := &crashStore{Store: memory.New()}
	v := initPass(t, st)
	if err := v.PutSecret(ctx, "kept", "one", []byte("value")); err != nil {
		t.Fatal(err)
	}
	a := sealtest.NewSoft("key-a")
	st.crash.Store(true)
	if err := v.MigrateSeal(ctx, a); !errors.Is(err, errCrash) {
		t.Fatalf("MigrateSeal with a crash at the switch = %v, want the crash", err)
	}
	v.Seal()
	st.crash.Store(false)

	// Next start: the pending seal is found and rolled back; the old seal
	// is in force and the new one does not open the vault.
	v2 := open(t, st)
	if pending, err := v2.RecoverSealMigration(ctx); err != nil || !pending {
		t.Fatalf("RecoverSealMigration() = %v, %v; want a rolled back migration", pending, err)
	}
	if pending, err := v2.RecoverSealMigration(ctx); err != nil || pending {
		t.Fatalf("second RecoverSealMigration() = %v, %v; want nothing left", pending, err)
	}
	if err := v2.UnsealWithSeal(ctx, a); err == nil {
		t.Fatal("the interrupted migration's seal opens the vault")
	}
	if err := v2.Unseal(ctx, testPass); err != nil {
		t.Fatalf("old passphrase after rollback: %v", err)
	}
	// Resume: run the migration again.
	if err := v2.MigrateSeal(ctx, a); err != nil {
		t.Fatalf("MigrateSeal again = %v", err)
	}
	v2.Seal()
	v3 := open(t, st)
	if err := v3.UnsealWithSeal(ctx, a); err != nil {
		t.Fatalf("UnsealWithSeal(a) after the resumed migration = %v", err)
	}
	if got, err := v3.Secret(ctx, "kept", "one"); err != nil || string(got) != "value" {
		t.Fatalf("Secret after migration = %q, %v", got, err)
	}
}

func TestMigrateSealNeedsUnsealedVault(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	initPass(t, st).Seal()
	v := open(t, st)
	if err := v.MigrateSeal(ctx, sealtest.NewSoft("key-a")); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("MigrateSeal on a sealed vault = %v, want ErrSealed", err)
	}
	if pending, _ := v.RecoverSealMigration(ctx); pending {
		t.Error("a refused migration left a pending seal")
	}
}

// TestMigrateSealFromAnotherProcess models keywarden operator migrate-seal
// run beside a running server on a shared store: one instance keeps
// writing while a second one unseals and migrates; the first never
// notices, and a third, started afterwards, unseals with the new seal and
// reads what the first wrote.
func TestMigrateSealFromAnotherProcess(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	server := initPass(t, st)
	write := func(n int) {
		t.Helper()
		if err := server.PutSecret(ctx, "shared", "counter", []byte(fmt.Sprint(n))); err != nil {
			t.Fatalf("server write %d: %v", n, err)
		}
	}
	write(1)
	cli := open(t, st)
	if err := cli.Unseal(ctx, testPass); err != nil {
		t.Fatal(err)
	}
	a := sealtest.NewSoft("key-a")
	if err := cli.MigrateSeal(ctx, a); err != nil {
		t.Fatalf("MigrateSeal from the second instance = %v", err)
	}
	cli.Seal()
	write(2)
	if server.Sealed() {
		t.Fatal("the server sealed itself")
	}
	next := open(t, st)
	if err := next.Unseal(ctx, testPass); err == nil {
		t.Error("the passphrase still unseals after the migration")
	}
	if err := next.UnsealWithSeal(ctx, a); err != nil {
		t.Fatalf("UnsealWithSeal(a) = %v", err)
	}
	if got, err := next.Secret(ctx, "shared", "counter"); err != nil || string(got) != "2" {
		t.Fatalf("Secret after migration = %q, %v; want the server's last write", got, err)
	}
}
