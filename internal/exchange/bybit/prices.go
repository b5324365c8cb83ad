package bybit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last prices from GET /v5/market/tickers.
type prices struct{}

var _ exchange.PriceReader = prices{}

// category guesses the ticker category of a Bybit symbol: options look like
// BTC-29JUL22-25000-C, dated linear futures BTCUSDT-27JUN25, inverse
// contracts end in USD; anything else is read from spot, which linear
// perpetuals track.
func category(symbol string) string {
	switch {
	case strings.Count(symbol, "-") >= 3:
		return "option"
	case strings.Contains(symbol, "-"):
		return "linear"
	case strings.HasSuffix(symbol, "USD"):
		return "inverse"
	}
	return "spot"
}

// TickerRequest returns the public ticker request for symbol.
func (prices) TickerRequest(symbol string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/v5/market/tickers",
		RawQuery: "category=" + category(symbol) + "&symbol=" + url.QueryEscape(symbol), Header: http.Header{}}
}

// ParsePrice reads result.list[].lastPrice of symbol.
func (prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	var rep struct {
		RetCode int    `json:"retCode"`
		RetMsg  string `json:"retMsg"`
		Result  struct {
			List []struct {
				Symbol    string `json:"symbol"`
				LastPrice string `json:"lastPrice"`
			} `json:"list"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return 0, fmt.Errorf("bybit ticker: status %d: malformed reply", status)
	}
	if status != http.StatusOK || rep.RetCode != 0 {
		return 0, fmt.Errorf("bybit ticker: status %d: bybit retCode %d: %s", status, rep.RetCode, exchange.SafeName(rep.RetMsg))
	}
	for _, d := range rep.Result.List {
		if d.Symbol != symbol {
			continue
		}
		p, err := decimal("lastPrice", d.LastPrice)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("bybit ticker: no valid last price")
		}
		return p, nil
	}
	return 0, fmt.Errorf("bybit ticker: no entry for %q", exchange.SafeName(symbol))
}
