package rotation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/posture"
)

// HTTPVenue is the Venue of an exchange.Venue reached over HTTP at its
// configured upstream.
type HTTPVenue struct {
	Venue  exchange.Venue
	Client *http.Client
	Now    func() time.Time
}

var _ Venue = (*HTTPVenue)(nil)

func (h *HTTPVenue) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// do signs r with key, sends it and returns the status and body, through
// exchange.HTTPDoer (whose errors never carry the signed URL).
func (h *HTTPVenue) do(ctx context.Context, r *exchange.Request, key *exchange.Credential) (int, []byte, error) {
	d := exchange.HTTPDoer{Venue: h.Venue, Client: h.Client, Now: h.now}
	return d.Do(ctx, r, key)
}

// ErrNoKeyManagement means the venue's API cannot create or delete keys.
var ErrNoKeyManagement = errors.New("venue cannot manage keys through its API")

// CreateKey creates a key at the venue.
func (h *HTTPVenue) CreateKey(ctx context.Context, signer *exchange.Credential, spec exchange.KeySpec) (*exchange.Credential, error) {
	if h.Venue.Keys == nil {
		return nil, ErrNoKeyManagement
	}
	r, err := h.Venue.Keys.CreateKeyRequest(spec)
	if err != nil {
		return nil, err
	}
	st, b, err := h.do(ctx, r, signer)
	if err != nil {
		return nil, err
	}
	return h.Venue.Keys.ParseCreatedKey(st, b)
}

// DeleteKey deletes keyID at the venue.
func (h *HTTPVenue) DeleteKey(ctx context.Context, signer *exchange.Credential, keyID string, spec exchange.KeySpec) error {
	if h.Venue.Keys == nil {
		return ErrNoKeyManagement
	}
	r, err := h.Venue.Keys.DeleteKeyRequest(keyID, spec)
	if err != nil {
		return err
	}
	st, b, err := h.do(ctx, r, signer)
	if err != nil {
		return err
	}
	if p, ok := h.Venue.Keys.(deleteParser); ok {
		return p.ParseDeleted(st, b)
	}
	if st < 200 || st > 299 { // Gate answers a deletion with 204
		return fmt.Errorf("delete key: status %d", st)
	}
	return nil
}

// deleteParser is a KeyManager that checks the answer to its deletion
// request beyond the status (Bitget answers errors with a code).
type deleteParser interface {
	ParseDeleted(status int, body []byte) error
}

// DeleteNote says what DeleteKey does at the venue when it does not delete
// the key (Bitget neutralises it), or "" when it deletes it.
func (h *HTTPVenue) DeleteNote() string {
	if n, ok := h.Venue.Keys.(interface{ DeleteNote() string }); ok {
		return n.DeleteNote()
	}
	return ""
}

// Inspect reads key's posture at the venue.
func (h *HTTPVenue) Inspect(ctx context.Context, key *exchange.Credential) (exchange.KeyPosture, error) {
	return posture.Inspect(ctx, h.Client, h.Venue, key, h.now())
}
