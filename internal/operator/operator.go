// Package operator holds keywarden's operator accounts: roles with per-key
// scoping, Argon2id passwords, TOTP second factors with recovery codes,
// login throttling and lockout, short-lived sessions with an idle timeout,
// API tokens with scopes and expiry, step-up freshness for dangerous actions,
// and k-of-n approvals.
//
// Security: passwords are stored only as Argon2id hashes, session and API
// tokens and recovery codes only as SHA-256 digests, and TOTP seeds only
// sealed by the vault (Secrets). Nothing secret is logged or returned in an
// error. Every comparison of a secret is constant-time. A TOTP code is
// accepted once: a code for a step at or before the last accepted step is
// refused, so a code seen over a shoulder or in a log cannot be replayed.
//
// A Manager is safe for concurrent use, and so are several Managers over one
// store, in one process or in several sharing a database: when the store is
// store.Transactional (memory, SQLite, PostgreSQL), every read-check-write
// of an account (the last accepted TOTP step, recovery codes, the failure
// count and the lockout) is one store transaction, so a code sent to two
// Managers at once is accepted by one of them only, and no failure is lost.
// Deciding and using an approval are transactions too, and so is creating
// an account: of several creations of one name at once exactly one
// succeeds, and the others get ErrExists and no enrollment. PostgreSQL
// runs them one at a time under the store's advisory lock and SQLite under
// its write lock, so they never fail on a serialization conflict and need
// no retry.
// Changes to security code here need a second review.
package operator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Errors callers match.
var (
	// ErrBadCredentials is every login failure that is not a lockout: wrong
	// name, password or code are not told apart.
	ErrBadCredentials = errors.New("invalid credentials")
	ErrLocked         = errors.New("account locked, try later")
	ErrUnauthorized   = errors.New("not authenticated")
	ErrStepUp         = errors.New("a fresh TOTP code is required")
	ErrExists         = errors.New("already exists")
	ErrNotFound       = errors.New("not found")
	ErrInvalid        = errors.New("invalid request")
)

// Secrets seals TOTP seeds; *vault.Vault implements it.
type Secrets interface {
	PutSecret(ctx context.Context, kind, id string, secret []byte) error
	Secret(ctx context.Context, kind, id string) ([]byte, error)
}

const seedKind = "operator-totp"

// Options configure New.
type Options struct {
	Store   store.Store
	Secrets Secrets
	Now     func() time.Time // nil means time.Now
	KDF     KDF              // zero means DefaultKDF
	Issuer  string           // TOTP issuer shown in authenticator apps
	// Sessions keeps sessions; nil keeps them as records of Store.
	Sessions SessionStore

	SessionTTL  time.Duration // absolute session lifetime; default 8h
	IdleTimeout time.Duration // session idle timeout; default 15m
	StepUpTTL   time.Duration // how long a step-up stays fresh; default 5m
	MaxFailures int           // failed logins before lockout; default 5
	Lockout     time.Duration // lockout duration; default 15m
}

// Operator is an account's metadata. It holds nothing secret.
type Operator struct {
	Name     string    `json:"name"`
	Role     Role      `json:"role"`
	Keys     []string  `json:"keys,omitempty"` // "venue/key" in scope; empty: all keys
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
}

// InScope reports whether the operator's role applies to the exchange key
// venue/key.
func (o Operator) InScope(venue, key string) bool {
	return len(o.Keys) == 0 || slices.Contains(o.Keys, venue+"/"+key)
}

