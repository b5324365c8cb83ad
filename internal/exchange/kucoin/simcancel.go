package kucoin

import (
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// cancelAllClassic serves DELETE /api/v1/orders: every open order of the
// key (of one symbol when given) is cancelled; the answer lists their ids.
// The simulator keeps one book for classic and high-frequency orders.
func (s *Simulator) cancelAllClassic(acc *sim.Account, req *exchange.Request, _ []string) (any, *simError) {
	ps, _ := exchange.ParseQuery(req.RawQuery)
	sym := ps.Get("symbol")
	var keep func(string) bool
	if sym != "" {
		keep = func(s string) bool { return s == sym }
	}
	ids := []string{}
	for _, o := range s.kit.CancelAll(acc.Key.APIKey, keep) {
		ids = append(ids, o.ID)
	}
	return map[string][]string{"cancelledOrderIds": ids}, nil
}

// cancelAllHF serves DELETE /api/v1/hf/orders/cancelAll: every open order
// of the key is cancelled; the answer names the symbols.
func (s *Simulator) cancelAllHF(acc *sim.Account, _ *exchange.Request, _ []string) (any, *simError) {
	syms := []string{}
	for _, o := range s.kit.CancelAll(acc.Key.APIKey, nil) {
		if !slices.Contains(syms, o.Symbol) {
			syms = append(syms, o.Symbol)
		}
	}
	return map[string]any{"succeedSymbols": syms, "failedSymbols": []any{}}, nil
}
