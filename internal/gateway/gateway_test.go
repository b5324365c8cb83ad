package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
)

const (
	exchangeAPIKey = "EXCHANGEKEY-0123456789"
	exchangeSecret = "exchange-secret-MARKER-7d1f"
	clientID       = "kwclient1"
	clientSecret   = "client-secret-MARKER-93ab"
)

type fakeClients struct {
	mu sync.Mutex
	m  map[string]*client.Entry
}

func (f *fakeClients) Lookup(venue, id string) (*client.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[venue+"/"+id]
	if !ok {
		return nil, client.ErrNotFound
	}
	if err := e.Active(time.Now()); err != nil {
		return nil, err
	}
	return e, nil
}

type fakeKeys struct{}

func (fakeKeys) Credential(ctx context.Context, ex, name string) (*exchange.Credential, error) {
	if ex != "tv" || name != "main" {
		return nil, errors.New("no such key")
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exchangeAPIKey, Secret: exchange.Secret(exchangeSecret)}, nil
}

type policyFunc func(Check) error

type nopPermit struct{ committed, released *int }

func (p nopPermit) Commit()  { *p.committed++ }
func (p nopPermit) Release() { *p.released++ }

type fakePolicy struct {
	fn                  policyFunc
	committed, released int
}

func (p *fakePolicy) Check(ctx context.Context, c Check) (Permit, error) {
	if p.fn != nil {
		if err := p.fn(c); err != nil {
			return nil, err
		}
	}
	return nopPermit{&p.committed, &p.released}, nil
}

type fakeAudit struct {
	mu         sync.Mutex
	intents    []Intent
	outcomes   []Outcome
	failIntent error
	failOut    error
}

func (a *fakeAudit) Intent(ctx context.Context, in Intent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failIntent != nil {
		return a.failIntent
	}
	a.intents = append(a.intents, in)
	return nil
}

func (a *fakeAudit) Outcome(ctx context.Context, o Outcome) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failOut != nil {
		return a.failOut
	}
	a.outcomes = append(a.outcomes, o)
	return nil
}

// upstream is a venue stub that checks the exchange signature and records
// what it received.
type upstream struct {
	mu       sync.Mutex
	received []*http.Request
	bodies   []string
	handler  func(w http.ResponseWriter, r *http.Request)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.received = append(u.received, r)
	u.bodies = append(u.bodies, string(body))
	h := u.handler
	u.mu.Unlock()
	if r.Header.Get("X-Key") != "" {
		req := &exchange.Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
		key := &exchange.Credential{APIKey: exchangeAPIKey, Secret: exchange.Secret(exchangeSecret)}
		if r.Header.Get("X-Key") != exchangeAPIKey {
			http.Error(w, `{"msg":"unknown key"}`, http.StatusUnauthorized)
			return
		}
		if _, err := (testVenue{}).Verify(req, key, time.Now()); err != nil {
			http.Error(w, `{"msg":"bad exchange signature"}`, http.StatusUnauthorized)
			return
		}
	}
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Used", "10")
	w.Header().Set("X-Limit", "1200")
	io.WriteString(w, `{"orderId":12345,"apiKey":"`+exchangeAPIKey+`","status":"NEW"}`)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.received)
}

type harness struct {
	gw      *Gateway
	up      *upstream
	upSrv   *httptest.Server
	clients *fakeClients
	policy  *fakePolicy
	audit   *fakeAudit
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{up: &upstream{}, audit: &fakeAudit{}, policy: &fakePolicy{}}
	h.upSrv = httptest.NewServer(h.up)
	t.Cleanup(h.upSrv.Close)
	return h.build(t, h.upSrv.URL, mod)
}

// newHarnessFor builds a harness around h whose upstream is already running.
func newHarnessFor(t testing.TB, upstreamURL string, h *harness) *harness {
	return h.build(t, upstreamURL, nil)
}

func (h *harness) build(t testing.TB, upstreamURL string, mod func(*Options)) *harness {
	h.clients = &fakeClients{m: map[string]*client.Entry{
		"tv/" + clientID: {
			Client: client.Client{ID: clientID, Venue: "tv", Key: "main", Policy: "p", Kind: exchange.KeyHMAC, Expires: time.Now().Add(time.Hour)},
			Cred:   &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: clientID, Secret: exchange.Secret(clientSecret)},
		},
	}}
	o := Options{
		Routes:  []Route{{Venue: newTestVenue(upstreamURL)}},
		Clients: h.clients, Keys: fakeKeys{}, Policy: h.policy, Audit: h.audit,
		UpstreamTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	return h
}

