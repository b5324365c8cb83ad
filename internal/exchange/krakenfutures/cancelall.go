package krakenfutures

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key, of every contract, with one
// call: POST /derivatives/api/v3/cancelallorders (no symbol), whose
// cancelStatus lists the cancelled orders.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	r := &exchange.Request{Method: http.MethodPost, Path: "/derivatives/api/v3/cancelallorders",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
	st, body, err := d.Do(ctx, r, key)
	if err != nil {
		return rep, fmt.Errorf("kraken futures: cancelallorders: %w", err)
	}
	var res struct {
		Result       string `json:"result"`
		CancelStatus struct {
			Status          string            `json:"status"`
			CancelledOrders []json.RawMessage `json:"cancelledOrders"`
		} `json:"cancelStatus"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Result != "success" {
		return rep, exchange.VenueError("kraken futures: cancelallorders", st, body)
	}
	switch res.CancelStatus.Status {
	case "cancelled", "noOrdersToCancel":
	default:
		return rep, exchange.VenueError("kraken futures: cancelallorders", st, body)
	}
	rep.Cancelled = len(res.CancelStatus.CancelledOrders)
	if rep.Cancelled > 0 {
		rep.Scopes = []string{"all contracts"}
	}
	return rep, nil
}
