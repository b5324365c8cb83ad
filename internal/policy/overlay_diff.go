package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// raised lists what after allows that before did not: caps and limits
// raised or removed, and allowlists widened.
func raised(before, after *Definition) []string {
	var out []string
	capRaised := func(field string, b, a float64) {
		if b > 0 && (a == 0 || a > b) {
			out = append(out, fmt.Sprintf("%s: %s -> %s", field, capText(b), capText(a)))
		}
	}
	capRaised("max_order_qty", before.MaxOrderQty, after.MaxOrderQty)
	capRaised("max_order_notional", before.MaxOrderNotional, after.MaxOrderNotional)
	capRaised("max_open_orders", float64(before.MaxOpenOrders), float64(after.MaxOpenOrders))
	capRaised("price_band_pct", before.PriceBandPct, after.PriceBandPct)
	for _, bw := range before.Windows {
		i := slices.IndexFunc(after.Windows, func(aw WindowDef) bool { return sameWindow(bw, aw) })
		field := fmt.Sprintf("windows[%s per %s]", bw.Duration, windowPer(bw))
		if i < 0 {
			out = append(out, field+": removed")
			continue
		}
		capRaised(field+".max_notional", bw.MaxNotional, after.Windows[i].MaxNotional)
		capRaised(field+".max_orders", float64(bw.MaxOrders), float64(after.Windows[i].MaxOrders))
	}
	bc, _ := time.ParseDuration(before.Withdraw.Cooldown)
	ac, _ := time.ParseDuration(after.Withdraw.Cooldown)
	if bc > 0 && ac < bc {
		out = append(out, fmt.Sprintf("withdraw.cooldown: %s -> %s", bc, ac))
	}
	for _, ba := range before.Withdraw.Addresses {
		i := slices.IndexFunc(after.Withdraw.Addresses, func(aa AddressDef) bool { return sameAddress(&ba, &aa) })
		if i >= 0 {
			capRaised(fmt.Sprintf("withdraw.addresses[%s %s].max_amount", ba.Asset, ba.Network), ba.MaxAmount, after.Withdraw.Addresses[i].MaxAmount)
		}
	}
	for _, s := range after.Scopes {
		if !slices.Contains(before.Scopes, s) {
			out = append(out, "scopes: +"+s)
		}
	}
	allow := func(field string, b, a []string) {
		if len(b) == 0 {
			return // no restriction before
		}
		if len(a) == 0 {
			out = append(out, field+": restriction removed")
			return
		}
		for _, x := range a {
			if !slices.Contains(b, x) {
				out = append(out, field+": +"+x)
			}
		}
	}
	allow("venues", before.Venues, after.Venues)
	allow("endpoints", before.Endpoints, after.Endpoints)
	allow("symbols", before.Symbols, after.Symbols)
	allow("order_types", before.OrderTypes, after.OrderTypes)
	allow("sides", before.Sides, after.Sides)
	allow("source_ips", before.SourceIPs, after.SourceIPs)
	if len(before.TradingHours) > 0 && !slices.EqualFunc(before.TradingHours, after.TradingHours, sameHours) {
		out = append(out, "trading_hours: changed")
	}
	for _, x := range before.DenySymbols {
		if !slices.Contains(after.DenySymbols, x) {
			out = append(out, "deny_symbols: -"+x)
		}
	}
	for _, e := range before.Expressions {
		if !slices.Contains(after.Expressions, e) {
			out = append(out, "expressions: -"+e.Name)
		}
	}
	if before.UnknownPrice != "allow" && after.UnknownPrice == "allow" {
		out = append(out, "unknown_price: allow")
	}
	return out
}

func capText(f float64) string {
	if f == 0 {
		return "none"
	}
	return fmtNum(f)
}

func windowPer(w WindowDef) string {
	if w.Per == "" {
		return "credential"
	}
	return w.Per
}

func sameWindow(a, b WindowDef) bool {
	da, _ := time.ParseDuration(a.Duration)
	db, _ := time.ParseDuration(b.Duration)
	return da == db && windowPer(a) == windowPer(b)
}

func sameHours(a, b HoursDef) bool {
	return slices.Equal(a.Days, b.Days) && a.From == b.From && a.To == b.To && a.TZ == b.TZ
}

// lineDiff is a line diff of a and b: lines only in a start with "-",
// lines only in b with "+"; common lines are left out.
func lineDiff(a, b string) string {
	x, y := splitLines(a), splitLines(b)
	// lcs[i][j] is the longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+" + y[j] + "\n")
			j++
		default:
			sb.WriteString("-" + x[i] + "\n")
			i++
		}
	}
	return sb.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
