package policy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newEngine(t testing.TB, d Definition) (*Engine, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	return NewEngine(Options{
		Policies: map[string]*Policy{"test": mustCompile(t, d)},
		Prices:   btc,
		Now:      clk.Now,
	}), clk
}

// order1k is a limit order worth exactly 1000 USDT (0.01 * 100000).
func order1k() Input {
	in := trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000))
	in.Now = time.Time{} // the engine's clock decides
	return in
}

func TestWindowNotional(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
		Windows: []WindowDef{{Duration: "24h", MaxNotional: 10000}}})
	for i := range 10 {
		r, err := e.Check("test", order1k())
		if err != nil {
			t.Fatalf("order %d: Check() = %v, want allowed", i, err)
		}
		r.Commit()
	}
	_, err := e.Check("test", order1k())
	d, ok := err.(*Denial)
	if !ok || d.Rule != "window_notional" {
		t.Fatalf("11th order: Check() = %v, want a window_notional denial", err)
	}
	want := "notional in 24h would reach 11000 USDT (10000 used + 1000 this call), over the window's max_notional 10000"
	if d.Reason != want {
		t.Errorf("Reason = %q, want %q", d.Reason, want)
	}
}

func TestWindowOrdersPerCredentialAndKey(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{
		{Duration: "1h", MaxOrders: 2},
		{Duration: "1h", MaxOrders: 3, Per: "key"},
	}})
	check := func(client string) error {
		in := order1k()
		in.Client = client
		r, err := e.Check("test", in)
		r.Commit()
		return err
	}
	for _, client := range []string{"a", "a", "b"} {
		if err := check(client); err != nil {
			t.Fatalf("Check(%s) = %v, want allowed", client, err)
		}
	}
	if err := check("a"); err == nil || err.(*Denial).Rule != "window_orders" || !strings.Contains(err.Error(), "over the window's max_orders 2") {
		t.Errorf("third order of a: Check() = %v, want the per-credential cap", err)
	}
	if err := check("c"); err == nil || !strings.Contains(err.Error(), "over the window's max_orders 3") {
		t.Errorf("fourth order on the key: Check() = %v, want the per-key cap", err)
	}
}

func TestWindowSlides(t *testing.T) {
	e, clk := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 2}}})
	steps := []struct {
		advance time.Duration
		allowed bool
	}{
		{0, true},                 // t0: 1 in window
		{30 * time.Minute, true},  // t0+30m: 2
		{10 * time.Minute, false}, // t0+40m: full
		{20 * time.Minute, true},  // t0+60m: the t0 order left at exactly 1h
		{29 * time.Minute, false}, // t0+89m: t0+30m and t0+60m still in
		{time.Minute, true},       // t0+90m: t0+30m left
	}
	for i, s := range steps {
		clk.Add(s.advance)
		r, err := e.Check("test", order1k())
		if (err == nil) != s.allowed {
			t.Fatalf("step %d at +%v: Check() = %v, want allowed=%v", i, clk.Now().Sub(t0), err, s.allowed)
		}
		r.Commit()
	}
}

func TestReleaseReturnsBudget(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxNotional: 2000}}})
	r1, err := e.Check("test", order1k())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Check("test", order1k())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Check("test", order1k()); err == nil {
		t.Fatal("third reservation: Check() = allowed, want denied while two are pending")
	}
	r1.Release()
	r1.Release() // idempotent: must not return the budget twice
	r1.Commit()  // too late: the first of Commit/Release counts
	r3, err := e.Check("test", order1k())
	if err != nil {
		t.Fatalf("after Release: Check() = %v, want allowed", err)
	}
	if _, err := e.Check("test", order1k()); err == nil {
		t.Fatal("after one Release: two reservations fit, a third must not")
	}
	r2.Commit()
	r3.Commit()
}

func TestReleaseAfterExpiry(t *testing.T) {
	e, clk := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 1}}})
	r, err := e.Check("test", order1k())
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	r2, err := e.Check("test", order1k()) // expires r's entry
	if err != nil {
		t.Fatal(err)
	}
	r.Release() // must not subtract the expired entry from the sums again
	if _, err := e.Check("test", order1k()); err == nil {
		t.Error("Check() = allowed, want denied: r2 fills the window and r's late Release must not free it")
	}
	r2.Commit()
}

func TestBatchReservedAtomically(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 3, MaxNotional: 10000}}})
	in := trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000), limit("BTCUSDT", exchange.Buy, 0.01, 100000))
	if _, err := e.Check("test", in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Check("test", in); err == nil || !strings.Contains(err.Error(), "orders in 1h would reach 4 (2 used + 2 this call)") {
		t.Errorf("second batch: Check() = %v, want window_orders denial counting the batch", err)
	}
	if _, err := e.Check("test", trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000))); err != nil {
		t.Errorf("single order after denied batch: Check() = %v, want allowed (a denied batch reserves nothing)", err)
	}
}

