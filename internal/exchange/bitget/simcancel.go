package bitget

import (
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// batchCancel serves POST /api/v2/spot/trade/batch-cancel-order in its
// default single-symbol mode: {"symbol", "orderList": [{"orderId" |
// "clientOid"}, ...]}, at most 50 entries. Each of the key's open orders
// of that symbol named is cancelled and listed in successList; the others
// go to failureList, as Bitget answers.
func (s *Simulator) batchCancel(w http.ResponseWriter, c *simCall) {
	o, isObj := c.body.(map[string]any)
	if !isObj {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	vals, err := getStrings(objFields(o), "symbol", "batchMode")
	list, isList := o["orderList"].([]any)
	if err != nil || vals[0] == "" || (vals[1] != "" && vals[1] != "single") || !isList || len(list) == 0 || len(list) > maxCancelBatch {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	open := map[string]bool{}
	for _, od := range s.kit.OpenOrders(c.acc.Key.APIKey) {
		if strings.EqualFold(od.Symbol, vals[0]) {
			open["id:"+od.ID] = true
			if od.ClientOrderID != "" {
				open["cl:"+od.ClientOrderID] = true
			}
		}
	}
	success, failure := []map[string]string{}, []map[string]string{}
	for _, e := range list {
		eo, isObj := e.(map[string]any)
		ids, err := getStrings(objFields(eo), "orderId", "clientOid")
		if !isObj || err != nil || ids[0] == "" && ids[1] == "" {
			s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
			return
		}
		ref := "id:" + ids[0]
		if ids[0] == "" {
			ref = "cl:" + ids[1]
		}
		if open[ref] {
			if got, ok := s.kit.CancelOrder(c.acc.Key.APIKey, ids[0], ids[1]); ok {
				success = append(success, map[string]string{"orderId": got.ID, "clientOid": got.ClientOrderID})
				continue
			}
		}
		failure = append(failure, map[string]string{"orderId": ids[0], "clientOid": ids[1],
			"errorMsg": "The order does not exist", "errorCode": "43001"})
	}
	s.ok(w, map[string]any{"successList": success, "failureList": failure})
}

// futuresProductTypes are the productType values cancel-all-orders takes
// (the S- ones are demo trading's).
var futuresProductTypes = map[string]bool{"USDT-FUTURES": true, "COIN-FUTURES": true, "USDC-FUTURES": true,
	"SUSDT-FUTURES": true, "SCOIN-FUTURES": true, "SUSDC-FUTURES": true}

// cancelAllFutures serves POST /api/v2/mix/order/cancel-all-orders. The
// simulator keeps spot orders only, so a valid request (productType
// required, symbol and marginCoin optional) cancels nothing and answers
// with empty lists.
func (s *Simulator) cancelAllFutures(w http.ResponseWriter, c *simCall) {
	o, isObj := c.body.(map[string]any)
	if !isObj {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	vals, err := getStrings(objFields(o), "productType", "symbol", "marginCoin")
	if err != nil || !futuresProductTypes[strings.ToUpper(vals[0])] {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	s.ok(w, map[string]any{"successList": []any{}, "failureList": []any{}})
}
