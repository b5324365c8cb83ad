package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// PriceSource gives the reference price of a symbol on a venue, in the
// symbol's quote currency. ok is false when no price is known; a price that
// is not positive counts as unknown. Implementations must be safe for
// concurrent use.
type PriceSource interface {
	LastPrice(venue, symbol string) (price float64, ok bool)
}

// Input is everything a policy decision depends on. Now is required: the
// package never reads the clock itself.
type Input struct {
	Call exchange.Call
	// Client is the client credential's identifier; Key is the name of the
	// exchange key the call will be signed with.
	Client string
	Key    string
	// Venue is the venue's name; empty means Call.Venue.
	Venue    string
	SourceIP netip.Addr
	Now      time.Time
	// CredentialExpires is when the client credential expires; zero means
	// never.
	CredentialExpires time.Time
	// Prices gives reference prices; nil means none are known.
	Prices PriceSource
}

func (in *Input) venue() string {
	if in.Venue != "" {
		return in.Venue
	}
	return in.Call.Venue
}

// Denial says why a policy refused a call. Rule is a stable name for
// metrics and tests ("scope", "symbol", "max_order_notional",
// "window_notional", "price_band", "withdraw_address", "trading_hours",
// "expr:NAME", "expired", ...); Reason is for people and names the limit and
// the offending value. Neither ever contains a secret.
type Denial struct {
	Policy string
	Rule   string
	Reason string
}

func (d *Denial) Error() string {
	return "policy " + strconv.Quote(d.Policy) + " denies the call: " + d.Reason
}

// Result is the outcome of one rule in Explain.
type Result string

// Rule outcomes.
const (
	Allow         Result = "allow"
	Deny          Result = "deny"
	NotApplicable Result = "n/a"
)

// RuleResult is one line of Explain.
type RuleResult struct {
	Rule   string
	Result Result
	Reason string
}

// ruleKind names a pure rule. Rules are dispatched with a switch rather
// than through function values so that a check's scratch state stays on
// the stack.
type ruleKind int

const (
	ruleClock ruleKind = iota
	ruleExpired
	ruleVenue
	ruleSourceIP
	ruleScope
	ruleEndpoint
	ruleTradingHours
	ruleSymbol
	ruleOrderType
	ruleSide
	ruleMaxQty
	ruleRefPrice
	ruleMaxNotional
	rulePriceBand
	ruleWithdraw
	ruleExpr // one per expression; see rule.expr
)

var ruleNames = [...]string{
	ruleClock:        "clock",
	ruleExpired:      "expired",
	ruleVenue:        "venue",
	ruleSourceIP:     "source_ip",
	ruleScope:        "scope",
	ruleEndpoint:     "endpoint",
	ruleTradingHours: "trading_hours",
	ruleSymbol:       "symbol",
	ruleOrderType:    "order_type",
	ruleSide:         "side",
	ruleMaxQty:       "max_order_qty",
	ruleRefPrice:     "reference_price",
	ruleMaxNotional:  "max_order_notional",
	rulePriceBand:    "price_band",
	ruleWithdraw:     "withdraw_address",
}

type rule struct {
	kind ruleKind
	name string
	expr int // index into Policy.exprs for ruleExpr
}

type window struct {
	dur         time.Duration
	maxNotional units
	maxOrders   int
	perKey      bool
}

type hours struct {
	days     [7]bool // indexed by time.Weekday
	from, to int     // minutes after midnight; to may be 1440
	loc      *time.Location
}

type address struct {
	asset, network, address, memo string
	evm                           bool
	maxAmount                     float64
	addedAt                       time.Time
}

// Policy is a compiled, validated Definition. It is immutable and safe for
// concurrent use.
type Policy struct {
	name string

	scopes      [8]bool // indexed like exchange.Scopes
	scopeList   string
	venues      []string
	endpoints   globList
	symbols     globList
	denySymbols globList
	orderTypes  []string
	sides       []string
	maxQty      float64
	maxNotional units
	currency    string
	windows     []window
	maxOpen     int
	band        float64
	hours       []hours
	ips         []netip.Prefix
	addresses   []address
	cooldown    time.Duration
	exprs       []compiledExpr
	allExprs    exprProgram // conjunction of exprs; nil for fewer than two
	allowNoRef  bool
	// needsNotional is set when a cap needs every order's notional.
	needsNotional bool

	rules []rule
}

// Name returns the policy's name.
func (p *Policy) Name() string { return p.name }

// maxOrders is the largest batch handled with stack scratch space; larger
// batches spill to the heap.
const stackOrders = 8

// orderValue is what a check learns about one order, computed once.
type orderValue struct {
	done     bool
	ref      float64 // reference price; 0 when unknown
	refKnown bool
	notional units
	known    bool // notional is known
}

