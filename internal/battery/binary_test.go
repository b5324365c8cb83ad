package battery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// marker is planted in every secret; no output may ever contain it.
const marker = "KWBATTERYMARKER"

var build struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// binary builds cmd/keywarden once per test run.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		build.dir, build.err = os.MkdirTemp("", "keywarden-battery-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "keywarden")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/keywarden")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// install is one keywarden installation: a config, a data directory with an
// initialized vault holding one Binance key, and the simulator it trades on.
type install struct {
	t        *testing.T
	bin      string
	dir      string
	config   string
	addr     string // gateway host:port
	kit      *sim.Kit
	exKey    string
	exSecret string
	cred     *exchange.Credential
	outputs  []string // every CLI output, for the marker scan

	mu   sync.Mutex
	proc *serveProc
}

func newInstall(t *testing.T) *install {
	t.Helper()
	in := &install{t: t, bin: binary(t), dir: t.TempDir()}
	in.config = filepath.Join(in.dir, "keywarden.toml")
	in.kit = sim.NewKit()
	in.kit.SetPrice("BTCUSDT", 50000)
	in.exKey = "EXKEY" + randHex(10)
	in.exSecret = marker + "exsecret" + randHex(16)
	in.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: in.exKey, Secret: exchange.Secret(in.exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(in.kit))
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.addr = ln.Addr().String()
	ln.Close()
	write(t, filepath.Join(in.dir, "pass"), "correct horse battery "+marker+"\n")
	write(t, in.config, `data_dir = "data"
log_level = "debug"

[vault]
passphrase_file = "pass"
argon2_time = 2
argon2_memory_kib = 19456
argon2_threads = 1

[gateway]
listen = "`+in.addr+`"
plaintext = true
upstream_timeout = "3s"

[admin]
disabled = true

[[venue]]
name = "binance"
upstream = "`+up.URL+`"

[policy.trader]
scopes = ["read", "trade"]
symbols = ["BTCUSDT"]
`)
	in.run("", "operator", "init")
	in.run("api_key="+in.exKey+"\nsecret="+in.exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	t.Cleanup(func() {
		in.mu.Lock()
		p := in.proc
		in.mu.Unlock()
		if p != nil {
			p.kill()
		}
	})
	return in
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (in *install) env() []string {
	return append(os.Environ(), "KEYWARDEN_CONFIG="+in.config)
}

// run runs a keywarden command to completion and returns its stdout.
func (in *install) run(stdin string, args ...string) string {
	in.t.Helper()
	out, err := in.try(stdin, args...)
	if err != nil {
		in.t.Fatalf("keywarden %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (in *install) try(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.bin, args...)
	cmd.Dir = in.dir
	cmd.Env = in.env()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	in.outputs = append(in.outputs, out.String(), errOut.String())
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// serveProc is one running `keywarden serve`.
type serveProc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts `keywarden serve` and waits until /healthz answers 200.
func (in *install) serve(extraEnv ...string) *serveProc {
	in.t.Helper()
	cmd := exec.Command(in.bin, "serve")
	cmd.Dir = in.dir
	cmd.Env = append(in.env(), extraEnv...)
	p := &serveProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	in.mu.Lock()
	in.proc = p
	in.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			in.t.Fatalf("serve exited early: %v\n%s", err, p.logs.String())
		default:
		}
		resp, err := http.Get("http://" + in.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			in.t.Fatalf("serve never became healthy:\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(30 * time.Second); err != nil {
		t.Errorf("serve did not exit cleanly: %v\n%s", err, p.logs.String())
	}
}

func (p *serveProc) wait(d time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		return errors.New("serve did not exit")
	}
}

// issue issues a client credential through the running server.
func (in *install) issue() {
	in.t.Helper()
	out := in.run("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "2h", "--json")
	// Issuing prints the new secret once, by design: that stdout is the
	// one output the marker scan skips.
	in.outputs[len(in.outputs)-2] = ""
	var iss struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &iss); err != nil || iss.ID == "" || iss.Secret == "" {
		in.t.Fatalf("client issue output %q: %v", out, err)
	}
	in.cred = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.Secret)}
}

// reply is one answer the bot got.
type reply struct {
	status    int
	requestID string
	body      string
	err       error
}

// order signs and sends a limit order with client order id coid.
func (in *install) order(hc *http.Client, coid string) reply {
	body := "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49000&newClientOrderId=" + coid
	return in.call(hc, http.MethodPost, "/api/v3/order", "", body)
}

func (in *install) call(hc *http.Client, method, path, query, body string) reply {
	req := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if body != "" {
		req.Body = []byte(body)
	}
	if err := binance.Spot(nil).Signer.Sign(req, in.cred, time.Now()); err != nil {
		return reply{err: err}
	}
	target := "http://" + in.addr + "/binance" + path
	if req.RawQuery != "" {
		target += "?" + req.RawQuery
	}
	hr, err := http.NewRequest(method, target, bytes.NewReader(req.Body))
	if err != nil {
		return reply{err: err}
	}
	hr.Header.Set("X-MBX-APIKEY", in.cred.APIKey)
	if body != "" {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, requestID: resp.Header.Get("X-Keywarden-Request-Id"), body: string(b), err: err}
}

// auditDir is where serve keeps the audit log.
func (in *install) auditDir() string { return filepath.Join(in.dir, "data", "audit") }

// scanMarker fails if the marker or a secret appears in any output, log or
// file of the installation.
func (in *install) scanMarker(extra ...string) {
	in.t.Helper()
	secrets := []string{marker, in.exSecret}
	if in.cred != nil {
		secrets = append(secrets, string(in.cred.Secret))
	}
	check := func(what string, b []byte) {
		for _, s := range secrets {
			if s != "" && bytes.Contains(b, []byte(s)) {
				in.t.Errorf("%s contains a secret", what)
			}
		}
	}
	for i, o := range append(in.outputs, extra...) {
		check(fmt.Sprintf("output %d", i), []byte(o))
	}
	_ = filepath.WalkDir(filepath.Join(in.dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil {
			check("file "+strings.TrimPrefix(p, in.dir+"/"), b)
		}
		return nil
	})
}
