package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open spot order of a key: GET
// /api/v4/spot/open_orders lists them grouped by currency pair, then
// DELETE /api/v4/spot/orders?currency_pair= cancels each pair's orders and
// lists them. Futures, margin and price-triggered orders are not covered.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v4/spot/open_orders", Header: http.Header{}}, key)
	if err != nil {
		return rep, fmt.Errorf("gate: list open orders: %w", err)
	}
	var groups []struct {
		CurrencyPair string `json:"currency_pair"`
		Total        int    `json:"total"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &groups) != nil {
		return rep, exchange.VenueError("gate: list open orders", st, body)
	}
	for _, g := range groups {
		if g.CurrencyPair == "" {
			continue
		}
		r := &exchange.Request{Method: http.MethodDelete, Path: "/api/v4/spot/orders",
			RawQuery: "currency_pair=" + url.QueryEscape(g.CurrencyPair), Header: http.Header{}}
		st, body, err := d.Do(ctx, r, key)
		if err != nil {
			return rep, fmt.Errorf("gate: cancel %s: %w", g.CurrencyPair, err)
		}
		var done []json.RawMessage
		if st != http.StatusOK || json.Unmarshal(body, &done) != nil {
			return rep, exchange.VenueError("gate: cancel "+g.CurrencyPair, st, body)
		}
		rep.Cancelled += len(done)
		rep.Scopes = append(rep.Scopes, g.CurrencyPair)
	}
	return rep, nil
}