// checkCtx is the scratch state of one check.
type checkCtx struct {
	in *Input
	// Order values live in buf for small calls and in spill for big
	// batches. (A slice of buf kept in the struct would force the whole
	// context onto the heap.)
	buf   [stackOrders]orderValue
	spill []orderValue

	vars         *exprVars // built by the first expression
	exprsChecked bool      // the conjunction of all expressions ran
	exprsPassed  bool      // and was true
}

func (p *Policy) newCtx(c *checkCtx, in *Input) {
	c.in = in
	if n := len(in.Call.Orders); n > stackOrders {
		c.spill = make([]orderValue, n)
	}
}

// value returns what is known about order i: its reference price and its
// notional. A limit order's notional is quantity*price, raised to
// quantity*reference when the reference is higher (a sell limited far below
// the market fills at the market). A market order sized in the quote
// currency is that amount; one sized in base needs the reference price.
func (c *checkCtx) value(i int) *orderValue {
	var v *orderValue
	if c.spill != nil {
		v = &c.spill[i]
	} else {
		v = &c.buf[i]
	}
	if v.done {
		return v
	}
	v.done = true
	o := &c.in.Call.Orders[i]
	if c.in.Prices != nil && o.Symbol != "" {
		if ref, ok := c.in.Prices.LastPrice(c.in.venue(), o.Symbol); ok && ref > 0 && ref < 1e300 {
			v.ref, v.refKnown = ref, true
		}
	}
	switch {
	case o.Contracts:
		// A contract's value needs its multiplier, which the request does
		// not carry: only a notional the venue's own fields state counts.
		if o.QuoteQuantity > 0 {
			v.notional, v.known = toUnits(o.QuoteQuantity), true
		} else if o.Notional > 0 {
			v.notional, v.known = toUnits(o.Notional), true
		}
	case o.Quantity > 0 && o.Price > 0:
		n := o.Quantity * o.Price
		if v.refKnown && v.ref > o.Price {
			n = o.Quantity * v.ref
		}
		v.notional, v.known = toUnits(n), true
	case o.Quantity > 0 && v.refKnown:
		v.notional, v.known = toUnits(o.Quantity*v.ref), true
	case o.Quantity <= 0 && o.QuoteQuantity > 0:
		v.notional, v.known = toUnits(o.QuoteQuantity), true
	case o.Quantity <= 0 && o.Notional > 0:
		v.notional, v.known = toUnits(o.Notional), true
	}
	return v
}

// places reports whether o opens or changes exposure. Anything that is not
// plainly a cancel counts, so an unknown action is checked like a new order.
func places(o *exchange.Order) bool { return o.Action != exchange.ActionCancel }

// Check applies the policy's pure rules to in and returns the first denial,
// or nil when they all allow the call. The stateful rules (windows and open
// orders) are the Limiter's; use Engine.Check to apply both.
func (p *Policy) Check(in Input) *Denial {
	var c checkCtx
	p.newCtx(&c, &in)
	for i := range p.rules {
		if _, d := p.eval(&p.rules[i], &c); d != nil {
			return d
		}
	}
	return nil
}

// Explain applies every rule to in and reports each one, for dry runs. The
// stateful rules are reported as not applicable here; Engine.Explain
// evaluates them against the engine's state.
func (p *Policy) Explain(in Input) []RuleResult {
	var c checkCtx
	p.newCtx(&c, &in)
	out := make([]RuleResult, 0, len(p.rules)+len(p.windows)+1)
	for i := range p.rules {
		r := &p.rules[i]
		applies, d := p.eval(r, &c)
		switch {
		case d != nil:
			out = append(out, RuleResult{Rule: d.Rule, Result: Deny, Reason: d.Reason})
		case applies:
			out = append(out, RuleResult{Rule: r.name, Result: Allow})
		default:
			out = append(out, RuleResult{Rule: r.name, Result: NotApplicable})
		}
	}
	for _, name := range p.statefulRules() {
		out = append(out, RuleResult{Rule: name, Result: NotApplicable, Reason: statefulReason})
	}
	return out
}

func (p *Policy) statefulRules() []string {
	var names []string
	for _, w := range p.windows {
		if w.maxNotional > 0 {
			names = append(names, "window_notional")
		}
		if w.maxOrders > 0 {
			names = append(names, "window_orders")
		}
	}
	if p.maxOpen > 0 {
		names = append(names, "max_open_orders")
	}
	return names
}

