package wsgateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
)

// The proxy's seams are the gateway's interfaces; stream-only tests never
// reach them, so these refuse everything.
type noClients struct{}

func (noClients) Lookup(string, string) (*client.Entry, error) { return nil, client.ErrNotFound }

type noKeys struct{}

func (noKeys) Credential(context.Context, string, string) (*exchange.Credential, error) {
	return nil, errors.New("no keys")
}

type denyAll struct{}

func (denyAll) Check(context.Context, gateway.Check) (gateway.Permit, error) {
	return nil, &gateway.Denial{Rule: "test", Reason: "denied"}
}

type noAudit struct{}

func (noAudit) Intent(context.Context, gateway.Intent) error   { return nil }
func (noAudit) Outcome(context.Context, gateway.Outcome) error { return nil }

// upstream is a venue stand-in: it floods n messages (0: none) on every
// socket and counts open sockets.
type upstream struct {
	n    int
	open atomic.Int64
	srv  *httptest.Server
}

func newUpstream(t *testing.T, n int) *upstream {
	u := &upstream{n: n}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		u.open.Add(1)
		defer u.open.Add(-1)
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context())
		msg := []byte(`{"e":"trade","p":"` + strings.Repeat("1", 200) + `"}`)
		for i := 0; i < u.n; i++ {
			if c.Write(ctx, websocket.MessageText, msg) != nil {
				return
			}
		}
		<-ctx.Done()
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func newProxy(t *testing.T, up *upstream, o Options) (*Proxy, string) {
	t.Helper()
	su, _ := url.Parse("ws" + strings.TrimPrefix(up.srv.URL, "http"))
	o.Routes = []Route{{Venue: "v", Streams: su}}
	o.Clients, o.Keys, o.Policy, o.Audit = noClients{}, noKeys{}, denyAll{}, noAudit{}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(base, path string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, base+path, nil)
}

// waitFor polls cond for up to 15 s (a liveness bound, not a timing check).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectionLimits: the per-address and global caps refuse the
// upgrade with 429 and free their slot when a socket closes.
func TestConnectionLimits(t *testing.T) {
	up := newUpstream(t, 0)
	p, base := newProxy(t, up, Options{MaxConnsPerIP: 2, MaxConns: 3})
	var conns []*websocket.Conn
	for i := range 2 {
		c, _, err := dial(base, "/v/ws/a@trade")
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	if _, resp, err := dial(base, "/v/ws/a@trade"); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third socket from one address: %v, want 429", err)
	}
	conns[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the slot to free", func() bool { return p.Open() == 1 && up.open.Load() == 1 })
	c, _, err := dial(base, "/v/ws/a@trade")
	if err != nil {
		t.Fatalf("socket after one closed: %v", err)
	}
	c.CloseNow()
	conns[1].CloseNow()
	waitFor(t, "every socket to close", func() bool { return p.Open() == 0 && up.open.Load() == 0 })
}

// TestSlowReaderDisconnected: a bot that never reads a flooding stream is
// disconnected, and both sockets are released, instead of the proxy
// buffering without bound.
func TestSlowReaderDisconnected(t *testing.T) {
	up := newUpstream(t, 200000)
	p, base := newProxy(t, up, Options{QueueLen: 8, WriteTimeout: 200 * time.Millisecond})
	c, _, err := dial(base, "/v/ws/a@trade")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, "the slow socket to be dropped", func() bool { return p.Open() == 0 && up.open.Load() == 0 })
}

// TestStreamsRelayAndPaths: messages pass unchanged; paths that are not
// plain stream paths, unknown venues and non-upgrade requests are refused;
// CloseAll closes with 1013.
func TestStreamsRelayAndPaths(t *testing.T) {
	up := newUpstream(t, 3)
	p, base := newProxy(t, up, Options{})
	c, _, err := dial(base, "/v/ws/btcusdt@trade")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil || !strings.HasPrefix(string(b), `{"e":"trade"`) {
			t.Fatalf("relayed %q, %v", b, err)
		}
	}
	p.CloseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Errorf("after CloseAll: %v, want 1013", err)
	}
	for _, bad := range []string{"/nope/ws/x", "/v/ws/../x", "/v/ws//x", "/v/ws/a%2Fb", "/v/ws/x?a=<b>", "/v/ws/a\"b"} {
		if _, resp, err := dial(base, bad); err == nil || resp == nil || resp.StatusCode < 400 {
			t.Errorf("dial %s: %v, want a refusal", bad, err)
		}
	}
	resp, err := http.Get("http" + strings.TrimPrefix(base, "ws") + "/v/ws/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET: %d, want 400", resp.StatusCode)
	}
}

// TestUnhealthyRefuses: while the gateway refuses requests, no socket is
// opened, and open ones are closed by the sweeper.
func TestUnhealthyRefuses(t *testing.T) {
	up := newUpstream(t, 0)
	var down atomic.Bool
	p, base := newProxy(t, up, Options{Sweep: 20 * time.Millisecond, Healthy: func() error {
		if down.Load() {
			return errors.New("stopped")
		}
		return nil
	}})
	c, _, err := dial(base, "/v/ws/a@trade")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	down.Store(true)
	waitFor(t, "the sweeper to close the socket", func() bool { return p.Open() == 0 })
	if _, resp, err := dial(base, "/v/ws/a@trade"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial while unhealthy: %v, want 503", err)
	}
}

func TestCheckUpstream(t *testing.T) {
	tests := []struct {
		u  string
		ok bool
	}{
		{"wss://stream.binance.com:9443", true},
		{"ws://127.0.0.1:8080", true},
		{"ws://localhost:1", true},
		{"ws://stream.binance.com", false},
		{"https://stream.binance.com", false},
		{"wss://user@host", false},
		{"wss://host?x=1", false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.u)
		if err := checkUpstream(u); (err == nil) != tt.ok {
			t.Errorf("checkUpstream(%s) = %v, want ok=%v", tt.u, err, tt.ok)
		}
	}
}
