package admin

import (
	"sync"
	"time"
)

// throttle limits failed logins per source address, on top of the
// per-account lockout in package operator: one address cannot guess
// across many accounts. It is safe for concurrent use.
type throttle struct {
	mu     sync.Mutex
	now    func() time.Time
	limit  int
	window time.Duration
	fails  map[string][]time.Time
}

// maxTracked bounds the addresses remembered; beyond it new addresses are
// not tracked (the per-account lockout still applies to them).
const maxTracked = 100_000

func newThrottle(now func() time.Time, limit int, window time.Duration) *throttle {
	return &throttle{now: now, limit: limit, window: window, fails: map[string][]time.Time{}}
}

// recent returns addr's failures within the window, dropping older ones.
func (t *throttle) recent(addr string) []time.Time {
	cut := t.now().Add(-t.window)
	f := t.fails[addr]
	i := 0
	for i < len(f) && !f[i].After(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.fails, addr)
	} else {
		t.fails[addr] = f
	}
	return f
}

// Blocked reports whether addr has reached the limit of failures.
func (t *throttle) Blocked(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recent(addr)) >= t.limit
}

// Fail records a failed login from addr.
func (t *throttle) Fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.recent(addr)
	if f == nil && len(t.fails) >= maxTracked {
		return
	}
	t.fails[addr] = append(f, t.now())
}
