package bitget

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
	tests := []struct {
		name  string
		req   exchange.Request
		want  exchange.Call
		isErr bool
	}{
		{name: "public ticker", req: exchange.Request{Method: "GET", Path: "/api/v2/spot/market/tickers", RawQuery: "symbol=BTCUSDT"},
			want: call("GET", "/api/v2/spot/market/tickers", exchange.ScopePublic)},
		{name: "server time", req: exchange.Request{Method: "GET", Path: "/api/v2/public/time"},
			want: call("GET", "/api/v2/public/time", exchange.ScopePublic)},
		{name: "assets", req: exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: "coin=USDT"},
			want: call("GET", "/api/v2/spot/account/assets", exchange.ScopeRead)},
		{name: "futures positions", req: exchange.Request{Method: "GET", Path: "/api/v2/mix/position/all-position", RawQuery: "productType=USDT-FUTURES"},
			want: call("GET", "/api/v2/mix/position/all-position", exchange.ScopeRead)},
		{name: "unified account settings probe", req: exchange.Request{Method: "GET", Path: "/api/v3/account/settings"},
			want: call("GET", "/api/v3/account/settings", exchange.ScopeRead)},
		{name: "spot limit", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01","clientOid":"bg-1"}`),
			want: with(call("POST", "/api/v2/spot/trade/place-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 0.01, Price: 30000,
				Notional: 300, ClientOrderID: "bg-1"}}, nil)},
		{name: "spot market buy is sized in quote", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"buy","orderType":"market","size":"250"}`),
			want: with(call("POST", "/api/v2/spot/trade/place-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 250, Notional: 250}}, nil)},
		{name: "spot market sell is sized in base", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"sell","orderType":"market","size":"2"}`),
			want: with(call("POST", "/api/v2/spot/trade/place-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "market", Quantity: 2}}, nil)},
		{name: "spot batch shares the symbol", req: post("/api/v2/spot/trade/batch-orders", `{"batchMode":"multiple","orderList":[{"symbol":"BTCUSDT","side":"buy","orderType":"limit","price":"10","size":"1"},{"symbol":"ETHUSDT","side":"sell","orderType":"limit","price":"5","size":"2","clientOid":"x"}]}`),
			want: with(call("POST", "/api/v2/spot/trade/batch-orders", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
				{Action: exchange.ActionNew, Symbol: "ETHUSDT", Side: exchange.Sell, Type: "limit", Quantity: 2, Price: 5, Notional: 10, ClientOrderID: "x"},
			}, nil)},
		{name: "spot cancel-replace is an amend", req: post("/api/v2/spot/trade/cancel-replace-order", `{"symbol":"BTCUSDT","price":"31000","size":"2","clientOid":"a","newClientOid":"b"}`),
			want: with(call("POST", "/api/v2/spot/trade/cancel-replace-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionAmend, Symbol: "BTCUSDT", ClientOrderID: "b", Quantity: 2, Price: 31000, Notional: 62000}}, nil)},
		{name: "spot cancel", req: post("/api/v2/spot/trade/cancel-order", `{"symbol":"BTCUSDT","orderId":"1"}`),
			want: with(call("POST", "/api/v2/spot/trade/cancel-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionCancel, Symbol: "BTCUSDT"}}, nil)},
		{name: "futures order", req: post("/api/v2/mix/order/place-order", `{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginMode":"crossed","marginCoin":"USDT","size":"0.5","price":"30000","side":"sell","tradeSide":"close","orderType":"limit","reduceOnly":"YES"}`),
			want: with(call("POST", "/api/v2/mix/order/place-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 0.5, Price: 30000,
				Notional: 15000, ReduceOnly: true}}, nil)},
		{name: "futures batch", req: post("/api/v2/mix/order/batch-place-order", `{"symbol":"BTCUSDT","productType":"USDT-FUTURES","marginCoin":"USDT","orderList":[{"size":"1","side":"buy","orderType":"market"},{"size":"2","price":"3","side":"sell","orderType":"limit"}]}`),
			want: with(call("POST", "/api/v2/mix/order/batch-place-order", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "market", Quantity: 1},
				{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 2, Price: 3, Notional: 6},
			}, nil)},
		{name: "futures modify", req: post("/api/v2/mix/order/modify-order", `{"symbol":"BTCUSDT","orderId":"1","newSize":"3","newPrice":"100","newClientOid":"n"}`),
			want: with(call("POST", "/api/v2/mix/order/modify-order", exchange.ScopeTrade), []exchange.Order{{
				Action: exchange.ActionAmend, Symbol: "BTCUSDT", ClientOrderID: "n", Quantity: 3, Price: 100, Notional: 300}}, nil)},
		{name: "futures batch cancel", req: post("/api/v2/mix/order/batch-cancel-orders", `{"symbol":"BTCUSDT","productType":"USDT-FUTURES","orderIdList":[{"orderId":"1"},{"clientOid":"c"}]}`),
			want: with(call("POST", "/api/v2/mix/order/batch-cancel-orders", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionCancel, Symbol: "BTCUSDT"}, {Action: exchange.ActionCancel, Symbol: "BTCUSDT", ClientOrderID: "c"}}, nil)},
		{name: "set leverage", req: post("/api/v2/mix/account/set-leverage", `{"symbol":"BTCUSDT","leverage":"20"}`),
			want: call("POST", "/api/v2/mix/account/set-leverage", exchange.ScopeTrade)},
		{name: "wallet transfer", req: post("/api/v2/spot/wallet/transfer", `{"fromType":"spot","toType":"usdt_futures","amount":"300","coin":"USDT"}`),
			want: with(call("POST", "/api/v2/spot/wallet/transfer", exchange.ScopeTransfer), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 300, Destination: "usdt_futures"})},
		{name: "sub-account transfer", req: post("/api/v2/spot/wallet/subaccount-transfer", `{"fromType":"spot","toType":"spot","amount":"5","coin":"BTC","fromUserId":"1","toUserId":"2"}`),
			want: with(call("POST", "/api/v2/spot/wallet/subaccount-transfer", exchange.ScopeTransfer), nil,
				&exchange.Transfer{Asset: "BTC", Amount: 5, Destination: "user:2"})},
		{name: "on-chain withdrawal", req: post("/api/v2/spot/wallet/withdrawal", `{"coin":"XRP","transferType":"on_chain","address":"rXYZ","chain":"XRP","tag":"123","size":"50"}`),
			want: with(call("POST", "/api/v2/spot/wallet/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "XRP", Amount: 50, Address: "rXYZ", Network: "XRP", Memo: "123"})},
		{name: "internal transfer hidden in withdrawal", req: post("/api/v2/spot/wallet/withdrawal", `{"coin":"USDT","transferType":"internal_transfer","innerToType":"uid","address":"99887766","size":"1000"}`),
			want: with(call("POST", "/api/v2/spot/wallet/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 1000, Address: "99887766", Destination: "uid:99887766"})},
		{name: "uta withdrawal", req: post("/api/v3/account/withdrawal", `{"coin":"USDT","transferType":"on_chain","address":"T1","chain":"TRC20","size":"1"}`),
			want: with(call("POST", "/api/v3/account/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 1, Address: "T1", Network: "TRC20"})},
		{name: "sub-account key creation is admin", req: post("/api/v2/user/create-virtual-subaccount-apikey", `{"subAccountUid":"1","passphrase":"x","label":"y","permList":["spot_trade"]}`),
			want: call("POST", "/api/v2/user/create-virtual-subaccount-apikey", exchange.ScopeAccountAdmin)},
		{name: "case variant of withdraw", req: post("/API/v2/Spot/Wallet/Withdrawal", `{"coin":"USDT","transferType":"on_chain","address":"T1","size":"1"}`),
			want: with(call("POST", "/api/v2/spot/wallet/withdrawal", exchange.ScopeWithdraw), nil,
				&exchange.Transfer{Asset: "USDT", Amount: 1, Address: "T1"})},

		{name: "trailing slash", req: post("/api/v2/spot/wallet/withdrawal/", `{}`), isErr: true},
		{name: "double slash", req: post("/api/v2/spot//wallet/withdrawal", `{}`), isErr: true},
		{name: "dot dot", req: post("/api/v2/spot/trade/../wallet/withdrawal", `{}`), isErr: true},
		{name: "encoded slash", req: post("/api/v2/spot/wallet%2Fwithdrawal", `{}`), isErr: true},
		{name: "method", req: exchange.Request{Method: "PUT", Path: "/api/v2/spot/trade/place-order"}, isErr: true},
		{name: "duplicate query", req: exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: "coin=BTC&coin=ETH"}, isErr: true},
		{name: "non-utf8 query", req: exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", RawQuery: "coin=%ff"}, isErr: true},
		{name: "duplicate json key", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"1","size":"100","price":"1"}`), isErr: true},
		{name: "duplicate key in batch entry", req: post("/api/v2/spot/trade/batch-orders", `{"symbol":"BTCUSDT","orderList":[{"side":"buy","size":"1","Size":"9"}]}`), isErr: true},
		{name: "batch entry symbol differs from the batch symbol", req: post("/api/v2/spot/trade/batch-orders", `{"symbol":"BTCUSDT","orderList":[{"symbol":"SHIBUSDT","side":"buy","orderType":"limit","price":"1","size":"1"}]}`), isErr: true},
		{name: "batch entry inherits the batch symbol", req: post("/api/v2/spot/trade/batch-orders", `{"symbol":"BTCUSDT","orderList":[{"symbol":"","side":"buy","orderType":"limit","price":"1","size":"1"}]}`),
			want: with(call("POST", "/api/v2/spot/trade/batch-orders", exchange.ScopeTrade), []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1, Notional: 1}}, nil)},
		{name: "array body", req: post("/api/v2/spot/trade/place-order", `[{"symbol":"BTCUSDT"}]`), isErr: true},
		{name: "batch without list", req: post("/api/v2/spot/trade/batch-orders", `{"symbol":"BTCUSDT"}`), isErr: true},
		{name: "withdrawal with unknown transfer type", req: post("/api/v2/spot/wallet/withdrawal", `{"coin":"USDT","transferType":"magic","address":"x","size":"1"}`), isErr: true},
		{name: "exponent size", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"1e3","price":"1"}`), isErr: true},
		{name: "bad side", req: post("/api/v2/spot/trade/place-order", `{"symbol":"BTCUSDT","side":"open_long","orderType":"limit","size":"1","price":"1"}`), isErr: true},
		{name: "bad reduceOnly", req: post("/api/v2/mix/order/place-order", `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"1","price":"1","reduceOnly":"maybe"}`), isErr: true},
		{name: "mixed query and body", req: exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order", RawQuery: "size=100",
			Body: []byte(`{"symbol":"BTCUSDT","side":"buy","orderType":"limit","size":"1","price":"1"}`)}, isErr: true},
		{name: "GET with body", req: exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", Body: []byte("{}")}, isErr: true},
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
	entries := strings.Repeat(`{"side":"buy","orderType":"limit","size":"1","price":"1"},`, maxBatch+1)
	body := `{"symbol":"BTCUSDT","orderList":[` + strings.TrimSuffix(entries, ",") + `]}`
	if _, err := (describer{}).Describe(&exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/batch-orders", Body: []byte(body)}); err == nil {
		t.Errorf("Describe(batch of %d) = nil error, want error", maxBatch+1)
	}
}

// TestDescribeExactDecimals: priced spot orders keep size and price as
// written, for exact checks at a notional cap.
func TestDescribeExactDecimals(t *testing.T) {
	body := `{"symbol":"ETHUSDT","side":"buy","orderType":"limit","force":"gtc","size":"0.10","price":"10000.0000000000001"}`
	got, err := describer{}.Describe(&exchange.Request{Method: "POST", Path: "/api/v2/spot/trade/place-order", Body: []byte(body)})
	if err != nil || len(got.Orders) != 1 {
		t.Fatalf("Describe() = %+v, %v", got, err)
	}
	if o := got.Orders[0]; o.QuantityText != "0.10" || o.PriceText != "10000.0000000000001" {
		t.Errorf("texts = %q × %q, want 0.10 × 10000.0000000000001", o.QuantityText, o.PriceText)
	}
}
