package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// TestRepeatedClientOrderIDRefused is A31 at the gateway: an order whose
// client order id was already sent with the same key is refused 409 in the
// venue's shape with a denial naming the rule, before any allow intent,
// and is not forwarded; above all after an unknown outcome (504).
func TestRepeatedClientOrderIDRefused(t *testing.T) {
	order := func(cid string, n int) *http.Request {
		// n varies the bytes so the replay cache is not what refuses.
		return signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100&cid="+cid+"&n="+strconv.Itoa(n), "", clientSecret, time.Now())
	}
	tests := []struct {
		name     string
		handler  func(w http.ResponseWriter, r *http.Request)
		first    int // status of the first order
		retry    int // status of the same id again
		upstream int // orders the venue receives in all
	}{
		{"accepted", nil, 200, 409, 1},
		{"unknown outcome (504)", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, 504, 409, 1},
		{"venue 5xx (502)", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"code":-1000}`, http.StatusInternalServerError)
		}, 502, 409, 1},
		// A venue that refuses the order outright created none: the id
		// may be used again.
		{"refused by the venue (400)", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"code":-2010}`, http.StatusBadRequest)
		}, 400, 400, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.UpstreamTimeout = 300 * time.Millisecond })
			h.up.handler = tt.handler
			if w := h.do(order("bot-1", 1)); w.Code != tt.first {
				t.Fatalf("first order = %d %s, want %d", w.Code, w.Body, tt.first)
			}
			intents := len(h.audit.intents)
			w := h.do(order("bot-1", 2))
			if w.Code != tt.retry {
				t.Fatalf("same client order id again = %d %s, want %d", w.Code, w.Body, tt.retry)
			}
			if n := h.up.count(); n != tt.upstream {
				t.Errorf("upstream received %d orders, want %d", n, tt.upstream)
			}
			if tt.retry != http.StatusConflict {
				return
			}
			if got := h.audit.intents[intents:]; len(got) != 1 || got[0].Decision != "deny" || got[0].Rule != RuleDuplicateOrder {
				t.Errorf("intents for the retry = %+v, want one denial with rule %s", got, RuleDuplicateOrder)
			}
			if body := w.Body.String(); !strings.Contains(body, RuleDuplicateOrder) {
				t.Errorf("answer %s does not name the rule", body)
			}
			// Another id goes through.
			h.up.handler = nil
			if w := h.do(order("bot-2", 3)); w.Code != http.StatusOK {
				t.Errorf("a new client order id = %d %s, want 200", w.Code, w.Body)
			}
		})
	}
}

// openPolicy allows every call without a permit; safe for concurrent use.
type openPolicy struct{}

func (openPolicy) Check(context.Context, Check) (Permit, error) { return nil, nil }

// TestOrdersWithoutClientIDPass: orders without a client order id and
// reads are not held back.
func TestOrdersWithoutClientIDPass(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 3 {
		r := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100&n="+strconv.Itoa(i), "", clientSecret, time.Now())
		if w := h.do(r); w.Code != http.StatusOK {
			t.Fatalf("order %d = %d %s, want 200", i, w.Code, w.Body)
		}
	}
	if n := h.up.count(); n != 3 {
		t.Errorf("upstream received %d, want 3", n)
	}
}

// TestConcurrentSameClientOrderID: of many identical orders in flight at
// once exactly one reaches the venue (no check-then-act race).
func TestConcurrentSameClientOrderID(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Policy = openPolicy{} })
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100&cid=same&n="+strconv.Itoa(i), "", clientSecret, time.Now())
			codes[i] = h.do(r).Code
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 || h.up.count() != 1 {
		t.Errorf("%d accepted, %d refused 409, upstream %d; want 1, %d, 1 (codes %v)", ok, conflict, h.up.count(), n-1, codes)
	}
}

// TestIdempotencyOff: a negative window turns the check off.
func TestIdempotencyOff(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdempotencyWindow = -1 })
	for i := range 2 {
		r := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100&cid=x&n="+strconv.Itoa(i), "", clientSecret, time.Now())
		if w := h.do(r); w.Code != http.StatusOK {
			t.Fatalf("order %d = %d %s, want 200", i, w.Code, w.Body)
		}
	}
}

