package faults

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Faults at the venue (spec/security.md §4 F1–F10). For each: the bot gets a
// clear answer, the order reached the venue at most once (the gateway never
// retries an order on its own), every allowed request has its intent and
// exactly one outcome, the audit chain verifies, and the next request after
// the fault clears succeeds.

// afterFault checks recovery: with the fault cleared, an order goes through.
func (r *rig) afterFault() {
	r.t.Helper()
	r.up.Clear()
	if err := r.waitHealthy(5 * time.Second); err != nil {
		r.t.Fatalf("gateway still unhealthy after the fault cleared: %v", err)
	}
	id, a := r.order()
	if a.err != nil || a.status != http.StatusOK {
		r.t.Fatalf("order after the fault cleared = %d %q %v, want 200", a.status, a.body, a.err)
	}
	if n := r.simOrders(id); n != 1 {
		r.t.Errorf("simulator holds %d orders %s after recovery, want 1", n, id)
	}
	r.checkTrails()
	r.verify()
}

func TestFault_F1_Venue5xx(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			r := newRig(t, rigOptions{})
			// An order: sent exactly once, answered 502 in Binance's
			// shape, saying the venue failed and the order's state is
			// unknown (Binance: 5xx = execution status unknown).
			r.up.Inject(Fault{Path: orderPath, Status: status, Count: 1})
			id, a := r.order()
			if a.err != nil {
				t.Fatal(a.err)
			}
			if a.status != http.StatusBadGateway {
				t.Errorf("order during a venue %d = %d %q, want 502", status, a.status, a.body)
			}
			_, msg := r.binanceError(a)
			if !strings.Contains(msg, strconv.Itoa(status)) || !strings.Contains(msg, "unknown") {
				t.Errorf("message %q does not name the venue's %d and the unknown order state", msg, status)
			}
			if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
				t.Errorf("the order reached the venue %d times, want exactly 1 (no automatic retry)", n)
			}
			if n := r.simOrders(id); n != 0 {
				t.Errorf("simulator holds %d orders after a 5xx, want 0", n)
			}
			// A cancel (DELETE) is sent once too.
			r.up.Inject(Fault{Path: orderPath, Status: status, Count: 1})
			if a := r.call(http.MethodDelete, orderPath, "symbol=BTCUSDT&origClientOrderId="+id, ""); a.status != http.StatusBadGateway {
				t.Errorf("cancel during a venue %d = %d %q, want 502", status, a.status, a.body)
			}
			if n := r.up.Count(http.MethodDelete, orderPath); n != 1 {
				t.Errorf("the cancel reached the venue %d times, want exactly 1", n)
			}
			// A read that fails once is retried and succeeds: the bot
			// sees the venue's 200.
			r.up.Inject(Fault{Path: accountPath, Status: status, Count: 1})
			if a := r.call(http.MethodGet, accountPath, "", ""); a.status != http.StatusOK {
				t.Errorf("account read after one venue %d = %d %q, want 200 on the retry", status, a.status, a.body)
			}
			if n := r.up.Count(http.MethodGet, accountPath); n != 2 {
				t.Errorf("the read reached the venue %d times, want 2 (one retry)", n)
			}
			// A read that keeps failing is sent 3 times (2 retries), then
			// answered 502.
			r.up.Inject(Fault{Path: accountPath, Status: status})
			a = r.call(http.MethodGet, accountPath, "", "")
			if a.status != http.StatusBadGateway {
				t.Errorf("account read during a lasting venue %d = %d %q, want 502", status, a.status, a.body)
			}
			if _, msg := r.binanceError(a); !strings.Contains(msg, "3 tries") {
				t.Errorf("message %q does not say the read was tried 3 times", msg)
			}
			if n := r.up.Count(http.MethodGet, accountPath); n != 5 {
				t.Errorf("the reads reached the venue %d times in all, want 5 (2 + 3)", n)
			}
			r.up.Clear()
			ts := r.checkTrails()
			bad, unknown := 0, 0
			for _, tr := range ts {
				if tr.intent && len(tr.outcomes) == 1 && tr.outcomes[0].Status == http.StatusBadGateway {
					bad++
					if strings.HasPrefix(tr.outcomes[0].Error, "unknown: ") {
						unknown++
					}
				}
			}
			if bad != 3 || unknown != 2 {
				t.Errorf("%d outcomes record 502 (%d unknown), want 3 (the order and cancel unknown)", bad, unknown)
			}
			r.afterFault()
		})
	}
}

