// Package bench measures keywarden's gateway the way spec/performance.md
// does, in one bounded run on loopback: a Binance-shaped upstream stub that
// verifies nothing, the gateway as a separate process (a re-executed
// keywarden with a fresh vault, SQLite store and durable audit log), and
// nginx as the reference reverse proxy. The same signed order requests go
// directly to the stub, through nginx and through keywarden, at each
// connection count, interleaved within every round, and the report gives
// medians [min–max] over rounds of latency, paired added latency,
// throughput ratios, CPU per request of the middle process (from /proc),
// the gateway's RSS and the upstream connections opened per request. A
// second mode measures the gateway's RSS with many client credentials at a
// bounded request rate.
//
// Every load run is bounded by a request count and a duration, every
// process listens on 127.0.0.1 only, and every process the bench starts is
// stopped by its own id before Run returns.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/loadgen"
)

// Path names.
const (
	PathDirect    = "direct"
	PathNginx     = "nginx"
	PathKeywarden = "keywarden"
	// PathNoSync is keywarden with audit flushes off, run beside the
	// durable gateway when Options.NoSyncPath is set.
	PathNoSync = "keywarden-nosync"
)

// Options bound and shape a bench run. Zero values take the defaults.
type Options struct {
	// Rounds is how many times every (path, connections) run is repeated,
	// interleaved (default 5).
	Rounds int
	// Duration and MaxRequests bound each measured run, whichever comes
	// first (defaults 3 s and 400,000).
	Duration    time.Duration
	MaxRequests int
	// Warmup is the unmeasured requests per connection before each run
	// (default 50; negative means none).
	Warmup int
	// Conns are the connection counts (default 1 and 64).
	Conns []int
	// SkipPaths skips the path comparison (only the clients mode runs).
	SkipPaths bool
	// NoNginx leaves the nginx path out. Otherwise a missing nginx is an
	// error naming the package to install.
	NoNginx   bool
	NginxPath string
	// AuditNoSync runs the gateway without audit flushes (non-durable; to
	// separate the flush wait from the rest, never the default).
	AuditNoSync bool
	// NoSyncPath adds a second gateway process whose audit log does not
	// flush, as the path keywarden-nosync, to separate the cost of the
	// durable audit wait from the rest of the gateway's work.
	NoSyncPath bool
	// GatewayCPUProfile, when set, is where the paths run's gateway
	// process writes a CPU profile (go tool pprof).
	GatewayCPUProfile string

	// Clients, when positive, adds the RSS mode: a fresh gateway process
	// with this many client credentials, loaded at ClientRate requests per
	// second (default 10,000) for ClientDuration (default 10 s) over
	// ClientConns connections (default Clients), requests spread across
	// the credentials.
	Clients        int
	ClientRate     float64
	ClientDuration time.Duration
	ClientConns    int
	// GatewayMemProfile, when set, is where the clients run's gateway
	// process writes heap profiles: FILE.idle before the load and FILE at
	// the heap's peak, each with a FILE[.idle].txt of memory statistics.
	GatewayMemProfile string

	// Command returns the command that runs the bench's own processes:
	// role "gateway" runs ServeGateway for dir, role "stub" runs ServeStub,
	// with stdin and stdout left for the bench. Default: this executable
	// with `bench --role ROLE --dir DIR`.
	Command func(role, dir string) *exec.Cmd
	// TempDir holds the run's scratch directories (default os.TempDir()).
	TempDir string
	// Progress, when set, gets a line per finished run.
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 400000
	}
	if o.Warmup == 0 {
		o.Warmup = 50
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if len(o.Conns) == 0 {
		o.Conns = []int{1, 64}
	}
	for _, c := range o.Conns {
		if c < 1 || c > 4096 {
			return fmt.Errorf("bench: connections must be 1..4096, got %d", c)
		}
	}
	if o.Rounds > 100 || o.Duration > 10*time.Minute {
		return errors.New("bench: at most 100 rounds of 10 minutes")
	}
	if o.Clients < 0 || o.Clients > maxClients {
		return fmt.Errorf("bench: clients must be 0..%d", maxClients)
	}
	if o.Clients > 0 {
		if o.ClientRate <= 0 {
			o.ClientRate = 10000
		}
		if o.ClientDuration <= 0 {
			o.ClientDuration = 10 * time.Second
		}
		if o.ClientDuration > 10*time.Minute {
			return errors.New("bench: client run at most 10 minutes")
		}
		if o.ClientConns <= 0 {
			o.ClientConns = o.Clients
		}
		if o.ClientConns > 4096 {
			return errors.New("bench: client connections at most 4096")
		}
	}
	if o.SkipPaths && o.Clients == 0 {
		return errors.New("bench: nothing to run")
	}
	if o.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		o.Command = func(role, dir string) *exec.Cmd {
			return exec.Command(exe, "bench", "--role", role, "--dir", dir)
		}
	}
	return nil
}

