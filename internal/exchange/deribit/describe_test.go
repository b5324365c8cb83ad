package deribit

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestDescribe(t *testing.T) {
	get := func(path, q string) *exchange.Request {
		return &exchange.Request{Method: "GET", Path: path, RawQuery: q, Header: http.Header{}}
	}
	post := func(path, body string) *exchange.Request {
		return &exchange.Request{Method: "POST", Path: path, Body: []byte(body), Header: http.Header{"Content-Type": {"application/json"}}}
	}
	tests := []struct {
		name string
		req  *exchange.Request
		want exchange.Call
	}{
		{"public ticker", get("/api/v2/public/ticker", "instrument_name=BTC-PERPETUAL"),
			exchange.Call{Endpoint: "public/ticker", Scope: exchange.ScopePublic}},
		{"unknown public", get("/api/v2/public/get_something_new", ""),
			exchange.Call{Endpoint: "public/get_something_new", Scope: exchange.ScopePublic}},
		{"token grant is admin", get("/api/v2/public/auth", "grant_type=client_credentials"),
			exchange.Call{Endpoint: "public/auth", Scope: exchange.ScopeAccountAdmin}},
		{"read", get("/api/v2/private/get_account_summary", "currency=BTC"),
			exchange.Call{Endpoint: "private/get_account_summary", Scope: exchange.ScopeRead}},
		{"unknown private", get("/api/v2/private/set_something", ""),
			exchange.Call{Endpoint: "private/set_something", Scope: exchange.ScopeAccountAdmin}},
		{"create key", get("/api/v2/private/create_api_key", "max_scope=wallet:read_write"),
			exchange.Call{Endpoint: "private/create_api_key", Scope: exchange.ScopeAccountAdmin}},
		{"buy inverse", get("/api/v2/private/buy", "instrument_name=BTC-PERPETUAL&amount=100&type=limit&price=50000&label=l1"),
			exchange.Call{Endpoint: "private/buy", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-PERPETUAL", Side: exchange.Buy, Type: "limit",
				Price: 50000, QuoteQuantity: 100, Notional: 100, ClientOrderID: "l1",
			}}}},
		{"sell linear default type", get("/api/v2/private/sell", "instrument_name=ETH_USDC-PERPETUAL&amount=2&price=3000&reduce_only=true"),
			exchange.Call{Endpoint: "private/sell", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH_USDC-PERPETUAL", Side: exchange.Sell, Type: "limit",
				Quantity: 2, Price: 3000, Notional: 6000, ReduceOnly: true,
			}}}},
		{"market option", get("/api/v2/private/buy", "instrument_name=BTC-27DEC24-100000-C&amount=1&type=MARKET"),
			exchange.Call{Endpoint: "private/buy", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-27DEC24-100000-C", Side: exchange.Buy, Type: "market", Quantity: 1, Contracts: true,
			}}}},
		{"json-rpc body on bare endpoint", post("/api/v2", `{"jsonrpc":"2.0","id":7,"method":"private/sell","params":{"instrument_name":"BTC-PERPETUAL","amount":40,"price":60000}}`),
			exchange.Call{Endpoint: "private/sell", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC-PERPETUAL", Side: exchange.Sell, Type: "limit",
				Price: 60000, QuoteQuantity: 40, Notional: 40,
			}}}},
		{"params object on method path", post("/api/v2/private/buy", `{"instrument_name":"BTC_USDC","amount":"0.1","price":"50000"}`),
			exchange.Call{Endpoint: "private/buy", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTC_USDC", Side: exchange.Buy, Type: "limit",
				Quantity: 0.1, Price: 50000, Notional: 5000,
			}}}},
		{"otoco secondary orders", post("/api/v2/private/buy", `{"instrument_name":"BTC_USDC-PERPETUAL","amount":1,"price":100,"otoco_config":[{"direction":"sell","amount":1,"type":"limit","price":120}]}`),
			exchange.Call{Endpoint: "private/buy", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDC-PERPETUAL", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 100, Notional: 100},
				{Action: exchange.ActionNew, Symbol: "BTC_USDC-PERPETUAL", Side: exchange.Sell, Type: "limit", Quantity: 1, Price: 120, Notional: 120},
			}}},
		{"inverse market order is sized in USD", get("/api/v2/private/sell", "instrument_name=ETH-PERPETUAL&amount=50&type=market"),
			exchange.Call{Endpoint: "private/sell", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "ETH-PERPETUAL", Side: exchange.Sell, Type: "market", QuoteQuantity: 50, Notional: 50,
			}}}},
		{"otoco secondary order on an inverse perpetual", post("/api/v2/private/buy", `{"instrument_name":"BTC-PERPETUAL","amount":100,"price":50000,"otoco_config":[{"direction":"sell","amount":100,"type":"limit","price":55000}]}`),
			exchange.Call{Endpoint: "private/buy", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC-PERPETUAL", Side: exchange.Buy, Type: "limit", Price: 50000, QuoteQuantity: 100, Notional: 100},
				{Action: exchange.ActionNew, Symbol: "BTC-PERPETUAL", Side: exchange.Sell, Type: "limit", Price: 55000, QuoteQuantity: 100, Notional: 100},
			}}},
		{"edit is amend", get("/api/v2/private/edit", "order_id=123&amount=500&price=51000"),
			exchange.Call{Endpoint: "private/edit", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{
				Action: exchange.ActionAmend, Quantity: 500, Price: 51000,
			}}}},
		{"cancel", get("/api/v2/private/cancel", "order_id=123"),
			exchange.Call{Endpoint: "private/cancel", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionCancel}}}},
		{"cancel by instrument", get("/api/v2/private/cancel_all_by_instrument", "instrument_name=BTC-PERPETUAL"),
			exchange.Call{Endpoint: "private/cancel_all_by_instrument", Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionCancel, Symbol: "BTC-PERPETUAL"}}}},
		{"mass quote batch", post("/api/v2/private/mass_quote", `{"quote_id":"q1","quotes":[{"instrument_name":"BTC_USDC","bid":{"amount":1,"price":99},"ask":{"amount":2,"price":101}}]}`),
			exchange.Call{Endpoint: "private/mass_quote", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDC", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 99, Notional: 99, ClientOrderID: "q1"},
				{Action: exchange.ActionNew, Symbol: "BTC_USDC", Side: exchange.Sell, Type: "limit", Quantity: 2, Price: 101, Notional: 202, ClientOrderID: "q1"},
			}}},
		{"mass quote in query", get("/api/v2/private/mass_quote", "quotes=%5B%7B%22instrument_name%22%3A%22BTC_USDC%22%2C%22ask%22%3A%7B%22amount%22%3A3%2C%22price%22%3A10%7D%7D%5D"),
			exchange.Call{Endpoint: "private/mass_quote", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDC", Side: exchange.Sell, Type: "limit", Quantity: 3, Price: 10, Notional: 30},
			}}},
		{"block trade taker flips side", post("/api/v2/private/execute_block_trade", `{"role":"taker","trades":[{"instrument_name":"BTC_USDC","direction":"buy","amount":1,"price":10}]}`),
			exchange.Call{Endpoint: "private/execute_block_trade", Scope: exchange.ScopeTrade, Orders: []exchange.Order{
				{Action: exchange.ActionNew, Symbol: "BTC_USDC", Side: exchange.Sell, Type: "limit", Quantity: 1, Price: 10, Notional: 10},
			}}},
		{"withdraw", get("/api/v2/private/withdraw", "currency=BTC&address=bc1qxyz&amount=0.5&priority=high"),
			exchange.Call{Endpoint: "private/withdraw", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "BTC", Amount: 0.5, Address: "bc1qxyz"}}},
		{"withdraw via json-rpc", post("/api/v2/", `{"jsonrpc":"2.0","method":"private/withdraw","params":{"currency":"ETH","address":"0xabc","amount":2}}`),
			exchange.Call{Endpoint: "private/withdraw", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "ETH", Amount: 2, Address: "0xabc"}}},
		{"transfer to user is a withdrawal", get("/api/v2/private/submit_transfer_to_user", "currency=BTC&amount=1&destination=0xother"),
			exchange.Call{Endpoint: "private/submit_transfer_to_user", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Address: "0xother", Destination: "0xother"}}},
		{"transfer to subaccount", get("/api/v2/private/submit_transfer_to_subaccount", "currency=BTC&amount=1&destination=42"),
			exchange.Call{Endpoint: "private/submit_transfer_to_subaccount", Scope: exchange.ScopeTransfer, Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Destination: "42"}}},
		{"address book", get("/api/v2/private/add_to_address_book", "currency=BTC&type=withdrawal&address=bc1qnew&label=x"),
			exchange.Call{Endpoint: "private/add_to_address_book", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "BTC", Address: "bc1qnew", Destination: "withdrawal"}}},
		{"case trick", get("/api/v2/private/WITHDRAW", "currency=BTC&address=a&amount=1"),
			exchange.Call{Endpoint: "private/withdraw", Scope: exchange.ScopeWithdraw, Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Address: "a"}}},
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
		name, path, query, body string
	}{
		{"dot segment", "/api/v2/private/../private/withdraw", "", ""},
		{"double slash", "/api/v2//private/withdraw", "", ""},
		{"encoded slash", "/api/v2/private%2Fwithdraw", "", ""},
		{"trailing slash", "/api/v2/private/buy/", "", ""},
		{"extra segment", "/api/v2/private/buy/withdraw", "", ""},
		{"other prefix", "/api/v1/private/buy", "", ""},
		{"no method", "/api/v2", "", ""},
		{"bad namespace", "/api/v2/internal/buy", "", ""},
		{"duplicate query", "/api/v2/private/buy", "amount=1&amount=1000", ""},
		{"non-utf8 query", "/api/v2/private/buy", "label=%ff", ""},
		{"duplicate json key", "/api/v2/private/buy", "", `{"amount":1,"amount":1000}`},
		{"nested duplicate", "/api/v2", "", `{"method":"private/buy","params":{"amount":1,"amount":2}}`},
		{"invalid json", "/api/v2/private/buy", "", `{"amount":`},
		{"trailing json", "/api/v2/private/buy", "", `{"amount":1}{"amount":2}`},
		{"batch", "/api/v2", "", `[{"method":"private/buy"}]`},
		{"path and body disagree", "/api/v2/private/buy", "", `{"jsonrpc":"2.0","method":"private/withdraw","params":{}}`},
		{"query and body params", "/api/v2/private/buy", "amount=1", `{"amount":2}`},
		{"envelope extra member", "/api/v2", "", `{"method":"private/buy","params":{},"amount":5}`},
		{"params not object", "/api/v2", "", `{"method":"private/buy","params":[1]}`},
		{"method not string", "/api/v2", "", `{"method":1}`},
		{"non-utf8 body", "/api/v2/private/buy", "", "{\"label\":\"\xff\"}"},
		{"malformed otoco", "/api/v2/private/buy", "", `{"otoco_config":[1]}`},
		{"malformed quotes", "/api/v2/private/mass_quote", "quotes=notjson", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: "POST", Path: tt.path, RawQuery: tt.query, Body: []byte(tt.body), Header: http.Header{}}
			got, err := Describer{}.Describe(r)
			if err == nil {
				t.Fatalf("Describe(%s) = %+v, want error", tt.name, got)
			}
			if k := exchange.AsError(err).Kind; k != exchange.ErrBadRequest && k != exchange.ErrNotFound {
				t.Errorf("Describe(%s) kind = %d, want ErrBadRequest or ErrNotFound", tt.name, k)
			}
		})
	}
}

// TestDescribeIgnoresAuth checks Describe gives the same Call before and
// after Verify.
func TestDescribeIgnoresAuth(t *testing.T) {
	r := &exchange.Request{Method: "GET", Path: "/api/v2/private/buy", RawQuery: "instrument_name=BTC-PERPETUAL&amount=10&price=1", Header: http.Header{}}
	key := cred("id", "secret")
	if err := (Signer{}).Sign(r, key, now0); err != nil {
		t.Fatal(err)
	}
	before, err := Describer{}.Describe(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := NewVerifier().Verify(r, key, now0)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Describer{}.Describe(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("Describe changed after Verify (-before +after):\n%s", diff)
	}
}
