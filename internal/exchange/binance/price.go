package binance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last traded prices from the public ticker
// (GET /api/v3/ticker/price, or /fapi/v1/ticker/price for futures).
type prices struct{ path string }

var _ exchange.PriceReader = prices{}

func (p prices) TickerRequest(symbol string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: p.path, RawQuery: "symbol=" + url.QueryEscape(symbol), Header: http.Header{}}
}

func (p prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	if status != http.StatusOK {
		return 0, fmt.Errorf("binance ticker %s: status %d", exchange.SafeName(symbol), status)
	}
	var t struct {
		Symbol string `json:"symbol"`
		Price  string `json:"price"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return 0, fmt.Errorf("binance ticker %s: %w", exchange.SafeName(symbol), err)
	}
	if t.Symbol != symbol {
		return 0, fmt.Errorf("binance ticker: asked for %s, got %s", exchange.SafeName(symbol), exchange.SafeName(t.Symbol))
	}
	pr := exchange.ParseFloat(t.Price)
	if pr <= 0 {
		return 0, fmt.Errorf("binance ticker %s: no price", exchange.SafeName(symbol))
	}
	return pr, nil
}
