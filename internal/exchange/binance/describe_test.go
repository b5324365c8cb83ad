package binance

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// TestDescribeExactDecimals: orders carry the quantity and price texts as
// the request wrote them, so caps can be checked on exact decimals.
func TestDescribeExactDecimals(t *testing.T) {
	spot, usdm := Spot(nil).Describer, USDM(nil).Describer
	tests := []struct {
		name string
		d    exchange.Describer
		req  exchange.Request
		want [][2]string // quantity and price text per order
	}{
		{"spot limit", spot, exchange.Request{Method: "POST", Path: "/api/v3/order",
			Body: []byte("symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.10&price=10000.0000000000001")},
			[][2]string{{"0.10", "10000.0000000000001"}}},
		{"spot market has no price text", spot, exchange.Request{Method: "POST", Path: "/api/v3/order",
			Body: []byte("symbol=ETHUSDT&side=BUY&type=MARKET&quantity=1.5")}, [][2]string{{"1.5", ""}}},
		{"order list legs", spot, exchange.Request{Method: "POST", Path: "/api/v3/orderList/oco",
			Body: []byte("symbol=BTCUSDT&side=SELL&quantity=1&aboveType=LIMIT_MAKER&abovePrice=110.5&belowType=STOP_LOSS_LIMIT&belowPrice=90&belowStopPrice=91&belowTimeInForce=GTC")},
			[][2]string{{"1", "110.5"}, {"1", "90"}}},
		{"futures batch", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"64000.10","timeInForce":"GTC"}]`)},
			[][2]string{{"0.001", "64000.10"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Describe(&tt.req)
			if err != nil {
				t.Fatalf("Describe() = %v", err)
			}
			var texts [][2]string
			for _, o := range got.Orders {
				texts = append(texts, [2]string{o.QuantityText, o.PriceText})
			}
			if diff := cmp.Diff(tt.want, texts); diff != "" {
				t.Errorf("order texts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	spot, usdm := Spot(nil).Describer, USDM(nil).Describer
	form := http.Header{"Content-Type": {contentTypeForm}}
	tests := []struct {
		name string
		d    exchange.Describer
		req  exchange.Request
		want exchange.Call
	}{
		{"public ticker", spot, exchange.Request{Method: "GET", Path: "/api/v3/ticker/price", RawQuery: "symbol=BTCUSDT"},
			exchange.Call{Venue: "binance", Method: "GET", Path: "/api/v3/ticker/price", Endpoint: "GET /api/v3/ticker/price", Scope: exchange.ScopePublic}},
		{"read account with auth params", spot, exchange.Request{Method: "GET", Path: "/api/v3/account", RawQuery: "timestamp=1&recvWindow=5000&signature=ab"},
			exchange.Call{Venue: "binance", Method: "GET", Path: "/api/v3/account", Endpoint: "GET /api/v3/account", Scope: exchange.ScopeRead}},
		{"spot limit order in form body", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: form,
			Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=20000&newClientOrderId=c1&timestamp=1&signature=x")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order", Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 0.5, Price: 20000, Notional: 10000, ClientOrderID: "c1"}}}},
		{"spot market by quote, mixed query and body", spot, exchange.Request{Method: "POST", Path: "/api/v3/order",
			RawQuery: "symbol=ETHUSDT&side=SELL", Body: []byte("type=MARKET&quoteOrderQty=150.25")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order", Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "ETHUSDT", Side: exchange.Sell, Type: "market", QuoteQuantity: 150.25, Notional: 150.25}}}},
		{"spot market by base has no notional", spot, exchange.Request{Method: "POST", Path: "/api/v3/order",
			Body: []byte("symbol=ETHUSDT&side=SELL&type=MARKET&quantity=2")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order", Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "ETHUSDT", Side: exchange.Sell, Type: "market", Quantity: 2}}}},
		{"spot cancel", spot, exchange.Request{Method: "DELETE", Path: "/api/v3/order", RawQuery: "symbol=BTCUSDT&origClientOrderId=c1"},
			exchange.Call{Venue: "binance", Method: "DELETE", Path: "/api/v3/order", Endpoint: "DELETE /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "BTCUSDT", ClientOrderID: "c1"}}}},
		{"spot cancel all", spot, exchange.Request{Method: "DELETE", Path: "/api/v3/openOrders", RawQuery: "symbol=BTCUSDT"},
			exchange.Call{Venue: "binance", Method: "DELETE", Path: "/api/v3/openOrders", Endpoint: "DELETE /api/v3/openOrders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "BTCUSDT"}}}},
		{"cancel replace is a cancel and a new order", spot, exchange.Request{Method: "POST", Path: "/api/v3/order/cancelReplace",
			Body: []byte("symbol=BTCUSDT&side=SELL&type=LIMIT&cancelReplaceMode=STOP_ON_FAILURE&cancelOrigClientOrderId=old&quantity=2&price=3&timeInForce=GTC")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order/cancelReplace", Endpoint: "POST /api/v3/order/cancelReplace", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "BTCUSDT", ClientOrderID: "old"},
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 2, Price: 3, Notional: 6}}}},
		{"spot amend keep priority", spot, exchange.Request{Method: "PUT", Path: "/api/v3/order/amend/keepPriority",
			Body: []byte("symbol=BTCUSDT&origClientOrderId=c1&newQty=0.25")},
			exchange.Call{Venue: "binance", Method: "PUT", Path: "/api/v3/order/amend/keepPriority", Endpoint: "PUT /api/v3/order/amend/keepPriority", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionAmend, Symbol: "BTCUSDT", Quantity: 0.25, ClientOrderID: "c1"}}}},
		{"order list oco has two legs", spot, exchange.Request{Method: "POST", Path: "/api/v3/orderList/oco",
			Body: []byte("symbol=BTCUSDT&side=SELL&quantity=1&aboveType=LIMIT_MAKER&abovePrice=110&belowType=STOP_LOSS_LIMIT&belowPrice=90&belowStopPrice=91&belowTimeInForce=GTC")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/orderList/oco", Endpoint: "POST /api/v3/orderList/oco", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit_maker", Quantity: 1, Price: 110, Notional: 110},
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "stop_loss_limit", Quantity: 1, Price: 90, Notional: 90}}}},
		{"order list otoco has three legs", spot, exchange.Request{Method: "POST", Path: "/api/v3/orderList/otoco",
			Body: []byte("symbol=BTCUSDT&workingType=LIMIT&workingSide=BUY&workingPrice=100&workingQuantity=2&pendingSide=SELL&pendingQuantity=2&pendingAboveType=LIMIT_MAKER&pendingAbovePrice=120&pendingBelowType=STOP_LOSS&pendingBelowStopPrice=80")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/orderList/otoco", Endpoint: "POST /api/v3/orderList/otoco", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 2, Price: 100, Notional: 200},
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit_maker", Quantity: 2, Price: 120, Notional: 240},
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "stop_loss", Quantity: 2}}}},
		{"legacy oco", spot, exchange.Request{Method: "POST", Path: "/api/v3/order/oco",
			Body: []byte("symbol=BTCUSDT&side=BUY&quantity=1&price=90&stopPrice=110&stopLimitPrice=111&stopLimitTimeInForce=GTC")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order/oco", Endpoint: "POST /api/v3/order/oco", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit_maker", Quantity: 1, Price: 90, Notional: 90},
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "stop_loss_limit", Quantity: 1, Price: 111, Notional: 111}}}},
		{"withdraw", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply",
			Body: []byte("coin=XRP&network=XRP&address=rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh&addressTag=12345&amount=100.5&timestamp=1&signature=x")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Endpoint: "POST /sapi/v1/capital/withdraw/apply", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "XRP", Amount: 100.5, Address: "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", Network: "XRP", Memo: "12345"}}},
		{"withdraw with raw (ccxt rawencode) values", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/localentity/withdraw/apply",
			Body: []byte("coin=USDT&address=0xAbC&amount=1&questionnaire={\"isAddressOwner\":1}")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/localentity/withdraw/apply", Endpoint: "POST /sapi/v1/localentity/withdraw/apply", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 1, Address: "0xAbC"}}},
		{"gift card is a withdrawal in a transfer's clothing", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/giftcard/createCode",
			Body: []byte("token=BTC&amount=0.5")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/giftcard/createCode", Endpoint: "POST /sapi/v1/giftcard/createCode", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "BTC", Amount: 0.5, Destination: "giftcard"}}},
		{"universal transfer between own wallets", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/asset/transfer",
			Body: []byte("type=MAIN_UMFUTURE&asset=USDT&amount=1000")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/asset/transfer", Endpoint: "POST /sapi/v1/asset/transfer", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 1000, Destination: "MAIN_UMFUTURE"}}},
		{"transfer history is a read", spot, exchange.Request{Method: "GET", Path: "/sapi/v1/asset/transfer", RawQuery: "type=MAIN_UMFUTURE"},
			exchange.Call{Venue: "binance", Method: "GET", Path: "/sapi/v1/asset/transfer", Endpoint: "GET /sapi/v1/asset/transfer", Scope: exchange.ScopeRead}},
		{"sub-account universal transfer to another account", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/sub-account/universalTransfer",
			Body: []byte("toEmail=sub%40example.com&fromAccountType=SPOT&toAccountType=USDT_FUTURE&asset=USDT&amount=5")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/sub-account/universalTransfer", Endpoint: "POST /sapi/v1/sub-account/universalTransfer", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 5, Destination: "sub@example.com/USDT_FUTURE"}}},
		{"futures transfer to spot", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/futures/transfer", Body: []byte("asset=USDT&amount=7&type=2")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/futures/transfer", Endpoint: "POST /sapi/v1/futures/transfer", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 7, Destination: "MAIN"}}},
		{"sub-account key management is account admin", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/sub-account/subAccountApi", Body: []byte("email=a%40b.c")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/sub-account/subAccountApi", Endpoint: "POST /sapi/v1/sub-account/subAccountApi", Scope: exchange.ScopeAccountAdmin}},
		{"unknown private endpoint is account admin", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/something"},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/capital/something", Endpoint: "POST /sapi/v1/capital/something", Scope: exchange.ScopeAccountAdmin}},
		{"method mismatch is account admin", spot, exchange.Request{Method: "PUT", Path: "/sapi/v1/capital/withdraw/apply"},
			exchange.Call{Venue: "binance", Method: "PUT", Path: "/sapi/v1/capital/withdraw/apply", Endpoint: "PUT /sapi/v1/capital/withdraw/apply", Scope: exchange.ScopeAccountAdmin}},
		{"case variant of withdraw is still withdraw", spot, exchange.Request{Method: "POST", Path: "/SAPI/v1/Capital/Withdraw/Apply",
			Body: []byte("coin=BTC&address=bc1q&amount=1")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Endpoint: "POST /sapi/v1/capital/withdraw/apply", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Address: "bc1q"}}},
		{"futures path on the spot venue is account admin", spot, exchange.Request{Method: "POST", Path: "/fapi/v1/order", Body: []byte("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1")},
			exchange.Call{Venue: "binance", Method: "POST", Path: "/fapi/v1/order", Endpoint: "POST /fapi/v1/order", Scope: exchange.ScopeAccountAdmin}},
		{"futures limit reduce only", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/order",
			Body: []byte("symbol=BTCUSDT&side=SELL&positionSide=BOTH&type=LIMIT&quantity=0.01&price=50000&reduceOnly=true&timeInForce=GTC")},
			exchange.Call{Venue: "binance-usdm", Method: "POST", Path: "/fapi/v1/order", Endpoint: "POST /fapi/v1/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 0.01, Price: 50000, Notional: 500, ReduceOnly: true}}}},
		{"futures amend", usdm, exchange.Request{Method: "PUT", Path: "/fapi/v1/order",
			Body: []byte("symbol=BTCUSDT&side=BUY&quantity=2&price=100&origClientOrderId=c9")},
			exchange.Call{Venue: "binance-usdm", Method: "PUT", Path: "/fapi/v1/order", Endpoint: "PUT /fapi/v1/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionAmend, Symbol: "BTCUSDT", Side: exchange.Buy, Quantity: 2, Price: 100, Notional: 200, ClientOrderID: "c9"}}}},
		{"futures batch orders are expanded", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"1","price":"10","timeInForce":"GTC","newClientOrderId":"a"},{"symbol":"ETHUSDT","side":"SELL","type":"MARKET","quantity":2}]`)},
			exchange.Call{Venue: "binance-usdm", Method: "POST", Path: "/fapi/v1/batchOrders", Endpoint: "POST /fapi/v1/batchOrders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10, ClientOrderID: "a"},
					{Action: exchange.ActionNew, Symbol: "ETHUSDT", Side: exchange.Sell, Type: "market", Quantity: 2}}}},
		{"futures batch orders percent-encoded", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=%5B%7B%22symbol%22%3A%22BTCUSDT%22%2C%22side%22%3A%22BUY%22%2C%22type%22%3A%22MARKET%22%2C%22quantity%22%3A%223%22%7D%5D`)},
			exchange.Call{Venue: "binance-usdm", Method: "POST", Path: "/fapi/v1/batchOrders", Endpoint: "POST /fapi/v1/batchOrders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "market", Quantity: 3}}}},
		{"futures batch amend", usdm, exchange.Request{Method: "PUT", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","quantity":"4","price":"5","orderId":1}]`)},
			exchange.Call{Venue: "binance-usdm", Method: "PUT", Path: "/fapi/v1/batchOrders", Endpoint: "PUT /fapi/v1/batchOrders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionAmend, Symbol: "BTCUSDT", Side: exchange.Buy, Quantity: 4, Price: 5, Notional: 20}}}},
		{"futures batch cancel", usdm, exchange.Request{Method: "DELETE", Path: "/fapi/v1/batchOrders",
			RawQuery: `symbol=BTCUSDT&origClientOrderIdList=%5B%22a%22%2C%22b%22%5D`},
			exchange.Call{Venue: "binance-usdm", Method: "DELETE", Path: "/fapi/v1/batchOrders", Endpoint: "DELETE /fapi/v1/batchOrders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "BTCUSDT", ClientOrderID: "a"}, {Action: exchange.ActionCancel, Symbol: "BTCUSDT", ClientOrderID: "b"}}}},
		{"leverage change is trade", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/leverage", Body: []byte("symbol=BTCUSDT&leverage=20")},
			exchange.Call{Venue: "binance-usdm", Method: "POST", Path: "/fapi/v1/leverage", Endpoint: "POST /fapi/v1/leverage", Scope: exchange.ScopeTrade}},
		{"futures balance read", usdm, exchange.Request{Method: "GET", Path: "/fapi/v3/balance"},
			exchange.Call{Venue: "binance-usdm", Method: "GET", Path: "/fapi/v3/balance", Endpoint: "GET /fapi/v3/balance", Scope: exchange.ScopeRead}},
		{"futures public data", usdm, exchange.Request{Method: "GET", Path: "/futures/data/basis", RawQuery: "pair=BTCUSDT"},
			exchange.Call{Venue: "binance-usdm", Method: "GET", Path: "/futures/data/basis", Endpoint: "GET /futures/data/basis", Scope: exchange.ScopePublic}},
		{"spot withdraw path on the futures venue is account admin", usdm, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Body: []byte("coin=BTC&address=x&amount=1")},
			exchange.Call{Venue: "binance-usdm", Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Endpoint: "POST /sapi/v1/capital/withdraw/apply", Scope: exchange.ScopeAccountAdmin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Describe(&tt.req)
			if err != nil {
				t.Fatalf("Describe(%+v) = %v", tt.req, err)
			}
			// The texts' spelling is checked in TestDescribeExactDecimals.
			got = exchangetest.OrderTexts(t, got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Describe(%s %s) mismatch (-want +got):\n%s", tt.req.Method, tt.req.Path, diff)
			}
		})
	}
}

