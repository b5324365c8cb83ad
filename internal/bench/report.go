package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of Run. It holds no secret.
type Report struct {
	Started     time.Time      `json:"started"`
	Host        Host           `json:"host"`
	Config      Config         `json:"config"`
	Runs        []RunResult    `json:"runs,omitempty"`
	Paths       []PathStats    `json:"paths,omitempty"`
	Comparisons []Comparison   `json:"comparisons,omitempty"`
	ClientsRun  *ClientsResult `json:"clients_run,omitempty"`
	// Flush is the disk's bare write+fdatasync latency, measured once per
	// round where the audit log lives; FlushFloor summarises it.
	Flush      []FlushSample `json:"flush_floor_runs,omitempty"`
	FlushFloor *FlushFloor   `json:"flush_floor,omitempty"`
	Goals      []Goal        `json:"goals"`
}

// FlushFloor is the median [min – max] over rounds of the bare flush's
// percentiles: the least a durable audit write can add to a request.
type FlushFloor struct {
	P50us Stat `json:"p50_us"`
	P99us Stat `json:"p99_us"`
}

// Host describes the machine the report comes from.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel,omitempty"`
	Nginx     string `json:"nginx,omitempty"`
}

// Config is how the run was bounded.
type Config struct {
	Rounds           int     `json:"rounds"`
	DurationMS       int64   `json:"duration_ms"`
	MaxRequests      int     `json:"max_requests"`
	Warmup           int     `json:"warmup_per_conn"`
	Conns            []int   `json:"conns"`
	BodyBytes        int     `json:"body_bytes"`
	DurableAudit     bool    `json:"durable_audit"`
	Clients          int     `json:"clients,omitempty"`
	ClientRate       float64 `json:"client_rate,omitempty"`
	ClientDurationMS int64   `json:"client_duration_ms,omitempty"`
	ClientConns      int     `json:"client_conns,omitempty"`
}

// RunResult is one measured run of one path at one connection count.
type RunResult struct {
	Round      int     `json:"round"`
	Path       string  `json:"path"`
	Conns      int     `json:"conns"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Non2xx     int     `json:"non_2xx"`
	FirstError string  `json:"first_error,omitempty"`
	ElapsedMS  float64 `json:"elapsed_ms"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	// MiddleCPUus is the CPU time (user+system) per request of the process
	// in the middle: the gateway for keywarden, master and workers for
	// nginx; nil for direct.
	MiddleCPUus *float64 `json:"middle_cpu_us_per_req,omitempty"`
	// LoadCPUus is the load generator's (the bench process's) CPU per
	// request and UpstreamCPUus the stub process's.
	LoadCPUus     float64 `json:"load_cpu_us_per_req"`
	UpstreamCPUus float64 `json:"upstream_cpu_us_per_req"`
	// GatewayRSS is the resident set after the run of the gateway process
	// on the path (the durable one for direct and nginx).
	GatewayRSS int64 `json:"gateway_rss_bytes"`
	// NewUpstreamConns counts connections the stub accepted during the
	// measured phase.
	NewUpstreamConns    int64   `json:"new_upstream_conns"`
	UpstreamConnsPerReq float64 `json:"upstream_conns_per_req"`
}

// Stat is a median with its range over rounds.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func statOf(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// PathStats summarizes one path at one connection count over rounds.
type PathStats struct {
	Path                string `json:"path"`
	Conns               int    `json:"conns"`
	Requests            int    `json:"requests"`
	Errors              int    `json:"errors"`
	RPS                 Stat   `json:"rps"`
	P50us               Stat   `json:"p50_us"`
	P99us               Stat   `json:"p99_us"`
	MiddleCPUus         *Stat  `json:"middle_cpu_us_per_req,omitempty"`
	LoadCPUus           Stat   `json:"load_cpu_us_per_req"`
	UpstreamCPUus       Stat   `json:"upstream_cpu_us_per_req"`
	GatewayRSSMB        Stat   `json:"gateway_rss_mb"`
	UpstreamConnsPerReq Stat   `json:"upstream_conns_per_req"`
	NewUpstreamConns    int64  `json:"new_upstream_conns"`
}

