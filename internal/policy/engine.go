package policy

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures an Engine.
type Options struct {
	// Policies are the compiled policies by name.
	Policies map[string]*Policy
	// Prices gives reference prices; nil means none are known, so policies
	// that need one deny orders unless they say unknown_price = "allow".
	Prices PriceSource
	// Now is the clock used when an Input carries no time. Without it, an
	// Input without a time is denied.
	Now func() time.Time
}

// Engine checks calls against named policies and keeps the state of their
// windows and open orders. It is safe for concurrent use.
type Engine struct {
	policies map[string]*Policy
	prices   PriceSource
	now      func() time.Time
	limiter  *Limiter

	allowed atomic.Uint64
	mu      sync.Mutex
	denied  map[string]uint64
}

// NewEngine returns an Engine over opts.Policies.
func NewEngine(opts Options) *Engine {
	return &Engine{
		policies: maps.Clone(opts.Policies),
		prices:   opts.Prices,
		now:      opts.Now,
		limiter:  NewLimiter(),
		denied:   map[string]uint64{},
	}
}

// Policy returns the policy called name, or nil.
func (e *Engine) Policy(name string) *Policy { return e.policies[name] }

// Limiter returns the engine's Limiter, for reporting fills and cancels.
func (e *Engine) Limiter() *Limiter { return e.limiter }

func (e *Engine) prepare(in *Input) {
	if in.Now.IsZero() && e.now != nil {
		in.Now = e.now()
	}
	if in.Prices == nil {
		in.Prices = e.prices
	}
}

// Check applies policy name to in: the pure rules, then the stateful ones.
// When the call is allowed it returns the reservation of its budget, which
// the caller must Commit or Release once the venue answered; the
// reservation may be nil when the call uses no budget. Otherwise the error
// is a *Denial. An unknown policy name is denied.
func (e *Engine) Check(name string, in Input) (*Reservation, error) {
	p := e.policies[name]
	if p == nil {
		return nil, e.count(&Denial{Policy: name, Rule: "policy", Reason: "no such policy"})
	}
	e.prepare(&in)
	var c checkCtx
	p.newCtx(&c, &in)
	for i := range p.rules {
		if _, d := p.eval(&p.rules[i], &c); d != nil {
			return nil, e.count(d)
		}
	}
	r, d := e.limiter.reserve(p, &c, true)
	if d != nil {
		return nil, e.count(d)
	}
	e.allowed.Add(1)
	return r, nil
}

func (e *Engine) count(d *Denial) *Denial {
	e.mu.Lock()
	e.denied[d.Rule]++
	e.mu.Unlock()
	return d
}

// Explain is Policy.Explain with the stateful rules evaluated against the
// engine's current state, without reserving anything.
func (e *Engine) Explain(name string, in Input) ([]RuleResult, error) {
	p := e.policies[name]
	if p == nil {
		return nil, &Denial{Policy: name, Rule: "policy", Reason: "no such policy"}
	}
	e.prepare(&in)
	out := p.Explain(in)
	var stateful []RuleResult
	for _, r := range out {
		if r.Reason != statefulReason {
			stateful = append(stateful, r)
		}
	}
	var c checkCtx
	p.newCtx(&c, &in)
	_, d := e.limiter.reserve(p, &c, false)
	reported := false
	for _, name := range p.statefulRules() {
		switch {
		case d != nil && d.Rule == name && !reported:
			reported = true
			stateful = append(stateful, RuleResult{Rule: name, Result: Deny, Reason: d.Reason})
		case d != nil:
			stateful = append(stateful, RuleResult{Rule: name, Result: NotApplicable, Reason: "not reached: " + d.Rule + " denied first"})
		default:
			stateful = append(stateful, RuleResult{Rule: name, Result: Allow})
		}
	}
	if d != nil && !reported {
		stateful = append(stateful, RuleResult{Rule: d.Rule, Result: Deny, Reason: d.Reason})
	}
	return stateful, nil
}

// Stats is a snapshot of the engine's decisions since it started.
type Stats struct {
	Allowed uint64
	// Denied counts denials by rule name.
	Denied map[string]uint64
}

// Stats returns a snapshot of the decision counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Allowed: e.allowed.Load(), Denied: maps.Clone(e.denied)}
}
