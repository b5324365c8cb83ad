package operator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newManager(t *testing.T) (*Manager, *clock) {
	t.Helper()
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(context.Background(), vault.InitOptions{Passphrase: []byte("correct horse battery"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := New(Options{Store: st, Secrets: v, Now: c.Now, KDF: MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

var pw = []byte("a long enough password")

func create(t *testing.T, m *Manager, name string, r Role) []byte {
	t.Helper()
	_, e, err := m.Create(context.Background(), CreateOptions{Name: name, Role: r, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return e.Seed
}

// TestHOTPVectors checks the RFC 4226 appendix D and RFC 6238 appendix B
// (SHA-1) test values.
func TestHOTPVectors(t *testing.T) {
	seed := []byte("12345678901234567890")
	tests := []struct {
		counter uint64
		digits  int
		want    string
	}{
		{0, 6, "755224"},
		{1, 6, "287082"},
		{9, 6, "520489"},
		{59 / 30, 8, "94287082"},
		{1111111109 / 30, 8, "07081804"},
		{20000000000 / 30, 8, "65353130"},
	}
	for _, tt := range tests {
		if got := hotpCode(seed, tt.counter, tt.digits); got != tt.want {
			t.Errorf("hotp(%d, %d) = %q, want %q", tt.counter, tt.digits, got, tt.want)
		}
	}
}

func TestEnrollmentRedacts(t *testing.T) {
	m, _ := newManager(t)
	_, e, err := m.Create(context.Background(), CreateOptions{Name: "ann", Role: RoleAdmin, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/keywarden:ann?") || len(e.RecoveryCodes) != 10 {
		t.Errorf("enrollment = %q with %d codes, want an otpauth URL and 10 codes", e.URL, len(e.RecoveryCodes))
	}
	j, _ := json.Marshal(e)
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "enrollment", e)
	for _, s := range []string{e.String(), e.GoString(), string(j), buf.String()} {
		if strings.Contains(s, "otpauth") || strings.Contains(s, e.RecoveryCodes[0]) {
			t.Errorf("Enrollment printed as %q, holds a secret", s)
		}
	}
	for _, s := range []string{e.String(), e.GoString()} {
		if s != "[REDACTED]" {
			t.Errorf("Enrollment printed as %q, want [REDACTED]", s)
		}
	}
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	m, c := newManager(t)
	seed := create(t, m, "ann", RoleSecurity)
	if _, _, err := m.Login(ctx, "ann", []byte("wrong password!!"), Code(seed, c.Now())); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(wrong password) = %v, want %v", err, ErrBadCredentials)
	}
	if _, _, err := m.Login(ctx, "nobody", pw, "123456"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(unknown) = %v, want %v", err, ErrBadCredentials)
	}
	code := Code(seed, c.Now())
	tok, p, err := m.Login(ctx, "ann", pw, code)
	if err != nil {
		t.Fatalf("Login = %v", err)
	}
	if p.Name != "ann" || p.Role != RoleSecurity || m.Fresh(p) {
		t.Errorf("Login principal = %+v, want ann/security, not stepped up", p)
	}
	// The same code is single-use within its window.
	if _, _, err := m.Login(ctx, "ann", pw, code); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(reused code) = %v, want %v", err, ErrBadCredentials)
	}
	if err := m.StepUp(ctx, tok, code); !errors.Is(err, ErrStepUp) {
		t.Errorf("StepUp(reused code) = %v, want %v", err, ErrStepUp)
	}
	c.Add(30 * time.Second)
	if err := m.StepUp(ctx, tok, Code(seed, c.Now())); err != nil {
		t.Errorf("StepUp(next code) = %v", err)
	}
	if p, err := m.Authenticate(ctx, tok); err != nil || !m.Fresh(p) {
		t.Errorf("Authenticate after step-up = fresh %v, %v; want fresh", m.Fresh(p), err)
	}
	if err := m.Logout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate after logout = %v, want %v", err, ErrUnauthorized)
	}
}

func TestRecoveryCodeSingleUse(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	_, e, err := m.Create(ctx, CreateOptions{Name: "ann", Role: RoleAdmin, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := m.Login(ctx, "ann", pw, e.RecoveryCodes[3])
	if err != nil {
		t.Fatalf("Login(recovery code) = %v", err)
	}
	if m.Fresh(p) {
		t.Errorf("Login with a recovery code counts as step-up, want not")
	}
	if _, _, err := m.Login(ctx, "ann", pw, e.RecoveryCodes[3]); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(used recovery code) = %v, want %v", err, ErrBadCredentials)
	}
}

func TestLockout(t *testing.T) {
	ctx := context.Background()
	m, c := newManager(t)
	seed := create(t, m, "ann", RoleAdmin)
	for i := range 5 {
		if _, _, err := m.Login(ctx, "ann", []byte("guess number ten"), "000000"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("Login(guess %d) = %v, want %v", i, err, ErrBadCredentials)
		}
	}
	if _, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now())); !errors.Is(err, ErrLocked) {
		t.Errorf("Login(right password, locked) = %v, want %v", err, ErrLocked)
	}
	c.Add(15 * time.Minute)
	if _, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now())); err != nil {
		t.Errorf("Login(after lockout) = %v, want nil", err)
	}
}

func TestSessionTimeouts(t *testing.T) {
	ctx := context.Background()
	m, c := newManager(t)
	seed := create(t, m, "ann", RoleAdmin)
	tok, _, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.StepUp(ctx, tok, Code(seed, c.Now().Add(30*time.Second))); err != nil {
		t.Fatal(err)
	}
	c.Add(6 * time.Minute)
	p, err := m.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if m.Fresh(p) {
		t.Errorf("step-up still fresh after 6 minutes, want stale")
	}
	c.Add(15 * time.Minute)
	if _, err := m.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate(idle 15m) = %v, want %v", err, ErrUnauthorized)
	}
	// Absolute TTL: active every 10 minutes, still expires after 8 hours.
	tok, _, err = m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for range 48 {
		c.Add(10 * time.Minute)
		_, last = m.Authenticate(ctx, tok)
	}
	if !errors.Is(last, ErrUnauthorized) {
		t.Errorf("Authenticate(after 8h) = %v, want %v", last, ErrUnauthorized)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	m, c := newManager(t)
	seed := create(t, m, "ann", RoleAuditor)
	_, p, err := m.Login(ctx, "ann", pw, Code(seed, c.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.CreateToken(ctx, p, "ci", []Permission{PermClientsWrite}, time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateToken(scope beyond role) = %v, want %v", err, ErrInvalid)
	}
	tok, info, err := m.CreateToken(ctx, p, "ci", []Permission{PermAuditRead}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := m.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !tp.Can(PermAuditRead) || tp.Can(PermKeysRead) || m.Fresh(tp) {
		t.Errorf("token principal %+v: want audit:read only and never fresh", tp)
	}
	if _, _, err := m.CreateToken(ctx, tp, "x", []Permission{PermAuditRead}, time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateToken(by token) = %v, want %v", err, ErrInvalid)
	}
	if err := m.StepUp(ctx, tok, Code(seed, c.Now().Add(30*time.Second))); !errors.Is(err, ErrStepUp) {
		t.Errorf("StepUp(api token) = %v, want %v", err, ErrStepUp)
	}
	c.Add(time.Hour)
	if _, err := m.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate(expired token) = %v, want %v", err, ErrUnauthorized)
	}
	if err := m.RevokeToken(ctx, p, info.ID); err != nil {
		t.Errorf("RevokeToken = %v", err)
	}
	if list, _ := m.Tokens(ctx, "ann"); len(list) != 0 {
		t.Errorf("Tokens after revoke = %v, want none", list)
	}
}

func TestApprovals(t *testing.T) {
	ctx := context.Background()
	m, c := newManager(t)
	for _, n := range []string{"req", "s1", "s2"} {
		create(t, m, n, RoleSecurity)
	}
	create(t, m, "aud", RoleAuditor)
	who := func(n string) Principal {
		op, err := m.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return Principal{Operator: op}
	}
	rule := Rule{Role: RoleSecurity, Required: 2, TTL: time.Hour}
	a, err := m.Request(ctx, who("req"), "gateway.resume", "gateway", rule)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(ctx, who("req"), a.ID, true); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("Decide(self) = %v, want %v", err, ErrSelfApproval)
	}
	if _, err := m.Decide(ctx, who("aud"), a.ID, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("Decide(auditor) = %v, want %v", err, ErrInvalid)
	}
	if got, err := m.Decide(ctx, who("s1"), a.ID, true); err != nil || got.State != StatePending {
		t.Errorf("Decide(s1) = %v, %v, want pending", got.State, err)
	}
	if _, err := m.Decide(ctx, who("s1"), a.ID, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("Decide(s1 twice) = %v, want %v", err, ErrInvalid)
	}
	if err := m.Consume(ctx, who("req"), a.ID, "gateway.resume", "gateway"); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Consume(1 of 2) = %v, want %v", err, ErrNotApproved)
	}
	if got, err := m.Decide(ctx, who("s2"), a.ID, true); err != nil || got.State != StateApproved {
		t.Errorf("Decide(s2) = %v, %v, want approved", got.State, err)
	}
	if err := m.Consume(ctx, who("s1"), a.ID, "gateway.resume", "gateway"); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Consume(not the requester) = %v, want %v", err, ErrNotApproved)
	}
	if err := m.Consume(ctx, who("req"), a.ID, "gateway.resume", "gateway"); err != nil {
		t.Errorf("Consume = %v", err)
	}
	if err := m.Consume(ctx, who("req"), a.ID, "gateway.resume", "gateway"); !errors.Is(err, ErrNotApproved) {
		t.Errorf("Consume(twice) = %v, want %v", err, ErrNotApproved)
	}

	// Expiry.
	b, err := m.Request(ctx, who("req"), "gateway.resume", "gateway", rule)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(ctx, who("s1"), b.ID, true); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if got, err := m.Decide(ctx, who("s2"), b.ID, true); !errors.Is(err, ErrNotPending) || got.State != StateExpired {
		t.Errorf("Decide(expired) = %v, %v, want %v, %v", got.State, err, StateExpired, ErrNotPending)
	}

	// Rejection ends the request.
	r, err := m.Request(ctx, who("req"), "gateway.resume", "gateway", rule)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Decide(ctx, who("s2"), r.ID, false); err != nil || got.State != StateRejected {
		t.Errorf("Decide(reject) = %v, %v, want rejected", got.State, err)
	}
	if _, err := m.Decide(ctx, who("s1"), r.ID, true); !errors.Is(err, ErrNotPending) {
		t.Errorf("Decide(after reject) = %v, want %v", err, ErrNotPending)
	}
}
