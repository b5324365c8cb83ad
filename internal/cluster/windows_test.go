package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// windowReplica is one replica's policy engine with the shared windows.
type windowReplica struct {
	engine *policy.Engine
	shared *Windows
}

func windowReplicas(t testing.TB, n int, def policy.Definition) []windowReplica {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	var out []windowReplica
	for range n {
		db := openDB(t, dsn)
		// A generous timeout: this machine's load must not turn a slow
		// commit into a denial the test would miscount.
		w, err := NewWindows(context.Background(), db, 30*time.Second)
		if err != nil {
			t.Fatalf("NewWindows = %v", err)
		}
		p, err := policy.Compile("capped", def)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, windowReplica{engine: policy.NewEngine(policy.Options{Policies: map[string]*policy.Policy{"capped": p}}), shared: w})
	}
	return out
}

// order is a limit buy worth notional USDT.
func order(client string, notional float64, at time.Time) policy.Input {
	return policy.Input{
		Call: exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order", Endpoint: "POST /api/v3/order",
			Scope: exchange.ScopeTrade, Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT",
				Side: exchange.Buy, Type: "limit", Quantity: notional / 100000, Price: 100000}}},
		Client: client, Key: "binance/main", Now: at,
	}
}

// TestSharedCapsNoOvershoot sends 64 concurrent orders through three
// replicas against caps far below 64 orders: exactly the cap is allowed,
// never more, and every denial names the window rule.
func TestSharedCapsNoOvershoot(t *testing.T) {
	tests := []struct {
		name    string
		window  policy.WindowDef
		allowed int
		rule    string
	}{
		{"order count per key", policy.WindowDef{Duration: "1h", MaxOrders: 20, Per: "key"}, 20, "window_orders"},
		{"notional per key", policy.WindowDef{Duration: "1h", MaxNotional: 12_500, Per: "key"}, 12, "window_notional"},
		{"order count per credential", policy.WindowDef{Duration: "1h", MaxOrders: 7}, 7, "window_orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := windowReplicas(t, 3, policy.Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
				Windows: []policy.WindowDef{tt.window}})
			var allowed, denied atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			start := make(chan struct{})
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r := rs[i%3]
					res, release, err := r.engine.CheckShared(r.shared, "capped", order("bot", 1000, t0.Add(time.Duration(i)*time.Millisecond)))
					var d *policy.Denial
					switch {
					case err == nil:
						allowed.Add(1)
						res.Commit()
						_ = release // committed: the budget stays used
					case errors.As(err, &d) && d.Rule == tt.rule:
						denied.Add(1)
					default:
						errs <- err
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("CheckShared = %v, want allowed or a %s denial", err, tt.rule)
			}
			if got := int(allowed.Load()); got != tt.allowed {
				t.Errorf("allowed %d of 64 orders across 3 replicas, want exactly %d", got, tt.allowed)
			}
			if got := int(denied.Load()); got != 64-tt.allowed {
				t.Errorf("denied %d, want %d", got, 64-tt.allowed)
			}
		})
	}
}

// TestSharedReleaseAndExpiry: a released reservation gives its budget back
// to every replica, and uses leave the window when it ends.
func TestSharedReleaseAndExpiry(t *testing.T) {
	rs := windowReplicas(t, 2, policy.Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
		Windows: []policy.WindowDef{{Duration: "10m", MaxOrders: 2, Per: "key"}}})
	a, b := rs[0], rs[1]
	check := func(r windowReplica, at time.Time) (*policy.Reservation, func(), error) {
		return r.engine.CheckShared(r.shared, "capped", order("bot", 100, at))
	}
	res1, _, err := check(a, t0)
	if err != nil {
		t.Fatal(err)
	}
	res1.Commit()
	res2, release2, err := check(b, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := check(a, t0.Add(2*time.Minute)); err == nil {
		t.Fatal("third order in the window allowed, want a denial")
	}
	res2.Release()
	release2()
	res3, _, err := check(a, t0.Add(3*time.Minute))
	if err != nil {
		t.Fatalf("order after a release = %v, want allowed", err)
	}
	res3.Commit()
	if _, _, err := check(b, t0.Add(4*time.Minute)); err == nil {
		t.Fatal("order over the cap allowed after the release was used")
	}
	// The first order leaves the window at t0+10m.
	res4, _, err := check(b, t0.Add(10*time.Minute+time.Second))
	if err != nil {
		t.Fatalf("order after the first left the window = %v, want allowed", err)
	}
	res4.Commit()
}

// TestSharedAllOrNothing: when one of a call's windows refuses, none of
// them is charged.
func TestSharedAllOrNothing(t *testing.T) {
	rs := windowReplicas(t, 1, policy.Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
		Windows: []policy.WindowDef{{Duration: "1h", MaxOrders: 100}, {Duration: "1h", MaxOrders: 1, Per: "key"}}})
	r := rs[0]
	if _, _, err := r.engine.CheckShared(r.shared, "capped", order("bot", 10, t0)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := r.engine.CheckShared(r.shared, "capped", order("bot", 10, t0.Add(time.Duration(i+1)*time.Second))); err == nil {
			t.Fatal("order over the per-key cap allowed")
		}
	}
	var n int
	if err := r.shared.db.Pool().QueryRow(context.Background(),
		"SELECT count(*) FROM cluster_window_use WHERE window_key LIKE 'capped/0/%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("per-credential window holds %d uses, want 1 (refused calls must not be charged)", n)
	}
}

// TestSharedFailsClosed: with the database gone, orders are denied.
func TestSharedFailsClosed(t *testing.T) {
	rs := windowReplicas(t, 1, policy.Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
		Windows: []policy.WindowDef{{Duration: "1h", MaxOrders: 100}}})
	rs[0].shared.db.Close()
	_, _, err := rs[0].engine.CheckShared(rs[0].shared, "capped", order("bot", 10, t0))
	var d *policy.Denial
	if !errors.As(err, &d) || d.Rule != "window" {
		t.Fatalf("CheckShared without a database = %v, want a window denial", err)
	}
}

// BenchmarkSharedReserve measures one order's shared reservation (two
// windows) against the loopback PostgreSQL server, from 1 and from 8
// concurrent callers on distinct credentials.
func BenchmarkSharedReserve(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			rs := windowReplicas(b, 1, policy.Definition{Scopes: []string{"trade"}, NotionalCurrency: "USDT",
				Windows: []policy.WindowDef{{Duration: "1h", MaxOrders: 1 << 30}, {Duration: "24h", MaxNotional: 1e12}}})
			r := rs[0]
			var next atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				client := fmt.Sprintf("bot%d", next.Add(1))
				for pb.Next() {
					res, _, err := r.engine.CheckShared(r.shared, "capped", order(client, 10, time.Now()))
					if err != nil {
						b.Error(err)
						return
					}
					res.Commit()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
		})
	}
}