// A venue in maintenance (503 with Retry-After): still 502, sent once even
// for a read (the venue named its wait), and the Retry-After is passed on.
func TestFault_F1_VenueMaintenance(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.up.Inject(Fault{Path: accountPath, Status: http.StatusServiceUnavailable, RetryAfter: "120", Count: 1,
		Body: `<html>maintenance</html>`})
	a := r.call(http.MethodGet, accountPath, "", "")
	if a.status != http.StatusBadGateway {
		t.Errorf("read during maintenance = %d %q, want 502", a.status, a.body)
	}
	r.binanceError(a)
	if ra := a.header.Get("Retry-After"); ra != "120" {
		t.Errorf("Retry-After = %q, want the venue's 120", ra)
	}
	if strings.Contains(a.body, "maintenance") {
		t.Errorf("the venue's own 5xx body reached the bot: %q", a.body)
	}
	if n := r.up.Count(http.MethodGet, accountPath); n != 1 {
		t.Errorf("the read reached the venue %d times, want 1 (the venue asked to wait)", n)
	}
	r.afterFault()
}

func TestFault_F2_VenueHangs(t *testing.T) {
	r := newRig(t, rigOptions{timeout: 500 * time.Millisecond})
	r.up.Inject(Fault{Path: orderPath, Hang: true, Count: 1})
	start := time.Now()
	id, a := r.order()
	took := time.Since(start)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != http.StatusGatewayTimeout {
		t.Errorf("order to a hanging venue = %d %q, want 504", a.status, a.body)
	}
	_, msg := r.binanceError(a)
	if !strings.Contains(msg, "unknown") {
		t.Errorf("timeout message %q does not say the order's state is unknown", msg)
	}
	if took > 5*time.Second {
		t.Errorf("the bot waited %v; the upstream deadline is 500ms", took)
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
		t.Errorf("the order reached the venue %d times, want 1 (no retry after a timeout)", n)
	}
	unknown := 0
	for _, tr := range r.checkTrails() {
		if tr.intent && len(tr.outcomes) == 1 && strings.HasPrefix(tr.outcomes[0].Error, "unknown") {
			unknown++
		}
	}
	if unknown != 1 {
		t.Errorf("%d outcomes recorded as unknown, want 1", unknown)
	}
	_ = id
	r.afterFault()
}

func TestFault_F3_TrickledBody(t *testing.T) {
	r := newRig(t, rigOptions{timeout: 600 * time.Millisecond})
	// Warm up the keep-alive pool so the goroutine baseline includes it.
	r.afterFault()
	before := runtime.NumGoroutine()
	r.up.Inject(Fault{Path: orderPath, Trickle: 50 * time.Millisecond, Count: 1})
	start := time.Now()
	_, a := r.order()
	took := time.Since(start)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != http.StatusGatewayTimeout && a.status != http.StatusBadGateway {
		t.Errorf("order with a trickled answer = %d %q, want 504 or 502", a.status, a.body)
	}
	r.binanceError(a)
	if took > 5*time.Second {
		t.Errorf("the total deadline did not hold: the bot waited %v", took)
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 2 {
		t.Errorf("orders reached the venue %d times, want 2 (warm-up and faulted, no retry)", n)
	}
	// Goroutines return to the baseline (bounded wait, not a threshold on
	// speed: the count must come back, however long that takes up to 10 s).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("goroutines %d, baseline %d: the trickled call left goroutines behind", n, before)
	}
	r.afterFault()
}

