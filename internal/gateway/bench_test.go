package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// BenchmarkServeHTTP measures the gateway's own work per request (verify,
// replay check, describe, policy, audit hand-off, sign, forward over a
// keep-alive loopback connection, scrub) with in-memory collaborators.
func BenchmarkServeHTTP(b *testing.B) { benchServeHTTP(b, false) }

// benchServeHTTP runs the order requests of BenchmarkServeHTTP, each with a
// fresh client order id when withClientOrderID is set.
func benchServeHTTP(b *testing.B, withClientOrderID bool) {
	h := &harness{up: &upstream{}, audit: &fakeAudit{}, policy: &fakePolicy{}}
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"symbol":"BTCUSDT","orderId":28,"status":"NEW"}`))
	}
	srv := httptest.NewServer(h.up)
	defer srv.Close()
	h2 := newHarnessFor(b, srv.URL, h)
	base := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := strconv.Itoa(i)
		q := "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100"
		if withClientOrderID {
			q += "&cid=c" + n
		}
		r := signed("POST", q+"&n="+n, "", clientSecret, base)
		w := httptest.NewRecorder()
		h2.gw.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if i%1024 == 0 {
			h.audit.mu.Lock()
			h.audit.intents, h.audit.outcomes = h.audit.intents[:0], h.audit.outcomes[:0]
			h.audit.mu.Unlock()
			h.up.mu.Lock()
			h.up.received, h.up.bodies = nil, nil
			h.up.mu.Unlock()
		}
	}
}

// BenchmarkCleanPath measures the path check every request passes.
func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !cleanPath("/api/v3/order/test") {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkReplayCacheFull measures the memory of a full replay cache.
func BenchmarkReplayCacheFull(b *testing.B) {
	for b.Loop() {
		c := newReplayCache(1<<19, time.Minute)
		now := time.Now()
		for i := 0; i < 1<<19; i++ {
			c.seen(&exchange.Request{RawQuery: strconv.Itoa(i), Header: http.Header{}}, now)
		}
	}
}
