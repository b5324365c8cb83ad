package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serveStrict serves h through StrictListener on loopback and returns the
// address.
func serveStrict(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(StrictListener(ln)) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// roundTrips writes raw on one connection and reads the answers until the
// server closes it; it returns their status codes.
func roundTrips(t *testing.T, addr, raw string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	var codes []int
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
}

// TestStrictListener: plain heads are served, on keep-alive connections
// too and with any bytes in bodies; a bare LF or CR, an obs-fold or a
// malformed or conflicting Content-Length gets 400 and nothing reaches the
// handler.
func TestStrictListener(t *testing.T) {
	var got []string
	addr := serveStrict(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	const get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name  string
		raw   string
		codes []int
		seen  []string
	}{
		{"plain", get, []int{200}, []string{"GET /a "}},
		{"keep-alive with a body holding LF, CR and a fake head", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\n\r\nx\ny\rGET /z HTTP/1.1\n\n\r\n" + get,
			[]int{200, 200}, []string{"POST /b x\ny\rGET /z HTTP/1.1\n\n\r\n", "GET /a "}},
		{"bare LF ends a line", "GET /a HTTP/1.1\nHost: x\r\n\r\n", []int{400}, nil},
		{"bare LF ends the head", "GET /a HTTP/1.1\r\nHost: x\r\n\n", []int{400}, nil},
		{"bare CR", "GET /a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", []int{400}, nil},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n folded: 1\r\n\r\n", []int{400}, nil},
		{"folded Content-Length", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 4\r\n\r\nabcd", []int{400}, nil},
		{"Content-Length +4", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", []int{400}, nil},
		{"Content-Length 4, 4", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd", []int{400}, nil},
		{"conflicting Content-Length", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\ncontent-length: 5\r\n\r\nabcde", []int{400}, nil},
		{"same Content-Length twice", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length:  4 \r\n\r\nabcd", []int{200}, []string{"POST /b abcd"}},
		{"second request with a bare LF", get + "GET /c HTTP/1.1\nHost: x\r\n\r\n", []int{200, 400}, []string{"GET /a "}},
		{"second request after a body with a bare LF", "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /c HTTP/1.1\r\nHost: x\n\r\n",
			[]int{200, 400}, []string{"POST /b ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			codes := roundTrips(t, addr, tt.raw)
			if !equalInts(codes, tt.codes) {
				t.Errorf("answers %v, want %v", codes, tt.codes)
			}
			if strings.Join(got, "|") != strings.Join(tt.seen, "|") {
				t.Errorf("handler saw %q, want %q", got, tt.seen)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStrictListenerUpgrade: after a 101 answer the connection carries
// another protocol and is no longer checked; an upgrade that is refused
// leaves the connection checked.
func TestStrictListenerUpgrade(t *testing.T) {
	addr := serveStrict(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('!')
		_, _ = brw.WriteString(line)
		_ = brw.Flush()
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %v %v, want 101", resp, err)
	}
	io.WriteString(c, "bare\nLF\rfine!")
	echo, err := br.ReadString('!')
	if err != nil || echo != "bare\nLF\rfine!" {
		t.Errorf("echo after the switch = %q %v, want the bytes back", echo, err)
	}
	if codes := roundTrips(t, addr, "GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n\r\nGET /y HTTP/1.1\nHost: x\r\n\r\n"); !equalInts(codes, []int{400, 400}) {
		t.Errorf("refused upgrade then a bare LF: %v, want [400 400]", codes)
	}
}

// TestStrictListenerTLS: handlers behind a strict TLS listener see r.TLS
// with the handshake done.
func TestStrictListenerTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS() // only for its certificate and client
	defer ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ts.TLS.Clone()
	cfg.ClientAuth = tls.RequestClientCert
	var sawTLS bool
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawTLS = r.TLS != nil && r.TLS.HandshakeComplete && r.TLS.Version >= tls.VersionTLS12
		}),
		ReadHeaderTimeout: 2 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(StrictListener(tls.NewListener(ln, cfg))) }()
	defer srv.Close()
	resp, err := ts.Client().Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !sawTLS {
		t.Errorf("status %d, handler saw TLS %v; want 200 and true", resp.StatusCode, sawTLS)
	}
}

// TestStrictListenerAnswersAtOnce: a refused head is answered 400 while
// the client keeps the connection open (the refusal does not wait for
// more bytes or a timeout).
func TestStrictListenerAnswersAtOnce(t *testing.T) {
	addr := serveStrict(t, http.NotFoundHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\nX: y\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

// BenchmarkStrictHead measures the check of one typical signed order head
// and body (what StrictListener adds per request).
func BenchmarkStrictHead(b *testing.B) {
	req := []byte("POST /binance/api/v3/order HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nUser-Agent: python-requests/2.32\r\n" +
		"Accept: */*\r\nX-MBX-APIKEY: kw0123456789abcdef0123456789abcdef0123456789abcd\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 140\r\n\r\n" +
		strings.Repeat("a", 140))
	var p headParser
	p.startHead()
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := p.feed(req); !ok || p.state != inHead {
			b.Fatal("refused")
		}
	}
}
