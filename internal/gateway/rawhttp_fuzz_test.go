package gateway

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// FuzzRawHTTP (spec/security.md Z14) feeds raw HTTP/1.1 bytes over a
// loopback connection to the gateway served by net/http with the settings
// and the StrictListener `keywarden serve` uses, in front of a counting
// upstream. Property: when
// the framing of the first request is ambiguous (Content-Length with
// Transfer-Encoding, conflicting or malformed Content-Length, any
// Transfer-Encoding, a bare LF or CR in the head, a folded framing header)
// nothing is forwarded; and whatever is forwarded carries exactly the body
// bytes its Content-Length framed, as a strict parser reads them.
//
// The venue is the test venue with its signature check replaced by the
// client id alone, so that fuzzed bytes can reach the forwarding step:
// framing, not authentication, is under test here.
func FuzzRawHTTP(f *testing.F) {
	const order = "POST /tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100 HTTP/1.1\r\nHost: gw\r\nX-Key: " + clientID + "\r\n"
	for _, s := range []string{
		order + "Content-Length: 4\r\n\r\nabcd",
		"GET /tv/balance HTTP/1.1\r\nHost: gw\r\nX-Key: " + clientID + "\r\n\r\n",
		order + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		order + "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		order + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
		order + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
		order + "Content-Length: 4, 4\r\n\r\nabcd",
		order + "Content-Length: +4\r\n\r\nabcd",
		order + "Content-Length:\r\n 4\r\n\r\nabcd",
		order + "Content-Length : 4\r\n\r\nabcd",
		order + "Content-Length: 4\n\r\nabcd",
		strings.ReplaceAll(order, "\r\n", "\n") + "Content-Length: 4\n\nabcd",
		order + "Transfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n",
		order + "X-Note: a\r\n folded: 1\r\nContent-Length: 4\r\n\r\nabcd",
		order + "Content-Length: 4\r\n\r\nabcdGET /tv/balance HTTP/1.1\r\nHost: gw\r\nX-Key: " + clientID + "\r\n\r\n",
		order + "Content-Length: 0\r\n\r\nPOST /tv/order?symbol=BTCUSDT&side=buy&qty=9&price=1 HTTP/1.1\r\nHost: gw\r\nX-Key: " + clientID + "\r\nContent-Length: 1\r\n\r\nx",
		"GET http://127.0.0.2/tv/balance HTTP/1.1\r\nHost: 127.0.0.2\r\nX-Key: " + clientID + "\r\n\r\n",
		"POST /tv/order HTTP/1.0\r\nX-Key: " + clientID + "\r\n\r\nabcd",
	} {
		f.Add([]byte(s))
	}
	fx := newRawHTTPFixture(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := fx.exchange(t, raw)
		fr := strictFraming(raw)
		if (fr.ambiguous || fr.incomplete) && len(got) > 0 {
			t.Fatalf("ambiguous or incomplete framing forwarded %d requests, first body %q\ninput %q", len(got), got[0], raw)
		}
		if want := fr.body; fr.only && len(got) > 0 && !bytes.Equal(got[0], want) {
			t.Fatalf("forwarded body %q, want the %d bytes the Content-Length frames: %q\ninput %q", got[0], len(want), want, raw)
		}
	})
}

// keyOnlyVenue is the test venue authenticated by X-Key alone.
type keyOnlyVenue struct{ testVenue }

func (keyOnlyVenue) Verify(r *exchange.Request, c *exchange.Credential, now time.Time) (*exchange.Request, error) {
	if r.Header.Get("X-Key") != c.APIKey {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid API key")
	}
	out := r.Clone()
	out.Header.Del("X-Key")
	return out, nil
}