func newOrders(ids ...string) []exchange.Order {
	var out []exchange.Order
	for _, id := range ids {
		out = append(out, exchange.Order{Action: exchange.ActionNew, ClientOrderID: id})
	}
	return out
}

// TestOrderIDsWindowAndBound: ids expire after the window, the cache holds
// at most max ids (oldest dropped first), ids are per venue and key, a
// batch with an id twice is refused whole, cancels are not held, and a
// release frees only the reservation it made.
func TestOrderIDsWindowAndBound(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newOrderIDs(time.Hour, 3)
	reserve := func(venue, key string, at time.Time, ids ...string) bool {
		_, ok := c.reserve(venue, key, newOrders(ids...), at)
		return ok
	}
	if !reserve("v", "k", t0, "a") || reserve("v", "k", t0.Add(time.Minute), "a") {
		t.Fatalf("a then a again: want accepted then refused")
	}
	if !reserve("w", "k", t0, "a") || !reserve("v", "k2", t0, "a") {
		t.Errorf("the same id on another venue or key was refused")
	}
	if !reserve("v", "k", t0.Add(time.Hour), "a") {
		t.Errorf("a after the window was refused")
	}
	if dup, ok := c.reserve("v", "k", newOrders("b", "c", "b"), t0.Add(time.Hour)); ok || dup != "b" {
		t.Errorf("batch with b twice = %q %v, want refused naming b", dup, ok)
	}
	if reserve("v", "k", t0.Add(time.Hour), "c") == false {
		t.Errorf("a refused batch reserved its ids")
	}
	cancel := []exchange.Order{{Action: exchange.ActionCancel, ClientOrderID: "c"}}
	if _, ok := c.reserve("v", "k", cancel, t0.Add(time.Hour)); !ok {
		t.Errorf("a cancel of c was refused")
	}
	// Bound: 3 entries; adding more drops the oldest.
	b := newOrderIDs(time.Hour, 3)
	for i := range 5 {
		if _, ok := b.reserve("v", "k", newOrders(fmt.Sprint(i)), t0); !ok {
			t.Fatalf("id %d refused", i)
		}
	}
	if held, evicted := b.stats(); held != 3 || evicted != 2 {
		t.Errorf("held %d evicted %d, want 3 and 2", held, evicted)
	}
	if _, ok := b.reserve("v", "k", newOrders("4"), t0); ok {
		t.Errorf("the newest id was dropped")
	}
	// Release frees the id; a release of an older reservation does not
	// free a newer one.
	r := newOrderIDs(time.Hour, 10)
	r.reserve("v", "k", newOrders("x"), t0)
	r.release("v", "k", newOrders("x"), t0)
	if _, ok := r.reserve("v", "k", newOrders("x"), t0.Add(time.Second)); !ok {
		t.Fatalf("x refused after its release")
	}
	r.release("v", "k", newOrders("x"), t0)
	if _, ok := r.reserve("v", "k", newOrders("x"), t0.Add(2*time.Second)); ok {
		t.Errorf("a stale release freed a newer reservation")
	}
}

// BenchmarkServeHTTPClientOrderID is BenchmarkServeHTTP with a fresh client
// order id on every order: the cost of the A31 check on the hot path.
func BenchmarkServeHTTPClientOrderID(b *testing.B) { benchServeHTTP(b, true) }

