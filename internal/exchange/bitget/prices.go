package bitget

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last prices from the spot ticker, GET
// /api/v2/spot/market/tickers. Futures share their symbols (BTCUSDT) with
// spot and trade close to it; the spot price is the reference.
type prices struct{}

var _ exchange.PriceReader = prices{}

// TickerRequest returns the public spot ticker request for symbol.
func (prices) TickerRequest(symbol string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/api/v2/spot/market/tickers",
		RawQuery: "symbol=" + url.QueryEscape(symbol), Header: http.Header{}}
}

// ParsePrice reads the lastPr of symbol.
func (prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	var rep struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
		Data []struct {
			Symbol string `json:"symbol"`
			LastPr string `json:"lastPr"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return 0, fmt.Errorf("bitget ticker: status %d: malformed reply", status)
	}
	if status != http.StatusOK || rep.Code != "00000" {
		return 0, fmt.Errorf("bitget ticker: status %d: bitget code %s: %s", status, exchange.SafeName(rep.Code), exchange.SafeName(rep.Msg))
	}
	for _, d := range rep.Data {
		if d.Symbol != symbol {
			continue
		}
		p, err := decimal("lastPr", d.LastPr)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("bitget ticker: no valid last price")
		}
		return p, nil
	}
	return 0, fmt.Errorf("bitget ticker: no entry for %q", exchange.SafeName(symbol))
}
