package kucoin

import "github.com/keywarden/keywarden/internal/exchange"

// decodeJSON parses body as one strict JSON value (see exchange.DecodeJSON),
// with numbers kept as json.Number.
func decodeJSON(body []byte) (any, error) {
	v, err := exchange.DecodeJSON(body, exchange.MaxJSONDepth)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%v", err)
	}
	return v, nil
}