// BenchmarkOrderIDsReserve measures one reservation in a cache holding
// 1<<16 ids.
func BenchmarkOrderIDsReserve(b *testing.B) {
	c := newOrderIDs(time.Hour, 1<<16)
	now := time.Now()
	ids := make([][]exchange.Order, 1<<16)
	for i := range ids {
		ids[i] = newOrders("client-order-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.reserve("binance", "main", ids[i%len(ids)], now)
		if i%len(ids) == len(ids)-1 {
			now = now.Add(2 * time.Hour) // everything expires
		}
	}
}

// BenchmarkOrderIDsFull reports the heap a full cache of 1<<17 client order
// ids holds, per id.
func BenchmarkOrderIDsFull(b *testing.B) {
	const n = 1 << 17
	orders := make([][]exchange.Order, n)
	for i := range orders {
		orders[i] = newOrders("client-order-" + strconv.Itoa(i))
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newOrderIDs(time.Hour, n)
		now := time.Now()
		for i := range orders {
			c.reserve("binance", "main", orders[i], now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if held, _ := c.stats(); held != n {
			b.Fatalf("held %d ids, want %d", held, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/id")
		runtime.KeepAlive(c)
	}
}

// orderIDModel is the plain form of orderIDs: a map of live ids and a queue
// of every reservation in order, the oldest dropped when max are queued.
type orderIDModel struct {
	window time.Duration
	max    int
	m      map[string]int64
	queue  []struct {
		id string
		t  int64
	}
	evicted uint64
}

// drop forgets the oldest reservation; evict counts it when it was live.
func (m *orderIDModel) drop(evict bool) {
	e := m.queue[0]
	m.queue = m.queue[1:]
	if t, ok := m.m[e.id]; ok && t == e.t {
		delete(m.m, e.id)
		if evict {
			m.evicted++
		}
	}
}

func (m *orderIDModel) reserve(ids []string, now time.Time) bool {
	for len(m.queue) > 0 && now.UnixNano()-m.queue[0].t >= int64(m.window) {
		m.drop(false)
	}
	for i, id := range ids {
		if _, ok := m.m[id]; ok {
			return false
		}
		for _, o := range ids[:i] {
			if o == id {
				return false
			}
		}
	}
	for _, id := range ids {
		if len(m.queue) >= m.max {
			m.drop(true)
		}
		m.m[id] = now.UnixNano()
		m.queue = append(m.queue, struct {
			id string
			t  int64
		}{id, now.UnixNano()})
	}
	return true
}

// TestOrderIDsMatchModel runs random reservations (batches, repeats),
// releases and time steps through orderIDs and through orderIDModel and
// requires the same answers and counts throughout: ring growth, eviction
// when full, expiry and the index's deletions keep every live id findable.
func TestOrderIDsMatchModel(t *testing.T) {
	for _, max := range []int{1, 3, 100, 5000} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(max), 9))
			c := newOrderIDs(time.Minute, max)
			m := &orderIDModel{window: time.Minute, max: max, m: map[string]int64{}}
			now := time.Unix(1_700_000_000, 0)
			var used []string
			var last struct {
				ids []string
				at  time.Time
			}
			for op := range 30_000 {
				now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
				if rng.IntN(10) == 0 && last.ids != nil {
					// Release the last reservation, as settleOrderIDs does.
					c.release("v", "k", newOrders(last.ids...), last.at)
					for _, id := range last.ids {
						if t, ok := m.m[id]; ok && t == last.at.UnixNano() {
							delete(m.m, id)
						}
					}
					last.ids = nil
					continue
				}
				ids := make([]string, 1+rng.IntN(3))
				for i := range ids {
					if len(used) > 0 && rng.IntN(3) == 0 {
						ids[i] = used[len(used)-1-rng.IntN(min(len(used), 2*max+10))]
					} else {
						ids[i] = "o" + strconv.Itoa(op) + "-" + strconv.Itoa(i)
						used = append(used, ids[i])
					}
				}
				_, got := c.reserve("v", "k", newOrders(ids...), now)
				want := m.reserve(ids, now)
				if got != want {
					t.Fatalf("op %d: reserve %v = %v, want %v", op, ids, got, want)
				}
				if got {
					last.ids, last.at = ids, now
				}
				held, evicted := c.stats()
				if held != len(m.m) || evicted != m.evicted {
					t.Fatalf("op %d: held %d evicted %d, want %d and %d", op, held, evicted, len(m.m), m.evicted)
				}
			}
		})
	}
}
