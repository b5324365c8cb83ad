package okx

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last prices from GET /api/v5/market/ticker.
type prices struct{}

var _ exchange.PriceReader = prices{}

// TickerRequest returns the public ticker request for instId symbol.
func (prices) TickerRequest(symbol string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/api/v5/market/ticker",
		RawQuery: "instId=" + url.QueryEscape(symbol), Header: http.Header{}}
}

// ParsePrice reads data[0].last for symbol.
func (prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	t, err := decodeReply[struct {
		InstID string `json:"instId"`
		Last   string `json:"last"`
	}]("okx ticker", status, body)
	if err != nil {
		return 0, err
	}
	if t.InstID != symbol {
		return 0, fmt.Errorf("okx ticker: reply is for %q, want %q", exchange.SafeName(t.InstID), exchange.SafeName(symbol))
	}
	p, err := decimal("last", t.Last)
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("okx ticker: no valid last price")
	}
	return p, nil
}
