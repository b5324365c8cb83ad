package gate

import (
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// cancelAll serves DELETE /api/v4/spot/orders: every open order of the key
// (of one currency pair when given) is cancelled and listed.
func (s *Simulator) cancelAll(acc *sim.Account, req *exchange.Request, _ []string) (int, any, *simError) {
	q, _ := exchange.ParseQuery(req.RawQuery)
	pair := q.Get("currency_pair")
	var keep func(string) bool
	if pair != "" {
		keep = func(s string) bool { return s == pair }
	}
	out := []map[string]any{}
	for _, o := range s.kit.CancelAll(acc.Key.APIKey, keep) {
		out = append(out, gateOrder(o, "spot"))
	}
	return http.StatusOK, out, nil
}
