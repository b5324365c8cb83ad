package wsgateway

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/gateway"
)

// fakeListenKeys is a token table the tests fill.
type fakeListenKeys struct {
	mu      sync.Mutex
	keys    map[string]gateway.ListenKey
	revoked []string // tags of revoked tokens
}

func (f *fakeListenKeys) ListenKey(venue, token string) (gateway.ListenKey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[venue+"/"+token]
	return k, ok
}
func (f *fakeListenKeys) ListenKeyTag(token string) string { return "tag(" + token[:4] + ")" }
func (f *fakeListenKeys) RevokeListenKey(venue, token, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[venue+"/"+token]; ok {
		delete(f.keys, venue+"/"+token)
		f.revoked = append(f.revoked, f.ListenKeyTag(token))
	}
}
func (f *fakeListenKeys) RevokeListenKeys(string) {}
func (f *fakeListenKeys) SweepListenKeys()        {}

// switchClients knows one credential until revoked.
type switchClients struct {
	revoked atomic.Bool
	key     atomic.Value // string: the exchange key the credential is bound to
}

func (c *switchClients) Lookup(venue, id string) (*client.Entry, error) {
	if id != "bot" || c.revoked.Load() {
		return nil, client.ErrRevoked
	}
	return &client.Entry{Client: client.Client{ID: id, Venue: venue, Key: c.key.Load().(string)}}, nil
}

// switchPolicy allows reads until downgraded, or until it refuses the
// socket's address.
type switchPolicy struct{ deny, denyIP atomic.Bool }

func (p *switchPolicy) Check(_ context.Context, c gateway.Check) (gateway.Permit, error) {
	if p.denyIP.Load() {
		return nil, &gateway.Denial{Rule: "source_ip", Reason: "address not allowed"}
	}
	if p.deny.Load() || c.Call.Scope != "read" {
		return nil, &gateway.Denial{Rule: "scope", Reason: "read not allowed"}
	}
	return nil, nil
}

type recAudit struct {
	mu  sync.Mutex
	ins []gateway.Intent
}

func (a *recAudit) Intent(_ context.Context, in gateway.Intent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ins = append(a.ins, in)
	return nil
}
func (a *recAudit) Outcome(context.Context, gateway.Outcome) error { return nil }

func (a *recAudit) decisions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, in := range a.ins {
		out = append(out, in.Decision+"/"+in.Rule)
	}
	return out
}

// syncBuf is a log sink for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const plantedKey = "KWMARKERlistenkey0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"

type userStreamEnv struct {
	p       *Proxy
	base    string
	up      *upstream
	keys    *fakeListenKeys
	clients *switchClients
	pol     *switchPolicy
	audit   *recAudit
	logs    *syncBuf
}

