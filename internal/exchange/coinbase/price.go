package coinbase

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last traded prices from the public Advanced Trade ticker,
// GET /api/v3/brokerage/market/products/{product_id}/ticker?limit=1: the
// first entry of "trades" is the latest trade.
type prices struct{}

var _ exchange.PriceReader = prices{}

// productIDOK says whether id can go into the ticker path as it is. Product
// ids are short ASCII ("BTC-USD", "BIT-31JAN25-CDE"); anything else gets no
// request rather than an escaped path segment.
func productIDOK(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return id != "." && id != ".."
}

// TickerRequest returns the public ticker request for product symbol, or nil
// when symbol cannot be a Coinbase product id.
func (prices) TickerRequest(symbol string) *exchange.Request {
	if !productIDOK(symbol) {
		return nil
	}
	return &exchange.Request{Method: http.MethodGet, Path: brokerage + "market/products/" + symbol + "/ticker",
		RawQuery: "limit=1", Header: http.Header{}}
}

// ParsePrice reads the price of the latest trade of symbol.
func (prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	if status != http.StatusOK {
		return 0, fmt.Errorf("coinbase ticker %s: status %d", exchange.SafeName(symbol), status)
	}
	var t struct {
		Trades []struct {
			ProductID string `json:"product_id"`
			Price     string `json:"price"`
		} `json:"trades"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return 0, fmt.Errorf("coinbase ticker %s: %w", exchange.SafeName(symbol), err)
	}
	if len(t.Trades) == 0 {
		return 0, fmt.Errorf("coinbase ticker %s: no trades", exchange.SafeName(symbol))
	}
	tr := t.Trades[0]
	if tr.ProductID != symbol {
		return 0, fmt.Errorf("coinbase ticker: asked for %s, got %s", exchange.SafeName(symbol), exchange.SafeName(tr.ProductID))
	}
	p := exchange.ParseFloat(tr.Price)
	if p <= 0 {
		return 0, fmt.Errorf("coinbase ticker %s: no price", exchange.SafeName(symbol))
	}
	return p, nil
}
