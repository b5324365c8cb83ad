package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingDial counts the connections a client opens.
func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, network, addr)
	}
}

func get(t *testing.T, c *Client, method, url, body string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestReuseAndAnswers(t *testing.T) {
	for _, deadlineOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "watched", true: "deadline only"}[deadlineOnly], func(t *testing.T) {
			testReuseAndAnswers(t, deadlineOnly)
		})
	}
}

func testReuseAndAnswers(t *testing.T, deadlineOnly bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part1"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write([]byte(r.Method + " " + r.URL.RequestURI() + " " + string(b)))
		}
	}))
	defer srv.Close()
	var dials atomic.Int64
	c := New(Options{Dial: countingDial(&dials), DeadlineOnly: deadlineOnly})
	tests := []struct {
		method, path, body string
		status             int
		want               string
		dials              int64 // dials after this request, cumulative
	}{
		{"POST", "/api/v3/order?symbol=BTCUSDT", "quantity=1", 200, "POST /api/v3/order?symbol=BTCUSDT quantity=1", 1},
		{"GET", "/api/v3/account?x=1", "", 200, "GET /api/v3/account?x=1 ", 1},
		{"GET", "/chunked", "", 200, "part1part2", 1},
		{"DELETE", "/api/v3/order", "", 200, "DELETE /api/v3/order ", 1},
		{"GET", "/empty", "", 204, "", 1},
		{"GET", "/close", "", 200, "bye", 1},
		// The venue said close: the next request dials again.
		{"GET", "/after", "", 200, "GET /after ", 2},
	}
	for _, tt := range tests {
		status, got, err := get(t, c, tt.method, srv.URL+tt.path, tt.body)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		if status != tt.status || got != tt.want {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, status, got, tt.status, tt.want)
		}
		if n := dials.Load(); n != tt.dials {
			t.Errorf("%s %s: %d dials, want %d", tt.method, tt.path, n, tt.dials)
		}
	}
}

// TestSameBytesAsTransport: what the venue receives is byte for byte what
// net/http's Transport would have sent for the same request.
func TestSameBytesAsTransport(t *testing.T) {
	capture := func(rt http.RoundTripper) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- err.Error()
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(req.Body)
			var sb strings.Builder
			host := strings.Replace(req.Host, ln.Addr().String(), "venue", 1)
			sb.WriteString(req.Method + " " + req.RequestURI + " " + req.Proto + "\n" + "Host: " + host + "\n")
			req.Header.Write(&sb)
			sb.WriteString("\n" + string(b))
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			got <- sb.String()
		}()
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/v3/order?symbol=BTCUSDT&signature=ab", strings.NewReader("quantity=1&price=100"))
		req.Header.Set("X-MBX-APIKEY", "key")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		return <-got
	}
	std := capture(&http.Transport{DisableCompression: true})
	ours := capture(New(Options{}))
	if diff := cmp.Diff(std, ours); diff != "" {
		t.Errorf("request bytes differ from net/http's Transport (-std +ours):\n%s", diff)
	}
	if !strings.Contains(ours, "quantity=1&price=100") || !strings.Contains(ours, "Content-Length: 20") {
		t.Errorf("request lost its body: %q", ours)
	}
}

