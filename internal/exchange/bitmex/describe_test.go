package bitmex

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestDescribe(t *testing.T) {
	req := func(method, path, query, ct, body string) *exchange.Request {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Body: []byte(body), Header: http.Header{}}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		return r
	}
	const js, form = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name string
		req  *exchange.Request
		want exchange.Call
	}{
		{"public instrument", req("GET", "/api/v1/instrument", "symbol=XBTUSD", "", ""),
			exchange.Call{Endpoint: "GET /api/v1/instrument", Scope: exchange.ScopePublic}},
		{"read wallet", req("GET", "/api/v1/user/wallet", "currency=XBt", "", ""),
			exchange.Call{Endpoint: "GET /api/v1/user/wallet", Scope: exchange.ScopeRead}},
		{"case-insensitive path", req("GET", "/api/v1/User/Wallet", "", "", ""),
			exchange.Call{Endpoint: "GET /api/v1/user/wallet", Scope: exchange.ScopeRead}},
		{"unknown is admin", req("POST", "/api/v1/user/preferences", "", js, `{"prefs":{}}`),
			exchange.Call{Endpoint: "POST /api/v1/user/preferences", Scope: exchange.ScopeAccountAdmin}},
		{"unknown method on known path", req("PATCH", "/api/v1/order", "", "", ""),
			exchange.Call{Endpoint: "PATCH /api/v1/order", Scope: exchange.ScopeAccountAdmin}},
		{"new order json (X3)", req("POST", "/api/v1/order", "", js, vecBody),
			exchange.Call{Endpoint: "POST /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTM15", Side: exchange.Buy, Type: "limit", Price: 219,
				Notional: 98, QuoteQuantity: 98, ClientOrderID: "mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA",
			}}}},
		{"negative qty sells", req("POST", "/api/v1/order", "", form, "symbol=XBTUSD&orderQty=-500&ordType=Market"),
			exchange.Call{Endpoint: "POST /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Sell, Type: "market", Notional: 500, QuoteQuantity: 500,
			}}}},
		{"linear reduce-only", req("POST", "/api/v1/order", "", js, `{"symbol":"XBTUSDT","side":"Sell","orderQty":1000,"price":60000,"execInst":"ReduceOnly"}`),
			exchange.Call{Endpoint: "POST /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTUSDT", Side: exchange.Sell, Type: "limit", Quantity: 1000, Contracts: true, Price: 60000, ReduceOnly: true,
			}}}},
		{"mixed query and body", req("POST", "/api/v1/order", "symbol=XBTUSD", js, `{"side":"Buy","orderQty":10,"price":1}`),
			exchange.Call{Endpoint: "POST /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Price: 1, Notional: 10, QuoteQuantity: 10,
			}}}},
		{"amend", req("PUT", "/api/v1/order", "", js, `{"origClOrdID":"c1","orderQty":200,"price":100}`),
			exchange.Call{Endpoint: "PUT /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionAmend, Quantity: 200, Contracts: true, Price: 100, ClientOrderID: "c1",
			}}}},
		{"cancel several", req("DELETE", "/api/v1/order", "", js, `{"orderID":["a","b"],"clOrdID":"c"}`),
			exchange.Call{Endpoint: "DELETE /api/v1/order", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionCancel}, {Action: exchange.ActionCancel}, {Action: exchange.ActionCancel, ClientOrderID: "c"},
			}}},
		{"cancel all", req("DELETE", "/api/v1/order/all", "symbol=XBTUSD", "", ""),
			exchange.Call{Endpoint: "DELETE /api/v1/order/all", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "XBTUSD"}}}},
		{"bulk orders in form", req("POST", "/api/v1/order/bulk", "", form, "orders=%5B%7B%22symbol%22%3A%22XBTUSD%22%2C%22orderQty%22%3A1%2C%22price%22%3A2%7D%2C%7B%22symbol%22%3A%22ETHUSD%22%2C%22side%22%3A%22Sell%22%2C%22orderQty%22%3A3%7D%5D"),
			exchange.Call{Endpoint: "POST /api/v1/order/bulk", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Price: 2, Notional: 1, QuoteQuantity: 1},
				{Action: exchange.ActionNew, Symbol: "ETHUSD", Side: exchange.Sell, Type: "market", Quantity: 3, Contracts: true},
			}}},
		{"bulk amend", req("PUT", "/api/v1/order/bulk", "", js, `{"orders":[{"orderID":"x","leavesQty":5}]}`),
			exchange.Call{Endpoint: "PUT /api/v1/order/bulk", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionAmend, Quantity: 5, Contracts: true}}}},
		{"close position", req("POST", "/api/v1/order/closePosition", "", js, `{"symbol":"XBTUSD"}`),
			exchange.Call{Endpoint: "POST /api/v1/order/closePosition", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "XBTUSD", Type: "market", ReduceOnly: true}}}},
		{"withdraw", req("POST", "/api/v1/user/requestWithdrawal", "", js, `{"currency":"XBt","network":"btc","amount":100000,"address":"bc1qx","memo":"m"}`),
			exchange.Call{Endpoint: "POST /api/v1/user/requestWithdrawal", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{
				Asset: "XBt", Amount: 100000, Address: "bc1qx", Network: "btc", Memo: "m"}}},
		{"withdraw to another user", req("POST", "/api/v1/user/requestwithdrawal", "", form, "currency=USDt&network=&amount=5&targetUserId=77"),
			exchange.Call{Endpoint: "POST /api/v1/user/requestWithdrawal", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{
				Asset: "USDt", Amount: 5, Destination: "user:77"}}},
		{"wallet transfer", req("POST", "/api/v1/user/walletTransfer", "", js, `{"currency":"XBt","amount":5,"targetAccountId":12}`),
			exchange.Call{Endpoint: "POST /api/v1/user/walletTransfer", Scope: exchange.ScopeTransfer, Transfer: &exchange.Transfer{Asset: "XBt", Amount: 5, Destination: "12"}}},
		{"address book", req("POST", "/api/v1/address", "", js, `{"currency":"XBt","network":"btc","address":"bc1qnew","name":"x"}`),
			exchange.Call{Endpoint: "POST /api/v1/address", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "XBt", Address: "bc1qnew", Network: "btc"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Describer{}.Describe(tt.req)
			if err != nil {
				t.Fatalf("Describe(%s) = %v", tt.name, err)
			}
			tt.want.Venue, tt.want.Method, tt.want.Path = Name, tt.req.Method, tt.req.Path
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Describe(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestDescribeRejects(t *testing.T) {
	tests := []struct {
		name, path, query, ct, body string
	}{
		{"dot segment", "/api/v1/order/../user/requestWithdrawal", "", "", ""},
		{"double slash", "/api/v1//user/requestWithdrawal", "", "", ""},
		{"encoded slash", "/api/v1/user%2FrequestWithdrawal", "", "", ""},
		{"encoded letter", "/api/v1/user/requestWithdrawa%6C", "", "", ""},
		{"trailing slash", "/api/v1/order/", "", "", ""},
		{"other prefix", "/api/v2/order", "", "", ""},
		{"duplicate query", "/api/v1/order", "orderQty=1&orderQty=100", "", ""},
		{"duplicate form", "/api/v1/order", "", "application/x-www-form-urlencoded", "orderQty=1&orderQty=100"},
		{"duplicate json", "/api/v1/order", "", "application/json", `{"orderQty":1,"orderQty":100}`},
		{"query and body", "/api/v1/order", "orderQty=1", "application/json", `{"orderQty":100}`},
		{"non-utf8 query", "/api/v1/order", "text=%ff", "", ""},
		{"non-utf8 json", "/api/v1/order", "", "application/json", "{\"text\":\"\xff\"}"},
		{"invalid json", "/api/v1/order", "", "application/json", `{"orderQty":`},
		{"json array body", "/api/v1/order", "", "application/json", `[{"orderQty":1}]`},
		{"other content type", "/api/v1/order", "", "text/plain", `orderQty=1`},
		{"malformed bulk", "/api/v1/order/bulk", "", "application/json", `{"orders":[1]}`},
		{"bulk json string broken", "/api/v1/order/bulk", "", "application/x-www-form-urlencoded", "orders=%5B%7B"},
		{"malformed cancel id", "/api/v1/order", "", "application/json", `{"orderID":[{"a":1}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.name == "malformed cancel id" {
				method = "DELETE"
			}
			r := &exchange.Request{Method: method, Path: tt.path, RawQuery: tt.query, Body: []byte(tt.body), Header: http.Header{}}
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			got, err := Describer{}.Describe(r)
			if err == nil {
				t.Fatalf("Describe(%s) = %+v, want error", tt.name, got)
			}
			if k := exchange.AsError(err).Kind; k != exchange.ErrBadRequest && k != exchange.ErrNotFound {
				t.Errorf("Describe(%s) kind = %d", tt.name, k)
			}
		})
	}
}

func TestDescribeIgnoresAuth(t *testing.T) {
	for _, v := range vectors[:3] {
		before, err := Describer{}.Describe(v.signed())
		if err != nil {
			t.Fatal(err)
		}
		out, err := NewVerifier().Verify(v.signed(), cred(vecKey, vecSecret), timeOf(v.expires-1))
		if err != nil {
			t.Fatal(err)
		}
		after, err := Describer{}.Describe(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("Describe(%s) changed after Verify:\n%s", v.name, diff)
		}
	}
}