// signed builds a bot request signed with the client credential.
func signed(method, target, body string, secret string, at time.Time) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	path := strings.TrimPrefix(r.URL.Path, "/tv")
	er := &exchange.Request{Method: method, Path: path, RawQuery: r.URL.RawQuery, Body: []byte(body), Header: http.Header{}}
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	r.Header.Set("X-Key", clientID)
	r.Header.Set("X-Ts", ts)
	r.Header.Set("X-Sig", tvSign([]byte(secret), tvPayload(er, ts)))
	return r
}

func (h *harness) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.gw.ServeHTTP(w, r)
	return w
}

func TestForwardSignedOrder(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now()))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", w.Code, w.Body)
	}
	if got := h.up.count(); got != 1 {
		t.Fatalf("upstream received %d requests, want 1", got)
	}
	got := h.up.received[0]
	if got.Header.Get("X-Key") != exchangeAPIKey {
		t.Errorf("upstream saw key %q, want the exchange key", got.Header.Get("X-Key"))
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, clientID) || strings.Contains(v, clientSecret) {
				t.Errorf("upstream saw the client credential in header %s", k)
			}
		}
	}
	body := w.Body.String()
	if strings.Contains(body, exchangeAPIKey) {
		t.Errorf("response leaks the exchange API key: %s", body)
	}
	if !strings.Contains(body, clientID) {
		t.Errorf("response should show the client id where the venue echoed the key: %s", body)
	}
	if len(h.audit.intents) != 1 || h.audit.intents[0].Decision != "allow" {
		t.Fatalf("intents = %+v, want one allow", h.audit.intents)
	}
	if len(h.audit.outcomes) != 1 || h.audit.outcomes[0].VenueOrderID != "12345" || h.audit.outcomes[0].Status != 200 {
		t.Fatalf("outcomes = %+v, want one with order id 12345", h.audit.outcomes)
	}
	if h.policy.committed != 1 || h.policy.released != 0 {
		t.Errorf("permit committed %d released %d, want 1/0", h.policy.committed, h.policy.released)
	}
}

func TestRefusedRequestsAreNotForwarded(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		mod    func(*harness)
	}{
		{"wrong secret", func() *http.Request { return signed("GET", "/tv/balance", "", "wrong", now) }, 401, nil},
		{"unknown key", func() *http.Request {
			r := signed("GET", "/tv/balance", "", clientSecret, now)
			r.Header.Set("X-Key", "kwnobody")
			return r
		}, 401, nil},
		{"stale timestamp", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now.Add(-time.Minute)) }, 401, nil},
		{"revoked", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now) }, 401, func(h *harness) {
			h.clients.m["tv/"+clientID].Revoked = time.Now()
		}},
		{"expired", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now) }, 401, func(h *harness) {
			h.clients.m["tv/"+clientID].Expires = time.Now().Add(-time.Second)
		}},
		{"ip not allowed", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now) }, 403, func(h *harness) {
			h.clients.m["tv/"+clientID].CIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
		}},
		{"xff from untrusted peer ignored", func() *http.Request {
			r := signed("GET", "/tv/balance", "", clientSecret, now)
			r.Header.Set("X-Forwarded-For", "10.0.0.5")
			return r
		}, 403, func(h *harness) {
			h.clients.m["tv/"+clientID].CIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
		}},
		{"policy denial", func() *http.Request {
			return signed("POST", "/tv/withdraw?asset=BTC&amount=1&address=x", "", clientSecret, now)
		}, 403, func(h *harness) {
			h.policy.fn = func(c Check) error {
				if c.Call.Scope == exchange.ScopeWithdraw {
					return &Denial{Rule: "scope", Reason: "withdraw is not allowed"}
				}
				return nil
			}
		}},
		{"audit down", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now) }, 503, func(h *harness) {
			h.audit.failIntent = errors.New("disk full")
		}},
		{"dot-dot path", func() *http.Request { return signed("GET", "/tv/../other/balance", "", clientSecret, now) }, 400, nil},
		{"double slash", func() *http.Request { return signed("GET", "/tv//withdraw", "", clientSecret, now) }, 400, nil},
		{"encoded slash", func() *http.Request { return signed("GET", "/tv/a%2Fwithdraw", "", clientSecret, now) }, 400, nil},
		{"trace", func() *http.Request { return signed("TRACE", "/tv/balance", "", clientSecret, now) }, 405, nil},
		{"duplicate param", func() *http.Request {
			return signed("POST", "/tv/order?symbol=BTCUSDT&qty=1&qty=1000", "", clientSecret, now)
		}, 400, nil},
		{"encoded CRLF in query", func() *http.Request { return signed("GET", "/tv/balance?a=%0d%0a", "", clientSecret, now) }, 400, nil},
		{"private call without key", func() *http.Request {
			r := httptest.NewRequest("GET", "/tv/balance", nil)
			r.RemoteAddr = "127.0.0.1:1"
			return r
		}, 401, nil},
		{"body too large", func() *http.Request {
			return signed("POST", "/tv/order?symbol=BTCUSDT", strings.Repeat("a", 70<<10), clientSecret, now)
		}, 413, nil},
		{"stopped", func() *http.Request { return signed("GET", "/tv/balance", "", clientSecret, now) }, 503, func(h *harness) { h.gw.Stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tt.mod != nil {
				tt.mod(h)
			}
			w := h.do(tt.req())
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if n := h.up.count(); n != 0 {
				t.Errorf("upstream received %d requests, want 0", n)
			}
			for _, s := range []string{clientSecret, exchangeSecret} {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("response leaks a secret: %s", w.Body)
				}
			}
		})
	}
}