// Comparison pairs two paths in the same round: added latency is
// Path − Base, Ratio is Path's throughput over Base's.
type Comparison struct {
	Path     string `json:"path"`
	Base     string `json:"base"`
	Conns    int    `json:"conns"`
	AddedP50 Stat   `json:"added_p50_us"`
	AddedP99 Stat   `json:"added_p99_us"`
	Ratio    Stat   `json:"throughput_ratio"`
}

// ClientsResult is the RSS mode's outcome.
type ClientsResult struct {
	Clients      int     `json:"clients"`
	Conns        int     `json:"conns"`
	TargetRate   float64 `json:"target_rate"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	Non2xx       int     `json:"non_2xx"`
	FirstError   string  `json:"first_error,omitempty"`
	RPS          float64 `json:"rps"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	GatewayCPUus float64 `json:"gateway_cpu_us_per_req"`
	SetupMS      int64   `json:"setup_ms"`
	IdleRSS      int64   `json:"idle_rss_bytes"`
	EndRSS       int64   `json:"end_rss_bytes"`
	// PeakRSS is the gateway's highest RSS (VmHWM) from the end of its
	// set-up to the end of the load.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// NewUpstreamConns counts the connections the stub accepted from the
	// gateway during the measured phase.
	NewUpstreamConns int64 `json:"new_upstream_conns"`
}

// Goal is one performance goal checked against the run's medians.
type Goal struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	// Status is "met", "not met" or "not measured".
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// summarize fills Paths, Comparisons and Goals from Runs and ClientsRun.
func (r *Report) summarize() {
	type key struct {
		path  string
		conns int
	}
	by := map[key][]RunResult{}
	var order []key
	for _, run := range r.Runs {
		k := key{run.Path, run.Conns}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], run)
	}
	rank := map[string]int{PathDirect: 0, PathNginx: 1, PathKeywarden: 2, PathNoSync: 3}
	slices.SortStableFunc(order, func(a, b key) int {
		if a.conns != b.conns {
			return a.conns - b.conns
		}
		return rank[a.path] - rank[b.path]
	})
	r.Paths = nil
	for _, k := range order {
		runs := by[k]
		ps := PathStats{Path: k.path, Conns: k.conns}
		var rps, p50, p99, load, upcpu, rss, upc, mid []float64
		for _, x := range runs {
			ps.Requests += x.Requests
			ps.Errors += x.Errors + x.Non2xx
			ps.NewUpstreamConns += x.NewUpstreamConns
			rps = append(rps, x.RPS)
			p50 = append(p50, x.P50us)
			p99 = append(p99, x.P99us)
			load = append(load, x.LoadCPUus)
			upcpu = append(upcpu, x.UpstreamCPUus)
			rss = append(rss, mb(x.GatewayRSS))
			upc = append(upc, x.UpstreamConnsPerReq)
			if x.MiddleCPUus != nil {
				mid = append(mid, *x.MiddleCPUus)
			}
		}
		ps.RPS, ps.P50us, ps.P99us = statOf(rps), statOf(p50), statOf(p99)
		ps.LoadCPUus, ps.UpstreamCPUus = statOf(load), statOf(upcpu)
		ps.GatewayRSSMB, ps.UpstreamConnsPerReq = statOf(rss), statOf(upc)
		if len(mid) > 0 {
			s := statOf(mid)
			ps.MiddleCPUus = &s
		}
		r.Paths = append(r.Paths, ps)
	}
	r.Comparisons = nil
	pairs := [][2]string{{PathKeywarden, PathDirect}, {PathNginx, PathDirect}, {PathKeywarden, PathNginx},
		{PathNoSync, PathDirect}, {PathKeywarden, PathNoSync}}
	for _, c := range r.Config.Conns {
		for _, p := range pairs {
			cmp, ok := compare(r.Runs, p[0], p[1], c)
			if ok {
				r.Comparisons = append(r.Comparisons, cmp)
			}
		}
	}
	r.FlushFloor = nil
	if len(r.Flush) > 0 {
		var p50, p99 []float64
		for _, f := range r.Flush {
			p50 = append(p50, f.P50us)
			p99 = append(p99, f.P99us)
		}
		r.FlushFloor = &FlushFloor{P50us: statOf(p50), P99us: statOf(p99)}
	}
	r.Goals = r.goals()
}