// countingUpstream records the body of every forwarded request and
// answers 200 without any network.
type countingUpstream struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (u *countingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	u.mu.Lock()
	u.bodies = append(u.bodies, b)
	u.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"orderId":1}`)), Request: r}, nil
}

func (u *countingUpstream) take() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.bodies
	u.bodies = nil
	return b
}

type rawHTTPFixture struct {
	addr string
	gw   *Gateway
	up   *countingUpstream
	mu   sync.Mutex // one input at a time: the upstream's record is shared
}

func newRawHTTPFixture(f testing.TB) *rawHTTPFixture {
	fx := &rawHTTPFixture{up: &countingUpstream{}}
	v := newTestVenue("http://127.0.0.1:1")
	kv := keyOnlyVenue{}
	v.Verifier = kv
	h := &harness{up: &upstream{}, audit: &fakeAudit{}, policy: &fakePolicy{}}
	h.build(f, "http://127.0.0.1:1", func(o *Options) {
		o.Routes = []Route{{Venue: v}}
		o.Transport = fx.up
		o.Policy = openPolicy{}
		o.ReplayWindow = time.Nanosecond // the same input may come twice
		o.IdempotencyWindow = -1
	})
	fx.gw = h.gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := &http.Server{
		Handler: fx.gw, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxHeaderBytes: 12 << 10, ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(StrictListener(ln)) }()
	f.Cleanup(func() { srv.Close() })
	fx.addr = ln.Addr().String()
	return fx
}

// exchange sends raw on a fresh connection, half-closes it, reads until the
// server hangs up, and returns the bodies forwarded upstream meanwhile.
func (fx *rawHTTPFixture) exchange(t testing.TB, raw []byte) [][]byte {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	c, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(io.Discard, c)
	fx.gw.Wait()
	return fx.up.take()
}

// framing is how a strict HTTP/1.1 parser frames the first request of an
// input.
type framing struct {
	// ambiguous: a parser could frame it otherwise, or the gateway must
	// refuse it (any Transfer-Encoding).
	ambiguous bool
	// incomplete: the head or the body Content-Length announces is cut
	// off.
	incomplete bool
	// body is the request's body by its Content-Length, and only says the
	// input holds nothing after it.
	body []byte
	only bool
}

// strictFraming reads the head of raw's first request as a strict
// HTTP/1.1 parser would.
func strictFraming(raw []byte) framing {
	amb := framing{ambiguous: true}
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	headLen := end
	if lf := bytes.Index(raw, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		return amb // the head ends on a bare LF for a lenient parser
	}
	if end < 0 {
		end = len(raw)
	}
	head := raw[:end]
	for i, c := range head {
		if c == '\n' && (i == 0 || head[i-1] != '\r') || c == '\r' && (i+1 >= len(head) || head[i+1] != '\n') {
			return amb // bare LF or CR
		}
	}
	lines := strings.Split(string(head), "\r\n")
	var cls []string
	te, prevFraming := 0, false
	for _, l := range lines[1:] {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			if prevFraming {
				return amb // a folded framing header
			}
			continue
		}
		name, val, ok := strings.Cut(l, ":")
		prevFraming = false
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimRight(name, " \t")) {
		case "content-length":
			if name != strings.TrimRight(name, " \t") {
				return amb
			}
			cls = append(cls, strings.Trim(val, " \t"))
			prevFraming = true
		case "transfer-encoding":
			te++
			prevFraming = true
		}
	}
	if te > 0 {
		return amb
	}
	if headLen < 0 {
		return framing{incomplete: true}
	}
	rest := raw[headLen+4:]
	if len(cls) == 0 {
		return framing{only: len(rest) == 0}
	}
	for _, v := range cls {
		if v != cls[0] {
			return amb // conflicting lengths
		}
	}
	if cls[0] == "" || len(cls[0]) > 9 || strings.Trim(cls[0], "0123456789") != "" {
		return amb // not plain digits: "+4", "4, 4", "0x4", "-1"
	}
	n, _ := strconv.Atoi(cls[0])
	if n > len(rest) {
		return framing{incomplete: true}
	}
	return framing{body: rest[:n], only: n == len(rest)}
}

// TestRawHTTPFixtureForwards keeps FuzzRawHTTP honest: plain requests do
// reach the counting upstream, with their exact body, pipelined ones too.
func TestRawHTTPFixtureForwards(t *testing.T) {
	fx := newRawHTTPFixture(t)
	const order = "POST /tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100 HTTP/1.1\r\nHost: gw\r\nX-Key: " + clientID + "\r\n"
	got := fx.exchange(t, []byte(order+"Content-Length: 4\r\n\r\nabcd"+order+"Content-Length: 2\r\n\r\nxy"))
	if len(got) != 2 || string(got[0]) != "abcd" || string(got[1]) != "xy" {
		t.Errorf("forwarded %q, want [abcd xy]", got)
	}
	if got := fx.exchange(t, []byte(order+"Content-Length: 4\r\n\nabcd")); len(got) != 0 {
		t.Errorf("a head ending in a bare LF forwarded %q", got)
	}
}
