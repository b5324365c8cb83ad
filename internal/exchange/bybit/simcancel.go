package bybit

import (
	"net/http"
	"strings"
)

// cancelAll serves POST /v5/order/cancel-all. The simulator keeps no
// product category per order: spot and option cancel every open order of
// the key; linear and inverse need a symbol, base coin or settle coin and
// cancel the orders whose symbol is, starts with or ends with it.
func (s *Simulator) cancelAll(w http.ResponseWriter, c *simCall) {
	vals, err := getStrings(c.params, "category", "symbol", "baseCoin", "settleCoin")
	if err != nil || vals[0] == "" {
		s.fail(w, 10001, "params error: category is required")
		return
	}
	keep := func(string) bool { return true }
	switch {
	case vals[1] != "":
		keep = func(sym string) bool { return sym == vals[1] }
	case vals[2] != "":
		keep = func(sym string) bool { return strings.HasPrefix(sym, vals[2]) }
	case vals[3] != "":
		keep = func(sym string) bool { return strings.HasSuffix(sym, vals[3]) }
	case vals[0] == "linear" || vals[0] == "inverse":
		s.fail(w, 10001, "params error: symbol, baseCoin or settleCoin is required")
		return
	}
	list := []map[string]string{}
	for _, o := range s.kit.CancelAll(c.acc.Key.APIKey, keep) {
		list = append(list, map[string]string{"orderId": o.ID, "orderLinkId": o.ClientOrderID})
	}
	s.ok(w, map[string]any{"list": list, "success": "1"})
}
