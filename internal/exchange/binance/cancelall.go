package binance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// SpotCanceller cancels every open spot order of a key: GET
// /api/v3/openOrders (all symbols) lists them, then DELETE
// /api/v3/openOrders?symbol= cancels each symbol's orders (Binance has no
// account-wide cancel on spot).
type SpotCanceller struct{}

// FuturesCanceller does the same on USD-M futures: GET /fapi/v1/openOrders,
// then DELETE /fapi/v1/allOpenOrders?symbol= for each symbol with open
// orders.
type FuturesCanceller struct{}

// CancelAll implements the panic's order canceller.
func (SpotCanceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	return sweepOpenOrders(ctx, d, key, "/api/v3/openOrders", "/api/v3/openOrders", true)
}

// CancelAll implements the panic's order canceller.
func (FuturesCanceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	return sweepOpenOrders(ctx, d, key, "/fapi/v1/openOrders", "/fapi/v1/allOpenOrders", false)
}

func sweepOpenOrders(ctx context.Context, d exchange.Doer, key *exchange.Credential, listPath, cancelPath string, countAnswer bool) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: listPath, Header: http.Header{}}, key)
	if err != nil {
		return rep, fmt.Errorf("binance: list open orders: %w", err)
	}
	if st != http.StatusOK {
		return rep, exchange.VenueError("binance: list open orders", st, body)
	}
	var open []struct {
		Symbol string `json:"symbol"`
	}
	if err := json.Unmarshal(body, &open); err != nil {
		return rep, fmt.Errorf("binance: list open orders: %w", err)
	}
	perSymbol := map[string]int{}
	for _, o := range open {
		if o.Symbol != "" {
			perSymbol[o.Symbol]++
		}
	}
	for sym := range perSymbol {
		rep.Scopes = append(rep.Scopes, sym)
	}
	slices.Sort(rep.Scopes)
	for _, sym := range rep.Scopes {
		r := &exchange.Request{Method: http.MethodDelete, Path: cancelPath, RawQuery: "symbol=" + url.QueryEscape(sym), Header: http.Header{}}
		st, body, err := d.Do(ctx, r, key)
		if err != nil {
			return rep, fmt.Errorf("binance: cancel %s: %w", sym, err)
		}
		if st == http.StatusBadRequest && bytes.Contains(body, []byte(`"code":-2011`)) {
			continue // filled or cancelled since the listing: nothing left to cancel
		}
		if st != http.StatusOK {
			return rep, exchange.VenueError("binance: cancel "+sym, st, body)
		}
		if !countAnswer { // {"code":200,"msg":"The operation of cancel all open order is done."}
			rep.Cancelled += perSymbol[sym]
			continue
		}
		var done []json.RawMessage
		if err := json.Unmarshal(body, &done); err != nil {
			return rep, fmt.Errorf("binance: cancel %s: %w", sym, err)
		}
		rep.Cancelled += len(done)
	}
	return rep, nil
}
