package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// do signs r with key, sends it and returns the status and body.
func (h *HTTPVenue) do(ctx context.Context, r *exchange.Request, key *exchange.Credential) (int, []byte, error) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if err := h.Venue.Signer.Sign(r, key, h.now()); err != nil {
		return 0, nil, fmt.Errorf("sign: %w", err)
	}
	u := *h.Venue.Upstream
	u.Path = h.Venue.Upstream.Path + r.Path
	u.RawPath = ""
	u.RawQuery = r.RawQuery
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return 0, nil, err
	}
	req.Header = r.Header
	resp, err := h.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
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
