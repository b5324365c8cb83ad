package okx

import (
	"net/http"
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
	tests := []struct {
		name  string
		req   exchange.Request
		want  exchange.Call
		isErr bool
	}{
		{name: "public ticker", req: exchange.Request{Method: "GET", Path: "/api/v5/market/ticker", RawQuery: "instId=BTC-USDT"},
			want: call("GET", "/api/v5/market/ticker", exchange.ScopePublic)},
		{name: "server time", req: exchange.Request{Method: "GET", Path: "/api/v5/public/time"},
			want: call("GET", "/api/v5/public/time", exchange.ScopePublic)},
		{name: "balance", req: exchange.Request{Method: "GET", Path: "/api/v5/account/balance", RawQuery: "ccy=BTC"},
			want: call("GET", "/api/v5/account/balance", exchange.ScopeRead)},
		{name: "open orders", req: exchange.Request{Method: "GET", Path: "/api/v5/trade/orders-pending"},
			want: call("GET", "/api/v5/trade/orders-pending", exchange.ScopeRead)},
		{name: "spot limit buy", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.5","px":"30000","clOrdId":"c1"}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit", Quantity: 0.5,
				Price: 30000, Notional: 15000, ClientOrderID: "c1"}}, nil)},
		{name: "spot market buy sized in quote by default", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"BUY","ordType":"market","sz":"100"}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 100, Notional: 100}}, nil)},
		{name: "spot market sell sized in base", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"market","sz":"2"}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Sell, Type: "market", Quantity: 2}}, nil)},
		{name: "market buy with base tgtCcy", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"2","tgtCcy":"base_ccy"}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "market", Quantity: 2}}, nil)},
		{name: "swap contracts have no notional", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"limit","sz":"3","px":"30000","reduceOnly":true}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT-SWAP", Side: exchange.Sell, Type: "limit", Quantity: 3, Contracts: true,
				Price: 30000, ReduceOnly: true}}, nil)},
		{name: "numbers as json numbers", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"ETH-USDT","side":"sell","ordType":"limit","sz":1.5,"px":2000}`)},
			want: with(call("POST", "/api/v5/trade/order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH-USDT", Side: exchange.Sell, Type: "limit", Quantity: 1.5,
				Price: 2000, Notional: 3000}}, nil)},
		{name: "batch orders expand", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/batch-orders",
			Body: []byte(`[{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","px":"10"},{"instId":"ETH-USDT","side":"sell","ordType":"post_only","sz":"2","px":"5"}]`)},
			want: with(call("POST", "/api/v5/trade/batch-orders", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
				{Action: exchange.ActionNew, Symbol: "ETH-USDT", Side: exchange.Sell, Type: "post_only", Quantity: 2, Price: 5, Notional: 10},
			}, nil)},
		{name: "amend", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/amend-order",
			Body: []byte(`{"instId":"BTC-USDT","clOrdId":"c1","newSz":"2","newPx":"31000"}`)},
			want: with(call("POST", "/api/v5/trade/amend-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionAmend, Symbol: "BTC-USDT", ClientOrderID: "c1", Quantity: 2, Price: 31000, Notional: 62000}}, nil)},
		{name: "cancel", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/cancel-order",
			Body: []byte(`{"instId":"BTC-USDT","ordId":"123"}`)},
			want: with(call("POST", "/api/v5/trade/cancel-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionCancel, Symbol: "BTC-USDT"}}, nil)},
		{name: "cancel batch", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/cancel-batch-orders",
			Body: []byte(`[{"instId":"BTC-USDT","clOrdId":"a"},{"instId":"ETH-USDT","clOrdId":"b"}]`)},
			want: with(call("POST", "/api/v5/trade/cancel-batch-orders", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTC-USDT", ClientOrderID: "a"},
				{Action: exchange.ActionCancel, Symbol: "ETH-USDT", ClientOrderID: "b"}}, nil)},
		{name: "algo at market price", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order-algo",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"trigger","sz":"1","triggerPx":"25000","orderPx":"-1"}`)},
			want: with(call("POST", "/api/v5/trade/order-algo", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-USDT", Side: exchange.Buy, Type: "trigger", Quantity: 1}}, nil)},
		{name: "set leverage", req: exchange.Request{Method: "POST", Path: "/api/v5/account/set-leverage",
			Body: []byte(`{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}`)},
			want: call("POST", "/api/v5/account/set-leverage", exchange.ScopeTrade)},
		{name: "funding transfer", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/transfer",
			Body: []byte(`{"ccy":"USDT","amt":"1.5","from":"6","to":"18"}`)},
			want: with(call("POST", "/api/v5/asset/transfer", exchange.ScopeTransfer), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 1.5, Destination: "18"})},
		{name: "transfer to sub-account", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/transfer",
			Body: []byte(`{"ccy":"USDT","amt":"10","from":"6","to":"6","type":"1","subAcct":"bob"}`)},
			want: with(call("POST", "/api/v5/asset/transfer", exchange.ScopeTransfer), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 10, Destination: "subaccount:bob"})},
		{name: "on-chain withdrawal", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal",
			Body: []byte(`{"ccy":"USDT","amt":"100","dest":"4","toAddr":"TXabc","chain":"USDT-TRC20"}`)},
			want: with(call("POST", "/api/v5/asset/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 100, Address: "TXabc", Network: "USDT-TRC20"})},
		{name: "internal withdrawal to another user", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal",
			Body: []byte(`{"ccy":"USDT","amt":"100","dest":"3","toAddr":"mallory@example.com"}`)},
			want: with(call("POST", "/api/v5/asset/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 100, Address: "mallory@example.com", Destination: "mallory@example.com"})},
		{name: "lightning withdrawal", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal-lightning",
			Body: []byte(`{"ccy":"BTC","invoice":"lnbc1","memo":"m"}`)},
			want: with(call("POST", "/api/v5/asset/withdrawal-lightning", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "BTC", Address: "lnbc1", Memo: "m", Network: "lightning"})},
		{name: "create sub-account key is admin", req: exchange.Request{Method: "POST", Path: "/api/v5/users/subaccount/apikey",
			Body: []byte(`{"subAcct":"a","label":"b","passphrase":"c","perm":"trade"}`)},
			want: call("POST", "/api/v5/users/subaccount/apikey", exchange.ScopeAccountAdmin)},
		{name: "unknown private endpoint is admin", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/new-thing"},
			want: call("POST", "/api/v5/asset/new-thing", exchange.ScopeAccountAdmin)},
		{name: "upper-case withdraw path is still withdraw", req: exchange.Request{Method: "POST", Path: "/API/V5/ASSET/WITHDRAWAL",
			Body: []byte(`{"ccy":"USDT","amt":"1","dest":"4","toAddr":"x"}`)},
			want: with(call("POST", "/api/v5/asset/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 1, Address: "x"})},

		// Aliasing and malformed input.
		{name: "trailing slash", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal/"}, isErr: true},
		{name: "double slash", req: exchange.Request{Method: "POST", Path: "/api/v5//asset/withdrawal"}, isErr: true},
		{name: "dot dot", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/../asset/withdrawal"}, isErr: true},
		{name: "dot", req: exchange.Request{Method: "POST", Path: "/api/v5/./asset/withdrawal"}, isErr: true},
		{name: "encoded slash", req: exchange.Request{Method: "POST", Path: "/api/v5/asset%2Fwithdrawal"}, isErr: true},
		{name: "encoded dot", req: exchange.Request{Method: "POST", Path: "/api/v5/%2e%2e/asset/withdrawal"}, isErr: true},
		{name: "semicolon", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal;x"}, isErr: true},
		{name: "backslash", req: exchange.Request{Method: "POST", Path: `/api/v5\asset/withdrawal`}, isErr: true},
		{name: "relative", req: exchange.Request{Method: "GET", Path: "api/v5/market/ticker"}, isErr: true},
		{name: "method", req: exchange.Request{Method: "DELETE", Path: "/api/v5/trade/order"}, isErr: true},
		{name: "lower-case method", req: exchange.Request{Method: "post", Path: "/api/v5/trade/order"}, isErr: true},
		{name: "duplicate query", req: exchange.Request{Method: "GET", Path: "/api/v5/account/balance", RawQuery: "ccy=BTC&ccy=ETH"}, isErr: true},
		{name: "non-utf8 query", req: exchange.Request{Method: "GET", Path: "/api/v5/account/balance", RawQuery: "ccy=%ff"}, isErr: true},
		{name: "duplicate json key", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","sz":"1000","px":"1"}`)}, isErr: true},
		{name: "json keys differing in case", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","SZ":"1000","px":"1"}`)}, isErr: true},
		{name: "invalid json", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Body: []byte(`{"instId":`)}, isErr: true},
		{name: "trailing json", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Body: []byte(`{"instId":"a"} {}`)}, isErr: true},
		{name: "non-utf8 json", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Body: []byte("{\"instId\":\"\xff\"}")}, isErr: true},
		{name: "scalar json", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Body: []byte(`"x"`)}, isErr: true},
		{name: "exponent quantity", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1e9","px":"1"}`)}, isErr: true},
		{name: "negative quantity", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"-1","px":"1"}`)}, isErr: true},
		{name: "hex quantity", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"0x10","px":"1"}`)}, isErr: true},
		{name: "object quantity", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":{"a":1},"px":"1"}`)}, isErr: true},
		{name: "bad side", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"instId":"BTC-USDT","side":"long","ordType":"limit","sz":"1","px":"1"}`)}, isErr: true},
		{name: "batch as object", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/batch-orders",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","px":"1"}`)}, isErr: true},
		{name: "order as array", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`[{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","px":"1"}]`)}, isErr: true},
		{name: "empty batch", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/batch-orders", Body: []byte(`[]`)}, isErr: true},
		{name: "withdrawal with unknown dest", req: exchange.Request{Method: "POST", Path: "/api/v5/asset/withdrawal",
			Body: []byte(`{"ccy":"USDT","amt":"1","dest":"9","toAddr":"x"}`)}, isErr: true},
		{name: "mixed query and body", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order", RawQuery: "sz=1000",
			Body: []byte(`{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","px":"1"}`)}, isErr: true},
		{name: "GET with body", req: exchange.Request{Method: "GET", Path: "/api/v5/account/balance", Body: []byte(`{}`)}, isErr: true},
		{name: "deep json", req: exchange.Request{Method: "POST", Path: "/api/v5/trade/order",
			Body: []byte(`{"a":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}`)}, isErr: true},
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

func TestDescribeBatchLimit(t *testing.T) {
	body := []byte("[")
	for i := range maxBatch + 1 {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"instId":"BTC-USDT","side":"buy","ordType":"limit","sz":"1","px":"1"}`...)
	}
	body = append(body, ']')
	_, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/api/v5/trade/batch-orders", Body: body})
	if err == nil {
		t.Errorf("Describe(batch of %d) = nil error, want error", maxBatch+1)
	}
}

// TestDescribeExactDecimals: spot orders keep sz and px as written (string
// or JSON number), for exact checks at a notional cap.
func TestDescribeExactDecimals(t *testing.T) {
	for _, body := range []string{
		`{"instId":"ETH-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.10","px":"10000.0000000000001"}`,
		`{"instId":"ETH-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":0.10,"px":10000.0000000000001}`,
	} {
		got, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/api/v5/trade/order", Body: []byte(body)})
		if err != nil || len(got.Orders) != 1 {
			t.Fatalf("Describe(%s) = %+v, %v", body, got, err)
		}
		if o := got.Orders[0]; o.QuantityText != "0.10" || o.PriceText != "10000.0000000000001" {
			t.Errorf("Describe(%s) texts = %q × %q, want 0.10 × 10000.0000000000001", body, o.QuantityText, o.PriceText)
		}
	}
}
