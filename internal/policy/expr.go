package policy

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Expressions are CEL (github.com/google/cel-go), compiled once by Compile
// and evaluated with a cost limit. The variables visible to an expression:
//
//	call     map: venue, endpoint, method, path, scope (strings), orders (a
//	         list of maps with action, symbol, side, type, qty, price,
//	         quote_qty, notional, reduce_only) and transfer (a map with
//	         asset, amount, address, network, memo, destination; empty when
//	         the call moves no funds)
//	client   the client credential's identifier
//	key      the exchange key's name
//	ip       the caller's address, or ""
//	hour     the hour of day in UTC (int)
//	weekday  the day of week in UTC, 0 = Sunday (int)
//	now      the time of the check (timestamp)
//
// An order's notional is the one the notional caps use, or 0.0 when it is
// unknown. An expression must return bool; anything but true denies,
// including an evaluation error such as a missing map key.

// exprCostLimit bounds the work one expression may do per call. It is far
// above what a policy needs (a comprehension over a 20-order batch costs a
// few hundred) and far below what would slow the gateway.
const exprCostLimit = 10_000

// exprSizeHint is the size (string length, list length, map entries) up to
// which an expression's static cost estimate is trusted: an expression
// whose worst case over inputs of that size is within the cost limit runs
// without per-step cost tracking on such inputs, and with it on anything
// bigger.
const exprSizeHint = 256

// exprProgram is one compiled expression.
type exprProgram interface {
	eval(v *exprVars) (bool, error)
	// bounded reports whether the expression's static worst-case cost on
	// inputs within exprSizeHint is within its cost limit, so that on such
	// inputs it can never be stopped by the limit.
	bounded() bool
}

type compiledExpr struct {
	name string
	prg  exprProgram
}

// exprVars resolves expression variables for one check, building the call
// map once and only if an expression asks for it. It works on its own heap
// copy of the check's state, so that checks of policies without
// expressions keep theirs on the stack.
type exprVars struct {
	p    *Policy
	c    *checkCtx
	call lazyMap // vars set on first use
	// Values built once per check, on first use.
	orders, transfer, client, key ref.Val
	fits                          int8 // 0 unknown, 1 within exprSizeHint, -1 not
}

// fitsSizeHint reports whether every string and list an expression can
// see is within exprSizeHint.
func (v *exprVars) fitsSizeHint() bool {
	if v.fits == 0 {
		v.fits = -1
		if v.c.in.fitsSizeHint() {
			v.fits = 1
		}
	}
	return v.fits > 0
}

func (in *Input) fitsSizeHint() bool {
	const n = exprSizeHint
	call := &in.Call
	if len(call.Orders) > n || len(in.venue()) > n || len(call.Endpoint) > n || len(call.Method) > n ||
		len(call.Path) > n || len(call.Scope) > n || len(in.Client) > n || len(in.Key) > n {
		return false
	}
	for i := range call.Orders {
		o := &call.Orders[i]
		if len(o.Action) > n || len(o.Symbol) > n || len(o.Side) > n || len(o.Type) > n {
			return false
		}
	}
	if t := call.Transfer; t != nil {
		if len(t.Asset) > n || len(t.Address) > n || len(t.Network) > n || len(t.Memo) > n || len(t.Destination) > n {
			return false
		}
	}
	return true // ip is at most 39 characters
}

// exprState is everything an expression check keeps on the heap, in one
// allocation.
type exprState struct {
	vars exprVars
	in   Input
	c    checkCtx
}

func (c *checkCtx) exprVars(p *Policy) *exprVars {
	if c.vars == nil {
		st := &exprState{in: *c.in}
		st.c = checkCtx{in: &st.in, buf: c.buf}
		if c.spill != nil {
			st.c.spill = append([]orderValue(nil), c.spill...)
		}
		st.vars = exprVars{p: p, c: &st.c}
		c.vars = &st.vars
	}
	return c.vars
}

func (v *exprVars) resolve(name string) (any, bool) {
	in := v.c.in
	switch name {
	case "call":
		v.call.vars = v
		return &v.call, true
	case "client":
		if v.client == nil {
			v.client = types.String(in.Client)
		}
		return v.client, true
	case "key":
		if v.key == nil {
			v.key = types.String(in.Key)
		}
		return v.key, true
	case "ip":
		if !in.SourceIP.IsValid() {
			return "", true
		}
		return in.SourceIP.Unmap().String(), true
	case "hour":
		return int64(in.Now.UTC().Hour()), true
	case "weekday":
		return int64(in.Now.UTC().Weekday()), true
	case "now":
		return in.Now.UTC(), true
	}
	return nil, false
}

// compileExprs validates names and compiles each expression, and their
// conjunction when there are several.
func compileExprs(defs []ExprDef) ([]compiledExpr, exprProgram, []error) {
	if len(defs) == 0 {
		return nil, nil, nil
	}
	var out []compiledExpr
	var errs []error
	seen := map[string]bool{}
	for i, d := range defs {
		field := fmt.Sprintf("expressions[%d]", i)
		if d.Name == "" || !validName(d.Name) {
			errs = append(errs, fmt.Errorf("%s.name: invalid name %q", field, d.Name))
			continue
		}
		field += fmt.Sprintf(" (%s)", d.Name)
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate name", field))
			continue
		}
		seen[d.Name] = true
		prg, err := compileExpr(d.Expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.expr: %w", field, err))
			continue
		}
		out = append(out, compiledExpr{name: d.Name, prg: prg})
	}
	if len(errs) > 0 || len(out) < 2 {
		return out, nil, errs
	}
	// The conjunction stands in for the expressions one by one only where
	// none of them could have hit its own cost limit: the conjunction's
	// limit is their sum, so one expression over its limit could otherwise
	// pass inside it.
	for _, e := range out {
		if !e.prg.bounded() {
			return out, nil, nil
		}
	}
	// Each expression goes on lines of its own: CEL has line comments, and
	// a comment ending one expression must end before the next one starts,
	// or the conjunction would silently lose part of it.
	parts := make([]string, len(defs))
	for i, d := range defs {
		parts[i] = "(\n" + d.Expr + "\n)"
	}
	all, err := compileExprLimit(strings.Join(parts, " && "), uint64(len(defs))*exprCostLimit)
	if err != nil {
		// Cannot happen for expressions that compiled on their own; check
		// them one by one if it does.
		return out, nil, nil
	}
	return out, all, nil
}

// evalExpr runs one expression. Anything but a plain true denies.
//
// When a policy has several expressions, the first one evaluated runs
// their conjunction once: CEL's && is true only when every operand is
// true (an error or false anywhere makes it false or an error), so a true
// conjunction allows them all at the cost of one evaluation. It runs only
// on inputs within exprSizeHint, where no expression can exceed its own
// cost limit (compileExprs builds it only for bounded expressions).
// Otherwise each runs on its own, which also names the one that denies.
func (p *Policy) evalExpr(r *rule, c *checkCtx) *Denial {
	vars := c.exprVars(p)
	if p.allExprs != nil && !c.exprsChecked {
		c.exprsChecked = true
		if vars.fitsSizeHint() {
			if ok, err := p.allExprs.eval(vars); err == nil && ok {
				c.exprsPassed = true
			}
		}
	}
	if c.exprsPassed {
		return nil
	}
	e := &p.exprs[r.expr]
	ok, err := e.prg.eval(vars)
	if err != nil {
		return p.deny(r.name, "expression %s could not be evaluated: %v", e.name, err)
	}
	if !ok {
		return p.deny(r.name, "expression %s is false", e.name)
	}
	return nil
}