func newUserStreamEnv(t *testing.T) *userStreamEnv {
	t.Helper()
	e := &userStreamEnv{up: newUpstream(t, 0), clients: &switchClients{}, pol: &switchPolicy{},
		audit: &recAudit{}, logs: &syncBuf{},
		keys: &fakeListenKeys{keys: map[string]gateway.ListenKey{"v/" + plantedKey: {Venue: "v", Key: "main", Clients: []string{"bot"}}}}}
	e.clients.key.Store("main")
	su, _ := url.Parse("ws" + strings.TrimPrefix(e.up.srv.URL, "http"))
	p, err := New(Options{Routes: []Route{{Venue: "v", Streams: su, StreamPaths: []string{"/ws", "/stream"}, UserStreams: true}},
		Clients: e.clients, Keys: noKeys{}, Policy: e.pol, Audit: e.audit, ListenKeys: e.keys, Sweep: 20 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	e.p, e.base = p, "ws"+strings.TrimPrefix(srv.URL, "http")
	return e
}

func readClose(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// TestUserStreamRefusedUnlessIssued: a stream naming a token the gateway
// did not issue is refused with 403 and never dialled; market streams and
// short connection names (ccxt's /ws/0) need no token; an issued token
// opens; nothing logs or audits the token itself.
func TestUserStreamRefusedUnlessIssued(t *testing.T) {
	e := newUserStreamEnv(t)
	other := strings.Repeat("Z", 60)
	for _, path := range []string{"/v/ws/" + other, "/v/ws/a@trade/" + other, "/v/stream?streams=a@trade/" + other} {
		if _, resp, err := dial(e.base, path); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("dial with an unknown token: %v, want 403", err)
		}
	}
	if n := e.up.open.Load(); n != 0 {
		t.Errorf("%d upstream sockets opened for refused streams", n)
	}
	for _, path := range []string{"/v/ws/a@trade", "/v/ws/0", "/v/ws/" + plantedKey, "/v/stream?streams=a@trade/" + plantedKey} {
		c, _, err := dial(e.base, path)
		if err != nil {
			t.Errorf("dial %s: %v", strings.ReplaceAll(path, plantedKey, "<key>"), err)
			continue
		}
		c.CloseNow()
	}
	// A failed upstream handshake logs its error, whose URL holds the token.
	e.up.srv.CloseClientConnections()
	e.up.srv.Close()
	if _, resp, err := dial(e.base, "/v/ws/"+plantedKey); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("dial with the venue down: %v, want 502", err)
	}
	if !strings.Contains(e.logs.String(), "websocket upstream dial failed") {
		t.Error("the failed dial was not logged")
	}
	want := []string{"deny/listen_key", "deny/listen_key", "deny/listen_key", "allow/", "allow/", "allow/"}
	if d := cmp.Diff(want, e.audit.decisions()); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
	for _, in := range e.audit.ins {
		if strings.Contains(in.Path+in.Call.Path+in.Reason, "KWMARKER") {
			t.Errorf("audit record carries the token: %+v", in)
		}
	}
	e.p.Close()
	if strings.Contains(e.logs.String(), "KWMARKER") {
		t.Errorf("the log carries the token:\n%s", e.logs.String())
	}
}

// TestUserStreamClosedOnDowngradeAndRevocation: the check loop closes an
// open user-data stream with 1008, and revokes its token, when the policy
// stops allowing reads, when the credential is revoked and when it is bound
// to another key; a policy refusing the socket's address closes the socket
// but leaves the token.
func TestUserStreamClosedOnDowngradeAndRevocation(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *userStreamEnv)
		revoke bool
	}{
		{"policy downgraded", func(e *userStreamEnv) { e.pol.deny.Store(true) }, true},
		{"credential revoked", func(e *userStreamEnv) { e.clients.revoked.Store(true) }, true},
		{"credential bound to another key", func(e *userStreamEnv) { e.clients.key.Store("other") }, true},
		{"address refused by the policy", func(e *userStreamEnv) { e.pol.denyIP.Store(true) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newUserStreamEnv(t)
			c, _, err := dial(e.base, "/v/ws/"+plantedKey)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			market, _, err := dial(e.base, "/v/ws/a@trade")
			if err != nil {
				t.Fatal(err)
			}
			defer market.CloseNow()
			waitFor(t, "both sockets", func() bool { return e.p.Open() == 2 })
			tt.change(e)
			if code := readClose(t, c); code != websocket.StatusPolicyViolation {
				t.Errorf("user-data stream ended with %v, want 1008", code)
			}
			waitFor(t, "only the market socket to stay open", func() bool { return e.p.Open() == 1 })
			var revoked []string
			if tt.revoke {
				waitFor(t, "the token to be revoked", func() bool {
					e.keys.mu.Lock()
					defer e.keys.mu.Unlock()
					revoked = append([]string(nil), e.keys.revoked...)
					return len(revoked) > 0
				})
			}
			// A token is revoked before its socket is closed, so every
			// revocation has been made by now.
			e.keys.mu.Lock()
			revoked = append([]string(nil), e.keys.revoked...)
			e.keys.mu.Unlock()
			var want []string
			if tt.revoke {
				want = []string{e.keys.ListenKeyTag(plantedKey)}
			}
			if d := cmp.Diff(want, revoked); d != "" {
				t.Errorf("revoked tokens (-want +got):\n%s", d)
			}
		})
	}
}

func TestStreamTokens(t *testing.T) {
	k := strings.Repeat("k", 60)
	tests := []struct {
		rest, query string
		want        []string
	}{
		{"/ws/btcusdt@trade", "", nil},
		{"/ws/0", "", nil},
		{"/ws/" + k, "", []string{k}},
		{"/ws/btcusdt@trade/" + k, "", []string{k}},
		{"/stream", "streams=btcusdt@trade/" + k, []string{k}},
		{"/private/ws", "listenKey=" + k, []string{k}},
		{"/private/ws", "listenKey=short", []string{"short"}},
		{"/market/ws/" + k, "", []string{k}},
		{"/ws/!ticker@arr", "", nil},
	}
	for _, tt := range tests {
		if got := streamTokens(tt.rest, tt.query); !cmp.Equal(got, tt.want) {
			t.Errorf("streamTokens(%q, %q) = %q, want %q", tt.rest, tt.query, got, tt.want)
		}
	}
}
