package faults

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
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
	for _, status := range []int{500, 502, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			r := newRig(t, rigOptions{})
			r.up.Inject(Fault{Path: orderPath, Status: status, Count: 1})
			id, a := r.order()
			if a.err != nil {
				t.Fatal(a.err)
			}
			// The venue's own error answer is relayed unchanged (its
			// status and body), so the bot's exchange client reads it as
			// it would from the venue itself.
			if a.status != status {
				t.Errorf("order during a venue %d = %d %q, want the venue's %d relayed", status, a.status, a.body, status)
			}
			r.binanceError(a)
			if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
				t.Errorf("the order reached the venue %d times, want exactly 1 (no automatic retry)", n)
			}
			if n := r.simOrders(id); n != 0 {
				t.Errorf("simulator holds %d orders after a 5xx, want 0", n)
			}
			// A read is not retried either (the spec allows ≤2 retries).
			r.up.Inject(Fault{Path: accountPath, Status: status, Count: 1})
			if a := r.call(http.MethodGet, accountPath, "", ""); a.status != status {
				t.Errorf("account read during a venue %d = %d, want %d", status, a.status, status)
			}
			if n := r.up.Count(http.MethodGet, accountPath); n < 1 || n > 3 {
				t.Errorf("the read reached the venue %d times, want 1 to 3", n)
			}
			ts := r.checkTrails()
			bad := 0
			for _, tr := range ts {
				if tr.intent && len(tr.outcomes) == 1 && tr.outcomes[0].Status == status {
					bad++
				}
			}
			if bad != 2 {
				t.Errorf("%d outcomes record status %d, want 2", bad, status)
			}
			r.afterFault()
		})
	}
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
	r.up.Inject(Fault{Path: orderPath, Status: http.StatusFound, Location: cs.URL + "/steal", Count: 1, Body: "moved"})
	_, a := r.order()
	if a.status != http.StatusFound && a.status != http.StatusBadGateway {
		t.Errorf("order answered by a redirect = %d %q, want the 302 relayed or 502", a.status, a.body)
	}
	if canary.Load() != 0 {
		t.Errorf("the canary received %d connections: the redirect was followed", canary.Load())
	}
	if loc := a.header.Get("Location"); strings.Contains(loc, cs.URL) {
		// Relaying the 302 is allowed; following it is not. A bot's
		// client could follow it, but it would carry only the client
		// credential, never the exchange key.
		t.Logf("302 relayed to the bot with Location %s", loc)
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
		t.Errorf("the order reached the venue %d times, want 1", n)
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
