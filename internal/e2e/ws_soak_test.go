package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/policy"
)

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(es)
}

// TestWSSoak opens and closes market streams and WS API sockets from 16
// workers for at most 10 s (3 s with -short) or 20000 stream messages,
// placing a signed order on every API socket, then checks that every
// socket, goroutine and file descriptor the proxy used is released.
func TestWSSoak(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		// No notional cap: the policy then fetches no reference price, whose
		// pooled REST connections would blur the goroutine and fd count.
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}},
	})
	env.Sims["binance"].Kit.SetPrice("BTCUSDT", 50000)
	env.AddKey("binance", "main", "read", "trade")
	iss := env.Issue("binance", "main", "trader")
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}
	base := "ws" + env.URL[len("http"):]

	var msgs, orders, failures atomic.Int64
	cycle := func(ctx context.Context, n int) error {
		c, _, err := websocket.Dial(ctx, base+"/binance/ws/btcusdt@trade", nil)
		if err != nil {
			return err
		}
		for range n {
			if _, _, err := c.Read(ctx); err != nil {
				c.CloseNow()
				return err
			}
			msgs.Add(1)
		}
		c.Close(websocket.StatusNormalClosure, "")
		a, _, err := websocket.Dial(ctx, base+"/binance/ws-api/v3", nil)
		if err != nil {
			return err
		}
		defer a.Close(websocket.StatusNormalClosure, "")
		p := map[string]string{"apiKey": cred.APIKey, "timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "symbol": "BTCUSDT",
			"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": strconv.FormatInt(40000+orders.Add(1), 10)}
		sig, err := binance.SignWSParams(p, cred)
		if err != nil {
			return err
		}
		p["signature"] = sig
		b, _ := json.Marshal(map[string]any{"id": "soak", "method": "order.place", "params": p})
		if err := a.Write(ctx, websocket.MessageText, b); err != nil {
			return err
		}
		_, ans, err := a.Read(ctx)
		if err != nil {
			return err
		}
		var m map[string]any
		if json.Unmarshal(ans, &m) != nil || wsStatus(m) != 200 {
			failures.Add(1)
		}
		return nil
	}
	warm, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := cycle(warm, 5); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitOpen(t, env)
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)

	dur := 10 * time.Second
	if testing.Short() {
		dur = 3 * time.Second
	}
	const maxMsgs, workers = 20000, 16
	ctx, stop := context.WithTimeout(context.Background(), dur)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && msgs.Load() < maxMsgs {
				if err := cycle(ctx, 10); err != nil && ctx.Err() == nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if errs.Load() > 0 || failures.Load() > 0 {
		t.Errorf("%d socket errors and %d refused orders during the soak, want none", errs.Load(), failures.Load())
	}
	if orders.Load() < 2 || msgs.Load() < 10 {
		t.Errorf("only %d stream messages and %d orders went through, want some of both", msgs.Load(), orders.Load())
	}
	waitOpen(t, env)
	// Refused or cancelled handshakes of the test's own clients may idle in
	// the default transport's pool; they are not the proxy's.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var g, fd int
	for deadline := time.Now().Add(30 * time.Second); ; {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if (g <= g0+4 && fd <= fd0+4) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g > g0+4 || fd > fd0+4 {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("after the soak: %d goroutines (before %d), %d fds (before %d): a leak\n%s", g, g0, fd, fd0, stacks.String())
	}
	t.Logf("soak: %d workers, %s, %d stream messages, %d signed WS orders (%.0f msg/s, %.0f orders/s); goroutines %d→%d, fds %d→%d",
		workers, elapsed.Round(time.Millisecond), msgs.Load(), orders.Load(), float64(msgs.Load())/elapsed.Seconds(),
		float64(orders.Load())/elapsed.Seconds(), g0, g, fd0, fd)
}

// waitOpen waits until the proxy holds no socket (a liveness bound).
func waitOpen(t *testing.T, env *Env) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); env.Server.WS.Open() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets still open", env.Server.WS.Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