func TestFault_F4_HugeResponse(t *testing.T) {
	r := newRig(t, rigOptions{timeout: 10 * time.Second})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc
	// Sample the heap while the answer streams in, for its peak.
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	r.up.Inject(Fault{Path: orderPath, Huge: 100 << 20, Count: 1})
	start := time.Now()
	_, a := r.order()
	t.Logf("answered in %v", time.Since(start))
	close(stop)
	<-sampled
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != http.StatusBadGateway {
		t.Errorf("order with a 100 MB answer = %d, want 502", a.status)
	}
	_, msg := r.binanceError(a)
	if !strings.Contains(msg, "too large") {
		t.Errorf("message %q does not say the answer was too large", msg)
	}
	grown := int64(peak.Load()) - int64(heapBefore)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	retained := int64(ms.HeapAlloc) - int64(heapBefore)
	sent := r.up.HugeSent()
	t.Logf("100 MB answer: %d MiB accepted from the venue, heap peak +%d MiB while reading, %d MiB retained after GC",
		sent>>20, grown>>20, retained>>20)
	// The gateway stops reading at its cap and drops the connection: the
	// venue gets to write the cap plus what socket buffers hold.
	if sent >= 64<<20 {
		t.Errorf("the venue wrote %d MiB before the gateway stopped reading; the cap is 16 MiB", sent>>20)
	}
	// The heap peak includes garbage not yet collected (and differs with
	// the race detector), so it is a figure, not a check; the bytes the
	// venue got to write are the check.
	if retained > 32<<20 {
		t.Errorf("heap retained %d MiB after a 100 MB answer, want ≤32 MiB", retained>>20)
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
		t.Errorf("the order reached the venue %d times, want 1", n)
	}
	r.afterFault()
}

func TestFault_F5_Venue429RetryAfter(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.up.Inject(Fault{Path: orderPath, Status: http.StatusTooManyRequests, RetryAfter: "2", Count: 1,
		Body: `{"code":-1003,"msg":"Too many requests"}`})
	_, a := r.order()
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("order during a venue 429 = %d %q, want 429 relayed", a.status, a.body)
	}
	if a.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q, want the venue's 2", a.header.Get("Retry-After"))
	}
	hits := len(r.up.Hits())
	// During the window the gateway answers itself: 0 upstream calls.
	for range 5 {
		_, a := r.order()
		if a.status != http.StatusTooManyRequests {
			t.Errorf("order inside the Retry-After window = %d %q, want 429", a.status, a.body)
		}
		r.binanceError(a)
		if ra := a.header.Get("Retry-After"); ra == "" {
			t.Error("local 429 carries no Retry-After")
		}
	}
	if n := len(r.up.Hits()) - hits; n != 0 {
		t.Errorf("%d calls reached the venue inside its Retry-After window, want 0", n)
	}
	time.Sleep(2100 * time.Millisecond) // the venue's window, as it asked
	r.afterFault()
}

func TestFault_F6_Venue418(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.up.Inject(Fault{Path: orderPath, Status: http.StatusTeapot, RetryAfter: "1", Count: 1,
		Body: `{"code":-1003,"msg":"Way too many requests; IP banned"}`})
	_, a := r.order()
	if a.status != http.StatusTeapot {
		t.Fatalf("order during a venue 418 = %d, want 418 relayed", a.status)
	}
	hits := len(r.up.Hits())
	_, a = r.order()
	if a.status != http.StatusTooManyRequests && a.status != http.StatusTeapot {
		t.Errorf("order during the ban = %d %q, want a local 429", a.status, a.body)
	}
	if n := len(r.up.Hits()) - hits; n != 0 {
		t.Errorf("%d calls reached the venue during its ban, want 0 (circuit open)", n)
	}
	// The refusal is observed (what the monitor alerts on).
	r.mu.Lock()
	rules := map[string]int{}
	for _, o := range r.obs {
		rules[o.Rule]++
	}
	r.mu.Unlock()
	if rules["venue_rate_limit"] == 0 {
		t.Errorf("no observation with rule venue_rate_limit during the ban: %v", rules)
	}
	time.Sleep(1100 * time.Millisecond)
	r.afterFault()
}

