// Package posture audits exchange API keys from the exchange's side: what a
// venue really lets a key do (withdraw? transfer? IP restriction?) compared
// with what the operator declared in the vault, plus the key's age, last
// use, venue-side expiry and duplicate registrations. It also holds the
// least-privilege key plans per venue and purpose (spec/exchanges.md §14.1)
// and renders compliance reports as Markdown, HTML or JSON.
//
// Evaluation is pure and clock-injected; Inspect is the one function that
// talks to a venue, through the venue's own Inspector and Signer. A
// Scheduler runs checks at an interval for keywarden serve, keeps each run
// in a History and alerts on what changed since the previous run.
package posture

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
)

// Severity ranks a finding, from informational to critical.
type Severity int

// Severities, in increasing order.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("posture: unknown severity %q", b)
}

// Finding codes.
const (
	CodeWithdraw     = "withdraw-undeclared"
	CodeTransfer     = "transfer-undeclared"
	CodeTrade        = "trade-undeclared"
	CodeNoIP         = "no-ip-restriction"
	CodeIPMismatch   = "ip-mismatch"
	CodeAge          = "key-age"
	CodeRotationDue  = "rotation-due-soon"
	CodeUnused       = "unused"
	CodeDuplicate    = "duplicate"
	CodeExpiry       = "venue-expiry"
	CodeInspectError = "inspect-failed"
	CodePermsUnknown = "permissions-unreported"
	CodeIPUnknown    = "ip-unreported"
)

// ipUnreported are exchanges whose self-inspection says nothing about IP
// restrictions (Coinbase's key_permissions has no IP field).
func ipUnreported(exchange string) bool { return exchange == "coinbase" }

// ipListed says whether ip is in list, whose entries are addresses or CIDR
// prefixes.
func ipListed(list []string, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return slices.Contains(list, ip)
	}
	for _, e := range list {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			if pfx.Contains(addr) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil && a == addr {
			return true
		}
	}
	return false
}

// Finding is one problem with one key. It never holds a secret.
type Finding struct {
	Key      string   `json:"key"` // "exchange/name"
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Policy holds the thresholds of a posture check. Zero durations disable
// the matching check.
type Policy struct {
	MaxAge      time.Duration // rotate keys older than this
	WarnBefore  time.Duration // warn this long before MaxAge
	UnusedAfter time.Duration // keys unused this long are findings
	ExpiryLead  time.Duration // warn this long before a venue-side expiry
	// EgressIPs are the gateway's outbound addresses; when set, a key's
	// venue allowlist must contain each of them.
	EgressIPs []string
}

// DefaultPolicy is 90-day rotation with a 14-day warning, 30 days unused
// and a 14-day venue-expiry lead.
func DefaultPolicy() Policy {
	const day = 24 * time.Hour
	return Policy{MaxAge: 90 * day, WarnBefore: 14 * day, UnusedAfter: 30 * day, ExpiryLead: 14 * day}
}

// Evaluate compares what the venue says about key (p) with what was
// declared, and checks the key's age, use and expiry against pol at now.
func Evaluate(key vault.KeyInfo, p exchange.KeyPosture, pol Policy, now time.Time) []Finding {
	var out []Finding
	add := func(code string, sev Severity, format string, args ...any) {
		out = append(out, Finding{Key: key.ID(), Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	declared := func(s exchange.Scope) bool { return slices.Contains(key.Scopes, string(s)) }
	if p.CanWithdraw && !declared(exchange.ScopeWithdraw) {
		add(CodeWithdraw, Critical, "the venue allows withdrawals but the key is not declared for withdraw")
	}
	if p.CanTransfer && !p.CanWithdraw && !declared(exchange.ScopeTransfer) && !declared(exchange.ScopeWithdraw) {
		add(CodeTransfer, High, "the venue allows transfers but the key is not declared for transfer")
	}
	if (p.CanTrade || p.CanFutures) && !declared(exchange.ScopeTrade) {
		add(CodeTrade, High, "the venue allows trading but the key is declared read-only")
	}
	if len(p.Permissions) == 0 && !p.CanRead && !p.CanTrade && !p.CanTransfer && !p.CanWithdraw {
		add(CodePermsUnknown, Info, "the venue's self-inspection does not report permissions; check them in its web interface")
	}
	switch {
	case ipUnreported(key.Exchange):
		add(CodeIPUnknown, Info, "the venue's self-inspection does not report IP restrictions; check them in its web interface")
	case !p.IPRestricted:
		add(CodeNoIP, High, "the key has no IP allowlist at the venue")
	case len(pol.EgressIPs) > 0 && len(p.IPs) > 0:
		var missing []string
		for _, ip := range pol.EgressIPs {
			if !ipListed(p.IPs, ip) {
				missing = append(missing, ip)
			}
		}
		if len(missing) > 0 {
			add(CodeIPMismatch, Medium, "the venue allowlist lacks the gateway's egress address(es) %v", missing)
		}
	}
	out = append(out, Lifecycle(key, pol, now)...)
	if !p.Expires.IsZero() && pol.ExpiryLead > 0 {
		if left := p.Expires.Sub(now); left <= pol.ExpiryLead {
			add(CodeExpiry, Medium, "the venue expires the key on %s", p.Expires.UTC().Format(time.DateOnly))
		}
	}
	return out
}

// Lifecycle checks the local metadata only: age against the rotation
// policy and last use. It needs no venue call.
func Lifecycle(key vault.KeyInfo, pol Policy, now time.Time) []Finding {
	var out []Finding
	add := func(code string, sev Severity, format string, args ...any) {
		out = append(out, Finding{Key: key.ID(), Code: code, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	born := key.Rotated
	if born.IsZero() {
		born = key.Created
	}
	if pol.MaxAge > 0 && !born.IsZero() {
		age := now.Sub(born)
		switch {
		case age > pol.MaxAge:
			add(CodeAge, Medium, "the key is %d days old, over the %d-day rotation policy", days(age), days(pol.MaxAge))
		case pol.WarnBefore > 0 && age > pol.MaxAge-pol.WarnBefore:
			add(CodeRotationDue, Low, "the key is due for rotation on %s", born.Add(pol.MaxAge).UTC().Format(time.DateOnly))
		}
	}
	if pol.UnusedAfter > 0 {
		last := key.LastUsed
		if last.IsZero() {
			last = born
		}
		if !last.IsZero() && now.Sub(last) > pol.UnusedAfter {
			add(CodeUnused, Low, "the key has not been used for %d days", days(now.Sub(last)))
		}
	}
	return out
}

// Duplicates reports keys registered more than once: the same venue key
// (same exchange and fingerprint) under several names.
func Duplicates(keys []vault.KeyInfo) []Finding {
	groups := map[string][]string{}
	for _, k := range keys {
		if k.Fingerprint == "" {
			continue
		}
		g := k.Exchange + "\x00" + k.Fingerprint
		groups[g] = append(groups[g], k.ID())
	}
	var out []Finding
	for _, ids := range groups {
		if len(ids) < 2 {
			continue
		}
		slices.Sort(ids)
		for _, id := range ids {
			out = append(out, Finding{Key: id, Code: CodeDuplicate, Severity: High,
				Message: fmt.Sprintf("the same venue key is registered as %v", ids)})
		}
	}
	Sort(out)
	return out
}

// Sort orders findings by severity (worst first), then key, then code.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Code, b.Code))
	})
}

// Worst returns the highest severity among fs, or Info when fs is empty.
func Worst(fs []Finding) Severity {
	w := Info
	for _, f := range fs {
		w = max(w, f.Severity)
	}
	return w
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }
