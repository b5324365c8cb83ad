package kucoin

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		query  string
		body   string
		want   exchange.Call
	}{
		{
			name: "public ticker", method: "GET", path: "/api/v1/market/orderbook/level1", query: "symbol=BTC-USDT",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v1/market/orderbook/level1"},
		},
		{
			name: "server time", method: "GET", path: "/api/v1/timestamp",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v1/timestamp"},
		},
		{
			name: "mark price parameter in the middle", method: "GET", path: "/api/v1/mark-price/BTC-USDT/current",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v1/mark-price/{}/current"},
		},
		{
			name: "balances", method: "GET", path: "/api/v1/accounts", query: "currency=USDT",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/v1/accounts"},
		},
		{
			name: "key self-inspection", method: "GET", path: "/api/v1/user/api-key",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/v1/user/api-key"},
		},
		{
			name: "order by id", method: "GET", path: "/api/v1/hf/orders/6717422bd51c29000775ea03", query: "symbol=BTC-USDT",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/v1/hf/orders/{}"},
		},
		{
			name: "limit order", method: "POST", path: "/api/v1/hf/orders",
			body: `{"clientOid":"c1","side":"BUY","symbol":"BTC-USDT","type":"limit","price":"30000","size":"0.01"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/hf/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit",
				Quantity: 0.01, Price: 30000, Notional: 300, ClientOrderID: "c1"}}},
		},
		{
			name: "market order by funds, default type absent", method: "POST", path: "/api/v1/hf/orders",
			body: `{"side":"buy","symbol":"ETH-USDT","type":"market","funds":"250.5"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/hf/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH-USDT", Side: exchange.Buy, Type: "market",
				QuoteQuantity: 250.5, Notional: 250.5}}},
		},
		{
			name: "type defaults to limit", method: "POST", path: "/api/v1/orders",
			body: `{"side":"sell","symbol":"ETH-USDT","price":"2000","size":"2"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH-USDT", Side: exchange.Sell, Type: "limit",
				Quantity: 2, Price: 2000, Notional: 4000}}},
		},
		{
			name: "futures order with numbers and reduceOnly", method: "POST", path: "/api/v1/orders",
			body: `{"clientOid":"f1","side":"sell","symbol":"XBTUSDTM","type":"market","leverage":5,"size":3,"reduceOnly":true}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTUSDTM", Side: exchange.Sell, Type: "market",
				Quantity: 3, ClientOrderID: "f1", ReduceOnly: true}}},
		},
		{
			name: "hf batch", method: "POST", path: "/api/v1/hf/orders/multi",
			body: `{"orderList":[{"symbol":"BTC-USDT","side":"buy","price":"100","size":"1"},{"symbol":"ETH-USDT","side":"sell","type":"market","size":"2"}]}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/hf/orders/multi", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 100, Notional: 100},
				{Action: exchange.ActionNew, Symbol: "ETH-USDT", Side: exchange.Sell, Type: "market", Quantity: 2},
			}},
		},
		{
			name: "legacy batch with shared symbol", method: "POST", path: "/api/v1/orders/multi",
			body: `{"symbol":"BTC-USDT","orderList":[{"side":"buy","price":"10","size":"1"}]}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/orders/multi", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
			}},
		},
		{
			name: "futures batch array", method: "POST", path: "/api/v1/orders/multi",
			body: `[{"symbol":"XBTUSDTM","side":"buy","price":"50000","size":1,"leverage":3}]`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/orders/multi", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "XBTUSDTM", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 50000, Notional: 50000},
			}},
		},
		{
			name: "amend", method: "POST", path: "/api/v1/hf/orders/alter",
			body: `{"symbol":"BTC-USDT","orderId":"1","newPrice":"31000","newSize":"0.5"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v1/hf/orders/alter", Orders: []exchange.Order{
				{Action: exchange.ActionAmend, Symbol: "BTC-USDT", Type: "limit", Quantity: 0.5, Price: 31000, Notional: 15500},
			}},
		},
		{
			name: "cancel by id", method: "DELETE", path: "/api/v1/hf/orders/6717422bd51c29000775ea03", query: "symbol=BTC-USDT",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v1/hf/orders/{}", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC-USDT"}}},
		},
		{
			name: "cancel by client id", method: "DELETE", path: "/api/v1/hf/orders/client-order/my-1", query: "symbol=BTC-USDT",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v1/hf/orders/client-order/{}", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC-USDT", ClientOrderID: "my-1"}}},
		},
		{
			name: "cancel all, camel case in table", method: "DELETE", path: "/api/v1/hf/orders/cancelAll",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v1/hf/orders/cancelall", Orders: []exchange.Order{
				{Action: exchange.ActionCancel}}},
		},
		{
			name: "withdraw v3", method: "POST", path: "/api/v3/withdrawals",
			body: `{"currency":"USDT","toAddress":"TXabc","amount":"100.5","chain":"trx","memo":"m1","withdrawType":"ADDRESS"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v3/withdrawals", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 100.5, Address: "TXabc", Network: "trx", Memo: "m1"}},
		},
		{
			name: "withdraw v1 address field", method: "POST", path: "/api/v1/withdrawals",
			body: `{"currency":"BTC","address":"bc1q","amount":0.1}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v1/withdrawals", Transfer: &exchange.Transfer{
				Asset: "BTC", Amount: 0.1, Address: "bc1q"}},
		},
		{
			name: "withdraw to another user by uid", method: "POST", path: "/api/v3/withdrawals",
			body: `{"currency":"USDT","toAddress":"12345678","amount":"5","withdrawType":"UID"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v3/withdrawals", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 5, Address: "12345678", Destination: "uid:12345678"}},
		},
		{
			name: "cancel withdrawal", method: "DELETE", path: "/api/v1/withdrawals/abc",
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "DELETE /api/v1/withdrawals/{}"},
		},
		{
			name: "universal transfer to a sub-account", method: "POST", path: "/api/v3/accounts/universal-transfer",
			body: `{"clientOid":"x","currency":"USDT","amount":"10","fromAccountType":"MAIN","type":"PARENT_TO_SUB","toUserId":"6744227ce235b300012232d6","toAccountType":"TRADE"}`,
			want: exchange.Call{Scope: exchange.ScopeTransfer, Endpoint: "POST /api/v3/accounts/universal-transfer", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 10, Destination: "PARENT_TO_SUB:6744227ce235b300012232d6:TRADE"}},
		},
		{
			name: "inner transfer", method: "POST", path: "/api/v2/accounts/inner-transfer",
			body: `{"clientOid":"x","currency":"BTC","amount":"1","from":"main","to":"trade"}`,
			want: exchange.Call{Scope: exchange.ScopeTransfer, Endpoint: "POST /api/v2/accounts/inner-transfer", Transfer: &exchange.Transfer{
				Asset: "BTC", Amount: 1, Destination: "trade"}},
		},
		{
			name: "sub transfer", method: "POST", path: "/api/v2/accounts/sub-transfer",
			body: `{"clientOid":"x","currency":"BTC","amount":"1","direction":"OUT","subUserId":"s1"}`,
			want: exchange.Call{Scope: exchange.ScopeTransfer, Endpoint: "POST /api/v2/accounts/sub-transfer", Transfer: &exchange.Transfer{
				Asset: "BTC", Amount: 1, Destination: "OUT:s1"}},
		},
		{
			name: "create sub key is admin", method: "POST", path: "/api/v1/sub/api-key", body: `{"subName":"a"}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /api/v1/sub/api-key"},
		},
		{
			name: "unknown private endpoint is admin", method: "GET", path: "/api/v1/sub/api-key",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/v1/sub/api-key"},
		},
		{
			name: "unknown prefix is admin", method: "GET", path: "/api/xx/v1/account/balance",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/xx/v1/account/balance"},
		},
		{
			name: "unified account mode is read", method: "GET", path: "/api/ua/v1/account/mode",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/ua/v1/account/mode"},
		},
		{
			name: "unified balance is read", method: "GET", path: "/api/ua/v1/account/balance", query: "accountType=UNIFIED",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/ua/v1/account/balance"},
		},
		{
			name: "unified spot limit order", method: "POST", path: "/api/ua/v1/unified/order/place",
			body: `{"tradeType":"SPOT","clientOid":"c1","symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","sizeUnit":"BASECCY","size":"0.5","price":"60000"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/ua/v1/unified/order/place", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit", Quantity: 0.5, Price: 60000, Notional: 30000, ClientOrderID: "c1"}}},
		},
		{
			name: "unified spot market order sized in quote", method: "POST", path: "/api/ua/v1/unified/order/place",
			body: `{"tradeType":"SPOT","symbol":"BTC-USDT","side":"BUY","orderType":"MARKET","sizeUnit":"QUOTECCY","size":"250"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/ua/v1/unified/order/place", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 250, Notional: 250}}},
		},
		{
			name: "classic futures order counts contracts", method: "POST", path: "/api/ua/v1/classic/order/place",
			body: `{"tradeType":"FUTURES","symbol":"XBTUSDTM","side":"SELL","orderType":"LIMIT","size":"3","price":"60000","reduceOnly":true}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/ua/v1/classic/order/place", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTUSDTM", Side: exchange.Sell, Type: "limit", Quantity: 3, Price: 60000, Contracts: true, ReduceOnly: true}}},
		},
		{
			name: "unified cancel", method: "POST", path: "/api/ua/v1/unified/order/cancel",
			body: `{"tradeType":"SPOT","symbol":"BTC-USDT","clientOid":"c1"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/ua/v1/unified/order/cancel", Orders: []exchange.Order{{
				Action: exchange.ActionCancel, Symbol: "BTC-USDT", ClientOrderID: "c1"}}},
		},
		{
			name: "unified batch cancel", method: "POST", path: "/api/ua/v1/unified/order/cancel-batch",
			body: `{"tradeType":"SPOT","cancelOrderList":[{"symbol":"BTC-USDT","orderId":"1"},{"symbol":"ETH-USDT","clientOid":"c2"}]}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/ua/v1/unified/order/cancel-batch", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC-USDT"}, {Action: exchange.ActionCancel, Symbol: "ETH-USDT", ClientOrderID: "c2"}}},
		},
		{
			name: "unified batch place stays admin", method: "POST", path: "/api/ua/v1/unified/order/place-batch",
			body: `{"orderList":[]}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /api/ua/v1/unified/order/place-batch"},
		},
		{
			name: "unified transfer stays admin", method: "POST", path: "/api/ua/v1/account/transfer",
			body: `{"currency":"USDT","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /api/ua/v1/account/transfer"},
		},
		{
			name: "unified path needs a version", method: "GET", path: "/api/ua/account/mode",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/ua/account/mode"},
		},
		{
			name: "unified prefix is case-sensitive", method: "GET", path: "/api/UA/v1/account/mode",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/UA/v1/account/mode"},
		},
		{
			name: "classic table is not reached through the unified prefix", method: "POST", path: "/api/ua/v1/hf/orders",
			body: `{"symbol":"BTC-USDT","side":"buy","type":"limit","size":"1","price":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /api/ua/v1/hf/orders"},
		},
		{
			name: "upper case cannot lower the scope", method: "POST", path: "/API/V3/WITHDRAWALS",
			body: `{"currency":"USDT","toAddress":"a","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /API/V3/WITHDRAWALS"},
		},
		{
			name: "mixed case rest is matched case-insensitively", method: "POST", path: "/api/v3/Withdrawals",
			body: `{"currency":"USDT","toAddress":"a","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v3/withdrawals", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 1, Address: "a"}},
		},
		{
			name: "method matters", method: "PUT", path: "/api/v1/hf/orders",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "PUT /api/v1/hf/orders"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: tt.method, Path: tt.path, RawQuery: tt.query, Header: http.Header{}}
			if tt.body != "" {
				r.Body = []byte(tt.body)
			}
			got, err := (describer{}).Describe(r)
			if err != nil {
				t.Fatalf("Describe(%s %s) error = %v", tt.method, tt.path, err)
			}
			want := tt.want
			want.Venue, want.Method, want.Path = Name, tt.method, tt.path
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Describe(%s %s) mismatch (-want +got):\n%s", tt.method, tt.path, d)
			}
		})
	}
}

func TestDescribeRejects(t *testing.T) {
	tests := []struct {
		name, method, path, query, body string
	}{
		{"dot segment", "POST", "/api/v1/hf/orders/../../v3/withdrawals", "", ""},
		{"single dot", "POST", "/api/v3/./withdrawals", "", ""},
		{"double slash", "POST", "/api/v3//withdrawals", "", ""},
		{"trailing slash", "POST", "/api/v3/withdrawals/", "", ""},
		{"percent-encoded slash", "POST", "/api/v3%2Fwithdrawals", "", ""},
		{"percent-encoded dot", "POST", "/api/v1/%2e%2e/withdrawals", "", ""},
		{"backslash", "POST", `/api/v3\withdrawals`, "", ""},
		{"semicolon", "POST", "/api/v3/withdrawals;x", "", ""},
		{"relative", "GET", "api/v1/accounts", "", ""},
		{"non-ascii", "GET", "/api/v1/accountś", "", ""},
		{"duplicate query", "GET", "/api/v1/accounts", "currency=BTC&currency=USDT", ""},
		{"non-utf8 query", "GET", "/api/v1/accounts", "currency=%ff", ""},
		{"duplicate json key", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":"1","size":"1000"}`},
		{"nested duplicate", "POST", "/api/v1/hf/orders/multi", "", `{"orderList":[{"size":"1","size":"2"}]}`},
		{"invalid json", "POST", "/api/v1/hf/orders", "", `{"symbol":`},
		{"trailing json", "POST", "/api/v1/hf/orders", "", `{"symbol":"a"}{}`},
		{"query contradicts body", "POST", "/api/v1/hf/orders", "size=1000", `{"symbol":"BTC-USDT","size":"1"}`},
		{"exponent quantity", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":"1e9"}`},
		{"negative quantity", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":"-1"}`},
		{"hex quantity", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":"0x10"}`},
		{"NaN price", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","price":"NaN"}`},
		{"bad side", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","side":"long"}`},
		{"array body for single order", "POST", "/api/v1/hf/orders", "", `[{"symbol":"BTC-USDT"}]`},
		{"object quantity", "POST", "/api/v1/hf/orders", "", `{"symbol":"BTC-USDT","size":{"v":1}}`},
		{"batch symbol mismatch", "POST", "/api/v1/orders/multi", "", `{"symbol":"BTC-USDT","orderList":[{"symbol":"ETH-USDT","size":"1"}]}`},
		{"empty batch", "POST", "/api/v1/hf/orders/multi", "", `{"orderList":[]}`},
		{"bad withdraw type", "POST", "/api/v3/withdrawals", "", `{"currency":"USDT","withdrawType":"OTHER"}`},
		{"bad unified size unit", "POST", "/api/ua/v1/unified/order/place", "", `{"symbol":"BTC-USDT","side":"BUY","orderType":"LIMIT","sizeUnit":"LOTS","size":"1","price":"1"}`},
		{"unified cancel list not an array", "POST", "/api/ua/v1/unified/order/cancel-batch", "", `{"cancelOrderList":{"symbol":"BTC-USDT"}}`},
		{"unsupported method", "PATCH", "/api/v1/accounts", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: tt.method, Path: tt.path, RawQuery: tt.query, Body: []byte(tt.body)}
			got, err := (describer{}).Describe(r)
			var e *exchange.Error
			if !errors.As(err, &e) || e.Kind != exchange.ErrBadRequest {
				t.Errorf("Describe(%s %s %q) = %+v, %v, want ErrBadRequest", tt.method, tt.path, tt.body, got, err)
			}
		})
	}
}

func BenchmarkDescribe(b *testing.B) {
	r := &exchange.Request{Method: "POST", Path: "/api/v1/hf/orders",
		Body: []byte(`{"clientOid":"5c52e11203aa677f33e493fb","side":"buy","symbol":"BTC-USDT","type":"limit","price":"30000","size":"0.01"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
