package posture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxBody bounds what Inspect reads from a venue.
const maxBody = 1 << 20

// ErrNoInspector means the venue has no key self-inspection endpoint.
var ErrNoInspector = errors.New("venue has no key self-inspection endpoint")

// Inspect asks v what it allows key to do: it builds the venue's
// self-inspection request, signs it with key at now, sends it to
// v.Upstream with hc and parses the answer. Errors never contain the key's
// secret.
func Inspect(ctx context.Context, hc *http.Client, v exchange.Venue, key *exchange.Credential, now time.Time) (exchange.KeyPosture, error) {
	if v.Inspector == nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: %w", v.Name, ErrNoInspector)
	}
	if v.Upstream == nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: no upstream", v.Name)
	}
	r := v.Inspector.InspectRequest()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if err := v.Signer.Sign(r, key, now); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: sign: %w", v.Name, err)
	}
	u := *v.Upstream
	u.Path = v.Upstream.Path + r.Path
	u.RawPath = ""
	u.RawQuery = r.RawQuery
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: %w", v.Name, err)
	}
	req.Header = r.Header
	resp, err := hc.Do(req)
	if err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: %w", v.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: read: %w", v.Name, err)
	}
	p, err := v.Inspector.ParsePosture(resp.StatusCode, b)
	if err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("inspect %s: %w", v.Name, err)
	}
	return p, nil
}