func (p *Policy) deny(rule, format string, args ...any) *Denial {
	return &Denial{Policy: p.name, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// eval applies one rule. applies is false when the rule has nothing to say
// about this call.
func (p *Policy) eval(r *rule, c *checkCtx) (applies bool, d *Denial) {
	in := c.in
	call := &in.Call
	switch r.kind {
	case ruleClock:
		if in.Now.IsZero() {
			return true, p.deny(r.name, "no time given for the check")
		}
		return true, nil

	case ruleExpired:
		if in.CredentialExpires.IsZero() {
			return false, nil
		}
		if !in.Now.Before(in.CredentialExpires) {
			return true, p.deny(r.name, "credential expired %s ago (at %s)",
				fmtDur(in.Now.Sub(in.CredentialExpires)), in.CredentialExpires.UTC().Format(time.RFC3339))
		}
		return true, nil

	case ruleVenue:
		v := in.venue()
		for _, want := range p.venues {
			if asciiEqualFold(want, v) {
				return true, nil
			}
		}
		return true, p.deny(r.name, "venue %q is not allowed (venues: %s)", exchange.SafeName(v), strings.Join(p.venues, ", "))

	case ruleSourceIP:
		ip := in.SourceIP.Unmap()
		for _, pf := range p.ips {
			if ip.IsValid() && pf.Contains(ip) {
				return true, nil
			}
		}
		return true, p.deny(r.name, "source address %s is not in source_ips", in.SourceIP)

	case ruleScope:
		if call.Scope == exchange.ScopePublic {
			return true, nil
		}
		for i, s := range exchange.Scopes {
			if s == call.Scope {
				if p.scopes[i] {
					return true, nil
				}
				break
			}
		}
		return true, p.deny(r.name, "scope %s is not allowed (scopes: %s)", exchange.SafeName(string(call.Scope)), p.scopeList)

	case ruleEndpoint:
		if call.Scope == exchange.ScopePublic {
			return false, nil
		}
		if p.endpoints.match(call.Endpoint) {
			return true, nil
		}
		return true, p.deny(r.name, "endpoint %q is not in endpoints", exchange.SafeName(call.Endpoint))

	case ruleTradingHours:
		if !movesRisk(call) {
			return false, nil
		}
		for _, h := range p.hours {
			if h.contains(in.Now) {
				return true, nil
			}
		}
		return true, p.deny(r.name, "%s is outside trading_hours", in.Now.UTC().Format("Mon 2006-01-02 15:04 MST"))

	case ruleSymbol:
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) && o.Symbol == "" {
				continue
			}
			applies = true
			for _, g := range p.denySymbols {
				if g.match(o.Symbol) {
					return true, p.deny(r.name, "symbol %s is denied by deny_symbols %q", exchange.SafeName(o.Symbol), g.pattern)
				}
			}
			if len(p.symbols) > 0 && !p.symbols.match(o.Symbol) {
				return true, p.deny(r.name, "symbol %s is not in symbols", exchange.SafeName(o.Symbol))
			}
		}
		return applies, nil

	case ruleOrderType, ruleSide:
		allowed, field := p.orderTypes, "order_types"
		if r.kind == ruleSide {
			allowed, field = p.sides, "sides"
		}
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) {
				continue
			}
			applies = true
			got := o.Type
			if r.kind == ruleSide {
				got = string(o.Side)
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return asciiEqualFold(a, got) }) {
				what := "order type"
				if r.kind == ruleSide {
					what = "side"
				}
				if got == "" {
					return true, p.deny(r.name, "%s of the order on %s is unknown (%s: %s)", what, exchange.SafeName(o.Symbol), field, strings.Join(allowed, ", "))
				}
				return true, p.deny(r.name, "%s %s is not allowed (%s: %s)", what, exchange.SafeName(got), field, strings.Join(allowed, ", "))
			}
		}
		return applies, nil

	case ruleMaxQty:
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) || o.Quantity == 0 {
				continue
			}
			applies = true
			if !(o.Quantity <= p.maxQty) { // NaN never passes
				return true, p.deny(r.name, "order quantity %s %s exceeds max_order_qty %s", fmtNum(o.Quantity), exchange.SafeName(o.Symbol), fmtNum(p.maxQty))
			}
		}
		return applies, nil

	case ruleRefPrice:
		// The rules that need a reference price are the notional caps (for
		// orders sized in base without a price) and the price band (for
		// every priced order).
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) {
				continue
			}
			v := c.value(i)
			need := (p.needsNotional && !v.known) || (p.band > 0 && o.Price != 0)
			if !need {
				continue
			}
			applies = true
			if !v.refKnown {
				return true, p.deny(r.name, "no reference price for %s", exchange.SafeName(o.Symbol))
			}
		}
		return applies, nil

	case ruleMaxNotional:
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) {
				continue
			}
			v := c.value(i)
			if !v.known {
				if p.allowNoRef {
					continue
				}
				if o.Contracts {
					return true, p.deny(r.name, "order on %s is sized in contracts of unknown value; cannot check max_order_notional", exchange.SafeName(o.Symbol))
				}
				return true, p.deny(r.name, "order on %s has no known size or price; cannot check max_order_notional", exchange.SafeName(o.Symbol))
			}
			applies = true
			if v.notional > p.maxNotional {
				return true, p.deny(r.name, "order notional %s%s exceeds max_order_notional %s", v.notional, p.cur(), p.maxNotional)
			}
			if v.notional >= p.maxNotional-1 {
				// At the cap to within float64 and unit rounding: decide on
				// the exact decimals where the request gave them.
				if exact, over := exactOver(o, v, p.maxNotional); over {
					return true, p.deny(r.name, "order notional %s%s exceeds max_order_notional %s", exact, p.cur(), p.maxNotional)
				}
			}
		}
		return applies, nil

	case rulePriceBand:
		applies := false
		for i := range call.Orders {
			o := &call.Orders[i]
			if !places(o) || o.Price == 0 {
				continue
			}
			v := c.value(i)
			if !v.refKnown {
				continue // reference_price denied already unless unknown_price = "allow"
			}
			applies = true
			dev := (o.Price - v.ref) / v.ref * 100
			if !(dev <= p.band && -dev <= p.band) { // NaN never passes
				dir := "above"
				if dev < 0 {
					dir, dev = "below", -dev
				}
				return true, p.deny(r.name, "limit price %s on %s is %s%% %s reference price %s (price_band_pct %s)",
					fmtNum(o.Price), exchange.SafeName(o.Symbol), fmtPct(dev), dir, fmtNum(v.ref), fmtNum(p.band))
			}
		}
		return applies, nil

	case ruleWithdraw:
		if call.Scope != exchange.ScopeWithdraw {
			return false, nil
		}
		return true, p.checkWithdraw(r.name, in)

	case ruleExpr:
		return true, p.evalExpr(r, c)
	}
	return true, p.deny("internal", "unknown rule")
}

