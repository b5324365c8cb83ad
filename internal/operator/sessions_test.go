package operator

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
)

func openSQLite(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSessionStores runs the same checks over both SessionStore
// implementations.
func TestSessionStores(t *testing.T) {
	stores := map[string]func(t *testing.T) SessionStore{
		"kv": func(t *testing.T) SessionStore { return NewKVSessions(memory.New()) },
		"sql": func(t *testing.T) SessionStore {
			db := openSQLite(t, filepath.Join(t.TempDir(), "data"))
			t.Cleanup(func() { db.Close() })
			s, err := NewSQLSessions(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
			id := func(c byte) string { return strings.Repeat(string(c), 64) }
			a := Session{ID: id('a'), Operator: "ann", Created: t0, LastSeen: t0}
			b := Session{ID: id('b'), Operator: "bob", Created: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute)}
			c := Session{ID: id('c'), Operator: "ann", Created: t0.Add(2 * time.Minute), LastSeen: t0.Add(2 * time.Minute)}
			for _, s := range []Session{a, b, c} {
				if err := st.Create(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := st.Session(ctx, a.ID); err != nil || !cmp.Equal(got, a) {
				t.Errorf("Session(a) = %+v, %v, want %+v", got, err, a)
			}
			if _, err := st.Session(ctx, id('d')); !errors.Is(err, ErrNotFound) {
				t.Errorf("Session(unknown) = %v, want %v", err, ErrNotFound)
			}
			if err := st.Touch(ctx, id('d'), t0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Touch(unknown) = %v, want %v", err, ErrNotFound)
			}
			if err := st.Touch(ctx, a.ID, t0.Add(5*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := st.SetStepUp(ctx, a.ID, t0.Add(6*time.Minute)); err != nil {
				t.Fatal(err)
			}
			want := a
			want.LastSeen, want.StepUp = t0.Add(5*time.Minute), t0.Add(6*time.Minute)
			if got, err := st.Session(ctx, a.ID); err != nil || !cmp.Equal(got, want) {
				t.Errorf("Session(a) after touch and step-up = %+v, %v, want %+v", got, err, want)
			}
			// b was last seen before t0+90s: expired; a and c stay.
			if err := st.DeleteExpired(ctx, t0.Add(-time.Hour), t0.Add(90*time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Session(ctx, b.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Session(b) after DeleteExpired = %v, want %v", err, ErrNotFound)
			}
			if _, err := st.Session(ctx, c.ID); err != nil {
				t.Errorf("Session(c) after DeleteExpired = %v, want kept", err)
			}
			if err := st.DeleteOperator(ctx, "ann"); err != nil {
				t.Fatal(err)
			}
			for _, s := range []Session{a, c} {
				if _, err := st.Session(ctx, s.ID); !errors.Is(err, ErrNotFound) {
					t.Errorf("Session(%s) after DeleteOperator = %v, want %v", s.ID[:1], err, ErrNotFound)
				}
			}
			if err := st.Delete(ctx, id('z')); err != nil {
				t.Errorf("Delete(unknown) = %v, want nil", err)
			}
		})
	}
}

// TestSessionsSurviveRestart logs in, reopens the data directory with a new
// Manager, and checks that the session still works, keeps its timeouts,
// and ends at logout and when the operator is disabled. The database holds
// only digests of session tokens.
func TestSessionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	open := func(init bool) (*Manager, *sqlite.DB) {
		db := openSQLite(t, dir)
		v, err := vault.New(vault.Options{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		kdf := vault.MinKDF()
		pass := []byte("correct horse battery")
		if init {
			if _, err := v.Init(ctx, vault.InitOptions{Passphrase: pass, KDF: &kdf}); err != nil {
				t.Fatal(err)
			}
		} else if err := v.Unseal(ctx, pass); err != nil {
			t.Fatal(err)
		}
		sess, err := NewSQLSessions(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Options{Store: db, Secrets: v, Sessions: sess, Now: c.Now, KDF: MinKDF()})
		if err != nil {
			t.Fatal(err)
		}
		return m, db
	}
	m, db := open(true)
	seed := create(t, m, "ann", RoleAdmin)
	create(t, m, "bob", RoleAuditor)
	tokA, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(30 * time.Second)
	tokB, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(30 * time.Second)
	if err := m.StepUp(ctx, tokA, Code(seed, c.Now())); err != nil {
		t.Fatal(err)
	}
	// Only digests reach the database.
	rows, err := db.SQL().QueryContext(ctx, "SELECT id FROM operator_sessions")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != digest(tokA) && id != digest(tokB) {
			t.Errorf("stored session id %q is not a token digest", id)
		}
		n++
	}
	rows.Close()
	if n != 2 {
		t.Errorf("stored sessions = %d, want 2", n)
	}
	db.Close()

	m, db = open(false)
	defer func() { db.Close() }()
	p, err := m.Authenticate(ctx, tokA)
	if err != nil || p.Name != "ann" {
		t.Fatalf("Authenticate after restart = %v, %v, want ann", p.Name, err)
	}
	if !m.Fresh(p) {
		t.Errorf("step-up lost across the restart")
	}
	if err := m.Logout(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, tokA); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate after logout = %v, want %v", err, ErrUnauthorized)
	}
	if _, err := m.Authenticate(ctx, tokB); err != nil {
		t.Fatalf("Authenticate(second session) = %v", err)
	}
	if _, err := m.SetDisabled(ctx, "ann", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetDisabled(ctx, "ann", false); err != nil {
		t.Fatal(err)
	}
	// Re-enabling does not bring back a session that disabling ended.
	if _, err := m.Authenticate(ctx, tokB); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate after disable = %v, want %v", err, ErrUnauthorized)
	}
	// Idle timeout holds across restarts too.
	c.Add(30 * time.Second)
	tokC, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	c.Add(16 * time.Minute)
	m, db = open(false)
	if _, err := m.Authenticate(ctx, tokC); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate after 16 idle minutes across a restart = %v, want %v", err, ErrUnauthorized)
	}
}

func TestNewRecoveryCodesReplaceOld(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	_, enr, err := m.Create(ctx, CreateOptions{Name: "ann", Role: RoleAuditor, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	codes, err := m.NewRecoveryCodes(ctx, "ann")
	if err != nil || len(codes) != 10 {
		t.Fatalf("NewRecoveryCodes = %d codes, %v", len(codes), err)
	}
	if _, _, err := m.Login(ctx, "ann", pw, enr.RecoveryCodes[0]); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(old recovery code) = %v, want %v", err, ErrBadCredentials)
	}
	if _, _, err := m.Login(ctx, "ann", pw, codes[3]); err != nil {
		t.Errorf("Login(new recovery code) = %v", err)
	}
	if n, _ := m.RecoveryCodesLeft(ctx, "ann"); n != 9 {
		t.Errorf("RecoveryCodesLeft = %d, want 9", n)
	}
}

// countingSessions counts Touch calls.
type countingSessions struct {
	SessionStore
	touches int
}

func (c *countingSessions) Touch(ctx context.Context, id string, t time.Time) error {
	c.touches++
	return c.SessionStore.Touch(ctx, id, t)
}

// TestSessionTouchesAreBatched: requests within touchEvery of the last
// recorded activity do not write it again; the idle timeout still holds.
func TestSessionTouchesAreBatched(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("correct horse battery"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cs := &countingSessions{SessionStore: NewKVSessions(st)}
	m, err := New(Options{Store: st, Secrets: v, Sessions: cs, Now: c.Now, KDF: MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	seed := create(t, m, "ann", RoleAuditor)
	tok, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.Add(time.Second)
		if _, err := m.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if cs.touches != 0 {
		t.Errorf("touches within %v = %d, want 0", touchEvery, cs.touches)
	}
	c.Add(touchEvery)
	if _, err := m.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if cs.touches != 1 {
		t.Errorf("touches after %v = %d, want 1", touchEvery, cs.touches)
	}
	c.Add(15 * time.Minute)
	if _, err := m.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate after 15 idle minutes = %v, want %v", err, ErrUnauthorized)
	}
}
