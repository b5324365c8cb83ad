package krakenfutures

import (
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// handleCancelAll serves POST /derivatives/api/v3/cancelallorders: every
// open order of the key (of one symbol when given) is cancelled and listed.
func (s *Simulator) handleCancelAll(w http.ResponseWriter, _ *sim.Account, key string, p fields) (int, string) {
	sym := p.str("symbol")
	var keep func(string) bool
	if sym != "" {
		keep = func(s string) bool { return s == sym }
	}
	done := s.kit.CancelAll(key, keep)
	status := "cancelled"
	if len(done) == 0 {
		status = "noOrdersToCancel"
	}
	cancelled := make([]map[string]any, 0, len(done))
	for _, o := range done {
		cancelled = append(cancelled, map[string]any{"order_id": o.ID, "cliOrdId": o.ClientOrderID})
	}
	cancelOnly := "all"
	if sym != "" {
		cancelOnly = sym
	}
	s.success(w, map[string]any{"cancelStatus": map[string]any{"status": status, "cancelOnly": cancelOnly,
		"cancelledOrders": cancelled, "receivedTime": serverTime(s.kit.Now())}})
	return 0, ""
}
