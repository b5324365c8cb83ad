package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Principal is an authenticated operator for one request.
type Principal struct {
	Operator
	// Token is the API token's id when the principal authenticated with an
	// API token, empty for a session.
	Token string
	// Scopes limit an API token to these permissions (within the role).
	Scopes []Permission
	// StepUp is when the session last proved a fresh TOTP code; API tokens
	// never have one.
	StepUp time.Time
}

// Can reports whether the principal holds permission p.
func (p Principal) Can(perm Permission) bool {
	if p.Disabled || !p.Role.Grants(perm) {
		return false
	}
	return p.Token == "" || slices.Contains(p.Scopes, perm)
}

func (m *Manager) principal(a *account, s *Session, t *tokenRecord) Principal {
	p := Principal{Operator: a.Operator}
	if s != nil {
		p.StepUp = s.StepUp
	}
	if t != nil {
		p.Token, p.Scopes = t.ID, t.Scopes
	}
	return p
}

// Fresh reports whether the principal stepped up within StepUpTTL.
func (m *Manager) Fresh(p Principal) bool {
	return p.Token == "" && !p.StepUp.IsZero() && m.now().Sub(p.StepUp) < m.o.StepUpTTL
}

// Authenticate returns the principal of a session or API token.
func (m *Manager) Authenticate(ctx context.Context, token string) (Principal, error) {
	switch {
	case strings.HasPrefix(token, "kws_"):
		return m.authSession(ctx, token)
	case strings.HasPrefix(token, "kwt_"):
		return m.authToken(ctx, token)
	}
	return Principal{}, ErrUnauthorized
}

// touchEvery is how often a session's last activity is written: the idle
// timeout is kept to within this much.
const touchEvery = 10 * time.Second

func (m *Manager) authSession(ctx context.Context, token string) (Principal, error) {
	now := m.now()
	k := digest(token)
	s, err := m.sessions.Session(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrUnauthorized
	} else if err != nil {
		return Principal{}, err
	}
	if now.Sub(s.Created) >= m.o.SessionTTL || now.Sub(s.LastSeen) >= m.o.IdleTimeout {
		_ = m.sessions.Delete(ctx, k)
		return Principal{}, ErrUnauthorized
	}
	a, err := m.get(ctx, s.Operator)
	if err != nil || a.Disabled {
		_ = m.sessions.Delete(ctx, k)
		return Principal{}, ErrUnauthorized
	}
	// Activity is recorded at most every touchEvery, so that a page polling
	// the API does not write the database on every request. A session whose
	// activity cannot be recorded is refused: fail closed.
	if now.Sub(s.LastSeen) >= touchEvery {
		if err := m.sessions.Touch(ctx, k, now); err != nil {
			return Principal{}, ErrUnauthorized
		}
	}
	return m.principal(a, &s, nil), nil
}

// Logout ends a session or revokes the API token it is given.
func (m *Manager) Logout(ctx context.Context, token string) error {
	if strings.HasPrefix(token, "kwt_") {
		err := m.o.Store.Delete(ctx, tokenKey(digest(token)))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("logout: %w", err)
		}
		return nil
	}
	if err := m.sessions.Delete(ctx, digest(token)); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// StepUp checks a fresh TOTP code for the session's operator and marks the
// session stepped-up. API tokens cannot step up.
func (m *Manager) StepUp(ctx context.Context, token, code string) error {
	if !strings.HasPrefix(token, "kws_") {
		return ErrStepUp
	}
	p, err := m.authSession(ctx, token)
	if err != nil {
		return err
	}
	if err := m.VerifyCode(ctx, p.Name, code); err != nil {
		return err
	}
	return m.sessions.SetStepUp(ctx, digest(token), m.now())
}

// tokenRecord is a stored API token. The token itself is stored only as
// its SHA-256 digest, which is the record's key.
type tokenRecord struct {
	ID      string       `json:"id"`
	Owner   string       `json:"owner"`
	Name    string       `json:"name"`
	Scopes  []Permission `json:"scopes"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
}

// TokenInfo is an API token's metadata.
type TokenInfo struct {
	ID      string       `json:"id"`
	Owner   string       `json:"owner"`
	Name    string       `json:"name"`
	Scopes  []Permission `json:"scopes"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires"`
}

func tokenKey(d string) string { return "operators/tokens/" + d }

// MaxTokenTTL caps API token lifetimes.
const MaxTokenTTL = 90 * 24 * time.Hour

// CreateToken makes an API token for owner with the given scopes, each of
// which owner's role must grant. It returns the token, shown once.
func (m *Manager) CreateToken(ctx context.Context, owner Principal, name string, scopes []Permission, ttl time.Duration) (string, TokenInfo, error) {
	if owner.Token != "" {
		return "", TokenInfo{}, fmt.Errorf("create token: %w: API tokens cannot create tokens", ErrInvalid)
	}
	if ttl <= 0 || ttl > MaxTokenTTL || len(scopes) == 0 {
		return "", TokenInfo{}, fmt.Errorf("create token: %w: ttl up to %s and at least one scope", ErrInvalid, MaxTokenTTL)
	}
	for _, s := range scopes {
		if !owner.Role.Grants(s) {
			return "", TokenInfo{}, fmt.Errorf("create token: %w: role %s lacks scope %s", ErrInvalid, owner.Role, s)
		}
	}
	tok, err := newToken("kwt_")
	if err != nil {
		return "", TokenInfo{}, err
	}
	d := digest(tok)
	now := m.now().UTC()
	rec := tokenRecord{ID: d[:16], Owner: owner.Name, Name: name, Scopes: slices.Clone(scopes), Created: now, Expires: now.Add(ttl)}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", TokenInfo{}, err
	}
	if err := m.o.Store.Put(ctx, tokenKey(d), b); err != nil {
		return "", TokenInfo{}, fmt.Errorf("create token: %w", err)
	}
	return tok, TokenInfo(rec), nil
}

func (m *Manager) authToken(ctx context.Context, token string) (Principal, error) {
	b, err := m.o.Store.Get(ctx, tokenKey(digest(token)))
	if err != nil {
		return Principal{}, ErrUnauthorized
	}
	var rec tokenRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return Principal{}, ErrUnauthorized
	}
	if !m.now().Before(rec.Expires) {
		return Principal{}, ErrUnauthorized
	}
	a, err := m.get(ctx, rec.Owner)
	if err != nil || a.Disabled {
		return Principal{}, ErrUnauthorized
	}
	return m.principal(a, nil, &rec), nil
}

// Tokens lists the API tokens of owner (all when owner is empty).
func (m *Manager) Tokens(ctx context.Context, owner string) ([]TokenInfo, error) {
	keys, err := m.o.Store.List(ctx, "operators/tokens/")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := []TokenInfo{}
	for _, k := range keys {
		b, err := m.o.Store.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec tokenRecord
		if json.Unmarshal(b, &rec) == nil && (owner == "" || rec.Owner == owner) {
			out = append(out, TokenInfo(rec))
		}
	}
	return out, nil
}

// RevokeToken deletes the API token id. Only its owner or an operator
// with operators:write may revoke it.
func (m *Manager) RevokeToken(ctx context.Context, by Principal, id string) error {
	keys, err := m.o.Store.List(ctx, "operators/tokens/")
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	for _, k := range keys {
		b, err := m.o.Store.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec tokenRecord
		if json.Unmarshal(b, &rec) != nil || rec.ID != id {
			continue
		}
		if rec.Owner != by.Name && !by.Can(PermOperatorsWrite) {
			return ErrNotFound
		}
		if err := m.o.Store.Delete(ctx, k); err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return nil
	}
	return ErrNotFound
}
