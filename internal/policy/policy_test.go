package policy

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

// t0 is a Wednesday, 12:00 UTC.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// prices is a PriceSource keyed by "venue:symbol".
type prices map[string]float64

func (p prices) LastPrice(venue, symbol string) (float64, bool) {
	v, ok := p[venue+":"+symbol]
	return v, ok
}

var btc = prices{"binance:BTCUSDT": 100000, "binance:ETHUSDT": 4000}

func mustCompile(t testing.TB, d Definition) *Policy {
	t.Helper()
	p, err := Compile("test", d)
	if err != nil {
		t.Fatalf("Compile() error: %v", err)
	}
	return p
}

func limit(sym string, side exchange.Side, qty, price float64) exchange.Order {
	return exchange.Order{Action: exchange.ActionNew, Symbol: sym, Side: side, Type: "limit", Quantity: qty, Price: price}
}

// exactLimit is a buy limit order whose request gave its quantity and price
// as the decimal texts q and p.
func exactLimit(sym, q, p string) exchange.Order {
	o := limit(sym, exchange.Buy, exchange.ParseFloat(q), exchange.ParseFloat(p))
	o.QuantityText, o.PriceText = q, p
	return o
}

func market(sym string, side exchange.Side, qty float64) exchange.Order {
	return exchange.Order{Action: exchange.ActionNew, Symbol: sym, Side: side, Type: "market", Quantity: qty}
}

func cancel(sym string) exchange.Order {
	return exchange.Order{Action: exchange.ActionCancel, Symbol: sym}
}

func trade(orders ...exchange.Order) Input {
	return Input{
		Call: exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order",
			Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade, Orders: orders},
		Client: "bot1", Key: "main", Now: t0, Prices: btc,
		SourceIP: netip.MustParseAddr("10.1.2.3"),
	}
}

func withCall(in Input, f func(*Input)) Input { f(&in); return in }

func withdrawal(asset, network, addr, memo string, amount float64) Input {
	return Input{
		Call: exchange.Call{Venue: "binance", Method: "POST", Path: "/sapi/v1/capital/withdraw/apply",
			Endpoint: "POST /sapi/v1/capital/withdraw/apply", Scope: exchange.ScopeWithdraw,
			Transfer: &exchange.Transfer{Asset: asset, Network: network, Address: addr, Memo: memo, Amount: amount}},
		Client: "bot1", Key: "main", Now: t0,
	}
}

func read() Input {
	return Input{
		Call:   exchange.Call{Venue: "binance", Method: "GET", Path: "/api/v3/account", Endpoint: "GET /api/v3/account", Scope: exchange.ScopeRead},
		Client: "bot1", Key: "main", Now: t0,
	}
}

const evmAddr = "0x52908400098527886E0F7030069857D2E4169EE7"

