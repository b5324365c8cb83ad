package main

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/bench"
)

// newBenchCmd builds `keywarden bench`: the gateway measured side by side
// with a direct call and nginx, on loopback, bounded in count and time. Its
// hidden --role gateway form is the gateway process the bench starts.
func newBenchCmd(a *app) *cobra.Command {
	var (
		o        bench.Options
		mode     string
		jsonOut  bool
		jsonFile string
		role     string
		dir      string
		conns    []int
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the gateway against a direct call and nginx, on loopback",
		Long: `bench measures keywarden's gateway the way docs/performance.md describes.
In one run, on 127.0.0.1 only, it starts an upstream stub that answers
Binance order requests without checking signatures, keywarden's gateway as a
separate process (a fresh vault, SQLite store and durable audit log in a
temporary directory), and nginx as a reference reverse proxy. It then sends
the same signed POST /api/v3/order requests straight to the stub, through
nginx and through keywarden, at each connection count, interleaved, for
--rounds rounds, each run bounded by --requests and --duration.

It prints medians [min – max] over rounds: latency, latency added over the
direct call (paired per round), throughput ratios, CPU per request of the
gateway and of nginx, the gateway's RSS, and the upstream connections
opened per request; then the goals, met or not.

--clients N adds a run with N client credentials at --client-rate requests
per second that reports the gateway's peak RSS.

nginx must be installed (Debian: apt-get install nginx-light) unless
--no-nginx is given.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch role {
			case "":
			case "gateway":
				if dir == "" {
					return errors.New("bench: --role gateway needs --dir")
				}
				// The memory limit serve runs with (memlimit.go); the
				// gateway returns its start-up memory itself.
				if setMemoryLimit() {
					go followMemoryLimit(cmd.Context(), nil, memoryCheckEvery)
				}
				return bench.ServeGateway(cmd.Context(), dir, cmd.InOrStdin(), a.stdout)
			case "stub":
				return bench.ServeStub(cmd.Context(), cmd.InOrStdin(), a.stdout)
			default:
				return errors.New("bench: unknown --role")
			}
			switch mode {
			case "all":
			case "paths":
				o.Clients = 0
			case "clients":
				o.SkipPaths = true
			default:
				return errors.New("bench: --mode must be all, paths or clients")
			}
			o.Conns, o.Duration = conns, duration
			if !jsonOut {
				o.Progress = a.stderr
			}
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if jsonFile != "" {
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			if jsonOut {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return bench.WriteText(a.stdout, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "all", "what to run: all, paths (direct, nginx, keywarden) or clients (RSS with many credentials)")
	f.IntVar(&o.Rounds, "rounds", 5, "rounds; every path and connection count runs once per round")
	f.DurationVar(&duration, "duration", 3*time.Second, "longest measured run")
	f.IntVar(&o.MaxRequests, "requests", 400000, "most requests in one measured run")
	f.IntVar(&o.Warmup, "warmup", 50, "unmeasured requests per connection before each run (-1: none)")
	f.IntSliceVar(&conns, "conns", []int{1, 64}, "connection counts")
	f.BoolVar(&o.NoNginx, "no-nginx", false, "leave the nginx path out")
	f.StringVar(&o.NginxPath, "nginx", "", "nginx binary (default: found in PATH or /usr/sbin)")
	f.BoolVar(&o.AuditNoSync, "audit-nosync", false, "run the gateway without audit flushes (not durable; for comparison only)")
	f.IntVar(&o.Clients, "clients", 1000, "client credentials in the clients run (0: no clients run)")
	f.Float64Var(&o.ClientRate, "client-rate", 10000, "target requests per second in the clients run")
	f.DurationVar(&o.ClientDuration, "client-duration", 10*time.Second, "length of the clients run")
	f.IntVar(&o.ClientConns, "client-conns", 0, "connections in the clients run (default: one per client)")
	f.BoolVar(&o.NoSyncPath, "nosync-path", false, "also run a gateway without audit flushes, as the path keywarden-nosync")
	f.StringVar(&o.GatewayCPUProfile, "gateway-cpuprofile", "", "write a CPU profile of the gateway process in the paths run to this file")
	f.StringVar(&o.GatewayMemProfile, "gateway-memprofile", "", "write heap profiles of the gateway process in the clients run to this file (FILE.idle before the load, FILE at the heap's peak, and FILE.txt, FILE.idle.txt with memory statistics)")
	f.StringVar(&o.TempDir, "tmp", os.TempDir(), "directory for the run's scratch data")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	f.StringVar(&jsonFile, "json-out", "", "also write the JSON report to this file")
	f.StringVar(&role, "role", "", "internal: run as one of the bench's processes (gateway or stub)")
	f.StringVar(&dir, "dir", "", "internal: the gateway process's data directory")
	_ = f.MarkHidden("role")
	_ = f.MarkHidden("dir")
	return cmd
}
