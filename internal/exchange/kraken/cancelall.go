package kraken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key with one call: POST
// /0/private/CancelAll, whose result is the number cancelled.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	r := &exchange.Request{Method: http.MethodPost, Path: "/0/private/CancelAll",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
	st, body, err := d.Do(ctx, r, key)
	if err != nil {
		return rep, fmt.Errorf("kraken: CancelAll: %w", err)
	}
	var res struct {
		Error  []string `json:"error"`
		Result struct {
			Count *int `json:"count"`
		} `json:"result"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res.Error) > 0 || res.Result.Count == nil {
		return rep, exchange.VenueError("kraken: CancelAll", st, body)
	}
	rep.Cancelled = *res.Result.Count
	if rep.Cancelled > 0 {
		rep.Scopes = []string{"all pairs"}
	}
	return rep, nil
}
