package bitmex

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key, of every symbol, with one
// call: DELETE /api/v1/order/all, which answers with the cancelled orders.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodDelete, Path: "/api/v1/order/all", Header: http.Header{}}, key)
	if err != nil {
		return rep, fmt.Errorf("bitmex: cancel all: %w", err)
	}
	var orders []struct {
		Symbol    string `json:"symbol"`
		OrdStatus string `json:"ordStatus"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &orders) != nil {
		return rep, exchange.VenueError("bitmex: cancel all", st, body)
	}
	for _, o := range orders {
		if o.OrdStatus != "" && o.OrdStatus != "Canceled" {
			continue // filled meanwhile: listed, not cancelled
		}
		rep.Cancelled++
		if o.Symbol != "" && !slices.Contains(rep.Scopes, o.Symbol) {
			rep.Scopes = append(rep.Scopes, o.Symbol)
		}
	}
	slices.Sort(rep.Scopes)
	return rep, nil
}