func (p *Policy) cur() string {
	if p.currency == "" {
		return ""
	}
	return " " + p.currency
}

// movesRisk reports whether a call places or amends an order or moves
// funds: the calls trading hours restrict. Reads and cancels are allowed at
// any hour.
func movesRisk(call *exchange.Call) bool {
	switch call.Scope {
	case exchange.ScopeTransfer, exchange.ScopeWithdraw:
		return true
	}
	for i := range call.Orders {
		if places(&call.Orders[i]) {
			return true
		}
	}
	return false
}

func (h *hours) contains(now time.Time) bool {
	t := now.In(h.loc)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if h.from < h.to {
		return h.days[day] && h.from <= m && m < h.to
	}
	// The span crosses midnight and belongs to the day it starts on.
	prev := (day + 6) % 7
	return (h.days[day] && m >= h.from) || (h.days[prev] && m < h.to)
}

func (p *Policy) checkWithdraw(rule string, in *Input) *Denial {
	t := in.Call.Transfer
	if t == nil || t.Address == "" {
		return p.deny(rule, "withdrawal destination is unknown")
	}
	dest := fmt.Sprintf("%s to %s", exchange.SafeName(t.Asset), exchange.SafeName(t.Address))
	if t.Network != "" {
		dest += " on " + exchange.SafeName(t.Network)
	}
	if t.Memo != "" {
		dest += " with memo " + exchange.SafeName(t.Memo)
	}
	for i := range p.addresses {
		a := &p.addresses[i]
		if !a.matches(t) {
			continue
		}
		if p.cooldown > 0 {
			if age := in.Now.Sub(a.addedAt); age < p.cooldown {
				return p.deny(rule, "withdrawal %s: address added %s ago; cool-down %s", dest, fmtDur(age), fmtDur(p.cooldown))
			}
		}
		if a.maxAmount > 0 {
			if !(t.Amount > 0) {
				return p.deny(rule, "withdrawal %s: amount unknown; cannot check max_amount", dest)
			}
			if !(t.Amount <= a.maxAmount) {
				return p.deny(rule, "withdrawal amount %s %s exceeds max_amount %s for this address", fmtNum(t.Amount), exchange.SafeName(t.Asset), fmtNum(a.maxAmount))
			}
		}
		return nil
	}
	return p.deny(rule, "withdrawal %s is not in the withdraw allowlist", dest)
}

// matches compares every field: asset and network in any ASCII case,
// address exactly (EVM hex addresses in any case), memo exactly.
func (a *address) matches(t *exchange.Transfer) bool {
	if !asciiEqualFold(a.asset, t.Asset) || !asciiEqualFold(a.network, t.Network) || a.memo != t.Memo {
		return false
	}
	if a.evm {
		return isEVMAddress(t.Address) && asciiEqualFold(a.address, t.Address)
	}
	return a.address == t.Address
}

// isEVMAddress reports whether s is 0x followed by 40 hex digits. Such
// addresses carry their checksum in letter case (EIP-55), which venues
// accept in any case, so the allowlist compares them case-insensitively.
func isEVMAddress(s string) bool {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

const statefulReason = "stateful; evaluated by the engine"
