package bitmex

import "github.com/keywarden/keywarden/internal/exchange/sim"

// cancelAll serves DELETE /api/v1/order/all: every open order of the key
// (of one symbol when given) is cancelled and listed, as BitMEX answers.
func (s *Simulator) cancelAll(p params, acc *sim.Account) []any {
	sym := p.str("symbol")
	var keep func(string) bool
	if sym != "" {
		keep = func(s string) bool { return s == sym }
	}
	out := []any{}
	for _, o := range s.kit.CancelAll(acc.Key.APIKey, keep) {
		out = append(out, orderJSON(o))
	}
	return out
}