// target is one path under test.
type target struct {
	name  string
	build loadgen.Builder
	pids  func() []int // the middle process(es); nil for direct
	gwPID int          // the gateway whose RSS is reported
}

// Run runs the bench and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{
		Started: time.Now().UTC(),
		Host:    Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: kernel()},
		Config: Config{Rounds: o.Rounds, DurationMS: o.Duration.Milliseconds(), MaxRequests: o.MaxRequests,
			Warmup: o.Warmup, Conns: o.Conns, DurableAudit: !o.AuditNoSync, Clients: o.Clients,
			ClientRate: o.ClientRate, ClientDurationMS: o.ClientDuration.Milliseconds(), ClientConns: o.ClientConns},
	}
	var nginxBin string
	if !o.SkipPaths && !o.NoNginx {
		nginxBin = o.NginxPath
		if nginxBin == "" {
			var err error
			if nginxBin, err = FindNginx(); err != nil {
				return nil, err
			}
		}
		rep.Host.Nginx = nginxVersion(nginxBin)
	}
	tmp, err := os.MkdirTemp(o.TempDir, "keywarden-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	st, err := startStub(ctx, o.Command("stub", tmp))
	if err != nil {
		return nil, err
	}
	defer st.stop()
	apiKey, secret := randomKey()
	exKey := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)}
	var seq atomic.Uint64

	if !o.SkipPaths {
		if err := runPaths(ctx, &o, rep, tmp, nginxBin, st, exKey, &seq); err != nil {
			return nil, err
		}
	}
	if o.Clients > 0 {
		cr, err := runClients(ctx, &o, tmp, st, exKey, &seq)
		if err != nil {
			return nil, err
		}
		rep.ClientsRun = cr
	}
	rep.summarize()
	return rep, nil
}

