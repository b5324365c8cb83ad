package policy

import "time"

// LongestWindow is the longest rolling window of any of the engine's
// policies, or 0 when none has one: how far back Restore needs history.
func (e *Engine) LongestWindow() time.Duration {
	var longest time.Duration
	for _, p := range e.policies {
		for _, w := range p.windows {
			longest = max(longest, w.dur)
		}
	}
	return longest
}

// Restore counts a call that policy name allowed at in.Now, before this
// engine started, in the policy's rolling windows, without checking any
// rule: a restart must not hand every credential a fresh budget. Calls must
// be restored in time order, before the engine checks new ones. A market
// order sized in base is counted with the reference price in in.Prices,
// and without notional when there is none. Open-order counts are not
// restored (the venue's open orders are the truth there).
func (e *Engine) Restore(name string, in Input) {
	p := e.policies[name]
	if p == nil || len(p.windows) == 0 || in.Now.IsZero() {
		return
	}
	e.prepare(&in)
	var c checkCtx
	p.newCtx(&c, &in)
	notional, orders, _ := p.usage(&c)
	if orders == 0 {
		return
	}
	l := e.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range p.windows {
		w := &p.windows[i]
		subject := in.Client
		if w.perKey {
			subject = in.Key
		}
		if subject == "" {
			continue
		}
		k := bucketKey{policy: p.name, window: i, perKey: w.perKey, subject: subject}
		b := l.windows[k]
		if b == nil {
			b = &bucket{}
			l.windows[k] = b
		}
		b.entries = append(b.entries, &entry{at: in.Now, notional: notional, orders: orders})
		b.notional += notional
		b.orders += orders
	}
}