func TestFault_F7_RedirectNotFollowed(t *testing.T) {
	var canary atomic.Int64
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { canary.Add(1) }))
	defer cs.Close()
	r := newRig(t, rigOptions{})
	// The bot's own client must not follow it either, to see what the
	// gateway answered.
	r.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		method, path, query string
		status              int
	}{
		{http.MethodPost, orderPath, "", http.StatusFound},
		{http.MethodGet, accountPath, "", http.StatusMovedPermanently},
		{http.MethodGet, accountPath, "", http.StatusTemporaryRedirect},
	} {
		r.up.Inject(Fault{Path: tc.path, Status: tc.status, Location: cs.URL + "/steal", Count: 1, Body: "moved"})
		before := r.up.Count(tc.method, tc.path)
		var a answer
		if tc.method == http.MethodPost {
			_, a = r.order()
		} else {
			a = r.call(tc.method, tc.path, tc.query, "")
		}
		if a.status != http.StatusBadGateway {
			t.Errorf("%s %s answered by a venue %d = %d %q, want 502", tc.method, tc.path, tc.status, a.status, a.body)
		}
		_, msg := r.binanceError(a)
		if !strings.Contains(msg, "redirect") {
			t.Errorf("message %q does not say the venue redirected", msg)
		}
		if loc := a.header.Get("Location"); loc != "" {
			t.Errorf("the venue's Location %q reached the bot", loc)
		}
		if strings.Contains(a.body, cs.URL) {
			t.Errorf("the redirect target reached the bot in the body %q", a.body)
		}
		if n := r.up.Count(tc.method, tc.path) - before; n != 1 {
			t.Errorf("%s %s reached the venue %d times, want 1 (a redirect is not a 5xx: no retry)", tc.method, tc.path, n)
		}
	}
	if canary.Load() != 0 {
		t.Errorf("the canary received %d connections: the redirect was followed", canary.Load())
	}
	r.afterFault()
}

func TestFault_F8_BadTLS(t *testing.T) {
	// A TLS upstream whose certificate no root trusts: the gateway's
	// transport verifies it and refuses, with no downgrade to plain HTTP.
	var hits atomic.Int64
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	r := newRig(t, rigOptions{upstream: u})
	_, a := r.order()
	if a.status != http.StatusBadGateway {
		t.Errorf("order to a self-signed venue = %d %q, want 502", a.status, a.body)
	}
	r.binanceError(a)
	if hits.Load() != 0 {
		t.Errorf("the untrusted venue received %d requests", hits.Load())
	}
	r.checkTrails()
	r.verify()
}

func TestFault_F9_MidBodyReset(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.up.Inject(Fault{Path: orderPath, Reset: true, Count: 1})
	_, a := r.order()
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.status != http.StatusBadGateway {
		t.Errorf("order with a reset answer = %d %q, want 502", a.status, a.body)
	}
	_, msg := r.binanceError(a)
	if !strings.Contains(msg, "unknown") {
		t.Errorf("message %q does not say the order's state is unknown", msg)
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
		t.Errorf("the order reached the venue %d times, want 1", n)
	}
	n502 := 0
	for _, tr := range r.checkTrails() {
		if tr.intent && len(tr.outcomes) == 1 && tr.outcomes[0].Status == http.StatusBadGateway {
			n502++
		}
	}
	if n502 != 1 {
		t.Errorf("%d outcomes recorded as 502, want 1", n502)
	}
	r.afterFault()
}

func TestFault_F9_ConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	u, _ := url.Parse("http://" + addr)
	r := newRig(t, rigOptions{upstream: u})
	_, a := r.order()
	if a.status != http.StatusBadGateway {
		t.Errorf("order to a closed port = %d %q, want 502", a.status, a.body)
	}
	r.binanceError(a)
	r.checkTrails()
	r.verify()
}

func TestFault_F10_MalformedJSON(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.up.Inject(Fault{Path: orderPath, Status: http.StatusOK, Body: `{"orderId":12,"status":`, Count: 1})
	_, a := r.order()
	if a.err != nil {
		t.Fatal(a.err)
	}
	// The gateway relays the venue's bytes; it does not decode the whole
	// answer, so a malformed one cannot crash it.
	if a.status != http.StatusOK || a.body != `{"orderId":12,"status":` {
		t.Errorf("malformed answer = %d %q, want relayed unchanged", a.status, a.body)
	}
	recorded := 0
	for _, tr := range r.checkTrails() {
		if tr.intent && len(tr.outcomes) == 1 && tr.outcomes[0].Status == http.StatusOK {
			recorded++
		}
	}
	if recorded != 1 {
		t.Errorf("%d outcomes recorded, want 1", recorded)
	}
	r.afterFault()
}