func runPaths(ctx context.Context, o *Options, rep *Report, tmp, nginxBin string, st *stubProc, exKey *exchange.Credential, seq *atomic.Uint64) error {
	gw, err := startGateway(ctx, o.Command("gateway", mkdir(tmp, "gateway")), gatewaySetup{
		Upstream: st.URL(), Clients: 1, APIKey: exKey.APIKey, Secret: string(exKey.Secret), NoSync: o.AuditNoSync,
		CPUProfile: o.GatewayCPUProfile,
	}, 2*time.Minute)
	if err != nil {
		return err
	}
	defer gw.stop()
	direct, err := newOrderBuilder(st.URL(), []*exchange.Credential{exKey}, seq)
	if err != nil {
		return err
	}
	rep.Config.BodyBytes = direct.bodyLen()
	cl := gw.ready.Clients[0]
	kwb, err := newOrderBuilder(gw.ready.URL+"/binance", []*exchange.Credential{{Kind: exchange.KeyHMAC, APIKey: cl.ID, Secret: exchange.Secret(cl.Secret)}}, seq)
	if err != nil {
		return err
	}
	gwPID := gw.ready.PID
	targets := []target{
		{name: PathDirect, build: direct.build, gwPID: gwPID},
		{name: PathKeywarden, build: kwb.build, pids: func() []int { return []int{gwPID} }, gwPID: gwPID},
	}
	if nginxBin != "" {
		ng, err := startNginx(ctx, nginxBin, mkdir(tmp, "nginx"), st.hostPort())
		if err != nil {
			return err
		}
		defer ng.stop()
		nb, err := newOrderBuilder(ng.url, []*exchange.Credential{exKey}, seq)
		if err != nil {
			return err
		}
		targets = append(targets, target{name: PathNginx, build: nb.build, pids: ng.pids, gwPID: gwPID})
	}
	if o.NoSyncPath {
		ns, err := startGateway(ctx, o.Command("gateway", mkdir(tmp, "gateway-nosync")), gatewaySetup{
			Upstream: st.URL(), Clients: 1, APIKey: exKey.APIKey, Secret: string(exKey.Secret), NoSync: true,
		}, 2*time.Minute)
		if err != nil {
			return err
		}
		defer ns.stop()
		cl := ns.ready.Clients[0]
		nb, err := newOrderBuilder(ns.ready.URL+"/binance", []*exchange.Credential{{Kind: exchange.KeyHMAC, APIKey: cl.ID, Secret: exchange.Secret(cl.Secret)}}, seq)
		if err != nil {
			return err
		}
		pid := ns.ready.PID
		targets = append(targets, target{name: PathNoSync, build: nb.build, pids: func() []int { return []int{pid} }, gwPID: pid})
	}
	for r := 1; r <= o.Rounds; r++ {
		if !o.AuditNoSync {
			fs, err := measureFlush(tmp, r)
			if err != nil {
				return err
			}
			rep.Flush = append(rep.Flush, fs)
		}
		for _, c := range o.Conns {
			// Rotate the order every round so no path always runs first.
			for k := range targets {
				t := targets[(k+r-1)%len(targets)]
				res, err := runOne(ctx, o, t, c, r, st)
				if err != nil {
					return err
				}
				rep.Runs = append(rep.Runs, res)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "round %d/%d  %-9s c=%-4d %8.0f req/s  p50 %7.0f µs  p99 %7.0f µs  errors %d\n",
						r, o.Rounds, t.name, c, res.RPS, res.P50us, res.P99us, res.Errors+res.Non2xx)
				}
			}
		}
	}
	return gw.stop()
}

// runOne is one bounded measured run of t at c connections.
func runOne(ctx context.Context, o *Options, t target, c, round int, st *stubProc) (RunResult, error) {
	var before, after procSample
	var sampleErr error
	sample := func(s *procSample) {
		cn, err := st.counts(ctx)
		if err != nil && sampleErr == nil {
			sampleErr = err
		}
		s.accepted = cn.Accepted
		if t.pids != nil {
			s.middle = sumProcs(t.pids())
		}
		s.gw, _ = loadgen.ReadProc(t.gwPID)
		s.self, _ = loadgen.ReadProc(os.Getpid())
		s.stub, _ = loadgen.ReadProc(st.ready.PID)
	}
	res, err := loadgen.Run(ctx, loadgen.Options{
		Conns: c, MaxRequests: o.MaxRequests, Duration: o.Duration, Warmup: o.Warmup, Build: t.build,
		OnStart: func() { sample(&before) },
	})
	if err != nil {
		return RunResult{}, fmt.Errorf("bench: %s c=%d: %w", t.name, c, err)
	}
	sample(&after)
	if sampleErr != nil {
		return RunResult{}, sampleErr
	}
	rr := RunResult{
		Round: round, Path: t.name, Conns: c, Requests: res.Requests, Errors: res.Errors, Non2xx: res.Non2xx,
		FirstError: res.FirstError, ElapsedMS: float64(res.Elapsed.Microseconds()) / 1000, RPS: res.RPS,
		P50us: us(res.P50), P99us: us(res.P99), GatewayRSS: after.gw.RSS,
		NewUpstreamConns: after.accepted - before.accepted,
	}
	if res.Requests > 0 {
		n := float64(res.Requests)
		rr.UpstreamConnsPerReq = float64(rr.NewUpstreamConns) / n
		rr.LoadCPUus = us(after.self.CPU-before.self.CPU) / n
		rr.UpstreamCPUus = us(after.stub.CPU-before.stub.CPU) / n
		if t.pids != nil {
			v := us(after.middle-before.middle) / n
			rr.MiddleCPUus = &v
		}
	}
	return rr, nil
}

type procSample struct {
	accepted       int64
	middle         time.Duration
	gw, self, stub loadgen.ProcStat
}

