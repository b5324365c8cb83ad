package policy

import (
	"strings"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		def  Definition
		want string
	}{
		{"unknown scope", Definition{Scopes: []string{"read", "admin"}}, `scopes[1]: unknown scope "admin"`},
		{"bad venue", Definition{Venues: []string{"bin ance"}}, `venues[0]: invalid venue name "bin ance"`},
		{"bad endpoint glob", Definition{Endpoints: []string{"POST /api/**"}}, `endpoints[0]: pattern "POST /api/**" contains "**"`},
		{"empty symbol glob", Definition{Symbols: []string{"BTCUSDT", ""}}, "symbols[1]: empty pattern"},
		{"bad deny glob", Definition{DenySymbols: []string{"A\x01"}}, "deny_symbols[0]: pattern"},
		{"symbol with space", Definition{Symbols: []string{"BTC USDT"}}, `symbol pattern "BTC USDT" contains a space`},
		{"bad side", Definition{Sides: []string{"long"}}, `sides[0]: unknown side "long"`},
		{"negative qty", Definition{MaxOrderQty: -1}, "max_order_qty: -1 must be a positive number"},
		{"negative notional", Definition{MaxOrderNotional: -5}, "max_order_notional: -5 must be"},
		{"band too wide", Definition{PriceBandPct: 150}, "price_band_pct: 150 is not a band"},
		{"bad window duration", Definition{Windows: []WindowDef{{Duration: "1 day", MaxOrders: 5}}}, `windows[0].duration: invalid duration "1 day"`},
		{"negative window", Definition{Windows: []WindowDef{{Duration: "-1h", MaxOrders: 5}}}, `windows[0].duration: duration "-1h" must be positive`},
		{"empty window", Definition{Windows: []WindowDef{{Duration: "1h"}}}, "windows[0]: set max_notional or max_orders"},
		{"window negative orders", Definition{Windows: []WindowDef{{Duration: "1h", MaxOrders: -2}}}, "windows[0].max_orders: -2"},
		{"window bad per", Definition{Windows: []WindowDef{{Duration: "1h", MaxOrders: 2, Per: "account"}}}, `windows[0].per: "account"`},
		{"negative open orders", Definition{MaxOpenOrders: -1}, "max_open_orders: -1"},
		{"bad day", Definition{TradingHours: []HoursDef{{Days: []string{"monday"}, From: "09:00", To: "10:00"}}}, `trading_hours[0]: days[0]: unknown day "monday"`},
		{"bad from", Definition{TradingHours: []HoursDef{{From: "9:00", To: "10:00"}}}, `trading_hours[0]: from: "9:00" is not HH:MM`},
		{"to 24:30", Definition{TradingHours: []HoursDef{{From: "09:00", To: "24:30"}}}, `to: "24:30" is not a valid time of day`},
		{"from equals to", Definition{TradingHours: []HoursDef{{From: "09:00", To: "09:00"}}}, "from and to are both 09:00"},
		{"bad tz", Definition{TradingHours: []HoursDef{{From: "09:00", To: "10:00", TZ: "Mars/Olympus"}}}, `tz: unknown time zone "Mars/Olympus"`},
		{"bad ip", Definition{SourceIPs: []string{"10.0.0.300"}}, `source_ips[0]: invalid address "10.0.0.300"`},
		{"bad prefix", Definition{SourceIPs: []string{"10.0.0.0/33"}}, `source_ips[0]: invalid prefix "10.0.0.0/33"`},
		{"bad cooldown", Definition{Withdraw: WithdrawDef{Cooldown: "soon"}}, `withdraw.cooldown: invalid duration "soon"`},
		{"withdraw without addresses", Definition{Scopes: []string{"withdraw"}}, "scopes: withdraw needs at least one withdraw.addresses entry"},
		{"address without asset", Definition{Withdraw: WithdrawDef{Addresses: []AddressDef{{Address: "x"}}}}, `withdraw.addresses[0].asset: invalid asset ""`},
		{"address with spaces", Definition{Withdraw: WithdrawDef{Addresses: []AddressDef{{Asset: "BTC", Address: " bc1q"}}}}, "withdraw.addresses[0].address: invalid address"},
		{"address negative max", Definition{Withdraw: WithdrawDef{Addresses: []AddressDef{{Asset: "BTC", Address: "bc1q", MaxAmount: -1}}}}, "withdraw.addresses[0].max_amount: -1"},
		{"cooldown needs added_at", Definition{Withdraw: WithdrawDef{Cooldown: "24h", Addresses: []AddressDef{{Asset: "BTC", Address: "bc1q"}}}}, "withdraw.addresses[0].added_at: required when withdraw.cooldown is set"},
		{"bad unknown_price", Definition{UnknownPrice: "maybe"}, `unknown_price: "maybe" (want deny or allow)`},
		{"bad expression name", Definition{Expressions: []ExprDef{{Name: "no spaces", Expr: "true"}}}, `expressions[0].name: invalid name "no spaces"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile("bot", tt.def)
			if err == nil {
				t.Fatalf("Compile() = nil error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), `policy "bot": `) {
				t.Errorf("Compile() = %q, want it to start with the policy name and contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	_, err := Compile("bot", Definition{Scopes: []string{"root"}, MaxOrderQty: -1, Sides: []string{"up"}})
	if err == nil {
		t.Fatal("Compile() = nil error, want three errors")
	}
	for _, want := range []string{"scopes[0]", "max_order_qty", "sides[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Compile() = %q, want it to mention %s", err, want)
		}
	}
}

func TestCompileAll(t *testing.T) {
	ps, err := CompileAll(map[string]Definition{"a": {}, "b": {Scopes: []string{"trade"}}})
	if err != nil {
		t.Fatalf("CompileAll() error: %v", err)
	}
	if len(ps) != 2 || ps["a"].Name() != "a" || ps["b"].Name() != "b" {
		t.Errorf("CompileAll() = %v, want policies a and b", ps)
	}
	if _, err := CompileAll(map[string]Definition{"a": {}, "bad": {Scopes: []string{"x"}}}); err == nil || !strings.Contains(err.Error(), `policy "bad"`) {
		t.Errorf("CompileAll(bad) = %v, want an error naming policy bad", err)
	}
}

func TestParseDur(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90m", 90 * time.Minute, true},
		{"24h", 24 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"0d", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"0s", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDur(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDur(%q) = %v, %v, want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFmtDur(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{2 * time.Hour, "2h"},
		{24 * time.Hour, "24h"},
		{7 * 24 * time.Hour, "7d"},
		{2*time.Hour + 13*time.Minute + 9*time.Second, "2h13m"},
		{90 * time.Second, "1m"},
		{45 * time.Second, "45s"},
		{0, "0s"},
	}
	for _, tt := range tests {
		if got := fmtDur(tt.in); got != tt.want {
			t.Errorf("fmtDur(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
