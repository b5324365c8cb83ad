package policy

import (
	"fmt"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

// benchDefinition is a realistic busy policy: 20 symbol globs, 10 deny
// globs, 5 endpoint globs, order type, side, quantity, notional and band
// caps, trading hours, source addresses, two windows and an open-order cap,
// plus exprs expressions.
func benchDefinition(exprs []ExprDef) Definition {
	d := Definition{
		Scopes:           []string{"read", "trade"},
		Venues:           []string{"binance"},
		Endpoints:        []string{"POST /api/v3/order", "POST /api/v3/order/test", "DELETE /api/v3/order", "GET /api/v3/*", "POST /api/v3/orderList/*"},
		OrderTypes:       []string{"limit", "market"},
		Sides:            []string{"buy", "sell"},
		MaxOrderQty:      10,
		MaxOrderNotional: 50000,
		PriceBandPct:     5,
		SourceIPs:        []string{"10.0.0.0/8", "192.0.2.0/24"},
		TradingHours:     []HoursDef{{From: "00:00", To: "24:00"}},
		Windows: []WindowDef{
			{Duration: "24h", MaxNotional: 1e12, MaxOrders: 1 << 30},
			{Duration: "1h", MaxOrders: 1 << 30, Per: "key"},
		},
		MaxOpenOrders: 1 << 30,
		Expressions:   exprs,
	}
	for i := range 19 {
		d.Symbols = append(d.Symbols, fmt.Sprintf("ALT%02d*", i))
	}
	d.Symbols = append(d.Symbols, "BTC*")
	for i := range 10 {
		d.DenySymbols = append(d.DenySymbols, fmt.Sprintf("*SCAM%d", i))
	}
	return d
}

func benchInput() Input {
	return trade(limit("BTCUSDT", exchange.Buy, 0.1, 100100))
}

func benchCheck(b *testing.B, d Definition) {
	p := mustCompile(b, d)
	in := benchInput()
	if dn := p.Check(in); dn != nil {
		b.Fatalf("Check() = %v, want allowed", dn)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if p.Check(in) != nil {
			b.Fatal("denied")
		}
	}
}

// reportCPU starts measuring process CPU time; the returned func reports
// it as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func benchEngine(b *testing.B, d Definition) {
	e, _ := newEngine(b, d)
	in := benchInput()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r, err := e.Check("test", in)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}

// BenchmarkCheckNoExpr is the busy policy without expressions: the pure
// rules alone.
func BenchmarkCheckNoExpr(b *testing.B) { benchCheck(b, benchDefinition(nil)) }

// BenchmarkEngineNoExpr adds the windows and open-order reservation.
func BenchmarkEngineNoExpr(b *testing.B) { benchEngine(b, benchDefinition(nil)) }
