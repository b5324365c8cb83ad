package faults

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// keywarden's own clock off by ±30 s, and set back while it runs
// (spec/security.md F11). The venue's clock off by ±30 s is
// TestFault_F11_ClockSkew; credentials and wrapping tokens whose expiry
// must not lengthen are internal/client's TestFault_F11_* tests.

// setClock is a wall clock a test sets; safe for concurrent use.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestFault_F11_TOTPOnServerTime checks TOTP codes against keywarden's
// clock: an authenticator whose time differs from the server's by 30 s
// either way still works (one 30 s step of tolerance), a code for a time
// further off does not, and setting the server's clock back never makes a
// used code valid again.
func TestFault_F11_TOTPOnServerTime(t *testing.T) {
	ctx := context.Background()
	// The authenticator's time: mid-step, so that ±30 s is exactly one
	// step either way.
	phone := time.Date(2026, 11, 25, 12, 0, 15, 0, time.UTC)
	tests := []struct {
		name   string
		server time.Duration // server clock minus the authenticator's
		code   time.Duration // the code's time minus the authenticator's
		ok     bool
	}{
		{"same time", 0, 0, true},
		{"server 30s ahead", 30 * time.Second, 0, true},
		{"server 30s behind", -30 * time.Second, 0, true},
		{"server 90s ahead", 90 * time.Second, 0, false},
		{"server 90s behind", -90 * time.Second, 0, false},
		{"code for a time 5 min ahead", 0, 5 * time.Minute, false},
		{"code for a time 5 min back", 0, -5 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &setClock{t: phone.Add(tt.server)}
			m, seed := newOperator(t, clk)
			err := m.VerifyCode(ctx, "ann", operator.Code(seed, phone.Add(tt.code)))
			if got := err == nil; got != tt.ok {
				t.Errorf("VerifyCode() with the server %v off and a code %v off = %v, want ok %v", tt.server, tt.code, err, tt.ok)
			}
		})
	}

	t.Run("clock set back", func(t *testing.T) {
		clk := &setClock{t: phone}
		m, seed := newOperator(t, clk)
		code := operator.Code(seed, phone)
		if err := m.VerifyCode(ctx, "ann", code); err != nil {
			t.Fatalf("VerifyCode() = %v", err)
		}
		for _, back := range []time.Duration{30 * time.Second, 60 * time.Second} {
			clk.set(phone.Add(-back))
			if err := m.VerifyCode(ctx, "ann", code); !errors.Is(err, operator.ErrStepUp) {
				t.Errorf("VerifyCode() of a used code, server clock set back %v = %v, want %v", back, err, operator.ErrStepUp)
			}
			if err := m.VerifyCode(ctx, "ann", operator.Code(seed, phone.Add(-back))); !errors.Is(err, operator.ErrStepUp) {
				t.Errorf("VerifyCode() of an earlier step's code, server clock set back %v = %v, want %v", back, err, operator.ErrStepUp)
			}
		}
		clk.set(phone.Add(30 * time.Second))
		if err := m.VerifyCode(ctx, "ann", operator.Code(seed, phone.Add(30*time.Second))); err != nil {
			t.Errorf("VerifyCode() of the next step's code once the clock is right = %v", err)
		}
	})
}

// newOperator returns an operator manager on clk with operator "ann" and her
// TOTP seed.
func newOperator(t *testing.T, clk *setClock) (*operator.Manager, []byte) {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("correct horse battery staple"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	m, err := operator.New(operator.Options{Store: st, Secrets: v, Now: clk.now, KDF: operator.KDF{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, enr, err := m.Create(ctx, operator.CreateOptions{Name: "ann", Role: operator.RoleAdmin, Password: []byte("a long enough password")})
	if err != nil {
		t.Fatal(err)
	}
	return m, enr.Seed
}

// TestFault_F11_AuditTimesNeverGoBack sets keywarden's clock 30 s ahead,
// then 30 s behind, then back an hour, within one run and across a
// restart of the audit log: record times never go backwards, sequence
// numbers follow the chain, and the chain verifies.
func TestFault_F11_AuditTimesNeverGoBack(t *testing.T) {
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{11}, ed25519.SeedSize))
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := &setClock{t: base}
	open := func() *audit.Log {
		l, err := audit.Open(audit.Options{Dir: dir, Signer: key, Now: clk.now, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	event := func(l *audit.Log, at time.Duration, kind string) {
		t.Helper()
		clk.set(base.Add(at))
		if _, err := l.Append(context.Background(), audit.Record{Event: &audit.Event{Kind: kind}}); err != nil {
			t.Fatal(err)
		}
	}
	l := open()
	event(l, 0, "start")
	event(l, 30*time.Second, "ahead")
	event(l, -30*time.Second, "behind")
	event(l, 10*time.Second, "later")
	l.Close()
	// Restarted with the clock an hour back.
	l = open()
	event(l, -time.Hour, "restart-an-hour-back")
	event(l, -time.Hour+time.Second, "after")
	l.Close()

	if _, err := audit.Verify(dir, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	var prev audit.Record
	n := 0
	for r, err := range audit.Search(dir, audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && (r.Time.Before(prev.Time) || r.Seq != prev.Seq+1) {
			t.Errorf("record %d (%s) at %v after record %d at %v: times must not go back", r.Seq, r.Type, r.Time, prev.Seq, prev.Time)
		}
		prev, n = r, n+1
	}
	if n < 6 {
		t.Errorf("read %d records, want at least 6", n)
	}
	if want := base.Add(30 * time.Second); prev.Time.Before(want) {
		t.Errorf("last record at %v, want not before %v (the latest time seen)", prev.Time, want)
	}
}