func TestDenialIsAuditedWithRule(t *testing.T) {
	h := newHarness(t, nil)
	h.policy.fn = func(c Check) error {
		return &Denial{Rule: "max_order_notional", Reason: "order notional 1000 exceeds 10"}
	}
	w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=10&price=100", "", clientSecret, time.Now()))
	if w.Code != 403 || !strings.Contains(w.Body.String(), "max_order_notional") {
		t.Fatalf("got %d %s, want 403 naming the rule", w.Code, w.Body)
	}
	if len(h.audit.intents) != 1 || h.audit.intents[0].Decision != "deny" || h.audit.intents[0].Rule != "max_order_notional" {
		t.Fatalf("intents = %+v, want one deny record with the rule", h.audit.intents)
	}
}

func TestReplayRefused(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now()
	r1 := signed("GET", "/tv/balance", "", clientSecret, now)
	r2 := signed("GET", "/tv/balance", "", clientSecret, now)
	if w := h.do(r1); w.Code != 200 {
		t.Fatalf("first = %d, want 200", w.Code)
	}
	if w := h.do(r2); w.Code != 401 || !strings.Contains(w.Body.String(), "replayed") {
		t.Fatalf("replay = %d %s, want 401 replayed", w.Code, w.Body)
	}
	if n := h.up.count(); n != 1 {
		t.Errorf("upstream received %d, want 1", n)
	}
}

func TestTrustedProxyXFF(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	h.clients.m["tv/"+clientID].CIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	r := signed("GET", "/tv/balance", "", clientSecret, time.Now())
	r.Header.Set("X-Forwarded-For", "10.0.0.5")
	if w := h.do(r); w.Code != 200 {
		t.Fatalf("status = %d %s, want 200 via trusted proxy", w.Code, w.Body)
	}
	if got := h.audit.intents[0].SourceIP; got != "10.0.0.5" {
		t.Errorf("audited source = %q, want 10.0.0.5", got)
	}
}

func TestOutcomeFailureKeepsAnswerThenRefuses(t *testing.T) {
	h := newHarness(t, nil)
	h.audit.failOut = errors.New("disk full")
	w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now()))
	if w.Code != 200 {
		t.Fatalf("status = %d, want the venue's 200 even though the outcome failed", w.Code)
	}
	w = h.do(signed("GET", "/tv/balance", "", clientSecret, time.Now().Add(time.Millisecond)))
	if w.Code != 503 {
		t.Fatalf("next status = %d, want 503", w.Code)
	}
	if n := h.up.count(); n != 1 {
		t.Errorf("upstream received %d, want 1", n)
	}
}

