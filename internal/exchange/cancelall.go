package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// Doer sends a venue request signed with key (through the venue's Signer)
// to the venue's upstream and returns the answer's status and body. The
// venue packages' order cancellers (cancelall.go) call the venue through
// it, so they never hold an HTTP client or sign on their own.
type Doer interface {
	Do(ctx context.Context, r *Request, key *Credential) (status int, body []byte, err error)
}

// CancelReport says what cancelling every open order of a key did.
type CancelReport struct {
	// Cancelled counts the orders the venue reported cancelled (or, where
	// the venue answers without a count, the open orders listed before the
	// cancel).
	Cancelled int `json:"cancelled"`
	// Scopes are the symbols, instruments or categories swept.
	Scopes []string `json:"scopes,omitempty"`
}

// VenueError describes a venue's refusal of a cancel or listing call: the
// step, the status and the start of the venue's answer (which names no
// secret: venues echo neither keys nor signatures).
func VenueError(step string, status int, body []byte) error {
	b := body
	if len(b) > 200 {
		b = b[:200]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return fmt.Errorf("%s: status %d: %s", step, status, b)
}

// HTTPDoer is the Doer of a venue reached over HTTP at v.Upstream: it signs
// each request with v.Signer and reads at most 1 MiB of the answer.
type HTTPDoer struct {
	Venue  Venue
	Client *http.Client
	Now    func() time.Time // default time.Now
}

// Do implements Doer.
func (h *HTTPDoer) Do(ctx context.Context, r *Request, key *Credential) (int, []byte, error) {
	r = r.Clone()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if err := h.Venue.Signer.Sign(r, key, now()); err != nil {
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
		// The URL may carry the request's signature (Binance signs the
		// query): name the method and path only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
