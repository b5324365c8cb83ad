package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// gatewaySetup is what the parent sends the gateway process on its stdin,
// as one JSON line. It carries a throwaway exchange key made for this run;
// it never travels in argv and is never logged.
type gatewaySetup struct {
	Upstream string `json:"upstream"`
	Clients  int    `json:"clients"`
	APIKey   string `json:"api_key"`
	Secret   string `json:"secret"`
	NoSync   bool   `json:"no_sync"`
	// CPUProfile, when set, is where the gateway writes a CPU profile of
	// its whole serving time.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// MemProfile, when set, is where the gateway writes heap profiles
	// (watchMemory): at idle and at the heap's peak.
	MemProfile string `json:"mem_profile,omitempty"`
}

// gatewayReady is the gateway process's answer on its stdout, one JSON
// line: where it listens and the client credentials it issued.
type gatewayReady struct {
	URL     string        `json:"url"`
	PID     int           `json:"pid"`
	Clients []credentials `json:"clients"`
}

// credentials is one HMAC client credential in clear, for the load
// generator only. It is never printed by the parent.
type credentials struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// benchPolicy lets the bench's orders through with the checks a trading
// bot's policy would run (scope, venue, symbol, side, type, quantity) and
// no window or notional rule, so no reference price is needed.
var benchPolicy = policy.Definition{
	Scopes:      []string{"read", "trade"},
	Venues:      []string{"binance"},
	Symbols:     []string{"BTCUSDT", "ETHUSDT"},
	OrderTypes:  []string{"limit", "market"},
	Sides:       []string{"buy", "sell"},
	MaxOrderQty: 10,
}

// maxClients bounds how many credentials one gateway process issues.
const maxClients = 10000

// ServeGateway is the gateway process of `keywarden bench`. It reads a setup
// line from in, builds a fresh data directory under dir (SQLite store, vault
// sealed with a random passphrase, the exchange key, the client credentials
// and a trading policy), serves keywarden's gateway on a loopback port with
// the durable audit log, writes a ready line to out, and serves until in is
// closed or ctx ends.
func ServeGateway(ctx context.Context, dir string, in io.Reader, out io.Writer) error {
	if dir == "" {
		return errors.New("bench gateway: a directory is required")
	}
	br := bufio.NewReader(io.LimitReader(in, 1<<20))
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("bench gateway: read setup: %w", err)
	}
	var s gatewaySetup
	if err := json.Unmarshal(line, &s); err != nil {
		return fmt.Errorf("bench gateway: setup: %w", err)
	}
	clear(line)
	if s.Clients < 1 || s.Clients > maxClients {
		return fmt.Errorf("bench gateway: clients must be 1..%d", maxClients)
	}
	up, err := url.Parse(s.Upstream)
	if err != nil {
		return fmt.Errorf("bench gateway: upstream: %w", err)
	}
	if !loopbackURL(up) {
		return errors.New("bench gateway: the upstream must be on loopback")
	}

	db, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	defer db.Close()
	v, err := vault.New(vault.Options{Store: db})
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	pass := make([]byte, 32)
	if _, err := rand.Read(pass); err != nil {
		return err
	}
	pass = []byte(hex.EncodeToString(pass))
	kdf := vault.MinKDF()
	_, err = v.Init(ctx, vault.InitOptions{Passphrase: pass, KDF: &kdf})
	clear(pass)
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	defer v.Seal()
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "bench", APIKey: s.APIKey,
		Secret: exchange.Secret(s.Secret), Kind: exchange.KeyHMAC}); err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	s.Secret = ""
	pols, err := policy.CompileAll(map[string]policy.Definition{"bench": benchPolicy})
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	def, err := venues.ByName("binance")
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Options{
		Store: db, Vault: v, Policies: pols, AuditDir: filepath.Join(dir, "audit"), AuditNoSync: s.NoSync,
		Routes:          []server.Route{{Def: def, Upstream: up}},
		UpstreamTimeout: 10 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	defer srv.Close()
	ready := gatewayReady{PID: os.Getpid()}
	for i := 0; i < s.Clients; i++ {
		iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "bench", Policy: "bench",
			TTL: 24 * time.Hour, Label: "bench", Format: def.Format})
		if err != nil {
			return fmt.Errorf("bench gateway: %w", err)
		}
		ready.Clients = append(ready.Clients, credentials{ID: iss.ID, Secret: string(iss.Secret)})
	}
	// As serve does after unsealing: return the memory the set-up freed
	// (the KDF's blocks, the credentials' issuance) to the system.
	debug.FreeOSMemory()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench gateway: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Gateway,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench gateway: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench gateway: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if s.MemProfile != "" {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			if err := watchMemory(mctx, s.MemProfile); err != nil {
				fmt.Fprintf(os.Stderr, "bench gateway: memory profile: %v\n", err)
			}
		}()
	}
	served := make(chan error, 1)
	// The same listener as `keywarden serve`: request heads are checked on
	// the wire before net/http parses them.
	go func() { served <- hs.Serve(gateway.StrictListener(ln)) }()
	ready.URL = "http://" + ln.Addr().String()
	b, err := json.Marshal(ready)
	if err != nil {
		hs.Close()
		return err
	}
	ready.Clients = nil
	_, err = out.Write(append(b, '\n'))
	clear(b)
	if err != nil {
		hs.Close()
		return fmt.Errorf("bench gateway: write ready: %w", err)
	}
	// Serve until the parent closes our stdin (or dies), or ctx ends.
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, br)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("bench gateway: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return nil
}