func TestPublicPassThroughAndCache(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Routes[0].PublicCacheTTL = time.Minute })
	for i := 0; i < 3; i++ {
		r := httptest.NewRequest("GET", "/tv/public/ticker?symbol=BTCUSDT", nil)
		r.RemoteAddr = "127.0.0.1:1"
		if w := h.do(r); w.Code != 200 {
			t.Fatalf("status = %d, want 200", w.Code)
		}
	}
	if n := h.up.count(); n != 1 {
		t.Errorf("upstream received %d, want 1 (cached)", n)
	}
	if len(h.audit.intents) != 0 {
		t.Errorf("public calls wrote %d intents, want 0", len(h.audit.intents))
	}
}

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		status  int
	}{
		{"5xx sent once gives 502", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"code":-1000}`, http.StatusServiceUnavailable)
		}, 502},
		{"redirect not followed gives 502", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.2/steal", http.StatusFound)
		}, 502},
		{"hang gives 504", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, 504},
		{"truncated body gives 502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			w.Write([]byte(`{"partial":`))
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
			}
		}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.UpstreamTimeout = 300 * time.Millisecond })
			h.up.handler = tt.handler
			w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now()))
			if w.Code != tt.status {
				t.Fatalf("status = %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if n := h.up.count(); n != 1 {
				t.Errorf("upstream received %d, want exactly 1 (orders are never retried)", n)
			}
			if len(h.audit.outcomes) != 1 || h.audit.outcomes[0].Status != tt.status {
				t.Errorf("outcomes = %+v, want one with status %d", h.audit.outcomes, tt.status)
			}
			if h.policy.released != 1 {
				t.Errorf("permit released %d times, want 1", h.policy.released)
			}
		})
	}
}

func TestRetryAfterHoldsCalls(t *testing.T) {
	h := newHarness(t, nil)
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, `{"code":-1003}`, http.StatusTooManyRequests)
	}
	now := time.Now()
	if w := h.do(signed("GET", "/tv/balance", "", clientSecret, now)); w.Code != 429 {
		t.Fatalf("first = %d, want the venue's 429", w.Code)
	}
	w := h.do(signed("GET", "/tv/balance?x=1", "", clientSecret, now))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("second = %d (Retry-After %q), want a local 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if n := h.up.count(); n != 1 {
		t.Errorf("upstream received %d, want 1", n)
	}
}

func TestUsedWeightHoldsCalls(t *testing.T) {
	h := newHarness(t, nil)
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Used", "1190")
		w.Header().Set("X-Limit", "1200")
		io.WriteString(w, `{}`)
	}
	now := time.Now()
	h.do(signed("GET", "/tv/balance", "", clientSecret, now))
	if w := h.do(signed("GET", "/tv/balance?x=2", "", clientSecret, now)); w.Code != 429 {
		t.Fatalf("status = %d, want 429 before the venue would ban the key", w.Code)
	}
	if n := h.up.count(); n != 1 {
		t.Errorf("upstream received %d, want 1", n)
	}
}

func TestCheckUpstream(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"https://api.binance.com", true},
		{"http://127.0.0.1:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:9", true},
		{"http://api.binance.com", false},
		{"http://10.0.0.1", false},
		{"ftp://x", false},
		{"https://user:pw@host", false},
	}
	for _, tt := range tests {
		u, _ := urlParse(tt.in)
		err := CheckUpstream(u)
		if (err == nil) != tt.ok {
			t.Errorf("CheckUpstream(%s) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestFindOrderID(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"symbol":"BTCUSDT","orderId":28,"clientOrderId":"x"}`, "28"},
		{`{"code":"0","data":[{"ordId":"312269865356374016","sCode":"0"}]}`, "312269865356374016"},
		{`{"order_id":"abc-1"}`, "abc-1"},
		{`{"status":"ok"}`, ""},
	}
	for _, tt := range tests {
		if got := findOrderID([]byte(tt.in)); got != tt.want {
			t.Errorf("findOrderID(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"/api/v3/order", true}, {"/", true}, {"/api/v2/private/buy", true},
		{"", false}, {"/api//order", false}, {"/api/../x", false}, {"/api/./x", false},
		{"/api/x;y", false}, {"/api/x\\y", false}, {"/api/x@h", false}, {"/api/x%2f", false},
	}
	for _, tt := range tests {
		if got := cleanPath(tt.in); got != tt.ok {
			t.Errorf("cleanPath(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

func TestScrubSensitive(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"orderId":1}`, `{"orderId":1}`},
		{`{"result":{"access_token":"tok","refresh_token":"r","expires_in":900}}`, `{"result":{"access_token":"[withheld by keywarden]","expires_in":900,"refresh_token":"[withheld by keywarden]"}}`},
		{`[{"id":"k1","secret":"s"},{"id":"k2","secret":""}]`, `[{"id":"k1","secret":"[withheld by keywarden]"},{"id":"k2","secret":""}]`},
		{`not json "secret"`, `not json "secret"`},
		{`{"price":"1.10","apiSecret":"x"}`, `{"apiSecret":"[withheld by keywarden]","price":"1.10"}`},
		// Names in another case, or spelt with escapes, are found too.
		{`{"id":1,"SecretKey":"s"}`, `{"SecretKey":"[withheld by keywarden]","id":1}`},
		{`{"id":1,"secr\u0065t":"s"}`, `{"id":1,"secret":"[withheld by keywarden]"}`},
		{`{"note":"a \"quoted\" word","passphrase":"p"}`, `{"note":"a \"quoted\" word","passphrase":"[withheld by keywarden]"}`},
		// A long string with an escape is decoded, and left as it was
		// when nothing in it is sensitive.
		{`{"msg":"line one\nline two and more"}`, `{"msg":"line one\nline two and more"}`},
		{`{"symbol":"BTCUSDT","status":"NEW","clientOrderId":"secretive"}`, `{"symbol":"BTCUSDT","status":"NEW","clientOrderId":"secretive"}`},
	}
	for _, tt := range tests {
		if got := string(scrubSensitive([]byte(tt.in))); got != tt.want {
			t.Errorf("scrubSensitive(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestVenueSecretsNeverReachTheBot(t *testing.T) {
	h := newHarness(t, nil)
	h.up.handler = func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":{"access_token":"SESSION-TOKEN-1","client_secret":"NEW-SECRET-2"}}`)
	}
	w := h.do(signed("GET", "/tv/balance", "", clientSecret, time.Now()))
	if strings.Contains(w.Body.String(), "SESSION-TOKEN-1") || strings.Contains(w.Body.String(), "NEW-SECRET-2") {
		t.Fatalf("venue secret reached the bot: %s", w.Body)
	}
}

func TestPublicCallsCarryNoCredential(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest("GET", "/tv/public/ticker", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-MBX-APIKEY", clientID)
	r.Header.Set("Authorization", "Bearer x")
	// The test venue reads X-Key; without it the call is public.
	if w := h.do(r); w.Code != 200 {
		t.Fatalf("status = %d, want 200", w.Code)
	}
	got := h.up.received[0].Header
	if got.Get("X-Mbx-Apikey") != "" || got.Get("Authorization") != "" {
		t.Errorf("public call forwarded credential headers: %v", got)
	}
}

func TestClientCertificateBinding(t *testing.T) {
	certA := &x509.Certificate{Raw: []byte("certificate A")}
	certB := &x509.Certificate{Raw: []byte("certificate B")}
	tests := []struct {
		name   string
		peer   []*x509.Certificate
		status int
	}{
		{"no certificate", nil, 401},
		{"another certificate", []*x509.Certificate{certB}, 401},
		{"the bound certificate", []*x509.Certificate{certA}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.clients.m["tv/"+clientID].CertSHA256 = client.CertFingerprint(certA)
			r := signed("GET", "/tv/balance", "", clientSecret, time.Now())
			if tt.peer != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: tt.peer}
			}
			if w := h.do(r); w.Code != tt.status {
				t.Errorf("status = %d %s, want %d", w.Code, w.Body, tt.status)
			}
		})
	}
}

