package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// orderAck is the stub's answer: about 300 bytes shaped like Binance's
// order acknowledgement.
var orderAck = []byte(`{"symbol":"BTCUSDT","orderId":28457234,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP","transactTime":1507725176595,"price":"50000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY"}`)

var ackLength = strconv.Itoa(len(orderAck))

// stubCounts is what the stub process reports each time it is asked.
type stubCounts struct {
	Accepted int64 `json:"accepted"` // connections accepted so far
	Requests int64 `json:"requests"` // orders answered so far
}

// stubReady is the stub process's first line on its stdout.
type stubReady struct {
	URL string `json:"url"`
	PID int    `json:"pid"`
}

// ServeStub is the upstream process of `keywarden bench`, standing in for
// the exchange. It answers POST /api/v3/order on a loopback port with a
// fixed acknowledgement and verifies no signature, so the direct and the
// proxied paths cost it the same. It writes a ready line to out, then
// answers every line read from in with its connection and request counts,
// and stops when in is closed or ctx ends.
func ServeStub(ctx context.Context, in io.Reader, out io.Writer) error {
	var accepted, requests atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench stub: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3/order", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
		requests.Add(1)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{ackLength}
		_, _ = w.Write(orderAck)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	enc := json.NewEncoder(out)
	if err := enc.Encode(stubReady{URL: "http://" + ln.Addr().String(), PID: os.Getpid()}); err != nil {
		return fmt.Errorf("bench stub: %w", err)
	}
	lines := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64), 64)
		for sc.Scan() {
			if err := enc.Encode(stubCounts{Accepted: accepted.Load(), Requests: requests.Load()}); err != nil {
				lines <- err
				return
			}
		}
		lines <- sc.Err()
	}()
	select {
	case err := <-lines:
		return err
	case <-ctx.Done():
		return nil
	}
}

// stubProc is the running stub process, seen from the parent.
type stubProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	ready stubReady
	errs  *tailBuffer

	mu      sync.Mutex
	stopped bool
	done    chan error
}

func startStub(ctx context.Context, cmd *exec.Cmd) (*stubProc, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &stubProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), errs: &tailBuffer{max: 4096}, done: make(chan error, 1)}
	cmd.Stderr = p.errs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start stub process: %w", err)
	}
	go func() { p.done <- cmd.Wait() }()
	if err := p.readLine(ctx, &p.ready, 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("bench: stub process: %w: %s", err, p.errs.String())
	}
	if p.ready.PID != cmd.Process.Pid || !loopbackURLString(p.ready.URL) {
		p.stop()
		return nil, errors.New("bench: stub process sent a bad ready line")
	}
	return p, nil
}

// readLine decodes the next line of the stub's stdout into v, waiting at
// most wait.
func (p *stubProc) readLine(ctx context.Context, v any, wait time.Duration) error {
	type line struct {
		b   []byte
		err error
	}
	ch := make(chan line, 1)
	go func() {
		b, err := p.out.ReadBytes('\n')
		ch <- line{b, err}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l := <-ch:
		if l.err != nil {
			return l.err
		}
		return json.Unmarshal(l.b, v)
	case <-t.C:
		return fmt.Errorf("no answer within %v", wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counts asks the stub for its counters.
func (p *stubProc) counts(ctx context.Context) (stubCounts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c stubCounts
	if _, err := io.WriteString(p.stdin, "\n"); err != nil {
		return c, fmt.Errorf("bench: stub counts: %w", err)
	}
	if err := p.readLine(ctx, &c, 10*time.Second); err != nil {
		return c, fmt.Errorf("bench: stub counts: %w", err)
	}
	return c, nil
}

func (p *stubProc) URL() string { return p.ready.URL }

// hostPort is the stub's address for nginx's upstream block.
func (p *stubProc) hostPort() string { return p.ready.URL[len("http://"):] }

// stop closes the stub's stdin, which ends it, and kills it after 5 s.
func (p *stubProc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func loopbackURLString(s string) bool {
	host, _, err := net.SplitHostPort(s[min(len(s), len("http://")):])
	if err != nil || s[:min(len(s), len("http://"))] != "http://" {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
