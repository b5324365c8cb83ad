package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Session is a stored admin API session. ID is the SHA-256 digest (hex) of
// the session token: the token itself is never stored, so reading the
// store does not give a usable session.
type Session struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	StepUp   time.Time `json:"step_up,omitzero"`
}

// SessionStore keeps sessions across restarts. Implementations are safe for
// concurrent use; Session, Touch and SetStepUp return ErrNotFound for an
// unknown id.
type SessionStore interface {
	Create(ctx context.Context, s Session) error
	Session(ctx context.Context, id string) (Session, error)
	Touch(ctx context.Context, id string, lastSeen time.Time) error
	SetStepUp(ctx context.Context, id string, at time.Time) error
	Delete(ctx context.Context, id string) error
	// DeleteOperator ends every session of operator.
	DeleteOperator(ctx context.Context, operator string) error
	// DeleteExpired removes sessions created before created or last seen
	// before seen.
	DeleteExpired(ctx context.Context, created, seen time.Time) error
}

// KVSessions keeps sessions as records of a store.Store under
// "operators/sessions/". It is the default when Options.Sessions is nil.
type KVSessions struct {
	st store.Store
	mu sync.Mutex // serializes read-modify-write of one record
}

var _ SessionStore = (*KVSessions)(nil)

// NewKVSessions returns sessions kept in st.
func NewKVSessions(st store.Store) *KVSessions { return &KVSessions{st: st} }

const sessionPrefix = "operators/sessions/"

func (k *KVSessions) put(ctx context.Context, s Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := k.st.Put(ctx, sessionPrefix+s.ID, b); err != nil {
		return fmt.Errorf("write session: %w", err)
	}
	return nil
}

// Create stores s.
func (k *KVSessions) Create(ctx context.Context, s Session) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.put(ctx, s)
}

// Session returns the session id.
func (k *KVSessions) Session(ctx context.Context, id string) (Session, error) {
	if !validDigest(id) {
		return Session{}, ErrNotFound
	}
	b, err := k.st.Get(ctx, sessionPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNotFound
	} else if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	return s, nil
}

func (k *KVSessions) update(ctx context.Context, id string, fn func(*Session)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, err := k.Session(ctx, id)
	if err != nil {
		return err
	}
	fn(&s)
	return k.put(ctx, s)
}

// Touch records activity of the session id.
func (k *KVSessions) Touch(ctx context.Context, id string, t time.Time) error {
	return k.update(ctx, id, func(s *Session) { s.LastSeen = t.UTC() })
}

// SetStepUp records a step-up of the session id.
func (k *KVSessions) SetStepUp(ctx context.Context, id string, t time.Time) error {
	return k.update(ctx, id, func(s *Session) { s.StepUp = t.UTC() })
}

// Delete removes the session id; an unknown id is no error.
func (k *KVSessions) Delete(ctx context.Context, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.st.Delete(ctx, sessionPrefix+id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (k *KVSessions) deleteWhere(ctx context.Context, drop func(Session) bool) error {
	keys, err := k.st.List(ctx, sessionPrefix)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range keys {
		s, err := k.Session(ctx, strings.TrimPrefix(key, sessionPrefix))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		// An unreadable record is dropped too: it cannot authenticate.
		if err != nil || drop(s) {
			if err := k.st.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete session: %w", err)
			}
		}
	}
	return nil
}

// DeleteOperator ends every session of operator.
func (k *KVSessions) DeleteOperator(ctx context.Context, operator string) error {
	return k.deleteWhere(ctx, func(s Session) bool { return s.Operator == operator })
}

// DeleteExpired removes sessions created before created or last seen
// before seen.
func (k *KVSessions) DeleteExpired(ctx context.Context, created, seen time.Time) error {
	return k.deleteWhere(ctx, func(s Session) bool { return s.Created.Before(created) || s.LastSeen.Before(seen) })
}

// validDigest reports whether id looks like a SHA-256 hex digest.
func validDigest(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
