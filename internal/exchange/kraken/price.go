package kraken

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// prices reads last traded prices from the public ticker,
// GET /0/public/Ticker?pair=..., whose "c" field is the last trade closed
// as [price, lot volume].
type prices struct{}

var _ exchange.PriceReader = prices{}

// pairOK says whether pair can go into the query as it is: Kraken pair
// names and altnames are short ASCII (XBTUSD, XXBTZUSD). A comma would ask
// for several pairs, and the WebSocket spelling (XBT/USD) is no REST pair.
func pairOK(pair string) bool {
	if pair == "" || len(pair) > 32 {
		return false
	}
	for i := 0; i < len(pair); i++ {
		c := pair[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// TickerRequest returns the public ticker request for pair, or nil when
// pair cannot be a Kraken pair name.
func (prices) TickerRequest(pair string) *exchange.Request {
	if !pairOK(pair) {
		return nil
	}
	return &exchange.Request{Method: http.MethodGet, Path: "/0/public/Ticker", RawQuery: "pair=" + pair, Header: http.Header{}}
}

// ParsePrice reads the last trade price of pair. Kraken keys the result by
// the pair's canonical name (XXBTZUSD when asked for XBTUSD), so a reply
// holding exactly one pair is that pair's.
func (prices) ParsePrice(pair string, status int, body []byte) (float64, error) {
	if status != http.StatusOK {
		return 0, fmt.Errorf("kraken ticker %s: status %d", exchange.SafeName(pair), status)
	}
	var resp struct {
		Error  []string `json:"error"`
		Result map[string]struct {
			C []string `json:"c"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return 0, fmt.Errorf("kraken ticker %s: %w", exchange.SafeName(pair), err)
	}
	if len(resp.Error) > 0 {
		return 0, fmt.Errorf("kraken ticker %s: %s", exchange.SafeName(pair), exchange.SafeName(strings.Join(resp.Error, ",")))
	}
	t, ok := resp.Result[pair]
	if !ok && len(resp.Result) == 1 {
		for _, only := range resp.Result {
			t, ok = only, true
		}
	}
	if !ok || len(t.C) == 0 {
		return 0, fmt.Errorf("kraken ticker %s: pair not in reply", exchange.SafeName(pair))
	}
	p := exchange.ParseFloat(t.C[0])
	if p <= 0 {
		return 0, fmt.Errorf("kraken ticker %s: no price", exchange.SafeName(pair))
	}
	return p, nil
}
