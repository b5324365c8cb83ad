package okx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key: GET
// /api/v5/trade/orders-pending lists up to 100 open orders (all instrument
// types), then POST /api/v5/trade/cancel-batch-orders cancels them 20 at a
// time; it lists again until none is left (at most maxSweeps rounds).
// Algo orders (order-algo) are not listed there and are not cancelled.
type Canceller struct{}

// maxSweeps bounds the list-and-cancel rounds of one CancelAll.
const maxSweeps = 50

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	for range maxSweeps {
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v5/trade/orders-pending", RawQuery: "limit=100", Header: http.Header{}}, key)
		if err != nil {
			return rep, fmt.Errorf("okx: list open orders: %w", err)
		}
		var list struct {
			Code string `json:"code"`
			Data []struct {
				InstID string `json:"instId"`
				OrdID  string `json:"ordId"`
			} `json:"data"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &list) != nil || list.Code != "0" {
			return rep, exchange.VenueError("okx: list open orders", st, body)
		}
		if len(list.Data) == 0 {
			slices.Sort(rep.Scopes)
			return rep, nil
		}
		cancelled := 0
		for start := 0; start < len(list.Data); start += maxBatch {
			batch := list.Data[start:min(start+maxBatch, len(list.Data))]
			type ref struct {
				InstID string `json:"instId"`
				OrdID  string `json:"ordId"`
			}
			refs := make([]ref, 0, len(batch))
			for _, o := range batch {
				refs = append(refs, ref{o.InstID, o.OrdID})
				if !slices.Contains(rep.Scopes, o.InstID) {
					rep.Scopes = append(rep.Scopes, o.InstID)
				}
			}
			b, err := json.Marshal(refs)
			if err != nil {
				return rep, err
			}
			r := &exchange.Request{Method: http.MethodPost, Path: "/api/v5/trade/cancel-batch-orders", Body: b,
				Header: http.Header{"Content-Type": {"application/json"}}}
			st, body, err := d.Do(ctx, r, key)
			if err != nil {
				return rep, fmt.Errorf("okx: cancel orders: %w", err)
			}
			var res struct {
				Code string `json:"code"`
				Data []struct {
					SCode string `json:"sCode"`
				} `json:"data"`
			}
			// code 0: all cancelled; 2: some; 1: none (each entry's sCode
			// says why, e.g. 51400 filled or already cancelled meanwhile).
			if st != http.StatusOK || json.Unmarshal(body, &res) != nil || (res.Code != "0" && res.Code != "1" && res.Code != "2") {
				return rep, exchange.VenueError("okx: cancel orders", st, body)
			}
			for _, e := range res.Data {
				if e.SCode == "0" {
					cancelled++
				}
			}
		}
		rep.Cancelled += cancelled
		if cancelled == 0 {
			// Nothing could be cancelled this round: stop rather than loop
			// on orders the venue refuses to cancel.
			return rep, fmt.Errorf("okx: %d open orders could not be cancelled", len(list.Data))
		}
	}
	return rep, fmt.Errorf("okx: open orders remain after %d rounds", maxSweeps)
}
