package bybit

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

func TestDescribe(t *testing.T) {
	call := func(method, path string, scope exchange.Scope) exchange.Call {
		return exchange.Call{Venue: Name, Method: method, Path: path, Endpoint: method + " " + path, Scope: scope}
	}
	with := func(c exchange.Call, orders []exchange.Order, tr *exchange.Transfer) exchange.Call {
		c.Orders, c.Transfer = orders, tr
		return c
	}
	post := func(path, body string) exchange.Request {
		return exchange.Request{Method: "POST", Path: path, Body: []byte(body)}
	}
	get := func(path, query string) exchange.Request {
		return exchange.Request{Method: "GET", Path: path, RawQuery: query}
	}
	tests := []struct {
		name  string
		req   exchange.Request
		want  exchange.Call
		isErr bool
	}{
		{name: "server time", req: get("/v5/market/time", ""), want: call("GET", "/v5/market/time", exchange.ScopePublic)},
		{name: "tickers", req: get("/v5/market/tickers", "category=spot&symbol=BTCUSDT"), want: call("GET", "/v5/market/tickers", exchange.ScopePublic)},
		{name: "wallet balance", req: get("/v5/account/wallet-balance", "accountType=UNIFIED"), want: call("GET", "/v5/account/wallet-balance", exchange.ScopeRead)},
		{name: "query api", req: get("/v5/user/query-api", ""), want: call("GET", "/v5/user/query-api", exchange.ScopeRead)},
		{name: "withdrawal history", req: get("/v5/asset/withdraw/query-record", "coin=USDT"), want: call("GET", "/v5/asset/withdraw/query-record", exchange.ScopeRead)},
		{name: "spot limit", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000","orderLinkId":"l1"}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 0.01, Price: 30000, Notional: 300, ClientOrderID: "l1"}}, nil)},
		{name: "spot market buy is sized in quote", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"200"}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 200, Notional: 200}}, nil)},
		{name: "spot market buy in base coin", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"2","marketUnit":"baseCoin"}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "market", Quantity: 2}}, nil)},
		{name: "spot market sell in quote coin", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"500","marketUnit":"quoteCoin"}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "market", QuoteQuantity: 500, Notional: 500}}, nil)},
		{name: "linear limit reduce-only", req: post("/v5/order/create", `{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Limit","qty":"0.5","price":"30000","reduceOnly":true}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 0.5, Price: 30000, Notional: 15000, ReduceOnly: true}}, nil)},
		{name: "inverse has no computed notional", req: post("/v5/order/create", `{"category":"inverse","symbol":"BTCUSD","side":"Buy","orderType":"Limit","qty":"100","price":"30000"}`),
			want: with(call("POST", "/v5/order/create", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSD", Side: exchange.Buy, Type: "limit", Quantity: 100, Price: 30000}}, nil)},
		{name: "batch create takes the outer category", req: post("/v5/order/create-batch", `{"category":"linear","request":[{"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"10"},{"symbol":"ETHUSDT","side":"Sell","orderType":"Market","qty":"2"}]}`),
			want: with(call("POST", "/v5/order/create-batch", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
				{Action: exchange.ActionNew, Symbol: "ETHUSDT", Side: exchange.Sell, Type: "market", Quantity: 2}}, nil)},
		{name: "amend", req: post("/v5/order/amend", `{"category":"linear","symbol":"BTCUSDT","orderLinkId":"l1","qty":"2","price":"100"}`),
			want: with(call("POST", "/v5/order/amend", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionAmend, Symbol: "BTCUSDT", ClientOrderID: "l1", Quantity: 2, Price: 100, Notional: 200}}, nil)},
		{name: "cancel batch", req: post("/v5/order/cancel-batch", `{"category":"spot","request":[{"symbol":"BTCUSDT","orderId":"1"},{"symbol":"ETHUSDT","orderLinkId":"x"}]}`),
			want: with(call("POST", "/v5/order/cancel-batch", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTCUSDT"}, {Action: exchange.ActionCancel, Symbol: "ETHUSDT", ClientOrderID: "x"}}, nil)},
		{name: "set leverage", req: post("/v5/position/set-leverage", `{"category":"linear","symbol":"BTCUSDT","buyLeverage":"10","sellLeverage":"10"}`),
			want: call("POST", "/v5/position/set-leverage", exchange.ScopeTrade)},
		{name: "inter transfer", req: post("/v5/asset/transfer/inter-transfer", `{"transferId":"t","coin":"USDT","amount":"50","fromAccountType":"UNIFIED","toAccountType":"FUND"}`),
			want: with(call("POST", "/v5/asset/transfer/inter-transfer", exchange.ScopeTransfer), nil, &exchange.Transfer{Asset: "USDT", Amount: 50, Destination: "FUND"})},
		{name: "universal transfer to a sub-account", req: post("/v5/asset/transfer/universal-transfer", `{"transferId":"t","coin":"USDT","amount":"50","fromMemberId":1,"toMemberId":592334,"fromAccountType":"FUND","toAccountType":"UNIFIED"}`),
			want: with(call("POST", "/v5/asset/transfer/universal-transfer", exchange.ScopeTransfer), nil, &exchange.Transfer{Asset: "USDT", Amount: 50, Destination: "member:592334/UNIFIED"})},
		{name: "withdraw on chain", req: post("/v5/asset/withdraw/create", `{"coin":"XRP","chain":"XRP","address":"rXYZ","tag":"77","amount":"20","timestamp":1700000000000,"forceChain":1}`),
			want: with(call("POST", "/v5/asset/withdraw/create", exchange.ScopeWithdraw), nil, &exchange.Transfer{Asset: "XRP", Amount: 20, Address: "rXYZ", Network: "XRP", Memo: "77"})},
		{name: "withdraw to a bybit uid", req: post("/v5/asset/withdraw/create", `{"coin":"USDT","address":"123456","amount":"1000","timestamp":1700000000000,"forceChain":2}`),
			want: with(call("POST", "/v5/asset/withdraw/create", exchange.ScopeWithdraw), nil, &exchange.Transfer{Asset: "USDT", Amount: 1000, Address: "123456", Destination: "uid:123456"})},
		{name: "create sub api key is admin", req: post("/v5/user/create-sub-api", `{"subuid":1,"readOnly":0,"permissions":{"Wallet":["Withdraw"]}}`),
			want: call("POST", "/v5/user/create-sub-api", exchange.ScopeAccountAdmin)},
		{name: "unknown GET outside read prefixes is admin", req: get("/v5/broker/earnings-info", ""), want: call("GET", "/v5/broker/earnings-info", exchange.ScopeAccountAdmin)},
		{name: "case variant of withdraw", req: post("/V5/Asset/Withdraw/Create", `{"coin":"USDT","address":"a","amount":"1"}`),
			want: with(call("POST", "/v5/asset/withdraw/create", exchange.ScopeWithdraw), nil, &exchange.Transfer{Asset: "USDT", Amount: 1, Address: "a"})},

		{name: "trailing slash", req: post("/v5/asset/withdraw/create/", `{}`), isErr: true},
		{name: "double slash", req: post("/v5//asset/withdraw/create", `{}`), isErr: true},
		{name: "dot dot", req: post("/v5/order/../asset/withdraw/create", `{}`), isErr: true},
		{name: "encoded slash", req: post("/v5/asset%2fwithdraw/create", `{}`), isErr: true},
		{name: "duplicate query", req: get("/v5/order/realtime", "category=spot&category=linear"), isErr: true},
		{name: "non-utf8 query", req: get("/v5/order/realtime", "symbol=%c3%28"), isErr: true},
		{name: "duplicate json key", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","qty":"100","price":"1"}`), isErr: true},
		{name: "array body", req: post("/v5/order/create", `[]`), isErr: true},
		{name: "batch without request", req: post("/v5/order/create-batch", `{"category":"spot"}`), isErr: true},
		{name: "batch too long", req: post("/v5/order/create-batch", `{"category":"spot","request":[`+strings.TrimSuffix(strings.Repeat(`{"symbol":"A"},`, maxBatch+1), ",")+`]}`), isErr: true},
		{name: "batch entry with another category", req: post("/v5/order/create-batch", `{"category":"spot","request":[{"category":"inverse","symbol":"BTCUSD","side":"Buy","orderType":"Limit","qty":"100","price":"30000"}]}`), isErr: true},
		{name: "bad marketUnit", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1","marketUnit":"usd"}`), isErr: true},
		{name: "bad forceChain", req: post("/v5/asset/withdraw/create", `{"coin":"USDT","address":"a","amount":"1","forceChain":7}`), isErr: true},
		{name: "exponent qty", req: post("/v5/order/create", `{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1E2","price":"1"}`), isErr: true},
		{name: "mixed query and body", req: exchange.Request{Method: "POST", Path: "/v5/order/create", RawQuery: "qty=100", Body: []byte(`{"category":"spot"}`)}, isErr: true},
		{name: "GET with body", req: exchange.Request{Method: "GET", Path: "/v5/order/realtime", Body: []byte(`{}`)}, isErr: true},
		{name: "method", req: exchange.Request{Method: "DELETE", Path: "/v5/order/cancel"}, isErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Header = http.Header{hdrKey: {"k"}}
			got, err := describer{}.Describe(&tt.req)
			if tt.isErr {
				if err == nil {
					t.Fatalf("Describe(%s %s) = %+v, want error", tt.req.Method, tt.req.Path, got)
				}
				if k := exchange.AsError(err).Kind; k != exchange.ErrBadRequest {
					t.Errorf("Describe(%s) error kind = %v, want ErrBadRequest", tt.name, k)
				}
				return
			}
			if err != nil {
				t.Fatalf("Describe(%s %s) = %v", tt.req.Method, tt.req.Path, err)
			}
			got = exchangetest.OrderTexts(t, got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Describe(%s) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// TestDescribeExactDecimals: priced spot and linear orders keep qty and
// price as written, for exact checks at a notional cap.
func TestDescribeExactDecimals(t *testing.T) {
	body := `{"category":"spot","symbol":"ETHUSDT","side":"Buy","orderType":"Limit","qty":"0.10","price":"10000.0000000000001"}`
	got, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/v5/order/create", Body: []byte(body)})
	if err != nil || len(got.Orders) != 1 {
		t.Fatalf("Describe() = %+v, %v", got, err)
	}
	if o := got.Orders[0]; o.QuantityText != "0.10" || o.PriceText != "10000.0000000000001" {
		t.Errorf("texts = %q × %q, want 0.10 × 10000.0000000000001", o.QuantityText, o.PriceText)
	}
}
