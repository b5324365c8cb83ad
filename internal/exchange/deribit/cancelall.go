package deribit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key, of every currency and
// instrument kind, with one call: GET /api/v2/private/cancel_all, whose
// result is the number of orders cancelled.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v2/private/cancel_all", Header: http.Header{}}, key)
	if err != nil {
		return rep, fmt.Errorf("deribit: cancel_all: %w", err)
	}
	var res struct {
		Result *int            `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Result == nil {
		return rep, exchange.VenueError("deribit: cancel_all", st, body)
	}
	rep.Cancelled = *res.Result
	if rep.Cancelled > 0 {
		rep.Scopes = []string{"all currencies and kinds"}
	}
	return rep, nil
}