func TestDescribeRejects(t *testing.T) {
	spot, usdm := Spot(nil).Describer, USDM(nil).Describer
	order := "symbol=BTCUSDT&side=BUY&type=LIMIT&price=1&quantity="
	tests := []struct {
		name string
		d    exchange.Describer
		req  exchange.Request
	}{
		{"trailing slash", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply/"}},
		{"double slash", spot, exchange.Request{Method: "POST", Path: "/sapi/v1//capital/withdraw/apply"}},
		{"dot segment", spot, exchange.Request{Method: "POST", Path: "/api/v3/./order"}},
		{"dot dot segment", spot, exchange.Request{Method: "POST", Path: "/api/v3/../../sapi/v1/capital/withdraw/apply"}},
		{"percent-encoded slash", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital%2Fwithdraw/apply"}},
		{"percent-encoded dot", spot, exchange.Request{Method: "POST", Path: "/api/v3/%2e%2e/order"}},
		{"semicolon", spot, exchange.Request{Method: "POST", Path: "/api/v3/order;x"}},
		{"backslash", spot, exchange.Request{Method: "POST", Path: `/api/v3\order`}},
		{"at host", spot, exchange.Request{Method: "GET", Path: "/@evil.example/api"}},
		{"no leading slash", spot, exchange.Request{Method: "GET", Path: "api/v3/account"}},
		{"nul", spot, exchange.Request{Method: "GET", Path: "/api/v3/account\x00"}},
		{"non-ascii path", spot, exchange.Request{Method: "GET", Path: "/api/v3/ассount"}},
		{"connect", spot, exchange.Request{Method: "CONNECT", Path: "/api/v3/account"}},
		{"lower-case method", spot, exchange.Request{Method: "post", Path: "/api/v3/order"}},
		{"duplicate parameter", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "1&quantity=1000")}},
		{"parameter in query and body", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", RawQuery: "quantity=1000", Body: []byte(order + "1")}},
		{"case variant duplicate", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "1&Quantity=1000")}},
		{"case variant duplicate in the query alone", spot, exchange.Request{Method: "DELETE", Path: "/api/v3/order", RawQuery: "symbol=BTCUSDT&orderId=1&SYMBOL=ETHUSDT"}},
		{"case variant across query and body", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", RawQuery: "QUANTITY=1000", Body: []byte(order + "1")}},
		{"non-UTF-8", spot, exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=%C0%AF"}},
		{"bad percent encoding", spot, exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=%zz"}},
		{"json body", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"symbol":"BTCUSDT"}`)}},
		{"scientific quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "1e9")}},
		{"negative quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "-1")}},
		{"NaN quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "NaN")}},
		{"hex quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "0x10")}},
		{"underscore quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "1_000")}},
		{"leading space quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "%201")}},
		{"full-width quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + "%EF%BC%91")}},
		{"40-digit quantity", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte(order + strings.Repeat("9", 40))}},
		{"bad side", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte("symbol=BTCUSDT&side=LONG&type=MARKET&quantity=1")}},
		{"order without symbol", spot, exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte("side=BUY&type=MARKET&quantity=1")}},
		{"withdraw without address", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Body: []byte("coin=BTC&amount=1")}},
		{"withdraw bad amount", spot, exchange.Request{Method: "POST", Path: "/sapi/v1/capital/withdraw/apply", Body: []byte("coin=BTC&address=x&amount=1e3")}},
		{"batch with duplicate json key", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","quantity":"1000"}]`)}},
		{"batch with case variant json key", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","Quantity":"1000"}]`)}},
		{"batch invalid json", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders", Body: []byte(`batchOrders=[{"symbol":"BTCUSDT"`)}},
		{"batch trailing data", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1"}][]`)}},
		{"batch too large", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[` + strings.Repeat(`{"symbol":"A","side":"BUY","type":"MARKET","quantity":"1"},`, 5) + `{"symbol":"A","side":"BUY","type":"MARKET","quantity":"1"}]`)}},
		{"batch nested value", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders",
			Body: []byte(`batchOrders=[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":{"a":1}}]`)}},
		{"too many parameters", spot, exchange.Request{Method: "GET", Path: "/api/v3/account", RawQuery: manyParams(200)}},
		{"batch missing", usdm, exchange.Request{Method: "POST", Path: "/fapi/v1/batchOrders"}},
		{"batch cancel bad list", usdm, exchange.Request{Method: "DELETE", Path: "/fapi/v1/batchOrders", RawQuery: "symbol=BTCUSDT&orderIdList=%5B%7B%7D%5D"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Describe(&tt.req)
			if err == nil {
				t.Fatalf("Describe(%s %s %q %q) = %+v, want an error", tt.req.Method, tt.req.Path, tt.req.RawQuery, tt.req.Body, got)
			}
			if e := exchange.AsError(err); e.Kind != exchange.ErrBadRequest {
				t.Errorf("Describe() error kind = %v, want ErrBadRequest", e.Kind)
			}
		})
	}
}

func manyParams(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "p" + strconv.Itoa(i) + "=1"
	}
	return strings.Join(ps, "&")
}

// TestRouteTable checks the table has no duplicate keys and that every
// route's path is canonical.
func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range routeTable() {
		k := r.method + " " + strings.ToLower(r.path)
		if seen[k] {
			t.Errorf("routeTable() has %q twice", k)
		}
		seen[k] = true
		if _, err := canonicalPath(r.path); err != nil {
			t.Errorf("canonicalPath(%q) = %v, want nil", r.path, err)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	d := Spot(nil).Describer
	r := &exchange.Request{Method: "POST", Path: "/api/v3/order",
		Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100000&price=50000.00&newClientOrderId=6gCrw2kRUAF9CvJDGP16IP")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
