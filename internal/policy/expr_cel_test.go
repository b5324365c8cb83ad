package policy

import (
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestExpressions(t *testing.T) {
	tests := []struct {
		name       string
		expr       string
		in         Input
		wantRule   string
		wantReason string
	}{
		{"endpoint allow", `call.endpoint.startsWith("POST /api/v3/")`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"endpoint deny", `call.endpoint != "POST /api/v3/order"`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "expr:rule", "expression rule is false"},
		{"every order small", `call.orders.all(o, o.notional <= 5000.0)`, trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000), limit("ETHUSDT", exchange.Buy, 1, 4000)), "", ""},
		{"one order too big", `call.orders.all(o, o.notional <= 5000.0)`, trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000), limit("ETHUSDT", exchange.Buy, 2, 4000)), "expr:rule", "is false"},
		{"sells only reduce", `call.orders.all(o, o.side == "buy" || o.reduce_only)`, trade(limit("BTCUSDT", exchange.Sell, 0.1, 100000)), "expr:rule", "is false"},
		{"client and key", `client == "bot1" && key == "main" && scopeOK(call)`, trade(), "", ""},
		{"hour", `hour >= 8 && hour < 20 && weekday == 3`, trade(), "", ""},
		{"hour deny", `hour < 8`, trade(), "expr:rule", "is false"},
		{"ip", `ip.startsWith("10.")`, trade(), "", ""},
		{"now", `now > timestamp("2026-01-01T00:00:00Z")`, trade(), "", ""},
		{"transfer empty for trades", `!has(call.transfer.address)`, trade(), "", ""},
		{"transfer fields", `call.transfer.network == "ERC20" && call.transfer.amount < 1000.0`, withdrawal("USDT", "ERC20", evmAddr, "", 500), "", ""},
		{"missing key denies", `call.transfer.address == "x"`, trade(), "expr:rule", "could not be evaluated"},
		// call and its orders behave as plain maps however they are used.
		{"order key in", `"symbol" in call.orders[0] && !("bogus" in call.orders[0])`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"map sizes", `size(call) == 7 && size(call.orders[0]) == 9`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"index by string", `call["venue"] == "binance" && call.orders[0]["side"] == "buy"`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"iterate keys", `call.exists(k, k == "transfer") && call.orders[0].all(k, k != "bogus")`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"order equals its map", `call.orders[0] == {"action": "new", "symbol": "BTCUSDT", "side": "buy", "type": "limit", "qty": 0.1, "price": 100000.0, "quote_qty": 0.0, "notional": 10000.0, "reduce_only": false}`,
			trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"orders compare", `call.orders[0] == call.orders[0] && call.orders[0] != call.orders[1]`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000), limit("ETHUSDT", exchange.Buy, 1, 4000)), "", ""},
		{"has order field", `has(call.orders[0].symbol) && !has(call.orders[0].bogus)`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"order type is map", `type(call.orders[0]) == map && type(call) == map`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"missing order field denies", `call.orders[0].bogus == 1`, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "expr:rule", "could not be evaluated"},
		{"missing call field denies", `call.bogus == 1`, trade(), "expr:rule", "could not be evaluated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr := strings.ReplaceAll(tt.expr, "scopeOK(call)", `call.scope == "trade"`)
			p := mustCompile(t, Definition{
				Scopes:      []string{"read", "trade", "withdraw"},
				Withdraw:    WithdrawDef{Addresses: []AddressDef{{Asset: "USDT", Network: "ERC20", Address: evmAddr}}},
				Expressions: []ExprDef{{Name: "rule", Expr: expr}},
			})
			d := p.Check(tt.in)
			if tt.wantRule == "" {
				if d != nil {
					t.Fatalf("Check() = %v, want allowed", d)
				}
				return
			}
			if d == nil || d.Rule != tt.wantRule || !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Check() = %v, want {%s: ...%s...}", d, tt.wantRule, tt.wantReason)
			}
		})
	}
}

func TestExpressionCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"syntax", `call.endpoint ==`, []string{"expressions[0] (rule).expr:", "<input>:1:17", "Syntax error"}},
		{"undeclared", `foo == 1`, []string{"<input>:1:1", "undeclared reference to 'foo'"}},
		{"wrong type", `hour == "ten"`, []string{"<input>:1:6", "no matching overload"}},
		{"not bool", `hour + 1`, []string{"must return bool, not int"}},
		{"empty", ``, []string{"empty expression"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile("bot", Definition{Expressions: []ExprDef{{Name: "rule", Expr: tt.expr}}})
			if err == nil {
				t.Fatalf("Compile(%q) = nil error", tt.expr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Compile(%q) = %q, want it to contain %q", tt.expr, err, w)
				}
			}
		})
	}
	_, err := Compile("bot", Definition{Expressions: []ExprDef{{Name: "a", Expr: "true"}, {Name: "a", Expr: "true"}}})
	if err == nil || !strings.Contains(err.Error(), "expressions[1] (a).name: duplicate name") {
		t.Errorf("Compile(duplicate names) = %v, want a duplicate name error", err)
	}
}

