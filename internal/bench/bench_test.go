package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

// childEnv makes the test binary act as the gateway process.
const childEnv = "KEYWARDEN_BENCH_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "gateway":
		exit(ServeGateway(context.Background(), os.Getenv("KEYWARDEN_BENCH_TEST_DIR"), os.Stdin, os.Stdout))
	case "stub":
		exit(ServeStub(context.Background(), os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func testCommand(role, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "KEYWARDEN_BENCH_TEST_DIR="+dir)
	return cmd
}

// wantNginx says whether the nginx path must run: it is skipped only when
// nginx is missing and KEYWARDEN_REQUIRE_NGINX is not 1.
func wantNginx(t *testing.T) bool {
	t.Helper()
	if _, err := FindNginx(); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_NGINX") == "1" {
			t.Fatalf("FindNginx() = %v, and KEYWARDEN_REQUIRE_NGINX=1", err)
		}
		return false
	}
	return true
}

func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway process and nginx")
	}
	nginx := wantNginx(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Rounds: 1, Duration: 20 * time.Second, MaxRequests: 200, Warmup: 2, Conns: []int{1, 8},
		NoNginx: !nginx, NoSyncPath: true, Clients: 20, ClientRate: 500, ClientDuration: 2 * time.Second, ClientConns: 5,
		Command: testCommand, TempDir: t.TempDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	paths := []string{PathDirect, PathKeywarden, PathNoSync}
	if nginx {
		paths = append(paths, PathNginx)
	} else {
		t.Log("nginx not installed: nginx path not run")
	}
	if got, want := len(rep.Runs), 2*len(paths); got != want {
		t.Fatalf("len(Runs) = %d, want %d", got, want)
	}
	for _, r := range rep.Runs {
		if r.Requests != 200 || r.Errors != 0 || r.Non2xx != 0 {
			t.Errorf("run %s c=%d: requests %d errors %d non-2xx %d (%s), want 200 and no errors",
				r.Path, r.Conns, r.Requests, r.Errors, r.Non2xx, r.FirstError)
		}
		if r.RPS <= 0 || r.P50us <= 0 || r.P99us < r.P50us {
			t.Errorf("run %s c=%d: rps %v p50 %v p99 %v, want positive and p99 >= p50", r.Path, r.Conns, r.RPS, r.P50us, r.P99us)
		}
		if r.Path == PathDirect && r.MiddleCPUus != nil {
			t.Errorf("run direct c=%d has a middle CPU figure", r.Conns)
		}
		if r.Path != PathDirect && (r.MiddleCPUus == nil || *r.MiddleCPUus < 0) {
			t.Errorf("run %s c=%d: middle CPU %v, want a non-negative figure", r.Path, r.Conns, r.MiddleCPUus)
		}
		if r.GatewayRSS <= 0 {
			t.Errorf("run %s c=%d: gateway RSS %d, want > 0", r.Path, r.Conns, r.GatewayRSS)
		}
	}
	if len(rep.Flush) != 1 || rep.Flush[0].Flushes == 0 || rep.Flush[0].P50us <= 0 || rep.Flush[0].P99us < rep.Flush[0].P50us {
		t.Errorf("Flush = %+v, want one round with positive percentiles", rep.Flush)
	}
	if rep.FlushFloor == nil || rep.FlushFloor.P50us.N != 1 {
		t.Errorf("FlushFloor = %+v, want the round's figures", rep.FlushFloor)
	}
	if rep.Config.BodyBytes < 180 || rep.Config.BodyBytes > 260 {
		t.Errorf("BodyBytes = %d, want about 210", rep.Config.BodyBytes)
	}
	for _, p := range [][2]string{{PathKeywarden, PathDirect}, {PathNoSync, PathDirect}, {PathKeywarden, PathNoSync}} {
		if c := rep.comparison(p[0], p[1], 8); c == nil || c.Ratio.N != 1 {
			t.Errorf("comparison %s vs %s at 8 conns = %+v, want one paired round", p[0], p[1], c)
		}
	}
	cr := rep.ClientsRun
	if cr == nil {
		t.Fatal("ClientsRun = nil, want the clients mode result")
	}
	if most := 500 * 2; cr.Requests <= 0 || cr.Requests > most || cr.Errors != 0 || cr.Non2xx != 0 {
		t.Errorf("clients run: %d requests, %d errors, %d non-2xx (%s); want 1..%d and no errors", cr.Requests, cr.Errors, cr.Non2xx, cr.FirstError, most)
	}
	if cr.PeakRSS < cr.IdleRSS || cr.PeakRSS <= 0 {
		t.Errorf("clients run: peak RSS %d, idle %d, want peak >= idle > 0", cr.PeakRSS, cr.IdleRSS)
	}
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"keywarden vs direct", "goals", "clients mode", "the disk's bare flush"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, text.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep.Paths, back.Paths); diff != "" {
		t.Errorf("Paths after a JSON round trip (-want +got):\n%s", diff)
	}
}

