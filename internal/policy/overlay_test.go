package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/store/memory"
)

func newOverlay(t *testing.T, base map[string]Definition) (*Overlay, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	return NewOverlay(memory.New(), base, clk.Now), clk
}

var addrA = AddressDef{Asset: "BTC", Network: "BTC", Address: "bc1qa", MaxAmount: 1, AddedAt: t0.Add(-48 * time.Hour)}

func TestOverlayCreateUpdateDelete(t *testing.T) {
	ctx := context.Background()
	base := map[string]Definition{"read": {}, "trade": {Scopes: []string{"trade"}, MaxOrderQty: 1}}
	o, clk := newOverlay(t, base)

	// Update a configured policy: the overlay wins, the config is untouched.
	c, err := o.Prepare(ctx, "trade", &Definition{Scopes: []string{"trade"}, MaxOrderQty: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if c.Widens() {
		t.Errorf("lowering max_order_qty: Widens() = true, raised %v", c.Raised)
	}
	if !strings.Contains(c.Diff, "-max_order_qty = 1.0") || !strings.Contains(c.Diff, "+max_order_qty = 0.5") {
		t.Errorf("Diff = %q, want the max_order_qty line changed", c.Diff)
	}
	ps, err := o.Apply(ctx, c, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if ps["trade"] == nil || ps["read"] == nil {
		t.Fatalf("Apply returned policies %v, want read and trade", ps)
	}
	if src, _ := o.Source(ctx, "trade"); src != "overlay" {
		t.Errorf("Source(trade) = %q, want overlay", src)
	}
	if src, _ := o.Source(ctx, "read"); src != "config" {
		t.Errorf("Source(read) = %q, want config", src)
	}

	// Create, then delete a configured policy.
	c, err = o.Prepare(ctx, "new", &Definition{Scopes: []string{"trade"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Created() || !c.Widens() {
		t.Errorf("new policy: Created %v Widens %v, want both", c.Created(), c.Widens())
	}
	if _, err := o.Apply(ctx, c, "ann"); err != nil {
		t.Fatal(err)
	}
	c, err = o.Prepare(ctx, "read", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Deleted() || c.Widens() {
		t.Errorf("delete: Deleted %v Widens %v, want true, false", c.Deleted(), c.Widens())
	}
	if _, err := o.Apply(ctx, c, "ann"); err != nil {
		t.Fatal(err)
	}
	defs, err := o.Definitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Definition{"trade": {Scopes: []string{"trade"}, MaxOrderQty: 0.5}, "new": {Scopes: []string{"trade"}}}
	if diff := cmp.Diff(want, defs); diff != "" {
		t.Errorf("Definitions (-want +got):\n%s", diff)
	}
	if _, err := o.Prepare(ctx, "read", nil); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Prepare(delete deleted) = %v, want %v", err, ErrNoPolicy)
	}

	// A change prepared against an older state is refused.
	stale, err := o.Prepare(ctx, "trade", &Definition{Scopes: []string{"trade"}, MaxOrderQty: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	c, _ = o.Prepare(ctx, "trade", &Definition{Scopes: []string{"trade"}, MaxOrderQty: 0.3})
	if _, err := o.Apply(ctx, c, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Apply(ctx, stale, "ann"); !errors.Is(err, ErrConflict) {
		t.Errorf("Apply(stale) = %v, want %v", err, ErrConflict)
	}

	// Invalid policies are refused with the compiler's message.
	if _, err := o.Prepare(ctx, "bad", &Definition{Scopes: []string{"fly"}}); err == nil || !strings.Contains(err.Error(), "fly") {
		t.Errorf("Prepare(bad scope) = %v, want an error naming it", err)
	}
	if _, err := o.Prepare(ctx, "no/slash", &Definition{}); err == nil {
		t.Errorf("Prepare(bad name) = nil, want an error")
	}
}

func TestOverlayClassifiesWidening(t *testing.T) {
	ctx := context.Background()
	before := Definition{
		Scopes: []string{"trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderQty: 1, MaxOrderNotional: 1000,
		MaxOpenOrders: 5, Windows: []WindowDef{{Duration: "24h", MaxNotional: 10000}},
		DenySymbols: []string{"LUNA*"}, UnknownPrice: "deny",
	}
	wd := Definition{Scopes: []string{"trade", "withdraw"}, Withdraw: WithdrawDef{Cooldown: "24h", Addresses: []AddressDef{addrA}}}
	tests := []struct {
		name     string
		before   Definition
		edit     func(d *Definition)
		withdraw bool
		added    int
		raised   []string
	}{
		{"narrower", before, func(d *Definition) { d.MaxOrderQty = 0.5; d.Symbols = nil; d.Symbols = []string{"BTCUSDT"} }, false, 0, nil},
		{"cap raised", before, func(d *Definition) { d.MaxOrderQty = 2 }, false, 0, []string{"max_order_qty: 1 -> 2"}},
		{"cap removed", before, func(d *Definition) { d.MaxOrderNotional = 0 }, false, 0, []string{"max_order_notional: 1000 -> none"}},
		{"open orders", before, func(d *Definition) { d.MaxOpenOrders = 6 }, false, 0, []string{"max_open_orders: 5 -> 6"}},
		{"window raised", before, func(d *Definition) { d.Windows[0].MaxNotional = 20000 }, false, 0, []string{"windows[24h per credential].max_notional: 10000 -> 20000"}},
		{"window removed", before, func(d *Definition) { d.Windows = nil }, false, 0, []string{"windows[24h per credential]: removed"}},
		{"symbol added", before, func(d *Definition) { d.Symbols = append(d.Symbols, "ETHUSDT") }, false, 0, []string{"symbols: +ETHUSDT"}},
		{"symbols lifted", before, func(d *Definition) { d.Symbols = nil }, false, 0, []string{"symbols: restriction removed"}},
		{"deny lifted", before, func(d *Definition) { d.DenySymbols = nil }, false, 0, []string{"deny_symbols: -LUNA*"}},
		{"unknown price", before, func(d *Definition) { d.UnknownPrice = "allow" }, false, 0, []string{"unknown_price: allow"}},
		{"withdraw enabled", before, func(d *Definition) {
			d.Scopes = append(d.Scopes, "withdraw")
			d.Withdraw.Addresses = []AddressDef{{Asset: "BTC", Network: "BTC", Address: "bc1qa"}}
		}, true, 1, []string{"scopes: +withdraw"}},
		{"address added", wd, func(d *Definition) {
			d.Withdraw.Addresses = append(d.Withdraw.Addresses, AddressDef{Asset: "ETH", Network: "ETH", Address: "0xabc", AddedAt: t0.Add(-1000 * time.Hour)})
		}, false, 1, nil},
		{"cool-down shortened", wd, func(d *Definition) { d.Withdraw.Cooldown = "1h" }, false, 0, []string{"withdraw.cooldown: 24h0m0s -> 1h0m0s"}},
		{"address cap raised", wd, func(d *Definition) { d.Withdraw.Addresses[0].MaxAmount = 5 }, false, 0, []string{"withdraw.addresses[BTC BTC].max_amount: 1 -> 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := newOverlay(t, map[string]Definition{"p": tt.before})
			next := cloneDefinition(tt.before)
			tt.edit(&next)
			c, err := o.Prepare(ctx, "p", &next)
			if err != nil {
				t.Fatal(err)
			}
			if c.EnablesWithdraw != tt.withdraw || len(c.AddedAddresses) != tt.added {
				t.Errorf("EnablesWithdraw %v, added %d, want %v, %d", c.EnablesWithdraw, len(c.AddedAddresses), tt.withdraw, tt.added)
			}
			if diff := cmp.Diff(tt.raised, c.Raised); diff != "" {
				t.Errorf("Raised (-want +got):\n%s", diff)
			}
			if want := tt.withdraw || tt.added > 0 || len(tt.raised) > 0; c.Widens() != want {
				t.Errorf("Widens() = %v, want %v", c.Widens(), want)
			}
		})
	}
}

// TestOverlayDatesNewAddresses checks that a new withdrawal address is
// dated by the overlay's clock, whatever the request says, so that the
// cool-down holds, while kept addresses keep their date.
func TestOverlayDatesNewAddresses(t *testing.T) {
	ctx := context.Background()
	wd := Definition{Scopes: []string{"withdraw"}, Withdraw: WithdrawDef{Cooldown: "24h", Addresses: []AddressDef{addrA}}}
	o, clk := newOverlay(t, map[string]Definition{"w": wd})
	next := cloneDefinition(wd)
	next.Withdraw.Addresses[0].AddedAt = t0.Add(-1000 * time.Hour) // cannot move a kept date either
	next.Withdraw.Addresses = append(next.Withdraw.Addresses, AddressDef{Asset: "BTC", Network: "BTC", Address: "bc1qnew", AddedAt: t0.Add(-1000 * time.Hour)})
	c, err := o.Prepare(ctx, "w", &next)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if again, err := o.Prepare(ctx, "w", &next); err != nil || again.Digest != c.Digest {
		t.Errorf("Digest changed with the clock: %v, %v", again.Digest, err)
	}
	clk.Add(-time.Minute)
	got := c.After.Withdraw.Addresses
	if !got[0].AddedAt.Equal(addrA.AddedAt) || !got[1].AddedAt.Equal(t0) {
		t.Fatalf("added_at = %v, %v, want %v (kept), %v (now)", got[0].AddedAt, got[1].AddedAt, addrA.AddedAt, t0)
	}
	ps, err := o.Apply(ctx, c, "ann")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Options{Policies: ps, Now: clk.Now})
	if _, err := e.Check("w", withdrawal("BTC", "BTC", "bc1qnew", "", 0.1)); err == nil || !strings.Contains(err.Error(), "cool-down") {
		t.Errorf("withdrawal to the new address at once = %v, want a cool-down denial", err)
	}
	if _, err := e.Check("w", withdrawal("BTC", "BTC", "bc1qa", "", 0.1)); err != nil {
		t.Errorf("withdrawal to the kept address = %v, want allowed", err)
	}
}

func TestParseDefinition(t *testing.T) {
	d, err := ParseDefinition("spot", []byte("[policy.spot]\nscopes = [\"trade\"]\nmax_order_qty = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Definition{Scopes: []string{"trade"}, MaxOrderQty: 2}, d); diff != "" {
		t.Errorf("ParseDefinition (-want +got):\n%s", diff)
	}
	back, err := ParseDefinition("spot", []byte(FormatDefinition("spot", d)))
	if err != nil || !cmp.Equal(back, d) {
		t.Errorf("FormatDefinition does not read back: %+v, %v", back, err)
	}
	for _, bad := range []string{
		"[policy.spot]\nscopes = [\"trade\"]\nmax_order_qtty = 2\n", // unknown key
		"[policy.other]\nscopes = [\"trade\"]\n",                    // wrong name
		"[policy.spot]\n[policy.two]\n",                             // two tables
		"[policy.spot]\nscopes = [\"nope\"]\n",                      // does not compile
	} {
		if _, err := ParseDefinition("spot", []byte(bad)); err == nil {
			t.Errorf("ParseDefinition(%q) = nil, want an error", bad)
		}
	}
}

// TestEngineWithPoliciesKeepsBudget checks that an engine over edited
// policies keeps the windows clients already used.
func TestEngineWithPoliciesKeepsBudget(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 2}}})
	for range 2 {
		r, err := e.Check("test", order1k())
		if err != nil {
			t.Fatal(err)
		}
		r.Commit()
	}
	raisedCap := mustCompile(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 3}}})
	e2 := e.WithPolicies(map[string]*Policy{"test": raisedCap})
	r, err := e2.Check("test", order1k())
	if err != nil {
		t.Fatalf("third order after raising max_orders to 3 = %v, want allowed", err)
	}
	r.Commit()
	if _, err := e2.Check("test", order1k()); err == nil {
		t.Errorf("fourth order = allowed, want the window (shared with the old engine) full")
	}
	if got := e2.Stats().Allowed; got != 3 {
		t.Errorf("Stats().Allowed = %d, want 3 (counters carried over)", got)
	}
}
