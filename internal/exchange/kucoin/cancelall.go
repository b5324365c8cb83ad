package kucoin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open spot order of a key: DELETE /api/v1/orders
// (classic orders of every symbol; the answer lists the cancelled ids),
// then DELETE /api/v1/hf/orders/cancelAll (high-frequency orders of every
// symbol; the answer names the symbols, not the count). Futures and margin
// orders are not covered.
type Canceller struct{}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	type envelope struct {
		Code string          `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	call := func(path string) (json.RawMessage, error) {
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodDelete, Path: path, Header: http.Header{}}, key)
		if err != nil {
			return nil, fmt.Errorf("kucoin: DELETE %s: %w", path, err)
		}
		var e envelope
		if st != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Code != "200000" {
			return nil, exchange.VenueError("kucoin: DELETE "+path, st, body)
		}
		return e.Data, nil
	}
	data, err := call("/api/v1/orders")
	if err != nil {
		return rep, err
	}
	var classic struct {
		CancelledOrderIDs []string `json:"cancelledOrderIds"`
	}
	if err := json.Unmarshal(data, &classic); err != nil {
		return rep, fmt.Errorf("kucoin: cancel classic orders: %w", err)
	}
	rep.Cancelled = len(classic.CancelledOrderIDs)
	if rep.Cancelled > 0 {
		rep.Scopes = append(rep.Scopes, "classic")
	}
	if data, err = call("/api/v1/hf/orders/cancelAll"); err != nil {
		return rep, err
	}
	var hf struct {
		SucceedSymbols []string `json:"succeedSymbols"`
		FailedSymbols  []struct {
			Symbol string `json:"symbol"`
			Error  string `json:"error"`
		} `json:"failedSymbols"`
	}
	if err := json.Unmarshal(data, &hf); err != nil {
		return rep, fmt.Errorf("kucoin: cancel high-frequency orders: %w", err)
	}
	for _, sym := range hf.SucceedSymbols {
		if !slices.Contains(rep.Scopes, sym) {
			rep.Scopes = append(rep.Scopes, sym)
		}
	}
	if len(hf.FailedSymbols) > 0 {
		return rep, fmt.Errorf("kucoin: high-frequency orders of %s were not cancelled: %s", hf.FailedSymbols[0].Symbol, hf.FailedSymbols[0].Error)
	}
	return rep, nil
}
