package policy

import "maps"

// WithPolicies returns an Engine over ps that shares e's windows and
// open-order counts (which are kept by policy name), reference prices,
// clock and decision counters, so that a policy edited at run time keeps the budget its clients
// already used. Callers switch to the returned Engine; e stays valid for
// checks already under way.
func (e *Engine) WithPolicies(ps map[string]*Policy) *Engine {
	st := e.Stats()
	n := &Engine{
		policies: maps.Clone(ps),
		prices:   e.prices,
		now:      e.now,
		limiter:  e.limiter,
		denied:   st.Denied,
	}
	n.allowed.Store(st.Allowed)
	return n
}
