package operator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
	"github.com/keywarden/keywarden/internal/vault"
)

// replicaSet opens the stores that n Managers use: one shared handle for
// the embedded stores (one process), one connection pool each for
// PostgreSQL (one gateway replica each). secrets unseals TOTP seeds for
// all of them.
type replicaSet func(t *testing.T, n int) (stores []store.Store, secrets Secrets)

var replicaSets = map[string]replicaSet{
	"memory": func(t *testing.T, n int) ([]store.Store, Secrets) {
		return shared(t, n, memory.New())
	},
	"sqlite": func(t *testing.T, n int) ([]store.Store, Secrets) {
		db := openSQLite(t, filepath.Join(t.TempDir(), "data"))
		t.Cleanup(func() { db.Close() })
		return shared(t, n, db)
	},
	"postgres": func(t *testing.T, n int) ([]store.Store, Secrets) {
		dsn := pgtest.NewDatabase(t)
		var stores []store.Store
		for range n {
			db, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			stores = append(stores, db)
		}
		return stores, initVault(t, stores[0])
	},
}

func shared(t *testing.T, n int, st store.Store) ([]store.Store, Secrets) {
	stores := make([]store.Store, n)
	for i := range stores {
		stores[i] = st
	}
	return stores, initVault(t, st)
}

func initVault(t *testing.T, st store.Store) Secrets {
	t.Helper()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(context.Background(), vault.InitOptions{Passphrase: []byte("correct horse battery"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	return v
}

// managers returns one Manager per store, all on clock c.
func managers(t *testing.T, stores []store.Store, secrets Secrets, c *clock, maxFailures int) []*Manager {
	t.Helper()
	var ms []*Manager
	for _, st := range stores {
		m, err := New(Options{Store: st, Secrets: secrets, Now: c.Now, KDF: MinKDF(), MaxFailures: maxFailures})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

// all runs f(i) for every i < n at the same moment, as far as goroutines
// allow, and returns the errors by i. It gives up after a minute.
func all(t *testing.T, n int, f func(ctx context.Context, i int) error) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(ctx, i)
		})
	}
	close(start)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("concurrent calls did not end within a minute")
	}
	return errs
}

