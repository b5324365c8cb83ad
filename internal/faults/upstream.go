// Package faults is keywarden's fault-injection battery (spec/security.md
// §4 F-series). Its tests drive a real gateway, assembled by server.New as
// `keywarden serve` assembles it, against a venue simulator behind Upstream,
// a small handler that injects failures between the two: error statuses,
// Retry-After, hangs, trickled, huge, truncated and malformed bodies,
// connection resets and redirects. Upstream counts every request that
// reaches it, faulted or not, so a test can prove that the gateway never
// sent an order twice.
//
// Nothing in this package is used outside tests.
package faults

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is one scripted failure. Count is how many requests it applies to
// (0: every request until Clear). Path, when set, limits it to requests for
// that upstream path.
type Fault struct {
	Path       string
	Count      int
	Status     int    // answer with this status and Body
	Body       string // default: a small JSON error
	RetryAfter string // Retry-After header value
	Location   string // Location header (redirects)
	// Hang waits until the client gives up.
	Hang bool
	// Trickle sends Body one byte per Trickle, after a 200 header.
	Trickle time.Duration
	// Huge answers 200 with this many bytes of JSON-looking filler.
	Huge int64
	// Reset writes the headers and part of the body, then resets the
	// connection (RST, not FIN).
	Reset bool
	// Delay waits this long, then serves the request normally.
	Delay time.Duration
}

// maxHang bounds a Hang fault.
const maxHang = 30 * time.Second

// Hit is one request that reached Upstream.
type Hit struct {
	Method, Path string
	Faulted      bool
}

// Upstream wraps a venue simulator and injects faults in front of it. It is
// safe for concurrent use.
type Upstream struct {
	next http.Handler
	// hideLimits drops the venue's rate-limit headers, so the gateway
	// does not hold calls for a budget the load tests would use up.
	hideLimits atomic.Bool

	mu     sync.Mutex
	faults []Fault
	hits   []Hit
	sent   int64 // bytes of Huge answers written
}

// HugeSent returns how many bytes of Huge answers the client accepted.
func (u *Upstream) HugeSent() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent
}

// NewUpstream returns an Upstream serving next when no fault applies.
func NewUpstream(next http.Handler) *Upstream { return &Upstream{next: next} }

// HideLimits makes the venue stop reporting its rate-limit usage, as a
// venue with a far larger budget would (load tests).
func (u *Upstream) HideLimits(on bool) { u.hideLimits.Store(on) }

// noLimits drops Binance-style usage headers before they are written.
type noLimits struct {
	http.ResponseWriter
	wrote bool
}

func (w *noLimits) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	for k := range w.Header() {
		if strings.HasPrefix(k, "X-Mbx-Used-Weight") || strings.HasPrefix(k, "X-Mbx-Order-Count") {
			w.Header().Del(k)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noLimits) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// serveNext passes the request to the simulator.
func (u *Upstream) serveNext(w http.ResponseWriter, r *http.Request) {
	if u.hideLimits.Load() {
		w = &noLimits{ResponseWriter: w}
	}
	u.next.ServeHTTP(w, r)
}

// Inject queues f after any queued faults.
func (u *Upstream) Inject(f Fault) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.faults = append(u.faults, f)
}

// Clear removes every queued fault: the fault clears.
func (u *Upstream) Clear() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.faults = nil
}

// Hits returns every request received so far.
func (u *Upstream) Hits() []Hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Hit(nil), u.hits...)
}

// Count returns how many requests for method and path were received.
func (u *Upstream) Count(method, path string) int {
	n := 0
	for _, h := range u.Hits() {
		if h.Method == method && h.Path == path {
			n++
		}
	}
	return n
}

func (u *Upstream) take(path string) (Fault, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, f := range u.faults {
		if f.Path != "" && f.Path != path {
			continue
		}
		if f.Count > 0 {
			u.faults[i].Count--
			if u.faults[i].Count == 0 {
				u.faults = append(u.faults[:i], u.faults[i+1:]...)
			}
		}
		return f, true
	}
	return Fault{}, false
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: net/http notices a client that went away (and
	// cancels r's context) only once the body has been consumed.
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	f, ok := u.take(r.URL.Path)
	u.mu.Lock()
	u.hits = append(u.hits, Hit{Method: r.Method, Path: r.URL.Path, Faulted: ok && f.Delay == 0})
	u.mu.Unlock()
	if !ok {
		u.serveNext(w, r)
		return
	}
	switch {
	case f.Delay > 0:
		select {
		case <-time.After(f.Delay):
			u.serveNext(w, r)
		case <-r.Context().Done():
		}
	case f.Hang:
		select { // bounded, so a test that forgets a deadline still ends
		case <-r.Context().Done():
		case <-time.After(maxHang):
		}
	case f.Trickle > 0:
		body := f.Body
		if body == "" {
			body = `{"orderId":1,"status":"NEW","filler":"` + strings.Repeat("x", 64) + `"}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		for i := range len(body) {
			if _, err := w.Write([]byte{body[i]}); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
			select {
			case <-time.After(f.Trickle):
			case <-r.Context().Done():
				return
			}
		}
	case f.Huge > 0:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.FormatInt(f.Huge, 10))
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat(" ", 32<<10))
		for sent := int64(0); sent < f.Huge; {
			n := min(int64(len(chunk)), f.Huge-sent)
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
			u.mu.Lock()
			u.sent += n
			u.mu.Unlock()
		}
	case f.Reset:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"orderId":12345,"status":"NE`))
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close with RST
				}
				c.Close()
			}
		}
	default:
		body := f.Body
		if body == "" {
			body = `{"code":-1000,"msg":"injected fault ` + strconv.Itoa(f.Status) + `"}`
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(body))
	}
}
