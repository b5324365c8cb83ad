package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Downgrade records that a credential was downgraded to read-only: while it
// is set, the gateway refuses every trade, transfer, withdraw and
// account-admin call of the credential (policy rule "read_only") and lets
// public and read calls through. It is kept with the credential's record,
// so it survives restarts and reaches other replicas the way revocations
// do. It holds names and operator text, never secrets.
type Downgrade struct {
	Since  time.Time `json:"since"`
	By     string    `json:"by"`     // operator, "control-socket" or "automatic-response"
	Reason string    `json:"reason"` // why: an operator's text or an alert id
}

// ErrNotReadOnly is returned when restoring trading on a credential that
// is not downgraded.
var ErrNotReadOnly = errors.New("client credential is not read-only")

// AllowsScope reports whether the credential may make a call of scope s:
// every scope unless downgraded, public and read only when downgraded.
// Unknown scopes are refused while downgraded (fail closed).
func (c *Client) AllowsScope(s exchange.Scope) bool {
	return c.ReadOnly == nil || ReadOnlyAllows(s)
}

// ReadOnlyAllows reports whether a read-only credential may make a call of
// scope s: public and read calls only.
func ReadOnlyAllows(s exchange.Scope) bool {
	return s == exchange.ScopePublic || s == exchange.ScopeRead
}

// SetReadOnly downgrades the active credential venue/id to read-only from
// its next request. by and reason are recorded with it (at most 500
// characters of reason). Downgrading a downgraded credential keeps the
// first record and reports changed false.
func (r *Registry) SetReadOnly(ctx context.Context, venue, id, by, reason string) (c Client, changed bool, err error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Client{}, false, errors.New("read-only: a reason is required")
	}
	if len(reason) > 500 || !utf8.ValidString(reason) || len(by) > 128 {
		return Client{}, false, errors.New("read-only: reason or actor too long or not text")
	}
	return r.setMode(ctx, venue, id, func(c *Client) (bool, error) {
		if c.ReadOnly != nil {
			return false, nil
		}
		c.ReadOnly = &Downgrade{Since: r.now().UTC(), By: by, Reason: reason}
		return true, nil
	})
}

// RestoreTrading lifts the read-only downgrade of venue/id: its next
// request may trade again as its policy allows. It returns ErrNotReadOnly
// when the credential is not downgraded.
func (r *Registry) RestoreTrading(ctx context.Context, venue, id string) (Client, error) {
	c, _, err := r.setMode(ctx, venue, id, func(c *Client) (bool, error) {
		if c.ReadOnly == nil {
			return false, ErrNotReadOnly
		}
		c.ReadOnly = nil
		return true, nil
	})
	return c, err
}

// setMode changes the stored record of venue/id with fn, then the entry
// the gateway reads, so that the next request sees the change. The entry
// is replaced, never changed in place: requests in flight keep the copy
// they read.
func (r *Registry) setMode(ctx context.Context, venue, id string, fn func(*Client) (bool, error)) (Client, bool, error) {
	r.modeMu.Lock()
	defer r.modeMu.Unlock()
	c, err := r.Get(ctx, venue, id)
	if err != nil {
		return Client{}, false, err
	}
	if err := c.Active(r.now()); err != nil {
		return c, false, fmt.Errorf("client %s/%s: %w", venue, id, err)
	}
	changed, err := fn(&c)
	if err != nil || !changed {
		return c, false, err
	}
	if err := r.put(ctx, c); err != nil {
		return c, false, err
	}
	r.mu.Lock()
	if e, ok := r.entries[memKey(venue, id)]; ok {
		ne := &Entry{Client: c, Cred: e.Cred, deadline: e.deadline}
		r.entries[memKey(venue, id)] = ne
	}
	r.mu.Unlock()
	if c.ReadOnly != nil {
		r.log.Warn("client credential downgraded to read-only", "client", id, "venue", venue, "by", c.ReadOnly.By)
	} else {
		r.log.Warn("client credential may trade again", "client", id, "venue", venue)
	}
	return c, true, nil
}
