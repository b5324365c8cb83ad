package posture

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
)

// KeyEntry is one key in a compliance report.
type KeyEntry struct {
	Key      vault.KeyInfo        `json:"key"`
	Status   string               `json:"status"` // active, revoked
	Posture  *exchange.KeyPosture `json:"posture,omitempty"`
	Findings []Finding            `json:"findings,omitempty"`
}

// Event is a rotation or revocation, done or due.
type Event struct {
	Key    string    `json:"key"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"` // rotated, rotation-due, revoked
	Reason string    `json:"reason,omitempty"`
}

// Snapshot is the count of findings by severity at one past audit.
type Snapshot struct {
	Time   time.Time      `json:"time"`
	Counts map[string]int `json:"counts"`
}

// Report is a compliance report: the key inventory with its posture,
// rotations done and due, revocations, and the findings over time.
type Report struct {
	Generated   time.Time  `json:"generated"`
	Policy      PolicyInfo `json:"policy"`
	Keys        []KeyEntry `json:"keys"`
	Rotations   []Event    `json:"rotations"`
	Revocations []Event    `json:"revocations"`
	History     []Snapshot `json:"history"`
}

// PolicyInfo is the rotation policy a report was checked against, in days.
type PolicyInfo struct {
	MaxAgeDays      int `json:"max_age_days"`
	UnusedAfterDays int `json:"unused_after_days"`
}

// NewPolicyInfo summarizes pol for a report.
func NewPolicyInfo(pol Policy) PolicyInfo {
	return PolicyInfo{MaxAgeDays: days(pol.MaxAge), UnusedAfterDays: days(pol.UnusedAfter)}
}

// Counts returns the report's current findings by severity name.
func (r *Report) Counts() map[string]int {
	c := map[string]int{}
	for _, k := range r.Keys {
		for _, f := range k.Findings {
			c[f.Severity.String()]++
		}
	}
	return c
}

// Render writes r to w as "md", "html" or "json".
func (r *Report) Render(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("render json: %w", err)
		}
		return nil
	case "md":
		_, err := io.WriteString(w, r.markdown())
		if err != nil {
			return fmt.Errorf("render md: %w", err)
		}
		return nil
	case "html":
		if err := reportHTML.Execute(w, r); err != nil {
			return fmt.Errorf("render html: %w", err)
		}
		return nil
	}
	return fmt.Errorf("render: unknown format %q (want md, html or json)", format)
}

func dateOf(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.DateOnly)
}

func permsOf(p *exchange.KeyPosture) string {
	if p == nil {
		return "not inspected"
	}
	var s []string
	for _, x := range []struct {
		ok   bool
		name string
	}{{p.CanRead, "read"}, {p.CanTrade, "trade"}, {p.CanFutures, "futures"}, {p.CanTransfer, "transfer"}, {p.CanWithdraw, "withdraw"}} {
		if x.ok {
			s = append(s, x.name)
		}
	}
	if len(s) == 0 {
		return "none reported"
	}
	return strings.Join(s, ", ")
}

func ipsOf(p *exchange.KeyPosture) string {
	switch {
	case p == nil:
		return "not inspected"
	case !p.IPRestricted:
		return "none"
	case len(p.IPs) == 0:
		return "restricted"
	}
	return strings.Join(p.IPs, ", ")
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# keywarden compliance report\n\nGenerated %s. Rotation policy: %d days; unused after %d days.\n\n",
		r.Generated.UTC().Format(time.RFC3339), r.Policy.MaxAgeDays, r.Policy.UnusedAfterDays)
	b.WriteString("## Inventory\n\n| key | status | declared | venue permissions | IP allowlist | created | rotated | last used |\n|---|---|---|---|---|---|---|---|\n")
	for _, k := range r.Keys {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(k.Key.ID()), k.Status, mdCell(strings.Join(k.Key.Scopes, ", ")),
			permsOf(k.Posture), mdCell(ipsOf(k.Posture)), dateOf(k.Key.Created), dateOf(k.Key.Rotated), dateOf(k.Key.LastUsed))
	}
	b.WriteString("\n## Findings\n\n")
	n := 0
	for _, k := range r.Keys {
		for _, f := range k.Findings {
			if n == 0 {
				b.WriteString("| severity | key | finding |\n|---|---|---|\n")
			}
			n++
			fmt.Fprintf(&b, "| %s | %s | %s |\n", f.Severity, mdCell(f.Key), mdCell(f.Message))
		}
	}
	if n == 0 {
		b.WriteString("None.\n")
	}
	events := func(title string, es []Event) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if len(es) == 0 {
			b.WriteString("None.\n")
			return
		}
		b.WriteString("| date | key | event | reason |\n|---|---|---|---|\n")
		for _, e := range es {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", dateOf(e.Time), mdCell(e.Key), e.Kind, mdCell(e.Reason))
		}
	}
	events("Rotations", r.Rotations)
	events("Revocations", r.Revocations)
	b.WriteString("\n## History\n\n")
	if len(r.History) == 0 {
		b.WriteString("None.\n")
	} else {
		b.WriteString("| date | critical | high | medium | low | info |\n|---|---|---|---|---|---|\n")
		for _, s := range r.History {
			c := s.Counts
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", dateOf(s.Time), c["critical"], c["high"], c["medium"], c["low"], c["info"])
		}
	}
	return b.String()
}

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"date": dateOf, "perms": permsOf, "ips": ipsOf, "join": strings.Join,
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keywarden compliance report</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}.critical,.high{color:#b00}</style>
</head><body>
<h1>keywarden compliance report</h1>
<p>Generated {{rfc3339 .Generated}}. Rotation policy: {{.Policy.MaxAgeDays}} days; unused after {{.Policy.UnusedAfterDays}} days.</p>
<h2>Inventory</h2>
<table><tr><th>key</th><th>status</th><th>declared</th><th>venue permissions</th><th>IP allowlist</th><th>created</th><th>rotated</th><th>last used</th></tr>
{{range .Keys}}<tr><td>{{.Key.ID}}</td><td>{{.Status}}</td><td>{{join .Key.Scopes ", "}}</td><td>{{perms .Posture}}</td><td>{{ips .Posture}}</td><td>{{date .Key.Created}}</td><td>{{date .Key.Rotated}}</td><td>{{date .Key.LastUsed}}</td></tr>
{{end}}</table>
<h2>Findings</h2>
<table><tr><th>severity</th><th>key</th><th>finding</th></tr>
{{range .Keys}}{{range .Findings}}<tr class="{{.Severity}}"><td>{{.Severity}}</td><td>{{.Key}}</td><td>{{.Message}}</td></tr>
{{end}}{{end}}</table>
<h2>Rotations</h2>
<table><tr><th>date</th><th>key</th><th>event</th><th>reason</th></tr>
{{range .Rotations}}<tr><td>{{date .Time}}</td><td>{{.Key}}</td><td>{{.Kind}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
<h2>Revocations</h2>
<table><tr><th>date</th><th>key</th><th>event</th><th>reason</th></tr>
{{range .Revocations}}<tr><td>{{date .Time}}</td><td>{{.Key}}</td><td>{{.Kind}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
<h2>History</h2>
<table><tr><th>date</th><th>critical</th><th>high</th><th>medium</th><th>low</th><th>info</th></tr>
{{range .History}}<tr><td>{{date .Time}}</td><td>{{index .Counts "critical"}}</td><td>{{index .Counts "high"}}</td><td>{{index .Counts "medium"}}</td><td>{{index .Counts "low"}}</td><td>{{index .Counts "info"}}</td></tr>
{{end}}</table>
</body></html>
`))
