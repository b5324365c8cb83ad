package deribit

import "github.com/keywarden/keywarden/internal/exchange/sim"

// cancelAll serves private/cancel_all: every open order of the key is
// cancelled; the result is how many.
func (s *Simulator) cancelAll(acc *sim.Account) (any, *simError) {
	return len(s.kit.CancelAll(acc.Key.APIKey, nil)), nil
}
