package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestEngineUnknownPolicy(t *testing.T) {
	e, _ := newEngine(t, Definition{})
	_, err := e.Check("nope", read())
	d, ok := err.(*Denial)
	if !ok || d.Rule != "policy" {
		t.Fatalf(`Check("nope") = %v, want a policy denial`, err)
	}
}

func TestEngineFillsClockAndPrices(t *testing.T) {
	e, clk := newEngine(t, Definition{Scopes: []string{"read", "trade"}, MaxOrderNotional: 10000})
	in := trade(market("BTCUSDT", exchange.Buy, 0.2))
	in.Now, in.Prices = time.Time{}, nil
	if _, err := e.Check("test", in); err == nil || !strings.Contains(err.Error(), "order notional 20000") {
		t.Errorf("Check() = %v, want the engine's prices used", err)
	}
	in = read()
	in.Now = time.Time{}
	in.CredentialExpires = t0.Add(time.Hour)
	if _, err := e.Check("test", in); err != nil {
		t.Errorf("Check() before expiry = %v, want allowed", err)
	}
	clk.Add(time.Hour)
	if _, err := e.Check("test", in); err == nil || err.(*Denial).Rule != "expired" {
		t.Errorf("Check() at expiry = %v, want expired", err)
	}
}

func TestEngineWithoutClockDenies(t *testing.T) {
	e := NewEngine(Options{Policies: map[string]*Policy{"test": mustCompile(t, Definition{})}})
	in := read()
	in.Now = time.Time{}
	if _, err := e.Check("test", in); err == nil || err.(*Denial).Rule != "clock" {
		t.Errorf("Check() without any clock = %v, want a clock denial", err)
	}
}

func TestEngineStats(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderQty: 1})
	inputs := []Input{
		trade(limit("BTCUSDT", exchange.Buy, 0.5, 100000)),
		trade(limit("VIAUSDT", exchange.Buy, 0.5, 1)),
		trade(limit("DOGEUSDT", exchange.Buy, 0.5, 1)),
		trade(limit("BTCUSDT", exchange.Buy, 5, 100000)),
		withdrawal("BTC", "BTC", "bc1q", "", 1),
	}
	for _, in := range inputs {
		e.Check("test", in)
	}
	want := Stats{Allowed: 1, Denied: map[string]uint64{"symbol": 2, "max_order_qty": 1, "scope": 1}}
	if diff := cmp.Diff(want, e.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestEngineExplain(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 1}}, MaxOpenOrders: 5})
	in := order1k()
	got, err := e.Explain("test", in)
	if err != nil {
		t.Fatal(err)
	}
	want := []RuleResult{
		{Rule: "clock", Result: Allow},
		{Rule: "expired", Result: NotApplicable},
		{Rule: "scope", Result: Allow},
		{Rule: "window_orders", Result: Allow},
		{Rule: "max_open_orders", Result: Allow},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Explain() mismatch (-want +got):\n%s", diff)
	}
	// Explain reserves nothing, so the one order the window allows is
	// still available.
	r, err := e.Check("test", in)
	if err != nil {
		t.Fatalf("Check() after Explain = %v, want allowed", err)
	}
	r.Commit()
	got, _ = e.Explain("test", in)
	want[3] = RuleResult{Rule: "window_orders", Result: Deny, Reason: "orders in 1h would reach 2 (1 used + 1 this call), over the window's max_orders 1"}
	want[4] = RuleResult{Rule: "max_open_orders", Result: NotApplicable, Reason: "not reached: window_orders denied first"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Explain() with a full window mismatch (-want +got):\n%s", diff)
	}
}

// TestRestoreCountsHistory: calls restored from before a restart use the
// window's budget until they leave the window, and only then.
func TestRestoreCountsHistory(t *testing.T) {
	d := Definition{
		Scopes: []string{"read", "trade"}, MaxOrderNotional: 1e6,
		Windows: []WindowDef{{Duration: "1h", MaxNotional: 25000, MaxOrders: 3}, {Duration: "24h", MaxOrders: 5, Per: "key"}},
	}
	e, _ := newEngine(t, d)
	if got := e.LongestWindow(); got != 24*time.Hour {
		t.Fatalf("LongestWindow() = %v, want 24h", got)
	}
	old := trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000)) // 10000
	old.Now = t0.Add(-50 * time.Minute)
	e.Restore("test", old)
	old.Now = t0.Add(-40 * time.Minute)
	e.Restore("test", old)
	e.Restore("no-such-policy", old)

	in := trade(limit("BTCUSDT", exchange.Buy, 0.1, 100000))
	in.Now = t0
	_, err := e.Check("test", in)
	var dn *Denial
	if !errors.As(err, &dn) || dn.Rule != "window_notional" || !strings.Contains(dn.Reason, "20000") {
		t.Fatalf("Check() after restoring 20000 = %v, want a window_notional denial counting the restored 20000", err)
	}
	// Once the first restored call leaves the hour, its budget is back.
	in.Now = t0.Add(11 * time.Minute)
	r, err := e.Check("test", in)
	if err != nil {
		t.Fatalf("Check() after the first restored call expired = %v, want allowed", err)
	}
	r.Commit()
	// The key's 24h window still counts both restored calls and this one.
	for i := range 2 {
		in.Now = t0.Add(time.Duration(2+i) * time.Hour)
		if r, err := e.Check("test", in); err != nil {
			t.Fatalf("Check() %d = %v, want allowed", i, err)
		} else {
			r.Commit()
		}
	}
	in.Now = t0.Add(5 * time.Hour)
	if _, err := e.Check("test", in); !errors.As(err, &dn) || dn.Rule != "window_orders" {
		t.Fatalf("sixth order in 24h = %v, want window_orders (2 restored + 3 new)", err)
	}
}