// gatewayProc is a running gateway process, seen from the parent.
type gatewayProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   gatewayReady
	done    chan error
	stderr  *tailBuffer
	stopped bool
}

// startGateway starts the gateway process with cmd, hands it the setup and
// waits up to wait for its ready line.
func startGateway(ctx context.Context, cmd *exec.Cmd, s gatewaySetup, wait time.Duration) (*gatewayProc, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &gatewayProc{cmd: cmd, stdin: stdin, done: make(chan error, 1), stderr: &tailBuffer{max: 4096}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start gateway process: %w", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		p.kill()
		return nil, err
	}
	_, err = stdin.Write(append(b, '\n'))
	clear(b)
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("bench: gateway setup: %w", err)
	}
	type line struct {
		b   []byte
		err error
	}
	lines := make(chan line, 1)
	go func() {
		br := bufio.NewReaderSize(stdout, 64<<10)
		b, err := br.ReadBytes('\n')
		lines <- line{b, err}
		_, _ = io.Copy(io.Discard, br)
		p.done <- cmd.Wait()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l := <-lines:
		if l.err != nil {
			p.kill()
			return nil, fmt.Errorf("bench: gateway process did not start: %v: %s", l.err, p.stderr.String())
		}
		if err := json.Unmarshal(l.b, &p.ready); err != nil {
			p.kill()
			return nil, fmt.Errorf("bench: gateway ready line: %w", err)
		}
		clear(l.b)
	case <-t.C:
		p.kill()
		return nil, fmt.Errorf("bench: gateway process not ready after %v: %s", wait, p.stderr.String())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	if p.ready.PID != cmd.Process.Pid {
		p.kill()
		return nil, fmt.Errorf("bench: gateway process reports pid %d, started %d", p.ready.PID, cmd.Process.Pid)
	}
	return p, nil
}

// stop closes the gateway's stdin, which makes it shut down, and waits up
// to 10 s before killing it.
func (p *gatewayProc) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.stdin.Close()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case err := <-p.done:
		return err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("bench: gateway process did not stop; killed")
	}
}

func (p *gatewayProc) kill() {
	p.stopped = true
	p.stdin.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func loopbackURL(u *url.URL) bool {
	if u.Scheme != "http" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