// wrongCode returns a six-digit code that no step of the window around
// now accepts for seed.
func wrongCode(t *testing.T, seed []byte, now time.Time) string {
	t.Helper()
	for i := range 1000 {
		c := fmt.Sprintf("%06d", i)
		if _, ok := matchTOTP(seed, c, now, -1); !ok {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// TestCodeAcceptedOnceAcrossManagers sends the same fresh TOTP code to
// several Managers over one store at once, several rounds in a row: each
// code is accepted exactly once, for step-ups and for logins, and every
// other attempt is refused as a bad code, not as a store error.
func TestCodeAcceptedOnceAcrossManagers(t *testing.T) {
	const n, rounds = 8, 6
	calls := []struct {
		name    string
		refused error
		call    func(ctx context.Context, m *Manager, code string) error
	}{
		{"VerifyCode", ErrStepUp, func(ctx context.Context, m *Manager, code string) error {
			return m.VerifyCode(ctx, "ann", code)
		}},
		{"Login", ErrBadCredentials, func(ctx context.Context, m *Manager, code string) error {
			_, _, err := m.Login(ctx, "ann", pw, code)
			return err
		}},
	}
	for name, open := range replicaSets {
		for _, call := range calls {
			t.Run(name+"/"+call.name, func(t *testing.T) {
				stores, secrets := open(t, n)
				c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
				ms := managers(t, stores, secrets, c, 1000)
				seed := create(t, ms[0], "ann", RoleAdmin)
				for round := range rounds {
					c.Add(totpPeriod * time.Second)
					code := Code(seed, c.Now())
					errs := all(t, n, func(ctx context.Context, i int) error { return call.call(ctx, ms[i], code) })
					ok := 0
					for i, err := range errs {
						switch {
						case err == nil:
							ok++
						case !errors.Is(err, call.refused):
							t.Fatalf("round %d, manager %d: %v, want nil or %v", round, i, err, call.refused)
						}
					}
					if ok != 1 {
						t.Fatalf("round %d: the same code was accepted %d times by %d managers, want once", round, ok, n)
					}
				}
			})
		}
	}
}

// TestFailuresCountedAcrossManagers sends wrong codes to several Managers
// over one store at once: every failure counts, so the lockout comes after
// exactly MaxFailures of them however they are spread, and then refuses
// even the right code.
func TestFailuresCountedAcrossManagers(t *testing.T) {
	const n, each = 8, 3
	for name, open := range replicaSets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stores, secrets := open(t, n)
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

			// With a high limit, the count is exact.
			ms := managers(t, stores, secrets, c, 1000)
			seed := create(t, ms[0], "ann", RoleAdmin)
			bad := wrongCode(t, seed, c.Now())
			errs := all(t, n*each, func(ctx context.Context, i int) error { return ms[i%n].VerifyCode(ctx, "ann", bad) })
			for i, err := range errs {
				if !errors.Is(err, ErrStepUp) {
					t.Fatalf("wrong code %d: %v, want %v", i, err, ErrStepUp)
				}
			}
			a, err := ms[0].get(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			if a.Failures != n*each {
				t.Errorf("after %d concurrent wrong codes the account counts %d failures", n*each, a.Failures)
			}

			// With the limit at that count, the last failure locks.
			ms = managers(t, stores, secrets, c, n*each)
			seed = create(t, ms[0], "bob", RoleAdmin)
			bad = wrongCode(t, seed, c.Now())
			all(t, n*each, func(ctx context.Context, i int) error { return ms[i%n].VerifyCode(ctx, "bob", bad) })
			if err := ms[1].VerifyCode(ctx, "bob", Code(seed, c.Now())); !errors.Is(err, ErrLocked) {
				t.Errorf("right code after %d concurrent wrong ones (the limit): %v, want %v", n*each, err, ErrLocked)
			}
			if _, _, err := ms[2].Login(ctx, "bob", pw, Code(seed, c.Now())); !errors.Is(err, ErrLocked) {
				t.Errorf("login after %d concurrent wrong codes (the limit): %v, want %v", n*each, err, ErrLocked)
			}
		})
	}
}

// plainStore hides store.Transactional.
type plainStore struct{ store.Store }

// TestNonTransactionalStore checks that a store without transactions
// still gets single-use codes and lockout within one Manager.
func TestNonTransactionalStore(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := New(Options{Store: plainStore{st}, Secrets: initVault(t, st), Now: c.Now, KDF: MinKDF(), MaxFailures: 2})
	if err != nil {
		t.Fatal(err)
	}
	seed := create(t, m, "ann", RoleAdmin)
	code := Code(seed, c.Now())
	if err := m.VerifyCode(ctx, "ann", code); err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyCode(ctx, "ann", code); !errors.Is(err, ErrStepUp) {
		t.Fatalf("replayed code: %v, want %v", err, ErrStepUp)
	}
	c.Add(totpPeriod * time.Second)
	if err := m.VerifyCode(ctx, "ann", wrongCode(t, seed, c.Now())); !errors.Is(err, ErrStepUp) {
		t.Fatalf("wrong code: %v, want %v", err, ErrStepUp)
	}
	if err := m.VerifyCode(ctx, "ann", Code(seed, c.Now())); !errors.Is(err, ErrLocked) {
		t.Fatalf("right code after two failures (the limit): %v, want %v", err, ErrLocked)
	}
}

// TestApprovalsAcrossManagers: approvers deciding at once through several
// Managers over one store are all counted, and an approved request is
// consumed once however many Managers try at the same moment.
func TestApprovalsAcrossManagers(t *testing.T) {
	const n = 8
	for name, open := range replicaSets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stores, secrets := open(t, n)
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			ms := managers(t, stores, secrets, c, 0)
			requester := Principal{Operator: Operator{Name: "req", Role: RoleSecurity}}
			a, err := ms[0].Request(ctx, requester, "gateway.resume", "gateway", Rule{Role: RoleSecurity, Required: n, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			errs := all(t, n, func(ctx context.Context, i int) error {
				by := Principal{Operator: Operator{Name: fmt.Sprintf("sec%d", i), Role: RoleSecurity}}
				_, err := ms[i].Decide(ctx, by, a.ID, true)
				return err
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("approver %d: %v", i, err)
				}
			}
			got, err := ms[0].Approval(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != StateApproved || len(got.Approvers) != n {
				t.Fatalf("after %d concurrent approvals: state %s with %d approvers, want %s with %d", n, got.State, len(got.Approvers), StateApproved, n)
			}
			for round := range 4 {
				if round > 0 {
					// Further rounds, each with a new one-approver request.
					if a, err = ms[0].Request(ctx, requester, "gateway.resume", "gateway", Rule{Role: RoleSecurity, Required: 1, TTL: time.Hour}); err != nil {
						t.Fatal(err)
					}
					if _, err := ms[1].Decide(ctx, Principal{Operator: Operator{Name: "sec0", Role: RoleSecurity}}, a.ID, true); err != nil {
						t.Fatal(err)
					}
				}
				errs = all(t, n, func(ctx context.Context, i int) error {
					return ms[i].Consume(ctx, requester, a.ID, "gateway.resume", "gateway")
				})
				used := 0
				for i, err := range errs {
					switch {
					case err == nil:
						used++
					case !errors.Is(err, ErrNotApproved):
						t.Fatalf("round %d, consume %d: %v, want nil or %v", round, i, err, ErrNotApproved)
					}
				}
				if used != 1 {
					t.Fatalf("round %d: an approval was consumed %d times by %d managers at once, want once", round, used, n)
				}
			}
		})
	}
}
