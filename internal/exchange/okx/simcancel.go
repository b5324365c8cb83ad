package okx

import (
	"net/http"

	"github.com/keywarden/keywarden/internal/exchange"
)

// cancelBatch serves POST /api/v5/trade/cancel-batch-orders: up to 20
// {instId, ordId|clOrdId}; code "0" when all were cancelled, "2" when some,
// "1" when none, with each entry's sCode.
func (s *Simulator) cancelBatch(w http.ResponseWriter, c *simCall) {
	entries, _ := c.body.([]any)
	if len(entries) == 0 || len(entries) > maxBatch {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Body can not be empty"))
		return
	}
	out := make([]any, 0, len(entries))
	done := 0
	for _, e := range entries {
		o, isObj := e.(map[string]any)
		var vals []string
		var err error
		if isObj {
			vals, err = getStrings(objFields(o), "ordId", "clOrdId", "instId")
		}
		if !isObj || err != nil || vals[0] == "" && vals[1] == "" || vals[2] == "" {
			out = append(out, map[string]string{"ordId": "", "clOrdId": "", "sCode": "51000", "sMsg": "Parameter error"})
			continue
		}
		got, found := s.kit.CancelOrder(c.acc.Key.APIKey, vals[0], vals[1])
		if !found || got.Symbol != vals[2] {
			out = append(out, map[string]string{"ordId": vals[0], "clOrdId": vals[1], "sCode": "51400",
				"sMsg": "Cancellation failed as the order has been filled, canceled or does not exist"})
			continue
		}
		done++
		out = append(out, map[string]string{"ordId": got.ID, "clOrdId": got.ClientOrderID, "sCode": "0", "sMsg": ""})
	}
	code := "0"
	switch {
	case done == 0:
		code = "1"
	case done < len(entries):
		code = "2"
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": code, "msg": "", "data": out})
}