func TestGatewaySecretsStayOutOfStderr(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway process")
	}
	st, err := startStub(context.Background(), testCommand("stub", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.stop()
	key, secret := randomKey()
	gw, err := startGateway(context.Background(), testCommand("gateway", t.TempDir()), gatewaySetup{
		Upstream: st.URL(), Clients: 2, APIKey: key, Secret: secret}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.stop()
	if len(gw.ready.Clients) != 2 || gw.ready.Clients[0].ID == gw.ready.Clients[1].ID {
		t.Fatalf("ready clients = %d, want 2 distinct", len(gw.ready.Clients))
	}
	if err := gw.stop(); err != nil {
		t.Errorf("stop() = %v, want nil", err)
	}
	if s := gw.stderr.String(); strings.Contains(s, secret) || strings.Contains(s, gw.ready.Clients[0].Secret) {
		t.Errorf("gateway stderr holds a secret")
	}
}

func TestServeGatewayRefusesRemoteUpstream(t *testing.T) {
	tests := []struct {
		name  string
		setup string
	}{
		{"remote", `{"upstream":"http://192.0.2.1:80","clients":1,"api_key":"k","secret":"s"}`},
		{"https", `{"upstream":"https://127.0.0.1:80","clients":1,"api_key":"k","secret":"s"}`},
		{"no clients", `{"upstream":"http://127.0.0.1:80","clients":0,"api_key":"k","secret":"s"}`},
		{"too many clients", `{"upstream":"http://127.0.0.1:80","clients":100000,"api_key":"k","secret":"s"}`},
		{"not json", "upstream\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ServeGateway(context.Background(), t.TempDir(), strings.NewReader(tt.setup+"\n"), &out)
			if err == nil {
				t.Errorf("ServeGateway(%s) = nil, want an error", tt.setup)
			}
			if out.Len() != 0 {
				t.Errorf("ServeGateway(%s) wrote %q, want nothing", tt.setup, out.String())
			}
		})
	}
}

func TestStatOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{3}, Stat{Median: 3, Min: 3, Max: 3, N: 1}},
		{[]float64{5, 1, 3}, Stat{Median: 3, Min: 1, Max: 5, N: 3}},
		{[]float64{4, 1, 3, 2}, Stat{Median: 2.5, Min: 1, Max: 4, N: 4}},
	}
	for _, tt := range tests {
		if got := statOf(tt.in); got != tt.want {
			t.Errorf("statOf(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSummarizePairsByRound(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &Report{Config: Config{Conns: []int{1, 64}, DurableAudit: true}, Runs: []RunResult{
		{Round: 1, Path: PathDirect, Conns: 1, Requests: 10, RPS: 1000, P50us: 100, P99us: 300},
		{Round: 1, Path: PathKeywarden, Conns: 1, Requests: 10, RPS: 500, P50us: 350, P99us: 900, MiddleCPUus: f(90)},
		{Round: 2, Path: PathDirect, Conns: 1, Requests: 10, RPS: 2000, P50us: 200, P99us: 400},
		{Round: 2, Path: PathKeywarden, Conns: 1, Requests: 10, RPS: 1000, P50us: 400, P99us: 2400, MiddleCPUus: f(110)},
		{Round: 1, Path: PathDirect, Conns: 64, Requests: 10, RPS: 30000},
		{Round: 1, Path: PathNginx, Conns: 64, Requests: 10, RPS: 15000, MiddleCPUus: f(30)},
		{Round: 1, Path: PathKeywarden, Conns: 64, Requests: 10, RPS: 6000, MiddleCPUus: f(120), NewUpstreamConns: 1},
	}, Flush: []FlushSample{{Round: 1, Flushes: 200, P50us: 150, P99us: 400}, {Round: 2, Flushes: 200, P50us: 250, P99us: 900}}}
	r.summarize()
	if diff := cmp.Diff(&FlushFloor{P50us: Stat{Median: 200, Min: 150, Max: 250, N: 2}, P99us: Stat{Median: 650, Min: 400, Max: 900, N: 2}}, r.FlushFloor); diff != "" {
		t.Errorf("FlushFloor (-want +got):\n%s", diff)
	}
	c := r.comparison(PathKeywarden, PathDirect, 1)
	if c == nil {
		t.Fatal("no keywarden vs direct comparison at 1 conn")
	}
	want := Comparison{Path: PathKeywarden, Base: PathDirect, Conns: 1,
		AddedP50: Stat{Median: 225, Min: 200, Max: 250, N: 2},
		AddedP99: Stat{Median: 1300, Min: 600, Max: 2000, N: 2},
		Ratio:    Stat{Median: 0.5, Min: 0.5, Max: 0.5, N: 2}}
	if diff := cmp.Diff(want, *c); diff != "" {
		t.Errorf("comparison (-want +got):\n%s", diff)
	}
	if c := r.comparison(PathKeywarden, PathNginx, 64); c == nil || c.Ratio.Median != 0.4 {
		t.Errorf("keywarden vs nginx at 64 = %+v, want ratio 0.4", c)
	}
	if c := r.comparison(PathNginx, PathDirect, 1); c != nil {
		t.Errorf("nginx vs direct at 1 conn = %+v, want none (no nginx runs)", c)
	}
	status := map[string]string{}
	for _, g := range r.Goals {
		status[g.Target] = g.Status
	}
	wantStatus := map[string]string{
		"≤ 300 µs": "met", "≤ 1500 µs": "met", "≤ 100 µs": "not met", "≥ 0.6×": "not met",
		"0 in steady state": "not met", "≤ 150 MB": "not measured",
	}
	if diff := cmp.Diff(wantStatus, status); diff != "" {
		t.Errorf("goal status (-want +got):\n%s", diff)
	}
	if g := r.Goals[0]; !strings.Contains(g.Note, "bare flush alone: p50 200 µs") {
		t.Errorf("goal %q note = %q, want the flush floor named", g.Name, g.Note)
	}
}