// compare pairs path with base round by round at conns.
func compare(runs []RunResult, path, base string, conns int) (Comparison, bool) {
	b := map[int]RunResult{}
	for _, x := range runs {
		if x.Path == base && x.Conns == conns && x.Requests > 0 {
			b[x.Round] = x
		}
	}
	var d50, d99, ratio []float64
	for _, x := range runs {
		if x.Path != path || x.Conns != conns || x.Requests == 0 {
			continue
		}
		y, ok := b[x.Round]
		if !ok {
			continue
		}
		d50 = append(d50, x.P50us-y.P50us)
		d99 = append(d99, x.P99us-y.P99us)
		if y.RPS > 0 {
			ratio = append(ratio, x.RPS/y.RPS)
		}
	}
	if len(d50) == 0 {
		return Comparison{}, false
	}
	return Comparison{Path: path, Base: base, Conns: conns, AddedP50: statOf(d50), AddedP99: statOf(d99), Ratio: statOf(ratio)}, true
}

func (r *Report) comparison(path, base string, conns int) *Comparison {
	for i := range r.Comparisons {
		c := &r.Comparisons[i]
		if c.Path == path && c.Base == base && c.Conns == conns {
			return c
		}
	}
	return nil
}

func (r *Report) path(name string, conns int) *PathStats {
	for i := range r.Paths {
		if r.Paths[i].Path == name && r.Paths[i].Conns == conns {
			return &r.Paths[i]
		}
	}
	return nil
}

