package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

const dashboardFile = "../../deploy/grafana/keywarden.json"

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	UID    string         `json:"uid"`
	Panels []grafanaPanel `json:"panels"`
	Templ  struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // rows
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// exprs returns every PromQL expression of the dashboard, by where it is.
func (d grafanaDashboard) exprs(t *testing.T) map[string]string {
	out := map[string]string{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				out[p.Title+"#"+string(rune('A'+i))] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templ.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query is neither an object nor a string", v.Name)
			}
			q.Query = s
		}
		out["$"+v.Name] = q.Query
	}
	return out
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promLabelVal = regexp.MustCompile(`\blabel_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names expr selects: identifiers that are
// not functions, aggregations, keywords, label names or Grafana variables.
func metricNames(expr string) []string {
	e := promLabelVal.ReplaceAllString(expr, "$1")
	e = promStrings.ReplaceAllString(e, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] == '.' || e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9') {
			continue // a variable, or the fraction or exponent of a number
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if promKeywords[strings.ToLower(id)] {
			continue
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (venue, decision) (rate(keywarden_requests_total{venue=~"$venue"}[$__rate_interval]))`, []string{"keywarden_requests_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / b_sum offset 5m`, []string{"a_bucket", "b_sum"}},
		{`label_values(keywarden_requests_total, venue)`, []string{"keywarden_requests_total"}},
		{`x_total > bool 1e3 and on (venue) y`, []string{"x_total", "y"}},
	}
	for _, tt := range tests {
		got := metricNames(tt.expr)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// registered returns every series name the metrics expose once each
// collector has seen data, histogram series included.
func registered(t *testing.T) map[string]bool {
	m := New(Options{
		Sealed:  func() bool { return false },
		Healthy: func() error { return nil },
		RateLimits: func() map[string]exchange.RateLimit {
			return map[string]exchange.RateLimit{"binance/main": {Used: 1, Limit: 10}}
		},
	})
	m.Observe(gateway.Observation{Venue: "binance", Scope: exchange.ScopeTrade, Decision: "deny", Rule: "scope",
		Overhead: time.Millisecond, Upstream: time.Millisecond})
	m.ObserveAuditCommit(1, time.Millisecond)
	m.CountAlert("rate_surge", "warning")
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+s] = true
			}
		}
	}
	return out
}

// TestDashboardQueriesRegisteredMetrics: every PromQL expression in the
// Grafana dashboard names only metrics this package registers, and every
// keywarden metric is on the dashboard.
func TestDashboardQueriesRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no uid or no panels", dashboardFile)
	}
	reg := registered(t)
	used := map[string]bool{}
	exprs := d.exprs(t)
	if len(exprs) < 10 {
		t.Fatalf("found only %d expressions in the dashboard", len(exprs))
	}
	for where, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, e)
		}
		for _, n := range names {
			if !reg[n] {
				t.Errorf("%s: %q queries %s, which keywarden does not register", where, e, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
		}
	}
	var missing []string
	for n := range reg {
		if strings.HasPrefix(n, "keywarden_") && !used[n] && !strings.HasSuffix(n, "_bucket") &&
			!strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	// The used and limit gauges are the raw figures behind the ratio the
	// dashboard plots.
	want := []string{NameRateLimitLimit, NameRateLimitUsed}
	if strings.Join(missing, ",") != strings.Join(want, ",") {
		t.Errorf("keywarden metrics not on the dashboard: %v, want only %v", missing, want)
	}
}
