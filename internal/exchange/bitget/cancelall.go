package bitget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key at Bitget (v2 API).
//
// Spot: GET /api/v2/spot/trade/unfilled-orders?limit=100 lists up to 100
// open orders (all symbols), then POST /api/v2/spot/trade/batch-cancel-order
// cancels them per symbol, 50 order ids at a time; the batch answer lists
// each order in successList or failureList, which gives the count. It lists
// again until none is left (at most maxSweeps rounds). The per-symbol
// cancel-symbol-order is not used: it runs asynchronously and answers with
// the symbol only, so nothing could be counted or confirmed.
//
// Futures: POST /api/v2/mix/order/cancel-all-orders once per product type
// (USDT-FUTURES, COIN-FUTURES, USDC-FUTURES), counting its successList. A
// product type the account cannot trade answers with an error, which is
// reported while the other sweeps still run.
//
// Plan (trigger) orders and margin orders are not cancelled.
type Canceller struct{}

const (
	// maxSweeps bounds the spot list-and-cancel rounds of one CancelAll.
	maxSweeps = 50
	// maxCancelBatch is batch-cancel-order's limit of orders per call.
	maxCancelBatch = 50
)

// futuresProducts are the productType values of Bitget's live futures.
var futuresProducts = []string{"USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"}

// envelope is Bitget's answer: code "00000" is success.
type envelope struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// batchResult is the data of a batch or cancel-all answer.
type batchResult struct {
	SuccessList []struct {
		OrderID string `json:"orderId"`
	} `json:"successList"`
	FailureList []struct {
		OrderID  string `json:"orderId"`
		ErrorMsg string `json:"errorMsg"`
	} `json:"failureList"`
}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	var errs []error
	if err := cancelSpot(ctx, d, key, &rep); err != nil {
		errs = append(errs, err)
	}
	for _, p := range futuresProducts {
		n, err := cancelFutures(ctx, d, key, p)
		if err != nil {
			errs = append(errs, err)
		}
		rep.Cancelled += n
		if n > 0 {
			rep.Scopes = append(rep.Scopes, p)
		}
	}
	return rep, errors.Join(errs...)
}

// post sends a signed JSON POST and decodes a successful answer's data
// into out.
func post(ctx context.Context, d exchange.Doer, key *exchange.Credential, step, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	r := &exchange.Request{Method: http.MethodPost, Path: path, Body: b, Header: http.Header{"Content-Type": {"application/json"}}}
	st, resp, err := d.Do(ctx, r, key)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	var env envelope
	if st != http.StatusOK || json.Unmarshal(resp, &env) != nil || env.Code != "00000" {
		return exchange.VenueError(step, st, resp)
	}
	if len(env.Data) > 0 && json.Unmarshal(env.Data, out) != nil {
		return exchange.VenueError(step, st, resp)
	}
	return nil
}

func cancelSpot(ctx context.Context, d exchange.Doer, key *exchange.Credential, rep *exchange.CancelReport) error {
	for range maxSweeps {
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v2/spot/trade/unfilled-orders", RawQuery: "limit=100", Header: http.Header{}}, key)
		if err != nil {
			return fmt.Errorf("bitget: list open spot orders: %w", err)
		}
		var env envelope
		var list []struct {
			Symbol  string `json:"symbol"`
			OrderID string `json:"orderId"`
		}
		if st != http.StatusOK || json.Unmarshal(body, &env) != nil || env.Code != "00000" || json.Unmarshal(env.Data, &list) != nil {
			return exchange.VenueError("bitget: list open spot orders", st, body)
		}
		if len(list) == 0 {
			return nil
		}
		bySymbol := map[string][]string{}
		var symbols []string
		for _, o := range list {
			// The listing may name the pair in lower case ("btcusdt").
			sym := strings.ToUpper(o.Symbol)
			if _, ok := bySymbol[sym]; !ok {
				symbols = append(symbols, sym)
			}
			bySymbol[sym] = append(bySymbol[sym], o.OrderID)
		}
		slices.Sort(symbols)
		cancelled := 0
		for _, sym := range symbols {
			ids := bySymbol[sym]
			n := 0
			for start := 0; start < len(ids); start += maxCancelBatch {
				type ref struct {
					OrderID string `json:"orderId"`
				}
				var refs []ref
				for _, id := range ids[start:min(start+maxCancelBatch, len(ids))] {
					refs = append(refs, ref{id})
				}
				var res batchResult
				if err := post(ctx, d, key, "bitget: cancel spot orders", "/api/v2/spot/trade/batch-cancel-order",
					map[string]any{"symbol": sym, "orderList": refs}, &res); err != nil {
					rep.Cancelled += cancelled + n
					return err
				}
				n += len(res.SuccessList)
			}
			cancelled += n
			if n > 0 && !slices.Contains(rep.Scopes, sym) {
				rep.Scopes = append(rep.Scopes, sym)
			}
		}
		rep.Cancelled += cancelled
		if cancelled == 0 {
			// Nothing could be cancelled this round: stop rather than loop
			// on orders the venue refuses to cancel.
			return fmt.Errorf("bitget: %d open spot orders could not be cancelled", len(list))
		}
	}
	return fmt.Errorf("bitget: open spot orders remain after %d rounds", maxSweeps)
}

func cancelFutures(ctx context.Context, d exchange.Doer, key *exchange.Credential, product string) (int, error) {
	var res batchResult
	if err := post(ctx, d, key, "bitget: cancel-all "+product, "/api/v2/mix/order/cancel-all-orders",
		map[string]string{"productType": product}, &res); err != nil {
		return 0, err
	}
	if len(res.FailureList) > 0 {
		return len(res.SuccessList), fmt.Errorf("bitget: cancel-all %s: %d orders not cancelled", product, len(res.FailureList))
	}
	return len(res.SuccessList), nil
}