// goals checks the gateway's goals (spec/performance.md §7 and the
// gateway issue): latency at the lowest connection count, CPU, throughput
// and connection reuse at the highest, RSS from the clients mode.
func (r *Report) goals() []Goal {
	var gs []Goal
	lo, hi := 0, 0
	if len(r.Config.Conns) > 0 {
		lo, hi = slices.Min(r.Config.Conns), slices.Max(r.Config.Conns)
	}
	audit := "durable audit"
	if !r.Config.DurableAudit {
		audit = "audit flushes off"
	}
	check := func(name, target string, ok bool, value, note string, measured bool) {
		g := Goal{Name: name, Target: target, Value: value, Note: note, Status: "not measured"}
		if measured {
			g.Status = "not met"
			if ok {
				g.Status = "met"
			}
		}
		gs = append(gs, g)
	}
	within := func(s Stat, limit float64) string {
		if s.Max <= 1.5*limit {
			return "max within 1.5× the target"
		}
		return "max beyond 1.5× the target"
	}
	if c := r.comparison(PathKeywarden, PathDirect, lo); c != nil {
		n50, n99 := within(c.AddedP50, 300), within(c.AddedP99, 1500)
		if f := r.FlushFloor; f != nil && r.Config.DurableAudit {
			n50 += fmt.Sprintf("; the disk's bare flush alone: p50 %.0f µs", f.P50us.Median)
			n99 += fmt.Sprintf("; the disk's bare flush alone: p99 %.0f µs", f.P99us.Median)
		}
		check(fmt.Sprintf("added p50 over direct, %d conn, %s", lo, audit), "≤ 300 µs", c.AddedP50.Median <= 300,
			fmtStat(c.AddedP50, "%.0f")+" µs", n50, true)
		check(fmt.Sprintf("added p99 over direct, %d conn, %s", lo, audit), "≤ 1500 µs", c.AddedP99.Median <= 1500,
			fmtStat(c.AddedP99, "%.0f")+" µs", n99, true)
	} else {
		check("added p50 over direct", "≤ 300 µs", false, "-", "", false)
		check("added p99 over direct", "≤ 1500 µs", false, "-", "", false)
	}
	if c := r.comparison(PathNoSync, PathDirect, lo); c != nil {
		check(fmt.Sprintf("added p50 over direct, %d conn, without the audit flush", lo), "≤ 250 µs", c.AddedP50.Median <= 250,
			fmtStat(c.AddedP50, "%.0f")+" µs", within(c.AddedP50, 250), true)
		check(fmt.Sprintf("added p99 over direct, %d conn, without the audit flush", lo), "≤ 1000 µs", c.AddedP99.Median <= 1000,
			fmtStat(c.AddedP99, "%.0f")+" µs", within(c.AddedP99, 1000), true)
	}
	if p := r.path(PathKeywarden, hi); p != nil && p.MiddleCPUus != nil {
		check(fmt.Sprintf("gateway CPU per request, %d conns", hi), "≤ 100 µs", p.MiddleCPUus.Median <= 100,
			fmtStat(*p.MiddleCPUus, "%.0f")+" µs", "", true)
	} else {
		check("gateway CPU per request", "≤ 100 µs", false, "-", "", false)
	}
	if c := r.comparison(PathKeywarden, PathNginx, hi); c != nil {
		check(fmt.Sprintf("throughput vs nginx, %d conns", hi), "≥ 0.6×", c.Ratio.Median >= 0.6,
			fmtStat(c.Ratio, "%.2f")+"×", "", true)
	} else {
		check("throughput vs nginx", "≥ 0.6×", false, "-", "nginx path not run", false)
	}
	if p := r.path(PathKeywarden, hi); p != nil {
		check(fmt.Sprintf("new upstream connections per request, %d conns", hi), "0 in steady state",
			p.NewUpstreamConns == 0, fmt.Sprintf("%d new over %d requests", p.NewUpstreamConns, p.Requests), "", true)
	} else {
		check("new upstream connections per request", "0 in steady state", false, "-", "", false)
	}
	if c := r.ClientsRun; c != nil {
		reached := c.RPS >= 0.95*c.TargetRate
		note := ""
		if !reached {
			note = fmt.Sprintf("the rate reached was %.0f req/s, not %.0f: RSS at the target rate is not shown by this run", c.RPS, c.TargetRate)
		}
		check(fmt.Sprintf("gateway peak RSS, %d clients at %.0f req/s", c.Clients, c.TargetRate), "≤ 150 MB",
			reached && mb(c.PeakRSS) <= 150, fmt.Sprintf("%.1f MB at %.0f req/s", mb(c.PeakRSS), c.RPS), note, true)
	} else {
		check("gateway RSS with 1,000 clients at 10k req/s", "≤ 150 MB", false, "-", "clients mode not run", false)
	}
	return gs
}

func fmtStat(s Stat, f string) string {
	return fmt.Sprintf(f+" ["+f+" – "+f+"]", s.Median, s.Min, s.Max)
}