func TestOptionsBounds(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"zero conns", Options{Conns: []int{0}}},
		{"too many conns", Options{Conns: []int{5000}}},
		{"too many rounds", Options{Rounds: 1000}},
		{"too long", Options{Duration: time.Hour}},
		{"too many clients", Options{Clients: maxClients + 1}},
		{"nothing", Options{SkipPaths: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Command = testCommand
			if err := o.defaults(); err == nil {
				t.Errorf("defaults(%+v) = nil, want an error", tt.o)
			}
		})
	}
}

func TestFindNginxMessage(t *testing.T) {
	if !strings.Contains(ErrNoNginx.Error(), "apt-get install nginx-light") {
		t.Errorf("ErrNoNginx = %q, want it to name apt-get install nginx-light", ErrNoNginx)
	}
	if _, err := FindNginx(); err != nil && !errors.Is(err, ErrNoNginx) {
		t.Errorf("FindNginx() = %v, want nil or ErrNoNginx", err)
	}
}

// BenchmarkOrderBuild measures the load generator's own work per request
// (sign a Binance order with HMAC-SHA256 and build the http.Request): it
// shares the CPUs with the processes under test.
func BenchmarkOrderBuild(b *testing.B) {
	key, secret := randomKey()
	var seq atomic.Uint64
	ob, err := newOrderBuilder("http://127.0.0.1:1", []*exchange.Credential{{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)}}, &seq)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ob.build(i&63, i); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOrderBodiesAreUnique(t *testing.T) {
	key, secret := randomKey()
	var seq atomic.Uint64
	ob, err := newOrderBuilder("http://127.0.0.1:1", []*exchange.Credential{{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)}}, &seq)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		req, err := ob.build(i%7, i)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(body)] {
			t.Fatalf("build(%d, %d) repeated a body", i%7, i)
		}
		seen[string(body)] = true
		if got := req.Header.Get("X-MBX-APIKEY"); got != key {
			t.Fatalf("build() X-MBX-APIKEY = %q, want the credential's key", got)
		}
		if !bytes.Contains(body, []byte("&signature=")) || !bytes.HasPrefix(body, []byte("timestamp=")) {
			t.Fatalf("build() body = %q, want a signed Binance body", body)
		}
	}
}
