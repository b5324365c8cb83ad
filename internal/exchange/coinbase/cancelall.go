package coinbase

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key: GET
// /api/v3/brokerage/orders/historical/batch?order_status=OPEN lists them
// (following the cursor, at most maxPages pages), then POST
// /api/v3/brokerage/orders/batch_cancel cancels them, maxCancelBatch ids
// per call.
type Canceller struct{}

const (
	maxPages       = 50
	maxCancelBatch = 100
)

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return rep, fmt.Errorf("coinbase: more than %d pages of open orders", maxPages)
		}
		q := url.Values{"order_status": {"OPEN"}, "limit": {"250"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v3/brokerage/orders/historical/batch", RawQuery: q.Encode(), Header: http.Header{}}, key)
		if err != nil {
			return rep, fmt.Errorf("coinbase: list open orders: %w", err)
		}
		var list struct {
			Orders []struct {
				OrderID   string `json:"order_id"`
				ProductID string `json:"product_id"`
				Status    string `json:"status"`
			} `json:"orders"`
			HasNext bool   `json:"has_next"`
			Cursor  string `json:"cursor"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &list) != nil {
			return rep, exchange.VenueError("coinbase: list open orders", st, body)
		}
		for _, o := range list.Orders {
			if o.OrderID == "" || (o.Status != "" && o.Status != "OPEN") {
				continue
			}
			ids = append(ids, o.OrderID)
			if !slices.Contains(rep.Scopes, o.ProductID) {
				rep.Scopes = append(rep.Scopes, o.ProductID)
			}
		}
		if !list.HasNext || list.Cursor == "" {
			break
		}
		cursor = list.Cursor
	}
	slices.Sort(rep.Scopes)
	failed := 0
	for start := 0; start < len(ids); start += maxCancelBatch {
		b, err := json.Marshal(map[string][]string{"order_ids": ids[start:min(start+maxCancelBatch, len(ids))]})
		if err != nil {
			return rep, err
		}
		r := &exchange.Request{Method: http.MethodPost, Path: "/api/v3/brokerage/orders/batch_cancel", Body: b,
			Header: http.Header{"Content-Type": {"application/json"}}}
		st, body, err := d.Do(ctx, r, key)
		if err != nil {
			return rep, fmt.Errorf("coinbase: batch_cancel: %w", err)
		}
		var res struct {
			Results []struct {
				Success bool `json:"success"`
			} `json:"results"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &res) != nil {
			return rep, exchange.VenueError("coinbase: batch_cancel", st, body)
		}
		for _, x := range res.Results {
			if x.Success {
				rep.Cancelled++
			} else {
				failed++
			}
		}
	}
	if failed > 0 {
		return rep, fmt.Errorf("coinbase: %d of %d open orders were not cancelled (filled or cancelled meanwhile, or refused)", failed, len(ids))
	}
	return rep, nil
}