// WriteText writes the report as tables for people.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	audit := "durable audit (fdatasync before forwarding)"
	if !r.Config.DurableAudit {
		audit = "audit flushes OFF (not durable)"
	}
	fmt.Fprintf(&b, "keywarden bench — loopback, HTTP/1.1 keep-alive, %s\n", audit)
	fmt.Fprintf(&b, "host: %d CPUs, %s, kernel %s", r.Host.CPUs, r.Host.GoVersion, r.Host.Kernel)
	if r.Host.Nginx != "" {
		fmt.Fprintf(&b, ", %s", r.Host.Nginx)
	}
	fmt.Fprintf(&b, "\n")
	if len(r.Paths) > 0 {
		fmt.Fprintf(&b, "%d rounds, each run ≤ %d requests or %.1f s after %d warm-up requests per connection; POST /api/v3/order, %d B signed form body\n",
			r.Config.Rounds, r.Config.MaxRequests, float64(r.Config.DurationMS)/1000, r.Config.Warmup, r.Config.BodyBytes)
		fmt.Fprintf(&b, "values: median [min – max] over rounds\n\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "path\tconns\treq/s\tp50 µs\tp99 µs\tmiddle CPU µs/req\tupstream CPU µs/req\tgateway RSS MB\tnew upstream conns\terrors\t")
		for _, p := range r.Paths {
			mid := "-"
			if p.MiddleCPUus != nil {
				mid = fmtStat(*p.MiddleCPUus, "%.0f")
			}
			rss := "-"
			if p.Path == PathKeywarden || p.Path == PathNoSync {
				rss = fmtStat(p.GatewayRSSMB, "%.1f")
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d / %d req\t%d\t\n", p.Path, p.Conns, fmtStat(p.RPS, "%.0f"),
				fmtStat(p.P50us, "%.0f"), fmtStat(p.P99us, "%.0f"), mid, fmtStat(p.UpstreamCPUus, "%.0f"), rss,
				p.NewUpstreamConns, p.Requests, p.Errors)
		}
		tw.Flush()
		fmt.Fprintf(&b, "\npaired per round (added = path − base in the same round; ratio = path req/s ÷ base req/s)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "comparison\tconns\tadded p50 µs\tadded p99 µs\tthroughput ratio\t")
		for _, c := range r.Comparisons {
			fmt.Fprintf(tw, "%s vs %s\t%d\t%s\t%s\t%s\t\n", c.Path, c.Base, c.Conns, fmtStat(c.AddedP50, "%.0f"),
				fmtStat(c.AddedP99, "%.0f"), fmtStat(c.Ratio, "%.2f"))
		}
		tw.Flush()
		if f := r.FlushFloor; f != nil {
			fmt.Fprintf(&b, "\nthe disk's bare flush (%d B write + fdatasync over a pre-zeroed file, where the audit log lives, once per round): p50 %s µs, p99 %s µs\n",
				floorRecord, fmtStat(f.P50us, "%.0f"), fmtStat(f.P99us, "%.0f"))
		}
	}
	if c := r.ClientsRun; c != nil {
		fmt.Fprintf(&b, "\nclients mode: %d client credentials over %d connections, target %.0f req/s for %.1f s (gateway setup %.1f s)\n",
			c.Clients, c.Conns, c.TargetRate, float64(r.Config.ClientDurationMS)/1000, float64(c.SetupMS)/1000)
		fmt.Fprintf(&b, "  reached %.0f req/s, %d requests, %d errors; p50 %.0f µs, p99 %.0f µs; gateway CPU %.0f µs/req\n",
			c.RPS, c.Requests, c.Errors+c.Non2xx, c.P50us, c.P99us, c.GatewayCPUus)
		fmt.Fprintf(&b, "  gateway RSS: idle %.1f MB, after the run %.1f MB, peak under load %.1f MB; %d new upstream connections\n",
			mb(c.IdleRSS), mb(c.EndRSS), mb(c.PeakRSS), c.NewUpstreamConns)
		if c.FirstError != "" {
			fmt.Fprintf(&b, "  first error: %s\n", c.FirstError)
		}
	}
	fmt.Fprintf(&b, "\ngoals\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, g := range r.Goals {
		note := ""
		if g.Note != "" {
			note = " (" + g.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t\n", g.Status, g.Name, g.Target, g.Value, note)
	}
	tw.Flush()
	for _, run := range r.Runs {
		if run.FirstError != "" {
			fmt.Fprintf(&b, "\nfirst error seen (%s c=%d round %d): %s\n", run.Path, run.Conns, run.Round, run.FirstError)
			break
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
