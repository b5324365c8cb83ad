package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key with POST
// /v5/order/cancel-all, once per product category: spot and option take
// no filter; linear needs a symbol, base or settle coin, so it is swept
// once per settle coin (USDT, USDC); inverse is listed with GET
// /v5/order/realtime?category=inverse and swept per symbol. A category the
// account cannot trade answers with an error, which is reported while the
// other categories are still swept.
type Canceller struct{}

// cancelSweep is one cancel-all call.
type cancelSweep struct {
	category, settleCoin, symbol string
}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	var errs []error
	sweeps := []cancelSweep{{category: "spot"}, {category: "linear", settleCoin: "USDT"}, {category: "linear", settleCoin: "USDC"}}
	inverse, err := openSymbols(ctx, d, key, "inverse")
	if err != nil {
		errs = append(errs, err)
	}
	for _, sym := range inverse {
		sweeps = append(sweeps, cancelSweep{category: "inverse", symbol: sym})
	}
	sweeps = append(sweeps, cancelSweep{category: "option"})
	for _, s := range sweeps {
		n, err := cancelCategory(ctx, d, key, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Cancelled += n
		if n > 0 {
			scope := s.category
			switch {
			case s.symbol != "":
				scope += " " + s.symbol
			case s.settleCoin != "":
				scope += " " + s.settleCoin
			}
			rep.Scopes = append(rep.Scopes, scope)
		}
	}
	return rep, errors.Join(errs...)
}

// result is Bybit's envelope.
type result struct {
	RetCode int             `json:"retCode"`
	RetMsg  string          `json:"retMsg"`
	Result  json.RawMessage `json:"result"`
}

func cancelCategory(ctx context.Context, d exchange.Doer, key *exchange.Credential, s cancelSweep) (int, error) {
	body := map[string]string{"category": s.category}
	if s.settleCoin != "" {
		body["settleCoin"] = s.settleCoin
	}
	if s.symbol != "" {
		body["symbol"] = s.symbol
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	r := &exchange.Request{Method: http.MethodPost, Path: "/v5/order/cancel-all", Body: b, Header: http.Header{"Content-Type": {"application/json"}}}
	st, out, err := d.Do(ctx, r, key)
	step := "bybit: cancel-all " + s.category + " " + s.settleCoin + s.symbol
	if err != nil {
		return 0, fmt.Errorf("%s: %w", step, err)
	}
	var res result
	if st != http.StatusOK || json.Unmarshal(out, &res) != nil || res.RetCode != 0 {
		return 0, exchange.VenueError(step, st, out)
	}
	var list struct {
		List []json.RawMessage `json:"list"`
	}
	if err := json.Unmarshal(res.Result, &list); err != nil {
		return 0, fmt.Errorf("%s: %w", step, err)
	}
	return len(list.List), nil
}

// openSymbols lists the symbols with open orders in category.
func openSymbols(ctx context.Context, d exchange.Doer, key *exchange.Credential, category string) ([]string, error) {
	q := url.Values{"category": {category}, "limit": {"50"}}
	st, out, err := d.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/v5/order/realtime", RawQuery: q.Encode(), Header: http.Header{}}, key)
	step := "bybit: list open " + category + " orders"
	if err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	var res result
	if st != http.StatusOK || json.Unmarshal(out, &res) != nil || res.RetCode != 0 {
		return nil, exchange.VenueError(step, st, out)
	}
	var list struct {
		List []struct {
			Symbol string `json:"symbol"`
		} `json:"list"`
	}
	if err := json.Unmarshal(res.Result, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	var syms []string
	for _, o := range list.List {
		if o.Symbol != "" && !slices.Contains(syms, o.Symbol) {
			syms = append(syms, o.Symbol)
		}
	}
	slices.Sort(syms)
	return syms, nil
}
