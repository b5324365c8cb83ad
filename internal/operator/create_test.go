package operator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// sealedSeeds counts the TOTP seeds the vault holds, from the store's
// keys: the vault keeps a secret of kind k under "vault/secret/k/".
func sealedSeeds(t *testing.T, st store.Store) int {
	t.Helper()
	keys, err := st.List(context.Background(), "vault/secret/"+seedKind+"/")
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestCreateOnceAcrossManagers creates the same operator name through
// several Managers over one store at once, several rounds: exactly one
// creation succeeds each time and the others are refused with ErrExists
// naming the operator and get no enrollment; the account that exists is
// the winner's (its password and its seed work, through every Manager),
// and no other seed is left sealed in the vault.
func TestCreateOnceAcrossManagers(t *testing.T) {
	const n, rounds = 8, 4
	for name, open := range replicaSets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stores, secrets := open(t, n)
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			ms := managers(t, stores, secrets, c, 1000)
			for round := range rounds {
				opName := fmt.Sprintf("op%d", round)
				password := func(i int) []byte { return fmt.Appendf(nil, "password of caller %d", i) }
				type result struct {
					op  Operator
					enr *Enrollment
				}
				res := make([]result, n)
				errs := all(t, n, func(ctx context.Context, i int) error {
					op, enr, err := ms[i].Create(ctx, CreateOptions{Name: opName, Role: RoleSecurity, Password: password(i)})
					res[i] = result{op, enr}
					return err
				})
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil:
						if winner >= 0 {
							t.Fatalf("round %d: managers %d and %d both created %s", round, winner, i, opName)
						}
						winner = i
						if res[i].enr == nil || len(res[i].enr.Seed) == 0 {
							t.Fatalf("round %d: manager %d created %s without an enrollment", round, i, opName)
						}
					case errors.Is(err, ErrExists):
						if want := "operator " + opName + " already exists"; !strings.Contains(err.Error(), want) {
							t.Errorf("round %d, manager %d: error %q does not say %q", round, i, err, want)
						}
						if res[i].enr != nil {
							t.Errorf("round %d, manager %d: refused creation returned an enrollment", round, i)
						}
					default:
						t.Fatalf("round %d, manager %d: %v, want nil or %v", round, i, err, ErrExists)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: no manager created %s", round, opName)
				}
				seed := res[winner].enr.Seed
				// The stored account is the winner's: every Manager accepts
				// the winner's code (each a fresh one) and password.
				for i, m := range ms {
					c.Add(totpPeriod * time.Second)
					if err := m.VerifyCode(ctx, opName, Code(seed, c.Now())); err != nil {
						t.Fatalf("round %d: manager %d refuses the code of the seed shown to manager %d: %v", round, i, winner, err)
					}
				}
				c.Add(totpPeriod * time.Second)
				if _, _, err := ms[(winner+1)%n].Login(ctx, opName, password(winner), Code(seed, c.Now())); err != nil {
					t.Fatalf("round %d: login with the winner's password and seed: %v", round, err)
				}
				other := (winner + 1) % n
				c.Add(totpPeriod * time.Second)
				if _, _, err := ms[0].Login(ctx, opName, password(other), Code(seed, c.Now())); !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("round %d: login with a refused caller's password: %v, want %v", round, err, ErrBadCredentials)
				}
			}
			if got := sealedSeeds(t, stores[0]); got != rounds {
				t.Errorf("%d seeds sealed after %d rounds of %d concurrent creations, want %d", got, rounds, n, rounds)
			}
		})
	}
}

// TestCreateExistingName: creating a name that exists is refused with
// ErrExists naming it, leaves the account as it was, and seals no seed.
func TestCreateExistingName(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for name, wrap := range map[string]func(store.Store) store.Store{
		"transactional": func(s store.Store) store.Store { return s },
		"plain":         func(s store.Store) store.Store { return plainStore{s} },
	} {
		t.Run(name, func(t *testing.T) {
			st := memory.New()
			secrets := initVault(t, st)
			use := wrap(st)
			m, err := New(Options{Store: use, Secrets: secrets, Now: c.Now, KDF: MinKDF()})
			if err != nil {
				t.Fatal(err)
			}
			seed := create(t, m, "ann", RoleAuditor)
			op, enr, err := m.Create(ctx, CreateOptions{Name: "ann", Role: RoleAdmin, Password: []byte("another long password")})
			if !errors.Is(err, ErrExists) || err.Error() != "operator ann already exists" || enr != nil || op.Name != "" {
				t.Fatalf("second Create(ann) = %+v, %v, %v; want ErrExists %q and no enrollment", op, enr != nil, err, "operator ann already exists")
			}
			got, err := m.Get(ctx, "ann")
			if err != nil || got.Role != RoleAuditor {
				t.Fatalf("ann after a refused creation: %+v, %v; want the auditor account", got, err)
			}
			c.Add(totpPeriod * time.Second)
			if _, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now())); err != nil {
				t.Fatalf("login with the first seed after a refused creation: %v", err)
			}
			if n := sealedSeeds(t, st); n != 1 {
				t.Errorf("%d seeds sealed, want 1", n)
			}
		})
	}
}

// TestLegacySeedID: an account stored before seeds had their own id keeps
// its seed under the operator's name, and its codes still work.
func TestLegacySeedID(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	secrets := initVault(t, st)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := New(Options{Store: st, Secrets: secrets, Now: c.Now, KDF: MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := hashPassword(pw, MinKDF())
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 20)
	if err := secrets.PutSecret(ctx, seedKind, "old", seed); err != nil {
		t.Fatal(err)
	}
	if err := putAccount(ctx, st, &account{Operator: Operator{Name: "old", Role: RoleAdmin}, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	c.Add(totpPeriod * time.Second)
	if err := m.VerifyCode(ctx, "old", Code(seed, c.Now())); err != nil {
		t.Fatalf("code of a seed stored under the name: %v", err)
	}
	c.Add(totpPeriod * time.Second)
	if _, _, err := m.Login(ctx, "old", pw, Code(seed, c.Now())); err != nil {
		t.Fatalf("login with a seed stored under the name: %v", err)
	}
}