// TestReplayAcrossEndpoints: a signature that does not cover the path
// (Binance, Bybit) cannot be reused on another endpoint.
func TestReplayAcrossEndpoints(t *testing.T) {
	c := newReplayCache(64, time.Minute)
	now := time.Now()
	mk := func(method, path, query string) *exchange.Request {
		return &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{"X-Bapi-Sign": {"abc"}}}
	}
	if c.seen(mk("GET", "/v5/account/wallet-balance", "accountType=UNIFIED"), now) {
		t.Fatal("first request reported as seen")
	}
	if !c.seen(mk("POST", "/v5/asset/withdraw/create", "accountType=UNIFIED"), now) {
		t.Error("the same signature on another endpoint was not recognised")
	}
	if c.seen(mk("GET", "/v5/account/wallet-balance", "accountType=CONTRACT"), now) {
		t.Error("a different request was reported as a replay")
	}
	if c.seen(mk("GET", "/v5/account/wallet-balance", "accountType=UNIFIED"), now.Add(2*time.Minute)) {
		t.Error("a request outside the window was reported as a replay")
	}
}

func TestObservationCarriesCallerAndClaim(t *testing.T) {
	var got []Observation
	var mu sync.Mutex
	h := newHarness(t, func(o *Options) {
		o.Observe = func(ob Observation) { mu.Lock(); got = append(got, ob); mu.Unlock() }
	})
	r := signed("GET", "/tv/balance", "", clientSecret, time.Now())
	r.Header.Set("X-Key", "kwstolen\x1b[31m")
	h.do(r)
	h.do(signed("GET", "/tv/balance?a=1", "", clientSecret, time.Now()))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d observations, want 2", len(got))
	}
	if got[0].Claimed != "kwstolen?[31m" || got[0].Decision != "error" || got[0].SourceIP.String() != "127.0.0.1" {
		t.Errorf("refused observation = %+v, want the cleaned claimed id and the caller", got[0])
	}
	if got[1].Claimed != "" || got[1].Client != clientID || got[1].Decision != "allow" {
		t.Errorf("allowed observation = %+v", got[1])
	}
}