func sumProcs(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		if s, err := loadgen.ReadProc(p); err == nil {
			d += s.CPU
		}
	}
	return d
}

// runClients is the RSS mode: a fresh gateway with o.Clients credentials
// under a paced load.
func runClients(ctx context.Context, o *Options, tmp string, st *stubProc, exKey *exchange.Credential, seq *atomic.Uint64) (*ClientsResult, error) {
	t0 := time.Now()
	gw, err := startGateway(ctx, o.Command("gateway", mkdir(tmp, "gateway-clients")), gatewaySetup{
		Upstream: st.URL(), Clients: o.Clients, APIKey: exKey.APIKey, Secret: string(exKey.Secret), NoSync: o.AuditNoSync,
		MemProfile: o.GatewayMemProfile,
	}, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	setup := time.Since(t0)
	creds := make([]*exchange.Credential, len(gw.ready.Clients))
	for i, c := range gw.ready.Clients {
		creds[i] = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: c.ID, Secret: exchange.Secret(c.Secret)}
	}
	gw.ready.Clients = nil
	b, err := newOrderBuilder(gw.ready.URL+"/binance", creds, seq)
	if err != nil {
		return nil, err
	}
	pid := gw.ready.PID
	idle, _ := loadgen.ReadProc(pid)
	// The peak counts from here: the set-up (the vault's KDF, issuing the
	// credentials) is not the load. Writing 5 to clear_refs resets VmHWM.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return nil, fmt.Errorf("bench: reset the gateway's peak RSS: %w", err)
	}
	var before loadgen.ProcStat
	var conns0 stubCounts
	var sampleErr error
	// Bounded by count (rate × duration); the time bound, a quarter longer,
	// ends the run when the gateway cannot keep up.
	maxN := max(1, int(o.ClientRate*o.ClientDuration.Seconds()))
	res, err := loadgen.Run(ctx, loadgen.Options{
		Conns: o.ClientConns, MaxRequests: maxN, Duration: o.ClientDuration*5/4 + time.Second, Warmup: 1, Build: b.build,
		Rate: o.ClientRate, OnStart: func() {
			before, _ = loadgen.ReadProc(pid)
			conns0, sampleErr = st.counts(ctx)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("bench: clients run: %w", err)
	}
	if sampleErr != nil {
		return nil, sampleErr
	}
	conns1, err := st.counts(ctx)
	if err != nil {
		return nil, err
	}
	after, _ := loadgen.ReadProc(pid)
	peak, _ := peakRSS(pid)
	// What was seen since the reset is part of the peak, whenever the
	// kernel updated its high-water mark.
	peak = max(peak, idle.RSS, after.RSS)
	cr := &ClientsResult{
		Clients: o.Clients, Conns: o.ClientConns, TargetRate: o.ClientRate, Requests: res.Requests,
		Errors: res.Errors, Non2xx: res.Non2xx, FirstError: res.FirstError, RPS: res.RPS,
		P50us: us(res.P50), P99us: us(res.P99), SetupMS: setup.Milliseconds(),
		IdleRSS: idle.RSS, EndRSS: after.RSS, PeakRSS: peak, NewUpstreamConns: conns1.Accepted - conns0.Accepted,
	}
	if res.Requests > 0 {
		cr.GatewayCPUus = us(after.CPU-before.CPU) / float64(res.Requests)
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "clients %d over %d conns: %.0f req/s (target %.0f), peak RSS %.1f MB, errors %d\n",
			cr.Clients, cr.Conns, cr.RPS, cr.TargetRate, mb(cr.PeakRSS), cr.Errors+cr.Non2xx)
	}
	if err := gw.stop(); err != nil {
		return nil, err
	}
	return cr, nil
}

// peakRSS reads VmHWM, the process's peak resident set, in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("bench: no VmHWM")
}

func nginxVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if i := strings.Index(s, "nginx/"); i >= 0 {
		return s[i:]
	}
	return s
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// mkdir makes a private scratch directory under base.
func mkdir(base, name string) string {
	d := base + "/" + name
	_ = os.MkdirAll(d, 0o700)
	return d
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func mb(b int64) float64 { return float64(b) / (1 << 20) }