// account is the stored record of an operator.
type account struct {
	Operator
	PasswordHash string    `json:"password_hash"`
	Recovery     []string  `json:"recovery,omitempty"` // SHA-256 hex of unused recovery codes
	LastStep     int64     `json:"last_step"`          // last accepted TOTP step
	Failures     int       `json:"failures,omitempty"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	// SeedID is the id the TOTP seed is sealed under (kind seedKind):
	// the name and a random suffix, so that a creation that loses a race
	// for the name never replaces the winner's seed. Empty for accounts
	// created before, whose seed is sealed under the name.
	SeedID string `json:"seed_id,omitempty"`
}

// seedID returns the id a's TOTP seed is sealed under.
func (a *account) seedID() string {
	if a.SeedID != "" {
		return a.SeedID
	}
	return a.Name
}

// Enrollment is what creating an operator returns once: the TOTP key URI
// and the recovery codes. It redacts itself when printed or logged.
type Enrollment struct {
	URL           string
	Seed          []byte
	RecoveryCodes []string
}

// String returns a redaction marker.
func (Enrollment) String() string { return "[REDACTED]" }

// GoString returns a redaction marker.
func (Enrollment) GoString() string { return "[REDACTED]" }

// LogValue returns a redaction marker.
func (Enrollment) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// MarshalJSON returns a redaction marker: callers that must show the URL
// and codes once pick the fields themselves.
func (Enrollment) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// Manager manages operators, sessions, tokens and approvals.
type Manager struct {
	o   Options
	now func() time.Time

	// mu serialises account read-modify-writes within this Manager; the
	// store transaction of change serialises them across Managers.
	mu       sync.Mutex
	sessions SessionStore
}

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.Store == nil || o.Secrets == nil {
		return nil, errors.New("operator: store and secrets are required")
	}
	if o.KDF == (KDF{}) {
		o.KDF = DefaultKDF()
	}
	if o.Issuer == "" {
		o.Issuer = "keywarden"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SessionTTL, 8*time.Hour)
	def(&o.IdleTimeout, 15*time.Minute)
	def(&o.StepUpTTL, 5*time.Minute)
	def(&o.Lockout, 15*time.Minute)
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sessions := o.Sessions
	if sessions == nil {
		sessions = NewKVSessions(o.Store)
	}
	return &Manager{o: o, now: now, sessions: sessions}, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func accountKey(name string) string { return "operators/accounts/" + name }

// CreateOptions describe a new operator.
type CreateOptions struct {
	Name     string
	Role     Role
	Keys     []string
	Password []byte
}

// Create adds an operator, enrolls a TOTP seed and makes recovery codes.
//
// Creating a name that exists fails with ErrExists ("operator NAME already
// exists") and returns no enrollment. This holds across Managers sharing a
// store.Transactional store: the account is written with store.Tx.Create,
// so of several creations of one name at once exactly one succeeds. The
// seed is sealed first, under an id of its own (the name and a random
// suffix) that the account names, so the account never exists without its
// seed and a refused creation never touches the seed of the account that
// exists; the refused creation removes the seed it sealed when Secrets can
// delete (*vault.Vault can).
func (m *Manager) Create(ctx context.Context, c CreateOptions) (Operator, *Enrollment, error) {
	if !nameRE.MatchString(c.Name) || !c.Role.Valid() || len(c.Password) < 12 || !validKeys(c.Keys) {
		return Operator{}, nil, fmt.Errorf("create operator: %w: name [a-z0-9._-], known role, keys venue/key, password of 12 or more bytes", ErrInvalid)
	}
	// A name that exists already is refused before any work; the store
	// transaction below decides between creations racing for a new name.
	if _, err := m.get(ctx, c.Name); err == nil {
		return Operator{}, nil, existsError(c.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return Operator{}, nil, fmt.Errorf("create operator: %w", err)
	}
	hash, err := hashPassword(c.Password, m.o.KDF)
	if err != nil {
		return Operator{}, nil, err
	}
	seed := make([]byte, 20)
	if _, err := rand.Read(seed); err != nil {
		return Operator{}, nil, fmt.Errorf("create operator: %w", err)
	}
	uri, err := otpauthURL(m.o.Issuer, c.Name, seed)
	if err != nil {
		clear(seed)
		return Operator{}, nil, fmt.Errorf("create operator: %w", err)
	}
	codes, digests, err := newRecoveryCodes(10)
	if err != nil {
		clear(seed)
		return Operator{}, nil, err
	}
	suffix := make([]byte, 16)
	if _, err := rand.Read(suffix); err != nil {
		clear(seed)
		return Operator{}, nil, fmt.Errorf("create operator: %w", err)
	}
	a := account{
		Operator:     Operator{Name: c.Name, Role: c.Role, Keys: slices.Clone(c.Keys), Created: m.now().UTC()},
		PasswordHash: hash,
		Recovery:     digests,
		SeedID:       c.Name + "/" + hex.EncodeToString(suffix),
	}
	// The vault seals in a store transaction of its own: the seed is
	// sealed before the account's transaction, not inside it.
	if err := m.o.Secrets.PutSecret(ctx, seedKind, a.SeedID, seed); err != nil {
		clear(seed)
		return Operator{}, nil, fmt.Errorf("create operator: seal totp seed: %w", err)
	}
	err = m.atomically(ctx, func(s rw) error { return createAccount(ctx, s, &a) })
	if err != nil {
		clear(seed)
		// Nobody holds this seed: remove it (best effort; a seed left
		// sealed opens no account, as none names it).
		if d, ok := m.o.Secrets.(secretDeleter); ok {
			_ = d.DeleteSecret(context.WithoutCancel(ctx), seedKind, a.SeedID)
		}
		if errors.Is(err, store.ErrExists) {
			return Operator{}, nil, existsError(c.Name)
		}
		return Operator{}, nil, err
	}
	return a.Operator, &Enrollment{URL: uri, Seed: seed, RecoveryCodes: codes}, nil
}

// secretDeleter is the optional part of Secrets that Create uses to remove
// the seed of a refused creation; *vault.Vault implements it.
type secretDeleter interface {
	DeleteSecret(ctx context.Context, kind, id string) error
}

// existsError is the error of creating name when it exists: its text is
// "operator NAME already exists" and it matches ErrExists.
func existsError(name string) error {
	return fmt.Errorf("operator %s %w", name, ErrExists)
}

// createAccount writes a new account, refusing with store.ErrExists when
// the name is taken: through store.Tx.Create inside a transaction, else
// (a store without transactions, under the Manager's lock only) by a read
// before the write.
func createAccount(ctx context.Context, s rw, a *account) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("write operator: %w", err)
	}
	if tx, ok := s.(store.Tx); ok {
		if err := tx.Create(ctx, accountKey(a.Name), b); err != nil {
			if errors.Is(err, store.ErrExists) {
				return err
			}
			return fmt.Errorf("write operator: %w", err)
		}
		return nil
	}
	if _, err := s.Get(ctx, accountKey(a.Name)); err == nil {
		return store.ErrExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read operator: %w", err)
	}
	if err := s.Put(ctx, accountKey(a.Name), b); err != nil {
		return fmt.Errorf("write operator: %w", err)
	}
	return nil
}

func validKeys(keys []string) bool {
	for _, k := range keys {
		v, n, ok := strings.Cut(k, "/")
		if !ok || v == "" || n == "" || strings.Contains(n, "/") {
			return false
		}
	}
	return true
}

func newRecoveryCodes(n int) (codes, digests []string, err error) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for range n {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("recovery codes: %w", err)
		}
		c := strings.ToLower(enc.EncodeToString(b))
		codes = append(codes, c[:8]+"-"+c[8:])
		digests = append(digests, digest(c[:8]+"-"+c[8:]))
	}
	return codes, digests, nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (m *Manager) get(ctx context.Context, name string) (*account, error) {
	return getAccount(ctx, m.o.Store, name)
}

// reader is what getAccount needs: a store.Store or a store.Tx.
type reader interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// writer is what putAccount needs: a store.Store or a store.Tx.
type writer interface {
	Put(ctx context.Context, key string, val []byte) error
}

func getAccount(ctx context.Context, r reader, name string) (*account, error) {
	if !nameRE.MatchString(name) {
		return nil, ErrNotFound
	}
	b, err := r.Get(ctx, accountKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("read operator: %w", err)
	}
	var a account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("read operator: %w", err)
	}
	return &a, nil
}

func putAccount(ctx context.Context, w writer, a *account) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("write operator: %w", err)
	}
	if err := w.Put(ctx, accountKey(a.Name), b); err != nil {
		return fmt.Errorf("write operator: %w", err)
	}
	return nil
}

// rw is what a read-check-write needs: a store.Store or a store.Tx.
type rw interface {
	reader
	writer
}

// atomically runs fn, a read-check-write, with this Manager's lock held
// and, when the store is store.Transactional, inside one store
// transaction: then Managers in other goroutines or processes sharing the
// store see fn's writes before they read, and their own read-check-writes
// wait for fn's. fn reads and writes only through s (a transaction holds
// the store), and an error from fn abandons its writes. With another
// store only this Manager's lock holds.
func (m *Manager) atomically(ctx context.Context, fn func(s rw) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ts, ok := m.o.Store.(store.Transactional); ok {
		return ts.Update(ctx, func(tx store.Tx) error { return fn(tx) })
	}
	return fn(m.o.Store)
}

// change reads name's account, lets fn check and change it, and writes it
// back when fn says so, even when fn also returns an error (a failed code
// is counted and refused), all atomically. It returns the account as
// written (or read) and fn's error.
func (m *Manager) change(ctx context.Context, name string, fn func(a *account) (write bool, err error)) (*account, error) {
	var a *account
	var ferr error
	err := m.atomically(ctx, func(s rw) error {
		var err error
		if a, err = getAccount(ctx, s, name); err != nil {
			return err
		}
		var write bool
		if write, ferr = fn(a); !write {
			return nil
		}
		return putAccount(ctx, s, a)
	})
	if err != nil {
		return nil, err
	}
	return a, ferr
}

// Get returns an operator.
func (m *Manager) Get(ctx context.Context, name string) (Operator, error) {
	a, err := m.get(ctx, name)
	if err != nil {
		return Operator{}, err
	}
	return a.Operator, nil
}

// List returns every operator, by name.
func (m *Manager) List(ctx context.Context) ([]Operator, error) {
	keys, err := m.o.Store.List(ctx, "operators/accounts/")
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	out := []Operator{}
	for _, k := range keys {
		a, err := m.get(ctx, strings.TrimPrefix(k, "operators/accounts/"))
		if err != nil {
			return nil, err
		}
		out = append(out, a.Operator)
	}
	return out, nil
}

// Any reports whether at least one operator exists.
func (m *Manager) Any(ctx context.Context) (bool, error) {
	keys, err := m.o.Store.List(ctx, "operators/accounts/")
	return len(keys) > 0, err
}

// SetRole changes an operator's role and key scope.
func (m *Manager) SetRole(ctx context.Context, name string, r Role, keys []string) (Operator, error) {
	if !r.Valid() || !validKeys(keys) {
		return Operator{}, fmt.Errorf("set role: %w", ErrInvalid)
	}
	return m.update(ctx, name, func(a *account) { a.Role, a.Keys = r, slices.Clone(keys) })
}

// SetDisabled disables or enables an operator. Disabling ends their
// sessions and makes their API tokens unusable.
func (m *Manager) SetDisabled(ctx context.Context, name string, disabled bool) (Operator, error) {
	op, err := m.update(ctx, name, func(a *account) { a.Disabled = disabled })
	if err == nil && disabled {
		// Authenticate refuses a disabled operator's sessions anyway; this
		// removes them from the store.
		err = m.sessions.DeleteOperator(ctx, name)
	}
	return op, err
}

func (m *Manager) update(ctx context.Context, name string, fn func(*account)) (Operator, error) {
	a, err := m.change(ctx, name, func(a *account) (bool, error) { fn(a); return true, nil })
	if err != nil {
		return Operator{}, err
	}
	return a.Operator, nil
}

// NewRecoveryCodes replaces name's recovery codes with ten new ones and
// returns them, shown once; the old codes stop working.
func (m *Manager) NewRecoveryCodes(ctx context.Context, name string) ([]string, error) {
	codes, digests, err := newRecoveryCodes(10)
	if err != nil {
		return nil, err
	}
	if _, err := m.update(ctx, name, func(a *account) { a.Recovery = digests }); err != nil {
		return nil, err
	}
	return codes, nil
}

// RecoveryCodesLeft returns how many unused recovery codes name has.
func (m *Manager) RecoveryCodesLeft(ctx context.Context, name string) (int, error) {
	a, err := m.get(ctx, name)
	if err != nil {
		return 0, err
	}
	return len(a.Recovery), nil
}

// dummyHash is checked against for unknown names so that a login for a
// name that does not exist costs the same as one that does.
var dummyHash = "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// Login checks name, password and a TOTP code (or an unused recovery code)
// and starts a session. It returns the session token, shown once.
// After MaxFailures failures in a row the account is locked for Lockout;
// a locked account's logins fail with ErrLocked even with the right
// password.
func (m *Manager) Login(ctx context.Context, name string, password []byte, code string) (string, Principal, error) {
	// The Argon2id check runs outside the lock so that a flood of logins
	// does not stall other operators' requests.
	a, err := m.get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		_, _ = checkPassword(dummyHash, password)
		return "", Principal{}, ErrBadCredentials
	} else if err != nil {
		return "", Principal{}, err
	}
	if m.now().Before(a.LockedUntil) {
		return "", Principal{}, ErrLocked
	}
	hash := a.PasswordHash
	pwOK, err := checkPassword(hash, password)
	if err != nil {
		return "", Principal{}, fmt.Errorf("login: %w", err)
	}
	// The seed is unsealed before the account transaction: the vault reads
	// the store itself.
	var seed []byte
	if pwOK {
		if seed, err = m.seed(ctx, a.seedID()); err != nil {
			return "", Principal{}, err
		}
		defer clear(seed)
	}

	now := m.now()
	a, err = m.change(ctx, name, func(a *account) (bool, error) {
		if now.Before(a.LockedUntil) {
			return false, ErrLocked
		}
		// Should the hash have changed since it was checked, the password
		// checked is no longer this account's.
		pwOK := pwOK && subtle.ConstantTimeCompare([]byte(a.PasswordHash), []byte(hash)) == 1
		if !pwOK || a.Disabled || !m.checkSecondFactor(a, seed, code, now, true) {
			m.fail(a, now)
			return true, ErrBadCredentials
		}
		a.Failures, a.LockedUntil = 0, time.Time{}
		return true, nil
	})
	if err != nil {
		return "", Principal{}, err
	}
	tok, err := newToken("kws_")
	if err != nil {
		return "", Principal{}, err
	}
	// Logging in is not a step-up: a session token taken from a browser or
	// a log must not be enough for a dangerous action.
	s := Session{ID: digest(tok), Operator: a.Name, Created: now.UTC(), LastSeen: now.UTC()}
	if err := m.sessions.DeleteExpired(ctx, now.Add(-m.o.SessionTTL), now.Add(-m.o.IdleTimeout)); err != nil {
		return "", Principal{}, err
	}
	if err := m.sessions.Create(ctx, s); err != nil {
		return "", Principal{}, err
	}
	return tok, m.principal(a, &s, nil), nil
}

// seed unseals the TOTP seed sealed under id (account.seedID); the caller
// clears it.
func (m *Manager) seed(ctx context.Context, id string) ([]byte, error) {
	seed, err := m.o.Secrets.Secret(ctx, seedKind, id)
	if err != nil {
		return nil, fmt.Errorf("check code: unseal totp seed: %w", err)
	}
	return seed, nil
}

// checkSecondFactor checks a TOTP code of seed, or with recovery set an
// unused recovery code, and records its use in a (the caller saves a).
func (m *Manager) checkSecondFactor(a *account, seed []byte, code string, now time.Time, recovery bool) bool {
	if step, ok := matchTOTP(seed, code, now, a.LastStep); ok {
		a.LastStep = step
		return true
	}
	if !recovery || len(code) == totpDigits {
		return false
	}
	d := digest(strings.ToLower(strings.TrimSpace(code)))
	for i, r := range a.Recovery {
		if subtle.ConstantTimeCompare([]byte(r), []byte(d)) == 1 {
			a.Recovery = slices.Delete(a.Recovery, i, i+1)
			return true
		}
	}
	return false
}

// fail counts a failed login or code in a and locks a after MaxFailures
// in a row.
func (m *Manager) fail(a *account, now time.Time) {
	a.Failures++
	if a.Failures >= m.o.MaxFailures {
		a.LockedUntil, a.Failures = now.Add(m.o.Lockout), 0
	}
}

// VerifyCode checks a TOTP code of name (single-use). It counts failures
// towards the lockout like logins do.
func (m *Manager) VerifyCode(ctx context.Context, name, code string) error {
	if !nameRE.MatchString(name) {
		return ErrStepUp
	}
	a, err := m.get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return ErrStepUp
	} else if err != nil {
		return err
	}
	seed, err := m.seed(ctx, a.seedID())
	if err != nil {
		return err
	}
	defer clear(seed)
	now := m.now()
	_, err = m.change(ctx, name, func(a *account) (bool, error) {
		if now.Before(a.LockedUntil) {
			return false, ErrLocked
		}
		if !m.checkSecondFactor(a, seed, code, now, false) {
			m.fail(a, now)
			return true, ErrStepUp
		}
		a.Failures = 0
		return true, nil
	})
	if errors.Is(err, ErrNotFound) {
		return ErrStepUp
	}
	return err
}

func newToken(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}