func TestConnectionCap(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var dials atomic.Int64
	c := New(Options{MaxConnsPerHost: 4, Dial: countingDial(&dials)})
	var wg sync.WaitGroup
	errs := make(chan error, 32*8)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 8; j++ {
				if _, _, err := get(t, c, "GET", srv.URL+"/x", ""); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := dials.Load(); d > 4 {
		t.Errorf("%d dials, want at most 4", d)
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("%d requests at the venue at once, want at most 4", p)
	}
}

// closingServer answers each request and then closes the connection without
// saying so, as a venue closing an idle keep-alive connection would.
func closingServer(t *testing.T, seen *atomic.Int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.ReadAll(req.Body)
				seen.Add(1)
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestVenueClosedIdleConnection(t *testing.T) {
	tests := []struct {
		name      string
		check     time.Duration
		method    string
		wantErr   bool
		wantSeen  int64
		wantDials int64
	}{
		// Checked before use: a fresh connection, whatever the method.
		{"checked POST", time.Nanosecond, "POST", false, 2, 2},
		{"checked GET", time.Nanosecond, "GET", false, 2, 2},
		// Not checked (used again at once): a GET is sent again on a fresh
		// connection; a POST is not, and the caller learns the connection
		// was lost.
		{"unchecked GET", time.Hour, "GET", false, 2, 2},
		{"unchecked POST", time.Hour, "POST", true, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen, dials atomic.Int64
			url := closingServer(t, &seen)
			c := New(Options{CheckIdleAfter: tt.check, Dial: countingDial(&dials)})
			if _, _, err := get(t, c, tt.method, url+"/1", "a=1"); err != nil {
				t.Fatal(err)
			}
			// Let the server's close arrive.
			deadline := time.Now().Add(5 * time.Second)
			for seen.Load() < 1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			_, _, err := get(t, c, tt.method, url+"/2", "a=2")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConnLost) {
				t.Errorf("err = %v, want ErrConnLost", err)
			}
			if s := seen.Load(); s != tt.wantSeen {
				t.Errorf("venue saw %d requests, want %d", s, tt.wantSeen)
			}
			if d := dials.Load(); d != tt.wantDials {
				t.Errorf("%d dials, want %d", d, tt.wantDials)
			}
		})
	}
}

// TestLimitsAndDeadlines, with the context watched and with DeadlineOnly:
// the deadline ends a slow header and a slow body the same way.
func TestLimitsAndDeadlines(t *testing.T) {
	for _, deadlineOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "watched", true: "deadline only"}[deadlineOnly], func(t *testing.T) {
			testLimitsAndDeadlines(t, deadlineOnly)
		})
	}
}

func testLimitsAndDeadlines(t *testing.T, deadlineOnly bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bigheader":
			w.Header().Set("X-Big", strings.Repeat("a", 8<<10))
			w.Write([]byte("x"))
		case "/slowheader":
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte("late"))
		case "/slowbody":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte("67890"))
		}
	}))
	defer srv.Close()
	var dials atomic.Int64
	c := New(Options{MaxResponseHeaderBytes: 4 << 10, MaxConnsPerHost: 1, Dial: countingDial(&dials), DeadlineOnly: deadlineOnly})
	call := func(path string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := call("/bigheader", 5*time.Second); !errors.Is(err, ErrHeaderTooLarge) {
		t.Errorf("big header: err = %v, want ErrHeaderTooLarge", err)
	}
	if err := call("/slowheader", 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow header: err = %v, want context.DeadlineExceeded", err)
	}
	if err := call("/slowbody", 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow body: err = %v, want context.DeadlineExceeded", err)
	}
	// Every failed connection gave its slot back: with a cap of one, a
	// normal call still goes through.
	if err := call("/slowheader", 5*time.Second); err != nil {
		t.Errorf("after failures: %v", err)
	}
}

func TestBodyClosedEarlyClosesConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	}))
	defer srv.Close()
	var dials atomic.Int64
	c := New(Options{MaxConnsPerHost: 1, Dial: countingDial(&dials)})
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Read(make([]byte, 10))
		resp.Body.Close()
	}
	if d := dials.Load(); d != 3 {
		t.Errorf("%d dials, want 3 (a half-read answer's connection is not reused)", d)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secure " + r.Proto))
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var dials atomic.Int64
	c := New(Options{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Dial: countingDial(&dials)})
	// httptest's certificate names example.com and 127.0.0.1.
	for i := 0; i < 3; i++ {
		_, got, err := get(t, c, "GET", srv.URL, "")
		if err != nil || got != "secure HTTP/1.1" {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("%d dials, want 1", d)
	}
	// The system roots do not trust the test certificate: no answer, no
	// downgrade.
	plain := New(Options{})
	if _, _, err := get(t, plain, "GET", srv.URL, ""); err == nil {
		t.Error("untrusted certificate accepted")
	}
}

func TestRejectsOtherSchemes(t *testing.T) {
	c := New(Options{})
	for _, u := range []string{"ftp://127.0.0.1/x", "unix:///tmp/s"} {
		req, _ := http.NewRequest("GET", u, nil)
		if _, err := c.RoundTrip(req); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}
