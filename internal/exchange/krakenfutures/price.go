package krakenfutures

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last traded prices from the public ticker of one contract,
// GET /derivatives/api/v3/tickers/{symbol}.
type prices struct{}

var _ exchange.PriceReader = prices{}

// symbolOK says whether symbol can go into the ticker path as it is: Kraken
// Futures symbols are short ASCII such as PF_XBTUSD or FI_ETHUSD_240927.
func symbolOK(symbol string) bool {
	if symbol == "" || len(symbol) > 64 {
		return false
	}
	for i := 0; i < len(symbol); i++ {
		c := symbol[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// TickerRequest returns the public ticker request for symbol, or nil when
// symbol cannot be a Kraken Futures symbol.
func (prices) TickerRequest(symbol string) *exchange.Request {
	if !symbolOK(symbol) {
		return nil
	}
	return &exchange.Request{Method: http.MethodGet, Path: "/derivatives/api/v3/tickers/" + symbol, Header: http.Header{}}
}

// ParsePrice reads ticker.last for symbol. Kraken Futures spells symbols in
// either case (pf_xbtusd, PF_XBTUSD), so they compare without regard to it.
func (prices) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	if status != http.StatusOK {
		return 0, fmt.Errorf("kraken-futures ticker %s: status %d", exchange.SafeName(symbol), status)
	}
	var resp struct {
		Result string `json:"result"`
		Ticker *struct {
			Symbol string          `json:"symbol"`
			Last   json.RawMessage `json:"last"`
		} `json:"ticker"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return 0, fmt.Errorf("kraken-futures ticker %s: %w", exchange.SafeName(symbol), err)
	}
	if resp.Result != "success" || resp.Ticker == nil {
		return 0, fmt.Errorf("kraken-futures ticker %s: no ticker in reply", exchange.SafeName(symbol))
	}
	if !strings.EqualFold(resp.Ticker.Symbol, symbol) {
		return 0, fmt.Errorf("kraken-futures ticker: asked for %s, got %s", exchange.SafeName(symbol), exchange.SafeName(resp.Ticker.Symbol))
	}
	p := exchange.ParseFloat(strings.Trim(string(resp.Ticker.Last), `"`))
	if p <= 0 {
		return 0, fmt.Errorf("kraken-futures ticker %s: no price", exchange.SafeName(symbol))
	}
	return p, nil
}