func TestExpressionCostLimit(t *testing.T) {
	// Nested comprehensions over a big batch blow through the limit; the
	// call is denied, not evaluated forever.
	p := mustCompile(t, Definition{Scopes: []string{"trade"}, Expressions: []ExprDef{{Name: "heavy",
		Expr: `call.orders.all(a, call.orders.all(b, call.orders.all(c, a.qty + b.qty + c.qty >= 0.0)))`}}})
	orders := make([]exchange.Order, 100)
	for i := range orders {
		orders[i] = limit("BTCUSDT", exchange.Buy, 0.001, 100000)
	}
	d := p.Check(trade(orders...))
	if d == nil || d.Rule != "expr:heavy" || !strings.Contains(d.Reason, "cost limit") {
		t.Errorf("Check() = %v, want a cost-limit denial", d)
	}
	if d := p.Check(trade(orders[:2]...)); d != nil {
		t.Errorf("Check(2 orders) = %v, want allowed under the limit", d)
	}
}

// TestExpressionFastPathBounds checks that an expression cheap enough to
// run untracked on inputs within the size hint still meets the cost limit
// on inputs beyond it.
func TestExpressionFastPathBounds(t *testing.T) {
	p := mustCompile(t, Definition{Scopes: []string{"trade"}, Expressions: []ExprDef{{Name: "all_small",
		Expr: `call.orders.all(o, o.qty >= 0.0 && o.symbol.startsWith("BTC"))`}}})
	if p.exprs[0].prg.(celProgram).fast == nil {
		t.Fatal("single comprehension: no untracked program, want one (its static cost fits the limit)")
	}
	few := make([]exchange.Order, 10)
	many := make([]exchange.Order, 2000)
	for i := range many {
		many[i] = limit("BTCUSDT", exchange.Buy, 0.001, 100000)
	}
	copy(few, many)
	if d := p.Check(trade(few...)); d != nil {
		t.Errorf("Check(10 orders) = %v, want allowed", d)
	}
	if d := p.Check(trade(many...)); d == nil || !strings.Contains(d.Reason, "cost limit") {
		t.Errorf("Check(2000 orders) = %v, want the tracked program's cost-limit denial", d)
	}
}

// TestExpressionConjunction checks that the single evaluation of all of a
// policy's expressions judges every one of them as written: a line comment
// at the end of one expression must not swallow the start of the next.
func TestExpressionConjunction(t *testing.T) {
	tests := []struct {
		name     string
		exprs    []ExprDef
		wantRule string
	}{
		{"all true", []ExprDef{
			{Name: "small", Expr: `call.orders.all(o, o.notional <= 100000.0)`},
			{Name: "day", Expr: `hour >= 8 && hour < 20`},
		}, ""},
		{"second false", []ExprDef{
			{Name: "small", Expr: `call.orders.all(o, o.notional <= 100000.0)`},
			{Name: "night", Expr: `hour < 6 || hour >= 22`},
		}, "expr:night"},
		{"comment ends the first", []ExprDef{
			{Name: "small", Expr: `call.orders.all(o, o.notional <= 100000.0) // keep orders small`},
			{Name: "night", Expr: "hour < 6\n|| hour >= 22"},
		}, "expr:night"},
		{"comment ends the second", []ExprDef{
			{Name: "night", Expr: "hour < 6 // early\n|| hour >= 22 // late"},
			{Name: "small", Expr: `call.orders.all(o, o.notional <= 100000.0)`},
		}, "expr:night"},
		{"comments everywhere, all true", []ExprDef{
			{Name: "small", Expr: "// orders\ncall.orders.all(o, o.notional <= 100000.0) // small"},
			{Name: "day", Expr: "hour >= 8 // from\n&& hour < 20 // to"},
			{Name: "buy", Expr: `call.orders.all(o, o.side == "buy") // buys only`},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, Definition{Scopes: []string{"trade"}, Expressions: tt.exprs})
			if p.allExprs == nil {
				t.Fatal("no conjunction program compiled, want one")
			}
			d := p.Check(trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)))
			got := ""
			if d != nil {
				got = d.Rule
			}
			if got != tt.wantRule {
				t.Errorf("Check() = %v, want rule %q", d, tt.wantRule)
			}
		})
	}
}

// TestExpressionCostLimitWithOthers checks that an expression over its own
// cost limit denies the call even when the policy has other expressions,
// whose conjunction has a larger total limit.
func TestExpressionCostLimitWithOthers(t *testing.T) {
	heavy := ExprDef{Name: "heavy", Expr: `call.orders.all(a, call.orders.all(b, a.qty + b.qty >= 0.0))`}
	light := ExprDef{Name: "light", Expr: `hour >= 0`}
	// 40 orders cost this expression about 1.5 times its limit.
	orders := make([]exchange.Order, 40)
	for i := range orders {
		orders[i] = limit("BTCUSDT", exchange.Buy, 0.001, 100000)
	}
	tests := []struct {
		name  string
		exprs []ExprDef
	}{
		{"alone", []ExprDef{heavy}},
		{"first of two", []ExprDef{heavy, light}},
		{"second of two", []ExprDef{light, heavy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, Definition{Scopes: []string{"trade"}, Expressions: tt.exprs})
			d := p.Check(trade(orders...))
			if d == nil || d.Rule != "expr:heavy" || !strings.Contains(d.Reason, "cost limit") {
				t.Errorf("Check(40 orders) = %v, want expr:heavy denied at its cost limit", d)
			}
			if d := p.Check(trade(orders[:5]...)); d != nil {
				t.Errorf("Check(5 orders) = %v, want allowed", d)
			}
		})
	}
}
