package policy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Compile validates d and returns the policy called name. Every error names
// the field at fault. Compile is the only place expressions are parsed and
// checked; Check never compiles anything.
func Compile(name string, d Definition) (*Policy, error) {
	p, errs := compile(name, d)
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy %q: %w", name, errors.Join(errs...))
	}
	return p, nil
}

// CompileAll compiles every definition in defs, keyed by policy name.
func CompileAll(defs map[string]Definition) (map[string]*Policy, error) {
	out := make(map[string]*Policy, len(defs))
	var errs []error
	for name, d := range defs {
		p, err := Compile(name, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func compile(name string, d Definition) (*Policy, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if name == "" || !validName(name) {
		bad("name %q: want letters, digits, '-' and '_'", name)
	}
	p := &Policy{name: name}
	if len(exchange.Scopes) > len(p.scopes) {
		bad("internal: %d scopes known, policy holds %d", len(exchange.Scopes), len(p.scopes))
		return nil, errs
	}

	// Scopes: public is always allowed; nothing listed means read only.
	p.scopes[0] = true
	scopes := d.Scopes
	if len(scopes) == 0 {
		scopes = []string{string(exchange.ScopeRead)}
	}
	var listed []string
	for i, s := range scopes {
		sc, err := exchange.ParseScope(s)
		if err != nil {
			bad("scopes[%d]: %v", i, err)
			continue
		}
		for j, known := range exchange.Scopes {
			if known == sc {
				p.scopes[j] = true
			}
		}
		listed = append(listed, s)
	}
	p.scopeList = strings.Join(listed, ", ")

	for i, v := range d.Venues {
		if v == "" || !validName(v) {
			bad("venues[%d]: invalid venue name %q", i, v)
		}
		p.venues = append(p.venues, asciiLower(v))
	}
	var err error
	if p.endpoints, err = compileGlobs("endpoints", d.Endpoints, false); err != nil {
		bad("%v", err)
	}
	if p.symbols, err = compileGlobs("symbols", d.Symbols, true); err != nil {
		bad("%v", err)
	}
	if p.denySymbols, err = compileGlobs("deny_symbols", d.DenySymbols, true); err != nil {
		bad("%v", err)
	}
	for _, g := range append(append(globList{}, p.symbols...), p.denySymbols...) {
		if strings.ContainsAny(g.pattern, " \t") {
			bad("symbol pattern %q contains a space", g.pattern)
		}
	}
	for i, t := range d.OrderTypes {
		if t == "" || strings.ContainsAny(t, " *?") {
			bad("order_types[%d]: invalid order type %q", i, t)
		}
		p.orderTypes = append(p.orderTypes, asciiLower(t))
	}
	for i, s := range d.Sides {
		s = asciiLower(s)
		if s != string(exchange.Buy) && s != string(exchange.Sell) {
			bad("sides[%d]: unknown side %q (want buy or sell)", i, d.Sides[i])
		}
		p.sides = append(p.sides, s)
	}

	checkAmount := func(field string, v float64) {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s: %s must be a positive number or 0 for no cap", field, fmtNum(v))
		}
	}
	checkAmount("max_order_qty", d.MaxOrderQty)
	checkAmount("max_order_notional", d.MaxOrderNotional)
	checkAmount("price_band_pct", d.PriceBandPct)
	p.maxQty = d.MaxOrderQty
	p.maxNotional = toUnits(d.MaxOrderNotional)
	p.band = d.PriceBandPct
	if d.PriceBandPct >= 100 {
		bad("price_band_pct: %s is not a band (want less than 100)", fmtNum(d.PriceBandPct))
	}
	if d.NotionalCurrency != "" && !validName(d.NotionalCurrency) {
		bad("notional_currency: invalid currency %q", d.NotionalCurrency)
	}
	p.currency = d.NotionalCurrency
	p.needsNotional = p.maxNotional > 0

	for i, w := range d.Windows {
		field := fmt.Sprintf("windows[%d]", i)
		dur, err := parseDur(w.Duration)
		if err != nil {
			bad("%s.duration: %v", field, err)
		}
		checkAmount(field+".max_notional", w.MaxNotional)
		if w.MaxOrders < 0 {
			bad("%s.max_orders: %d must be positive or 0 for no cap", field, w.MaxOrders)
		}
		if w.MaxNotional == 0 && w.MaxOrders == 0 {
			bad("%s: set max_notional or max_orders", field)
		}
		per := w.Per
		switch per {
		case "", "credential", "key":
		default:
			bad("%s.per: %q (want credential or key)", field, per)
		}
		win := window{dur: dur, maxNotional: toUnits(w.MaxNotional), maxOrders: w.MaxOrders, perKey: per == "key"}
		if win.maxNotional > 0 {
			p.needsNotional = true
		}
		p.windows = append(p.windows, win)
	}

	if d.MaxOpenOrders < 0 {
		bad("max_open_orders: %d must be positive or 0 for no cap", d.MaxOpenOrders)
	}
	p.maxOpen = d.MaxOpenOrders

	for i, h := range d.TradingHours {
		ch, err := compileHours(h)
		if err != nil {
			bad("trading_hours[%d]: %v", i, err)
			continue
		}
		p.hours = append(p.hours, ch)
	}

	for i, s := range d.SourceIPs {
		pf, err := parsePrefix(s)
		if err != nil {
			bad("source_ips[%d]: %v", i, err)
			continue
		}
		p.ips = append(p.ips, pf)
	}

	if d.Withdraw.Cooldown != "" {
		if p.cooldown, err = parseDur(d.Withdraw.Cooldown); err != nil {
			bad("withdraw.cooldown: %v", err)
		}
	}
	for i, a := range d.Withdraw.Addresses {
		field := fmt.Sprintf("withdraw.addresses[%d]", i)
		if a.Asset == "" || !validName(a.Asset) {
			bad("%s.asset: invalid asset %q", field, a.Asset)
		}
		if a.Network != "" && !validName(a.Network) {
			bad("%s.network: invalid network %q", field, a.Network)
		}
		if a.Address == "" || strings.TrimSpace(a.Address) != a.Address || hasControl(a.Address) {
			bad("%s.address: invalid address %q", field, exchange.SafeName(a.Address))
		}
		if hasControl(a.Memo) || strings.TrimSpace(a.Memo) != a.Memo {
			bad("%s.memo: invalid memo", field)
		}
		checkAmount(field+".max_amount", a.MaxAmount)
		if p.cooldown > 0 && a.AddedAt.IsZero() {
			bad("%s.added_at: required when withdraw.cooldown is set", field)
		}
		p.addresses = append(p.addresses, address{
			asset: asciiLower(a.Asset), network: asciiLower(a.Network),
			address: a.Address, memo: a.Memo, evm: isEVMAddress(a.Address),
			maxAmount: a.MaxAmount, addedAt: a.AddedAt,
		})
		if p.addresses[i].evm {
			p.addresses[i].address = asciiLower(a.Address)
		}
	}
	if p.scopes[scopeIndex(exchange.ScopeWithdraw)] && len(p.addresses) == 0 {
		bad("scopes: withdraw needs at least one withdraw.addresses entry")
	}

	switch d.UnknownPrice {
	case "", "deny":
	case "allow":
		p.allowNoRef = true
	default:
		bad("unknown_price: %q (want deny or allow)", d.UnknownPrice)
	}

	exprs, all, exprErrs := compileExprs(d.Expressions)
	errs = append(errs, exprErrs...)
	p.exprs, p.allExprs = exprs, all

	if len(errs) > 0 {
		return nil, errs
	}
	p.buildRules()
	return p, nil
}

// buildRules lists the pure rules in the order Check applies them: cheap
// identity checks first, then order rules, then expressions.
func (p *Policy) buildRules() {
	add := func(k ruleKind) { p.rules = append(p.rules, rule{kind: k, name: ruleNames[k]}) }
	add(ruleClock)
	add(ruleExpired)
	if len(p.venues) > 0 {
		add(ruleVenue)
	}
	if len(p.ips) > 0 {
		add(ruleSourceIP)
	}
	add(ruleScope)
	if len(p.endpoints) > 0 {
		add(ruleEndpoint)
	}
	if len(p.hours) > 0 {
		add(ruleTradingHours)
	}
	if len(p.symbols) > 0 || len(p.denySymbols) > 0 {
		add(ruleSymbol)
	}
	if len(p.orderTypes) > 0 {
		add(ruleOrderType)
	}
	if len(p.sides) > 0 {
		add(ruleSide)
	}
	if p.maxQty > 0 {
		add(ruleMaxQty)
	}
	if !p.allowNoRef && (p.needsNotional || p.band > 0) {
		add(ruleRefPrice)
	}
	if p.maxNotional > 0 {
		add(ruleMaxNotional)
	}
	if p.band > 0 {
		add(rulePriceBand)
	}
	if p.scopes[scopeIndex(exchange.ScopeWithdraw)] {
		add(ruleWithdraw)
	}
	for i, e := range p.exprs {
		p.rules = append(p.rules, rule{kind: ruleExpr, name: "expr:" + e.name, expr: i})
	}
}

func scopeIndex(s exchange.Scope) int {
	for i, k := range exchange.Scopes {
		if k == s {
			return i
		}
	}
	panic("policy: unknown scope " + string(s))
}

func compileHours(h HoursDef) (hours, error) {
	var out hours
	if len(h.Days) == 0 {
		out.days = [7]bool{true, true, true, true, true, true, true}
	}
	for i, d := range h.Days {
		wd, ok := weekdays[asciiLower(d)]
		if !ok {
			return out, fmt.Errorf("days[%d]: unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", i, d)
		}
		out.days[wd] = true
	}
	var err error
	if out.from, err = parseClock(h.From, false); err != nil {
		return out, fmt.Errorf("from: %w", err)
	}
	if out.to, err = parseClock(h.To, true); err != nil {
		return out, fmt.Errorf("to: %w", err)
	}
	if out.from == out.to {
		return out, fmt.Errorf("from and to are both %s (for all day use from = \"00:00\", to = \"24:00\")", h.From)
	}
	tz := h.TZ
	if tz == "" {
		tz = "UTC"
	}
	if out.loc, err = time.LoadLocation(tz); err != nil {
		return out, fmt.Errorf("tz: unknown time zone %q", tz)
	}
	return out, nil
}

// parseClock parses "HH:MM" into minutes after midnight; "24:00" only when
// end is set.
func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, fmt.Errorf("%q is not a valid time of day", s)
	}
	return h*60 + m, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q", s)
		}
		if pf.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("prefix %q has a zone", s)
		}
		return pf.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validName accepts the identifiers used for policy, venue, asset and
// network names.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
