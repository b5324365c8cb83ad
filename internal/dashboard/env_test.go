package dashboard

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// marker is planted in every secret of the test environment (exchange
// secrets, passwords) so pages can be searched for it.
const marker = "KWDASHMARKER"

const password = "pw " + marker + " long enough"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a dashboard mounted with the admin API over a real vault, client
// registry, audit log and gateway (on an in-memory store), served over TLS.
type env struct {
	t         *testing.T
	ts        *httptest.Server
	srv       *server.Server
	vault     *vault.Vault
	ops       *operator.Manager
	clock     *clock
	seeds     map[string][]byte
	activity  *Activity
	client    string // an issued client id for binance/main
	auditDir  string
	incidents *incident.Manager
}

// vaultKeys is the admin API's key lifecycle over the vault alone: revoke
// disables the key (nothing at a venue); rotation needs a venue and is
// refused.
type vaultKeys struct{ v *vault.Vault }

func (k vaultKeys) Revoke(ctx context.Context, venue, name, reason string, atVenue bool) ([]string, error) {
	if _, err := k.v.DisableKey(ctx, venue, name, reason); err != nil {
		return nil, err
	}
	return []string{"Revoked " + venue + "/" + name + "."}, nil
}

func (k vaultKeys) Rotate(ctx context.Context, venue, name string, r admin.RotateRequest) ([]string, error) {
	return []string{"no venue in this test"}, errors.New("rotation needs a venue")
}

var testPolicies = map[string]policy.Definition{
	"read":  {},
	"trade": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 1000},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	v, err := vault.New(vault.Options{Store: st, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("vault passphrase " + marker), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"main", "old"} {
		if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: n, APIKey: "APIKEY" + marker + n,
			Secret: exchange.Secret("exsecret" + marker + n), Scopes: []string{"read", "trade"}}); err != nil {
			t.Fatal(err)
		}
	}
	binance, _ := venues.ByName("binance")
	dir := t.TempDir()
	srv, err := server.New(ctx, server.Options{Store: st, Vault: v, AuditDir: dir, Routes: []server.Route{{Def: binance}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ops, err := operator.New(operator.Options{Store: st, Secrets: v, Now: c.Now, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	api, hooks := admin.NewWithDashboard(admin.Options{Operators: ops, Keys: v, Clients: srv.Clients, Gateway: srv.Gateway,
		Audit: srv.Audit, AuditDir: dir, Policies: policy.NewOverlay(st, testPolicies, c.Now), AuditKey: pub,
		KeyLifecycle: vaultKeys{v}, Now: c.Now})
	act := NewActivity(c.Now)
	inc := incident.New(incident.Options{Store: st, Now: c.Now})
	ui, err := New(Options{Admin: hooks, Vault: v, Activity: act, Incidents: inc, AuditDir: dir, AuditKey: pub, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(Mount(api, ui))
	t.Cleanup(ts.Close)
	e := &env{t: t, ts: ts, srv: srv, vault: v, ops: ops, clock: c, seeds: map[string][]byte{}, activity: act, auditDir: dir, incidents: inc}
	for _, n := range []struct {
		name string
		role operator.Role
	}{
		{"admin", operator.RoleAdmin}, {"security", operator.RoleSecurity}, {"trader-ops", operator.RoleTraderOps}, {"auditor", operator.RoleAuditor},
	} {
		_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: n.name, Role: n.role, Password: []byte(password)})
		if err != nil {
			t.Fatal(err)
		}
		e.seeds[n.name] = enr.Seed
	}
	iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "main", Policy: "read", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.client = iss.ID
	return e
}

// code returns name's TOTP code for the next time step: the clock moves on
// 30 seconds first, because a code is accepted once.
func (e *env) code(name string) string {
	e.clock.Add(30 * time.Second)
	return operator.Code(e.seeds[name], e.clock.Now())
}

// browser is one cookie jar: one browser profile.
type browser struct {
	e  *env
	hc *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	hc := e.ts.Client()
	hc2 := *hc
	hc2.Jar = jar
	hc2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, hc: &hc2}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the page's synchronizer token.
func (p page) csrf() string {
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.ts.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(raw)}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

// post submits form with the CSRF token of the page at from.
func (b *browser) post(from, path string, form url.Values) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.get(from).csrf())
	return b.do("POST", path, form)
}

// login signs name in through the login form.
func (b *browser) login(name string) {
	b.e.t.Helper()
	lp := b.get("/ui/login")
	p := b.do("POST", "/ui/login", url.Values{"csrf": {lp.csrf()}, "name": {name}, "password": {password}, "code": {b.e.code(name)}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		b.e.t.Fatalf("login %s = %d %q, want 303 to /ui/\n%s", name, p.status, p.header.Get("Location"), p.body)
	}
}

// events returns the audit log's events of kind.
func (e *env) events(kind string) []audit.Event {
	var out []audit.Event
	for rec, err := range audit.Search(e.auditDir, audit.Filter{Types: []audit.Type{audit.TypeEvent}}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.Event != nil && rec.Event.Kind == kind {
			out = append(out, *rec.Event)
		}
	}
	return out
}

// sessionOf is the browser's session token.
func sessionOf(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.e.ts.URL)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// auditSeqs yields the seq of every audit record so far.
func auditSeqs(t *testing.T, e *env) iter.Seq[string] {
	return func(yield func(string) bool) {
		for rec, err := range audit.Search(e.auditDir, audit.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			if !yield(strconv.FormatUint(rec.Seq, 10)) {
				return
			}
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
