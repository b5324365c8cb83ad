package binance

import (
	"net/http"
)

// cancelOpenOrders serves DELETE /api/v3/openOrders: every open order of
// the symbol is cancelled and listed, as Binance answers.
func (s *Simulator) cancelOpenOrders(w http.ResponseWriter, c *simCtx) {
	if e := mandatory(c.params, "symbol"); e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	sym := c.params.Get("symbol")
	done := s.kit.CancelAll(c.account.Key.APIKey, func(s string) bool { return s == sym })
	if len(done) == 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -2011, Msg: "Unknown order sent."})
		return
	}
	out := make([]map[string]any, 0, len(done))
	for i := range done {
		out = append(out, orderView(&done[i], false, c.now))
	}
	writeJSON(w, http.StatusOK, out)
}

// cancelAllFutures serves DELETE /fapi/v1/allOpenOrders.
func (s *Simulator) cancelAllFutures(w http.ResponseWriter, c *simCtx) {
	if e := mandatory(c.params, "symbol"); e != nil {
		errorWriter{}.WriteError(w, e)
		return
	}
	sym := c.params.Get("symbol")
	s.kit.CancelAll(c.account.Key.APIKey, func(s string) bool { return s == sym })
	writeJSON(w, http.StatusOK, map[string]any{"code": 200, "msg": "The operation of cancel all open order is done."})
}
