package policy

import "testing"

var benchExprs = []ExprDef{
	{Name: "small_orders", Expr: `call.orders.all(o, o.notional <= 40000.0)`},
	{Name: "bot_only", Expr: `client.startsWith("bot")`},
	{Name: "main_key", Expr: `key == "main"`},
	{Name: "no_test_endpoint", Expr: `!call.endpoint.endsWith("/test")`},
	{Name: "binance", Expr: `call.venue == "binance"`},
	{Name: "batch_size", Expr: `size(call.orders) <= 5`},
	{Name: "daytime", Expr: `hour >= 0 && hour < 24`},
	{Name: "limit_buys", Expr: `call.orders.all(o, o.side != "buy" || o.type == "limit")`},
}

// BenchmarkCheck50Rules checks one order against a policy of about 50
// rules: 20 symbol and 10 deny globs, 5 endpoint globs, the order caps,
// band, hours and source addresses, and 8 CEL expressions.
func BenchmarkCheck50Rules(b *testing.B) { benchCheck(b, benchDefinition(benchExprs)) }

// BenchmarkEngine50Rules adds two windows and the open-order cap: reserve
// and release on every call.
func BenchmarkEngine50Rules(b *testing.B) { benchEngine(b, benchDefinition(benchExprs)) }