// TestScrubSensitiveCleanBodyAllocatesNothing: the usual answer, with no
// sensitive name, is returned as it is without a copy.
func TestScrubSensitiveCleanBodyAllocatesNothing(t *testing.T) {
	b := []byte(`{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP","transactTime":1507725176595,"status":"NEW","side":"BUY"}`)
	var out []byte
	if n := testing.AllocsPerRun(100, func() { out = scrubSensitive(b) }); n != 0 {
		t.Errorf("scrubSensitive of a clean answer: %v allocations, want 0", n)
	}
	if &out[0] != &b[0] {
		t.Errorf("scrubSensitive of a clean answer returned a copy")
	}
}

// TestOutboundHeadersNotCarriedOver: the outbound header maps are reused,
// and a request's forwarded headers and exchange key never reach the venue
// with the next request.
func TestOutboundHeadersNotCarriedOver(t *testing.T) {
	h := newHarness(t, nil)
	first := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now())
	first.Header.Set("User-Agent", "bot-one")
	first.Header.Set("Accept", "text/x-one")
	second := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=2&price=100", "", clientSecret, time.Now())
	for i, r := range []*http.Request{first, second} {
		if w := h.do(r); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d %s", i, w.Code, w.Body)
		}
	}
	h.up.mu.Lock()
	got := h.up.received[1].Header
	h.up.mu.Unlock()
	if ua := got.Get("User-Agent"); ua == "bot-one" {
		t.Errorf("second request went out with the first's User-Agent")
	}
	if a := got.Values("Accept"); len(a) != 0 {
		t.Errorf("second request went out with Accept %q, the first's", a)
	}
	if k := got.Values("X-Key"); len(k) != 1 || k[0] != exchangeAPIKey {
		t.Errorf("second request's exchange key header = %q, want exactly the exchange key", k)
	}
}

// deadlineTransport answers every request and records the deadline its
// context carried.
type deadlineTransport struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (d *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	dl, _ := r.Context().Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	d.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"orderId":1}`)), Request: r}, nil
}

// TestOtherTransportGetsTheDeadline: a transport other than
// internal/upstream's reads the upstream timeout from the request's own
// context.
func TestOtherTransportGetsTheDeadline(t *testing.T) {
	tr := &deadlineTransport{}
	h := newHarness(t, func(o *Options) { o.Transport = tr; o.UpstreamTimeout = time.Minute })
	before := time.Now()
	if w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now())); w.Code != http.StatusOK {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.deadlines) != 1 {
		t.Fatalf("%d requests reached the transport, want 1", len(tr.deadlines))
	}
	if dl := tr.deadlines[0]; dl.Before(before.Add(time.Minute)) || dl.After(time.Now().Add(time.Minute)) {
		t.Errorf("request context deadline = %v, want the upstream timeout from now (%v)", dl, before.Add(time.Minute))
	}
}