func TestCheck(t *testing.T) {
	tradeDef := Definition{Scopes: []string{"read", "trade"}}
	withTrade := func(f func(*Definition)) Definition {
		d := tradeDef
		f(&d)
		return d
	}
	withdrawDef := Definition{
		Scopes: []string{"withdraw"},
		Withdraw: WithdrawDef{
			Cooldown: "24h",
			Addresses: []AddressDef{
				{Asset: "USDT", Network: "ERC20", Address: evmAddr, MaxAmount: 1000, AddedAt: t0.Add(-48 * time.Hour)},
				{Asset: "XRP", Network: "XRP", Address: "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", Memo: "12345", AddedAt: t0.Add(-48 * time.Hour)},
				{Asset: "BTC", Network: "BTC", Address: "bc1qnew", AddedAt: t0.Add(-2 * time.Hour)},
			},
		},
	}
	tests := []struct {
		name       string
		def        Definition
		in         Input
		wantRule   string // "" means allowed
		wantReason string
	}{
		{"default allows read", Definition{}, read(), "", ""},
		{"default allows public", Definition{}, withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopePublic }), "", ""},
		{"default denies trade", Definition{}, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "scope", "scope trade is not allowed (scopes: read)"},
		{"trade allowed", tradeDef, trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"trade does not imply transfer", tradeDef, withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopeTransfer }), "scope", "scope transfer is not allowed"},
		{"transfer listed", Definition{Scopes: []string{"transfer"}}, withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopeTransfer }), "", ""},
		{"trade does not imply withdraw", tradeDef, withdrawal("USDT", "ERC20", evmAddr, "", 10), "scope", "scope withdraw is not allowed"},
		{"account-admin needs listing", Definition{Scopes: []string{"read", "trade", "transfer"}}, withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopeAccountAdmin }), "scope", "scope account-admin is not allowed"},
		{"account-admin listed", Definition{Scopes: []string{"account-admin"}}, withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopeAccountAdmin }), "", ""},
		{"unknown scope in call", tradeDef, withCall(read(), func(in *Input) { in.Call.Scope = "sudo" }), "scope", "scope sudo is not allowed"},

		{"no clock", Definition{}, withCall(read(), func(in *Input) { in.Now = time.Time{} }), "clock", "no time given"},
		{"credential valid", Definition{}, withCall(read(), func(in *Input) { in.CredentialExpires = t0.Add(time.Second) }), "", ""},
		{"credential expired", Definition{}, withCall(read(), func(in *Input) { in.CredentialExpires = t0.Add(-2 * time.Hour) }), "expired", "credential expired 2h ago (at 2026-11-25T10:00:00Z)"},
		{"credential expires now", Definition{}, withCall(read(), func(in *Input) { in.CredentialExpires = t0 }), "expired", "credential expired 0s ago"},

		{"venue allowed", Definition{Venues: []string{"Binance"}}, read(), "", ""},
		{"venue denied", Definition{Venues: []string{"okx"}}, read(), "venue", `venue "binance" is not allowed (venues: okx)`},
		{"input venue wins", Definition{Venues: []string{"okx"}}, withCall(read(), func(in *Input) { in.Venue = "okx" }), "", ""},

		{"source ip allowed", Definition{Scopes: []string{"trade"}, SourceIPs: []string{"10.0.0.0/8"}}, trade(), "", ""},
		{"source ip mapped", Definition{Scopes: []string{"trade"}, SourceIPs: []string{"10.1.2.3"}}, withCall(trade(), func(in *Input) { in.SourceIP = netip.MustParseAddr("::ffff:10.1.2.3") }), "", ""},
		{"source ip denied", Definition{SourceIPs: []string{"192.0.2.0/24"}}, trade(), "source_ip", "source address 10.1.2.3 is not in source_ips"},
		{"source ip missing", Definition{SourceIPs: []string{"192.0.2.0/24"}}, withCall(trade(), func(in *Input) { in.SourceIP = netip.Addr{} }), "source_ip", "is not in source_ips"},

		{"endpoint allowed", withTrade(func(d *Definition) { d.Endpoints = []string{"POST /api/v3/*"} }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"endpoint denied", withTrade(func(d *Definition) { d.Endpoints = []string{"POST /api/v3/*"} }), read(), "endpoint", `endpoint "GET /api/v3/account" is not in endpoints`},
		{"endpoint ignores public", withTrade(func(d *Definition) { d.Endpoints = []string{"POST /api/v3/*"} }), withCall(read(), func(in *Input) { in.Call.Scope = exchange.ScopePublic }), "", ""},

		{"symbol allowed", withTrade(func(d *Definition) { d.Symbols = []string{"btc*"} }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"symbol not listed", withTrade(func(d *Definition) { d.Symbols = []string{"BTC*"} }), trade(limit("VIABTC", exchange.Buy, 1, 0.0001)), "symbol", "symbol VIABTC is not in symbols"},
		{"symbol denied", withTrade(func(d *Definition) { d.DenySymbols = []string{"*BTC"} }), trade(limit("VIABTC", exchange.Buy, 1, 0.0001)), "symbol", `symbol VIABTC is denied by deny_symbols "*BTC"`},
		{"deny wins over allow", withTrade(func(d *Definition) { d.Symbols = []string{"*"}; d.DenySymbols = []string{"VIA*"} }), trade(limit("VIABTC", exchange.Buy, 1, 0.0001)), "symbol", "denied by deny_symbols"},
		{"homoglyph symbol", withTrade(func(d *Definition) { d.Symbols = []string{"KAVAUSDT"} }), trade(limit("\u212aAVAUSDT", exchange.Buy, 1, 1)), "symbol", "is not in symbols"},
		{"batch: one bad symbol denies", withTrade(func(d *Definition) { d.Symbols = []string{"BTCUSDT", "ETHUSDT"} }),
			trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000), limit("ETHUSDT", exchange.Buy, 1, 4000), limit("VIAUSDT", exchange.Buy, 1, 1)), "symbol", "symbol VIAUSDT"},
		{"cancel without symbol passes", withTrade(func(d *Definition) { d.Symbols = []string{"BTCUSDT"} }), trade(cancel("")), "", ""},
		{"cancel of unlisted symbol", withTrade(func(d *Definition) { d.Symbols = []string{"BTCUSDT"} }), trade(cancel("VIAUSDT")), "symbol", "symbol VIAUSDT is not in symbols"},

		{"order type allowed", withTrade(func(d *Definition) { d.OrderTypes = []string{"LIMIT"} }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"order type denied", withTrade(func(d *Definition) { d.OrderTypes = []string{"limit"} }), trade(market("BTCUSDT", exchange.Buy, 0.1)), "order_type", "order type market is not allowed (order_types: limit)"},
		{"order type unknown", withTrade(func(d *Definition) { d.OrderTypes = []string{"limit"} }), trade(exchange.Order{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Quantity: 1}), "order_type", "order type of the order on BTCUSDT is unknown"},
		{"order type ignores cancel", withTrade(func(d *Definition) { d.OrderTypes = []string{"limit"} }), trade(cancel("BTCUSDT")), "", ""},
		{"side allowed", withTrade(func(d *Definition) { d.Sides = []string{"sell"} }), trade(limit("BTCUSDT", exchange.Sell, 0.1, 100000)), "", ""},
		{"side denied", withTrade(func(d *Definition) { d.Sides = []string{"sell"} }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "side", "side buy is not allowed (sides: sell)"},

		{"qty at cap", withTrade(func(d *Definition) { d.MaxOrderQty = 0.3 }), trade(limit("BTCUSDT", exchange.Buy, 0.3, 100000)), "", ""},
		{"qty over cap", withTrade(func(d *Definition) { d.MaxOrderQty = 0.3 }), trade(limit("BTCUSDT", exchange.Buy, 0.31, 100000)), "max_order_qty", "order quantity 0.31 BTCUSDT exceeds max_order_qty 0.3"},
		{"amend checked like new", withTrade(func(d *Definition) { d.MaxOrderQty = 1 }), trade(exchange.Order{Action: exchange.ActionAmend, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 5, Price: 100000}), "max_order_qty", "order quantity 5"},

		{"notional exactly at cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"notional over cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000; d.NotionalCurrency = "USDT" }), trade(limit("BTCUSDT", exchange.Buy, 0.12, 100000)), "max_order_notional", "order notional 12000 USDT exceeds max_order_notional 10000"},
		{"market notional from reference", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(market("BTCUSDT", exchange.Buy, 0.2)), "max_order_notional", "order notional 20000 exceeds"},
		{"market by quote needs no reference", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }),
			withCall(trade(exchange.Order{Action: exchange.ActionNew, Symbol: "NEWUSDT", Side: exchange.Buy, Type: "market", QuoteQuantity: 5000}), func(in *Input) { in.Prices = nil }), "", ""},
		{"low sell uses reference", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(limit("BTCUSDT", exchange.Sell, 0.2, 1)), "max_order_notional", "order notional 20000"},
		{"market no reference", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(market("VIAUSDT", exchange.Buy, 10)), "reference_price", "no reference price for VIAUSDT"},
		{"market no reference allowed", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000; d.UnknownPrice = "allow" }), trade(market("VIAUSDT", exchange.Buy, 10)), "", ""},
		{"limit without reference uses its price", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(limit("VIAUSDT", exchange.Buy, 10, 1)), "", ""},
		{"order without size", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }), trade(exchange.Order{Action: exchange.ActionAmend, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Price: 100000}), "max_order_notional", "has no known size or price"},
		{"exact decimals over the cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 1000 }),
			trade(exactLimit("ETHUSDT", "0.1", "10000.0000000000001")), "max_order_notional", "order notional 1000.00000000000001 exceeds max_order_notional 1000"},
		{"exact decimals at the cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 1000 }),
			trade(exactLimit("ETHUSDT", "0.1", "10000")), "", ""},
		{"exact decimals under a fractional cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 0.3 }),
			trade(exactLimit("VIAUSDT", "0.1", "3")), "", ""},
		{"exact decimals just over a fractional cap", withTrade(func(d *Definition) { d.MaxOrderNotional = 0.3 }),
			trade(exactLimit("VIAUSDT", "0.1", "3.000000000000000001")), "max_order_notional", "order notional 0.3000000000000000001 exceeds"},
		{"contracts of unknown value deny", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }),
			trade(exchange.Order{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1, Contracts: true}), "max_order_notional", "sized in contracts of unknown value"},
		{"contracts of unknown value allowed", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000; d.UnknownPrice = "allow" }),
			trade(exchange.Order{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1, Contracts: true}), "", ""},
		{"contracts valued by their stated notional", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }),
			trade(exchange.Order{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 1, Notional: 20000, Contracts: true}), "max_order_notional", "order notional 20000 exceeds"},
		{"batch: one big order denies", withTrade(func(d *Definition) { d.MaxOrderNotional = 10000 }),
			trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000), limit("ETHUSDT", exchange.Buy, 3, 4000)), "max_order_notional", "order notional 12000"},

		{"price in band", withTrade(func(d *Definition) { d.PriceBandPct = 5 }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 104999)), "", ""},
		{"pump above band", withTrade(func(d *Definition) { d.PriceBandPct = 5 }), trade(limit("BTCUSDT", exchange.Buy, 0.1, 150000)), "price_band", "limit price 150000 on BTCUSDT is 50% above reference price 100000 (price_band_pct 5)"},
		{"dump below band", withTrade(func(d *Definition) { d.PriceBandPct = 5 }), trade(limit("BTCUSDT", exchange.Sell, 0.1, 90000)), "price_band", "is 10% below reference price"},
		{"band without reference", withTrade(func(d *Definition) { d.PriceBandPct = 5 }), trade(limit("VIABTC", exchange.Buy, 1, 1)), "reference_price", "no reference price for VIABTC"},
		{"band without reference allowed", withTrade(func(d *Definition) { d.PriceBandPct = 5; d.UnknownPrice = "allow" }), trade(limit("VIABTC", exchange.Buy, 1, 1)), "", ""},
		{"band ignores market orders", withTrade(func(d *Definition) { d.PriceBandPct = 5 }), trade(market("BTCUSDT", exchange.Buy, 1)), "", ""},

		{"inside trading hours", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "09:00", To: "17:30", TZ: "Europe/Berlin"}}
		}), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"outside trading hours", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"mon"}, From: "09:00", To: "17:30"}}
		}), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "trading_hours", "Wed 2026-11-25 12:00 UTC is outside trading_hours"},
		{"overnight span from the day before", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"tue"}, From: "22:00", To: "13:00"}}
		}), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "", ""},
		{"overnight span ends", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"tue"}, From: "22:00", To: "11:59"}}
		}), trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)), "trading_hours", "outside trading_hours"},
		{"reads at any hour", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"mon"}, From: "09:00", To: "10:00"}}
		}), read(), "", ""},
		{"cancels at any hour", withTrade(func(d *Definition) {
			d.TradingHours = []HoursDef{{Days: []string{"mon"}, From: "09:00", To: "10:00"}}
		}), trade(cancel("BTCUSDT")), "", ""},

		{"withdraw listed", withdrawDef, withdrawal("USDT", "ERC20", evmAddr, "", 500), "", ""},
		{"withdraw evm any case", withdrawDef, withdrawal("usdt", "erc20", strings.ToLower(evmAddr), "", 500), "", ""},
		{"withdraw unlisted", withdrawDef, withdrawal("USDT", "ERC20", "0x0000000000000000000000000000000000000bad", "", 5), "withdraw_address", "is not in the withdraw allowlist"},
		{"withdraw wrong network", withdrawDef, withdrawal("USDT", "BSC", evmAddr, "", 5), "withdraw_address", "is not in the withdraw allowlist"},
		{"withdraw wrong asset", withdrawDef, withdrawal("ETH", "ERC20", evmAddr, "", 5), "withdraw_address", "is not in the withdraw allowlist"},
		{"withdraw memo matches", withdrawDef, withdrawal("XRP", "XRP", "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "12345", 5), "", ""},
		{"withdraw memo variant", withdrawDef, withdrawal("XRP", "XRP", "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "123456", 5), "withdraw_address", "with memo 123456 is not in the withdraw allowlist"},
		{"withdraw memo missing", withdrawDef, withdrawal("XRP", "XRP", "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "", 5), "withdraw_address", "is not in the withdraw allowlist"},
		{"withdraw non-evm case variant", withdrawDef, withdrawal("XRP", "XRP", "reb8tk3gbgk5auzkwc6shnwrgvjh8dualh", "12345", 5), "withdraw_address", "is not in the withdraw allowlist"},
		{"withdraw over max amount", withdrawDef, withdrawal("USDT", "ERC20", evmAddr, "", 5000), "withdraw_address", "withdrawal amount 5000 USDT exceeds max_amount 1000 for this address"},
		{"withdraw in cool-down", withdrawDef, withdrawal("BTC", "BTC", "bc1qnew", "", 0.1), "withdraw_address", "address added 2h ago; cool-down 24h"},
		{"withdraw after cool-down", withdrawDef, withCall(withdrawal("BTC", "BTC", "bc1qnew", "", 0.1), func(in *Input) { in.Now = t0.Add(22 * time.Hour) }), "", ""},
		{"withdraw without destination", withdrawDef, withCall(withdrawal("BTC", "BTC", "bc1qnew", "", 0.1), func(in *Input) { in.Call.Transfer = nil }), "withdraw_address", "withdrawal destination is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.def)
			d := p.Check(tt.in)
			if tt.wantRule == "" {
				if d != nil {
					t.Fatalf("Check() = %v, want allowed", d)
				}
				return
			}
			if d == nil {
				t.Fatalf("Check() = allowed, want denial by %s", tt.wantRule)
			}
			if d.Rule != tt.wantRule || !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Check() = {%s: %s}, want {%s: ...%s...}", d.Rule, d.Reason, tt.wantRule, tt.wantReason)
			}
			if d.Policy != "test" {
				t.Errorf("Check().Policy = %q, want %q", d.Policy, "test")
			}
		})
	}
}

func TestDenialError(t *testing.T) {
	d := &Denial{Policy: "bot", Rule: "max_order_notional", Reason: "order notional 12000 USDT exceeds max_order_notional 10000"}
	want := `policy "bot" denies the call: order notional 12000 USDT exceeds max_order_notional 10000`
	if got := d.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestExplain(t *testing.T) {
	p := mustCompile(t, Definition{
		Scopes:           []string{"trade"},
		Symbols:          []string{"BTCUSDT"},
		MaxOrderNotional: 10000,
		Windows:          []WindowDef{{Duration: "24h", MaxOrders: 10}},
	})
	got := p.Explain(trade(limit("BTCUSDT", exchange.Buy, 0.2, 100000)))
	want := []RuleResult{
		{Rule: "clock", Result: Allow},
		{Rule: "expired", Result: NotApplicable},
		{Rule: "scope", Result: Allow},
		{Rule: "symbol", Result: Allow},
		{Rule: "reference_price", Result: NotApplicable},
		{Rule: "max_order_notional", Result: Deny, Reason: "order notional 20000 exceeds max_order_notional 10000"},
		{Rule: "window_orders", Result: NotApplicable, Reason: statefulReason},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Explain() mismatch (-want +got):\n%s", diff)
	}
}

// TestNonFiniteNumbersDeny feeds numbers the describer should never let
// through; the rules must still fail closed on them.
func TestNonFiniteNumbersDeny(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		def      Definition
		in       Input
		wantRule string
	}{
		{"NaN quantity vs max_order_qty", Definition{Scopes: []string{"trade"}, MaxOrderQty: 1}, trade(limit("BTCUSDT", exchange.Buy, nan, 100000)), "max_order_qty"},
		{"NaN quantity vs notional", Definition{Scopes: []string{"trade"}, MaxOrderNotional: 1000}, trade(limit("BTCUSDT", exchange.Buy, nan, 100000)), "max_order_notional"},
		{"Inf quantity vs notional", Definition{Scopes: []string{"trade"}, MaxOrderNotional: 1000}, trade(limit("BTCUSDT", exchange.Buy, math.Inf(1), 100000)), "max_order_notional"},
		{"NaN price vs band", Definition{Scopes: []string{"trade"}, PriceBandPct: 5}, trade(limit("BTCUSDT", exchange.Buy, 0.1, nan)), "price_band"},
		{"NaN price without reference", Definition{Scopes: []string{"trade"}, PriceBandPct: 5}, trade(limit("VIABTC", exchange.Buy, 0.1, nan)), "reference_price"},
		{"NaN withdrawal amount", Definition{Scopes: []string{"withdraw"}, Withdraw: WithdrawDef{Addresses: []AddressDef{{Asset: "USDT", Network: "ERC20", Address: evmAddr, MaxAmount: 10}}}},
			withdrawal("USDT", "ERC20", evmAddr, "", nan), "withdraw_address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustCompile(t, tt.def).Check(tt.in)
			if d == nil || d.Rule != tt.wantRule {
				t.Errorf("Check() = %v, want a %s denial", d, tt.wantRule)
			}
		})
	}
}