func TestCancelsUseNoBudget(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 1}}, MaxOpenOrders: 1})
	for range 3 {
		r, err := e.Check("test", trade(cancel("BTCUSDT")))
		if err != nil || r != nil {
			t.Fatalf("cancel: Check() = %v, %v, want allowed with no reservation", r, err)
		}
	}
}

func TestPerKeyWindowNeedsKey(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 5, Per: "key"}}})
	in := order1k()
	in.Key = ""
	if _, err := e.Check("test", in); err == nil || err.(*Denial).Rule != "window" {
		t.Errorf("Check() without key = %v, want a window denial", err)
	}
}

func TestMaxOpenOrders(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, MaxOpenOrders: 2})
	l := e.Limiter()
	r1, err := e.Check("test", order1k())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Check("test", order1k())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Check("test", order1k()); err == nil || err.(*Denial).Rule != "max_open_orders" {
		t.Fatalf("third: Check() = %v, want max_open_orders", err)
	}
	// Market orders do not rest.
	if _, err := e.Check("test", trade(market("BTCUSDT", exchange.Buy, 0.01))); err != nil {
		t.Errorf("market order: Check() = %v, want allowed", err)
	}
	r1.Commit()
	r2.Release()
	if open, pending := l.OpenOrders("bot1"); open != 1 || pending != 0 {
		t.Errorf("OpenOrders() = %d, %d, want 1, 0", open, pending)
	}
	r3, err := e.Check("test", order1k())
	if err != nil {
		t.Fatalf("after Release: Check() = %v, want allowed", err)
	}
	r3.Commit()
	if _, err := e.Check("test", order1k()); err == nil {
		t.Fatal("two open: Check() = allowed, want denied")
	}
	l.OrdersClosed("bot1", 1)
	if _, err := e.Check("test", order1k()); err != nil {
		t.Errorf("after OrdersClosed: Check() = %v, want allowed", err)
	}
	l.SetOpenOrders("bot1", 0)
	if open, pending := l.OpenOrders("bot1"); open != 0 || pending != 1 {
		t.Errorf("after SetOpenOrders: OpenOrders() = %d, %d, want 0, 1", open, pending)
	}
}

// TestConcurrentNoOvershoot places orders from 64 goroutines against one
// window cap; some fail at the venue and are released. The committed total
// must never exceed the cap, and the cap must be used up.
func TestConcurrentNoOvershoot(t *testing.T) {
	const capNotional = 50000 // 50 orders of 1000
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "24h", MaxNotional: capNotional}}})
	var (
		mu        sync.Mutex
		committed int
		wg        sync.WaitGroup
	)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				r, err := e.Check("test", order1k())
				if err != nil {
					continue
				}
				if (g+i)%3 == 0 {
					r.Release() // the venue rejected it
					continue
				}
				r.Commit()
				mu.Lock()
				committed += 1000
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if committed > capNotional {
		t.Errorf("committed %d, want at most the cap %d", committed, capNotional)
	}
	st := e.Stats()
	if st.Allowed+st.Denied["window_notional"] != 64*20 {
		t.Errorf("Stats() = %+v, want 1280 decisions", st)
	}
	// Every released reservation gave its budget back: what is left of
	// the cap can still be filled, exactly.
	for range capNotional / 1000 {
		r, err := e.Check("test", order1k())
		if err != nil {
			break
		}
		r.Commit()
		committed += 1000
	}
	if committed != capNotional {
		t.Errorf("committed %d after filling up, want exactly the cap %d", committed, capNotional)
	}
}

func TestLimiterReserveDirect(t *testing.T) {
	p := mustCompile(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "1h", MaxOrders: 1}}})
	l := NewLimiter()
	in := trade(limit("BTCUSDT", exchange.Buy, 0.01, 100000))
	r, d := l.Reserve(p, in)
	if d != nil || r == nil {
		t.Fatalf("Reserve() = %v, %v, want a reservation", r, d)
	}
	if _, d := l.Reserve(p, in); d == nil || d.Rule != "window_orders" {
		t.Errorf("second Reserve() = %v, want window_orders", d)
	}
	// A policy without stateful rules reserves nothing.
	if r, d := l.Reserve(mustCompile(t, Definition{Scopes: []string{"trade"}}), in); r != nil || d != nil {
		t.Errorf("Reserve(stateless) = %v, %v, want nil, nil", r, d)
	}
	var nilRes *Reservation
	nilRes.Commit()
	nilRes.Release()
}

// TestParallelTenthsOfCap is spec case L4: 100 parallel orders, each 10% of
// the daily cap, and exactly 10 are accepted.
func TestParallelTenthsOfCap(t *testing.T) {
	e, _ := newEngine(t, Definition{Scopes: []string{"trade"}, Windows: []WindowDef{{Duration: "24h", MaxNotional: 10000}}})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
	)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 0.01 BTC at 100000: 1000 USDT, 10% of the cap.
			r, err := e.Check("test", order1k())
			if err != nil {
				return
			}
			r.Commit()
			mu.Lock()
			accepted++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if accepted != 10 {
		t.Errorf("accepted %d orders, want exactly 10", accepted)
	}
}
