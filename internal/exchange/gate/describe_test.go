package gate

import (
	"errors"
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
			name: "public ticker", method: "GET", path: "/api/v4/spot/tickers", query: "currency_pair=BTC_USDT",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v4/spot/tickers"},
		},
		{
			name: "server time", method: "GET", path: "/api/v4/spot/time",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v4/spot/time"},
		},
		{
			name: "futures contract", method: "GET", path: "/api/v4/futures/usdt/contracts/BTC_USDT",
			want: exchange.Call{Scope: exchange.ScopePublic, Endpoint: "GET /api/v4/futures/{}/contracts/{}"},
		},
		{
			name: "balances", method: "GET", path: "/api/v4/spot/accounts",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/v4/spot/accounts"},
		},
		{
			name: "key self-inspection", method: "GET", path: "/api/v4/account/detail",
			want: exchange.Call{Scope: exchange.ScopeRead, Endpoint: "GET /api/v4/account/detail"},
		},
		{
			name: "spot limit order", method: "POST", path: "/api/v4/spot/orders",
			body: `{"text":"t-1","currency_pair":"BTC_USDT","type":"limit","account":"spot","side":"buy","amount":"0.5","price":"30000","time_in_force":"gtc"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC_USDT", Side: exchange.Buy, Type: "limit", Quantity: 0.5, Price: 30000, Notional: 15000, ClientOrderID: "t-1"}}},
		},
		{
			name: "spot market buy sized in quote", method: "POST", path: "/api/v4/spot/orders",
			body: `{"currency_pair":"ETH_USDT","type":"market","side":"buy","amount":"250","time_in_force":"ioc"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH_USDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 250, Notional: 250}}},
		},
		{
			name: "spot market sell sized in base", method: "POST", path: "/api/v4/spot/orders",
			body: `{"currency_pair":"ETH_USDT","type":"market","side":"sell","amount":"2"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/orders", Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH_USDT", Side: exchange.Sell, Type: "market", Quantity: 2}}},
		},
		{
			name: "spot batch", method: "POST", path: "/api/v4/spot/batch_orders",
			body: `[{"currency_pair":"BTC_USDT","side":"buy","amount":"1","price":"10"},{"currency_pair":"ETH_USDT","side":"sell","amount":"3","price":"2"}]`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/batch_orders", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
				{Action: exchange.ActionNew, Symbol: "ETH_USDT", Side: exchange.Sell, Type: "limit", Quantity: 3, Price: 2, Notional: 6},
			}},
		},
		{
			name: "spot amend with query and body", method: "PATCH", path: "/api/v4/spot/orders/12345", query: "currency_pair=BTC_USDT",
			body: `{"amount":"2","price":"31000"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "PATCH /api/v4/spot/orders/{}", Orders: []exchange.Order{
				{Action: exchange.ActionAmend, Symbol: "BTC_USDT", Quantity: 2, Price: 31000, Notional: 62000}}},
		},
		{
			name: "spot cancel", method: "DELETE", path: "/api/v4/spot/orders/12345", query: "currency_pair=BTC_USDT",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v4/spot/orders/{}", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC_USDT"}}},
		},
		{
			name: "spot cancel all of one side", method: "DELETE", path: "/api/v4/spot/orders", query: "currency_pair=BTC_USDT&side=sell",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v4/spot/orders", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC_USDT", Side: exchange.Sell}}},
		},
		{
			name: "spot cancel batch", method: "POST", path: "/api/v4/spot/cancel_batch_orders",
			body: `[{"currency_pair":"BTC_USDT","id":"1"},{"currency_pair":"ETH_USDT","id":"2"}]`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/cancel_batch_orders", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC_USDT"}, {Action: exchange.ActionCancel, Symbol: "ETH_USDT"}}},
		},
		{
			name: "spot trigger order", method: "POST", path: "/api/v4/spot/price_orders",
			body: `{"trigger":{"price":"100","rule":">=","expiration":3600},"put":{"type":"limit","side":"buy","price":"2.15","amount":"2","account":"normal","time_in_force":"gtc"},"market":"GT_USDT"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/spot/price_orders", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "GT_USDT", Side: exchange.Buy, Type: "limit", Quantity: 2, Price: 2.15, Notional: 4.3}}},
		},
		{
			name: "futures short market order", method: "POST", path: "/api/v4/futures/usdt/orders",
			body: `{"contract":"BTC_USDT","size":-7,"price":"0","tif":"ioc","text":"t-f","reduce_only":true}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/futures/{}/orders", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDT", Side: exchange.Sell, Type: "market", Quantity: 7, Contracts: true, ClientOrderID: "t-f", ReduceOnly: true}}},
		},
		{
			name: "futures batch", method: "POST", path: "/api/v4/futures/usdt/batch_orders",
			body: `[{"contract":"BTC_USDT","size":10,"price":"50000","tif":"gtc"},{"contract":"ETH_USDT","size":"-3","price":"3000"}]`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/futures/{}/batch_orders", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDT", Side: exchange.Buy, Type: "limit", Quantity: 10, Contracts: true, Price: 50000},
				{Action: exchange.ActionNew, Symbol: "ETH_USDT", Side: exchange.Sell, Type: "limit", Quantity: 3, Contracts: true, Price: 3000},
			}},
		},
		{
			name: "futures amend", method: "PUT", path: "/api/v4/futures/usdt/orders/987",
			body: `{"size":20,"price":"51000"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "PUT /api/v4/futures/{}/orders/{}", Orders: []exchange.Order{
				{Action: exchange.ActionAmend, Side: exchange.Buy, Quantity: 20, Contracts: true, Price: 51000}}},
		},
		{
			name: "futures cancel all", method: "DELETE", path: "/api/v4/futures/usdt/orders", query: "contract=BTC_USDT",
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "DELETE /api/v4/futures/{}/orders", Orders: []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC_USDT"}}},
		},
		{
			name: "futures batch cancel", method: "POST", path: "/api/v4/futures/usdt/batch_cancel_orders", body: `["1","2"]`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/futures/{}/batch_cancel_orders", Orders: []exchange.Order{
				{Action: exchange.ActionCancel}, {Action: exchange.ActionCancel}}},
		},
		{
			name: "withdraw", method: "POST", path: "/api/v4/withdrawals",
			body: `{"withdraw_order_id":"w1","currency":"USDT","address":"0xabc","memo":"m","chain":"ETH","amount":"222.61"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v4/withdrawals", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 222.61, Address: "0xabc", Network: "ETH", Memo: "m"}},
		},
		{
			name: "UID push is a withdrawal", method: "POST", path: "/api/v4/withdrawals/push",
			body: `{"receive_uid":12345,"currency":"USDT","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v4/withdrawals/push", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 1, Destination: "uid:12345"}},
		},
		{
			name: "cancel withdrawal", method: "DELETE", path: "/api/v4/withdrawals/w123",
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "DELETE /api/v4/withdrawals/{}"},
		},
		{
			name: "wallet transfer", method: "POST", path: "/api/v4/wallet/transfers",
			body: `{"currency":"USDT","from":"spot","to":"futures","amount":"10","settle":"usdt"}`,
			want: exchange.Call{Scope: exchange.ScopeTransfer, Endpoint: "POST /api/v4/wallet/transfers", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 10, Destination: "futures:usdt"}},
		},
		{
			name: "sub-account transfer", method: "POST", path: "/api/v4/wallet/sub_account_transfers",
			body: `{"sub_account":"1001","direction":"to","currency":"BTC","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeTransfer, Endpoint: "POST /api/v4/wallet/sub_account_transfers", Transfer: &exchange.Transfer{
				Asset: "BTC", Amount: 1, Destination: "to:1001"}},
		},
		{
			name: "sub keys are admin", method: "POST", path: "/api/v4/sub_accounts/1001/keys", body: `{"name":"x"}`,
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "POST /api/v4/sub_accounts/1001/keys"},
		},
		{
			name: "unknown GET is admin", method: "GET", path: "/api/v4/sub_accounts/1001/keys",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/v4/sub_accounts/1001/keys"},
		},
		{
			name: "other prefix is admin", method: "GET", path: "/api/v3/spot/accounts",
			want: exchange.Call{Scope: exchange.ScopeAccountAdmin, Endpoint: "GET /api/v3/spot/accounts"},
		},
		{
			name: "case variant keeps the withdraw scope", method: "POST", path: "/api/v4/Withdrawals",
			body: `{"currency":"USDT","address":"a","amount":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeWithdraw, Endpoint: "POST /api/v4/withdrawals", Transfer: &exchange.Transfer{
				Asset: "USDT", Amount: 1, Address: "a"}},
		},
		{
			name: "settle parameter cannot reach withdraw", method: "POST", path: "/api/v4/futures/withdrawals/orders",
			body: `{"contract":"BTC_USDT","size":1,"price":"1"}`,
			want: exchange.Call{Scope: exchange.ScopeTrade, Endpoint: "POST /api/v4/futures/{}/orders", Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Contracts: true, Price: 1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: tt.method, Path: tt.path, RawQuery: tt.query}
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
		{"dot segment", "POST", "/api/v4/spot/../withdrawals", "", ""},
		{"double slash", "POST", "/api/v4//withdrawals", "", ""},
		{"trailing slash", "POST", "/api/v4/withdrawals/", "", ""},
		{"percent-encoded slash", "POST", "/api/v4/spot%2forders", "", ""},
		{"encoded dot dot", "POST", "/api/v4/spot/%2e%2e/withdrawals", "", ""},
		{"backslash", "POST", `/api/v4\withdrawals`, "", ""},
		{"semicolon", "POST", "/api/v4/withdrawals;a=b", "", ""},
		{"duplicate query", "DELETE", "/api/v4/spot/orders", "currency_pair=BTC_USDT&currency_pair=ETH_USDT", ""},
		{"non-utf8 query", "GET", "/api/v4/spot/accounts", "currency=%c3%28", ""},
		{"duplicate json key", "POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","amount":"1","amount":"1000"}`},
		{"duplicate key in batch", "POST", "/api/v4/spot/batch_orders", "", `[{"amount":"1","amount":"2"}]`},
		{"query contradicts body", "PATCH", "/api/v4/spot/orders/1", "currency_pair=ETH_USDT", `{"currency_pair":"BTC_USDT","amount":"1"}`},
		{"object for batch", "POST", "/api/v4/spot/batch_orders", "", `{"currency_pair":"BTC_USDT"}`},
		{"array for single", "POST", "/api/v4/spot/orders", "", `[{"currency_pair":"BTC_USDT"}]`},
		{"fractional futures size", "POST", "/api/v4/futures/usdt/orders", "", `{"contract":"BTC_USDT","size":1.5}`},
		{"exponent amount", "POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","amount":"1e3"}`},
		{"negative amount", "POST", "/api/v4/withdrawals", "", `{"currency":"USDT","amount":"-5"}`},
		{"leading space", "POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","amount":" 1"}`},
		{"bad side", "POST", "/api/v4/spot/orders", "", `{"currency_pair":"BTC_USDT","side":"short"}`},
		{"numbers as batch cancel ids", "POST", "/api/v4/futures/usdt/batch_cancel_orders", "", `[1]`},
		{"trigger without put", "POST", "/api/v4/spot/price_orders", "", `{"market":"BTC_USDT"}`},
		{"invalid json", "POST", "/api/v4/spot/orders", "", `{`},
		{"unsupported method", "TRACE", "/api/v4/spot/orders", "", ""},
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
	r := &exchange.Request{Method: "POST", Path: "/api/v4/spot/orders",
		Body: []byte(`{"text":"t-1","currency_pair":"BTC_USDT","type":"limit","account":"spot","side":"buy","amount":"0.5","price":"30000","time_in_force":"gtc"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (describer{}).Describe(r); err != nil {
			b.Fatal(err)
		}
	}
}
