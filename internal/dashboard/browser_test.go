package dashboard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// chromium is the system browser the tests drive; nothing is downloaded.
const chromium = "/usr/bin/chromium"

// newChromium starts a headless Chromium with a fresh profile, or skips
// the test when there is none (fails with KEYWARDEN_REQUIRE_CHROMIUM=1).
func newChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("KEYWARDEN_REQUIRE_CHROMIUM=1 but %s: %v", chromium, err)
		}
		t.Skipf("no %s (scripts/setup/chromium.sh installs it): browser tests skipped", chromium)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		// The test servers' certificates come from httptest's own CA, on
		// loopback only.
		chromedp.IgnoreCertErrors,
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

// consoleErrors collects the errors a page reports (exceptions, failed
// loads, Content-Security-Policy violations) until ctx ends.
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(ctx context.Context) *consoleErrors {
	ce := &consoleErrors{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				ce.mu.Lock()
				ce.msgs = append(ce.msgs, m.String())
				ce.mu.Unlock()
			}
		}
	}()
	return ce
}

func (ce *consoleErrors) list() []string {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return slices.Clone(ce.msgs)
}

// liveEnv is a dashboard in front of a real gateway signing for a binance
// simulator, with the monitor feeding the alerts.
type liveEnv struct {
	*env
	gatewayURL string
	sim        *sim.Kit
	def        venues.Def
}

func newLiveEnv(t *testing.T) *liveEnv {
	t.Helper()
	ctx := context.Background()
	def, err := venues.ByName("binance")
	if err != nil {
		t.Fatal(err)
	}
	kit := sim.NewKit()
	simSrv := httptest.NewServer(def.Simulator(kit))
	t.Cleanup(simSrv.Close)
	upstream, _ := url.Parse(simSrv.URL)

	st := memory.New()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("vault passphrase " + marker), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	// binance/main: the venue lets it withdraw and it has no IP allowlist;
	// binance/spare: read and trade only, restricted to loopback.
	for _, k := range []struct {
		name  string
		perms []string
		ips   []string
	}{{"main", []string{"read", "trade", "withdraw"}, nil}, {"spare", []string{"read", "trade"}, []string{"127.0.0.1"}}} {
		apiKey, secret := "EXKEY"+k.name+strings.Repeat("7", 20), "exsecret"+marker+k.name
		perms := map[string]bool{}
		for _, p := range k.perms {
			perms[p] = true
		}
		kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)},
			Permissions: perms, IPs: k.ips})
		if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: k.name, APIKey: apiKey, Secret: exchange.Secret(secret),
			Scopes: []string{"read", "trade"}}); err != nil {
			t.Fatal(err)
		}
	}
	pols := map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 100000},
		"reader": {},
	}
	compiled, err := policy.CompileAll(pols)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	act := NewActivity(c.Now)
	inc := incident.New(incident.Options{Store: st, Now: c.Now})
	// Alerts reach the dashboard and the incidents as in keywarden serve.
	mon := monitor.New(monitor.Options{OnAlert: func(a monitor.Alert) { act.Alert(a); inc.Alert(a) }})
	ictx, stopInc := context.WithCancel(ctx)
	incDone := make(chan struct{})
	go func() { defer close(incDone); inc.Run(ictx) }()
	t.Cleanup(func() { stopInc(); <-incDone })
	srv, err := server.New(ctx, server.Options{Store: st, Vault: v, Policies: compiled, AuditDir: dir,
		Routes: []server.Route{{Def: def, Upstream: upstream}}, UpstreamTimeout: 5 * time.Second, Observe: act.Observer(mon.Observe),
		AuditSinks: []server.NamedSink{{Name: "incidents", Sink: inc}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	gw := httptest.NewServer(srv.Gateway)
	t.Cleanup(gw.Close)

	ops, err := operator.New(operator.Options{Store: st, Secrets: v, Now: c.Now, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	api, hooks := admin.NewWithDashboard(admin.Options{Operators: ops, Keys: v, Clients: srv.Clients, Gateway: srv.Gateway,
		Audit: srv.Audit, AuditDir: dir, Policies: policy.NewOverlay(st, pols, c.Now), SetPolicies: srv.SetPolicies,
		KeyLifecycle: vaultKeys{v}, AuditKey: pub, Now: c.Now})
	venue := def.Build(upstream)
	ui, err := New(Options{Admin: hooks, Vault: v, Activity: act, Incidents: inc, AuditDir: dir, AuditKey: pub, Now: c.Now,
		Inspect: func(ctx context.Context, k vault.KeyInfo) (exchange.KeyPosture, error) {
			cred, err := v.Credential(ctx, k.Exchange, k.Name)
			if err != nil {
				return exchange.KeyPosture{}, err
			}
			return posture.Inspect(ctx, simSrv.Client(), venue, cred, time.Now())
		}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(Mount(api, ui))
	t.Cleanup(ts.Close)
	e := &env{t: t, ts: ts, srv: srv, vault: v, ops: ops, clock: c, seeds: map[string][]byte{}, activity: act, auditDir: dir, incidents: inc}
	_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: "alice", Role: operator.RoleAdmin, Password: []byte(password)})
	if err != nil {
		t.Fatal(err)
	}
	e.seeds["alice"] = enr.Seed
	return &liveEnv{env: e, gatewayURL: gw.URL, sim: kit, def: def}
}

// bot is a trading bot holding a keywarden client credential, signing like
// any Binance client library.
type bot struct {
	t    *testing.T
	base string
	v    exchange.Venue
	cred *exchange.Credential
}

func (e *liveEnv) bot(iss *client.Issued) *bot {
	return &bot{t: e.t, base: e.gatewayURL + "/binance", v: e.def.Build(nil),
		cred: &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}}
}

func (b *bot) call(method, path, query string) int {
	b.t.Helper()
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if err := b.v.Signer.Sign(r, b.cred, time.Now()); err != nil {
		b.t.Fatal(err)
	}
	u := b.base + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	req, err := http.NewRequest(method, u, strings.NewReader(string(r.Body)))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header = r.Header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode >= 400 {
		b.t.Logf("bot %s %s = %d: %.200s", method, path, res.StatusCode, body)
	}
	return res.StatusCode
}

func (e *liveEnv) issue(label string) *client.Issued {
	e.t.Helper()
	iss, err := e.srv.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: "main", Policy: "trader",
		TTL: 24 * time.Hour, Label: label, Format: e.def.Format})
	if err != nil {
		e.t.Fatal(err)
	}
	return iss
}

// shots saves full-page screenshots into KEYWARDEN_ARTIFACTS (default: a
// temporary directory).
type shots struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (s *shots) take(name string) {
	s.t.Helper()
	png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitLocation waits (at most 30 seconds) until the page's URL contains
// want: the search form's answer has replaced the page.
func waitLocation(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	var loc string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var err error
		if loc, err = chromedp.Run(ctx, chromedp.Location()); err == nil && strings.Contains(loc, want) {
			// The URL is pushed once the new content is in place.
			return
		}
	}
	t.Fatalf("page location %q never contained %q", loc, want)
}

// do runs steps, each batch bounded in time; on failure it reports where
// the browser is and what the page says.
func do(t *testing.T, ctx context.Context, console *consoleErrors, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		main, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("main"), chromedp.NodeVisible))
		t.Fatalf("%s: %v\nat %s:\n%.2000s\nconsole errors: %q", what, err, loc, main, console.list())
	}
}

// TestBrowser drives the dashboard in headless Chromium as an operator
// would: log in with TOTP, see a key's bad posture, revoke a bot's client
// credential and see the bot refused, press the panic button and see
// every gateway request fail, and search the audit log down to a record's
// chain verification. Every page is saved as a screenshot.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := newChromium(t)
	console := watchConsole(ctx)
	e := newLiveEnv(t)
	dir := os.Getenv("KEYWARDEN_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sh := &shots{t: t, ctx: ctx, dir: dir}
	base := e.ts.URL

	// Traffic before the operator looks: a bot trades, and tries to withdraw.
	botA := e.bot(e.issue("grid bot"))
	if got := botA.call("GET", "/api/v3/account", ""); got != http.StatusOK {
		t.Fatalf("bot account read = %d, want 200", got)
	}
	if got := botA.call("POST", "/sapi/v1/capital/withdraw/apply", "coin=USDT&address=TXYZ1111111111111111111111111111111&amount=100"); got < 400 || got >= 500 {
		t.Fatalf("bot withdraw = %d, want a policy denial (4xx)", got)
	}

	// 1. Log in with password and TOTP.
	do(t, ctx, console, "open login", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#name")))
	do(t, ctx, console, "fill login",
		chromedp.SendKeys(chromedp.CSS("#name"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.SendKeys(chromedp.CSS("#code"), e.code("alice")))
	sh.take("login")
	// Submitted from the keyboard: Enter in the code field.
	do(t, ctx, console, "submit login", chromedp.SendKeys(chromedp.CSS("#code"), "\r"),
		chromedp.WaitVisible(chromedp.CSS("#keys-h")))
	// The first Tab reaches the skip link, which leads to the main content.
	do(t, ctx, console, "tab", chromedp.KeyEvent("\t"))
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent + " -> " + document.activeElement.getAttribute("href")`)); err != nil || got != "Skip to content -> #main" {
		t.Errorf("first Tab focuses %q (%v), want the skip link to #main", got, err)
	}
	if s := text(t, ctx, ".who"); !strings.Contains(s, "alice") || !strings.Contains(s, "unsealed") {
		t.Errorf("header after login = %q, want the operator and the vault state", s)
	}

	// 2. Check binance/main at the venue: it can withdraw and has no IP
	// allowlist; binance/spare is clean.
	for _, k := range []string{"spare", "main"} {
		do(t, ctx, console, "inspect "+k, chromedp.Navigate(base+"/ui/keys/binance/"+k),
			chromedp.Click(chromedp.CSS(`form[action$="/inspect"] button`)),
			chromedp.WaitVisible(chromedp.CSS(".notice")))
	}
	sh.take("key")
	do(t, ctx, console, "overview", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#live")))
	keys := text(t, ctx, `section[aria-labelledby="keys-h"]`)
	mainRow := text(t, ctx, `section[aria-labelledby="keys-h"] tbody tr:first-child`)
	if !strings.Contains(mainRow, "binance/main") || !strings.Contains(mainRow, "withdraw enabled") || !strings.Contains(mainRow, "no IP restriction") {
		t.Errorf("worst key row = %q, want binance/main with the withdraw and IP badges", mainRow)
	}
	if !strings.Contains(keys, "binance/spare") {
		t.Errorf("keys panel lacks binance/spare: %q", keys)
	}
	if s := text(t, ctx, `section[aria-labelledby="alerts-h"]`); !strings.Contains(s, monitor.RuleWithdraw) {
		t.Errorf("open alerts = %q, want the withdraw attempt", s)
	}
	if s := text(t, ctx, "#live"); !strings.Contains(s, "Requests per minute") {
		t.Errorf("live panel = %q", s)
	}
	sh.take("overview")
	do(t, ctx, console, "keys", chromedp.Navigate(base+"/ui/keys"), chromedp.WaitVisible(chromedp.CSS("table")))
	sh.take("keys")

	// 3. Revoke the bot's client credential; its next request is refused.
	do(t, ctx, console, "clients", chromedp.Navigate(base+"/ui/clients"), chromedp.WaitVisible(chromedp.CSS("#issue-h")))
	if s := text(t, ctx, "table"); !strings.Contains(s, botA.cred.APIKey) || !strings.Contains(s, "127.0.0.1") {
		t.Errorf("client list = %q, want the bot's credential and its last address", s)
	}
	sh.take("clients")
	do(t, ctx, console, "revoke client",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label="Revoke client %s"]`, botA.cred.APIKey))),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if s := text(t, ctx, ".notice"); !strings.Contains(s, "revoked") {
		t.Errorf("notice after revoke = %q", s)
	}
	if got := botA.call("GET", "/api/v3/account", ""); got != http.StatusUnauthorized {
		t.Errorf("revoked bot's request = %d, want 401", got)
	}

	// 4. Panic: a working bot is refused once the button is pressed.
	botB := e.bot(e.issue("market maker"))
	if got := botB.call("GET", "/api/v3/account", ""); got != http.StatusOK {
		t.Fatalf("second bot before panic = %d, want 200", got)
	}
	do(t, ctx, console, "panic page", chromedp.Navigate(base+"/ui/panic"), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	sh.take("panic")
	do(t, ctx, console, "press panic", chromedp.Click(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("button.big")),
		chromedp.WaitVisible(chromedp.CSS("#res-code")))
	if s := text(t, ctx, ".gw-state"); !strings.Contains(s, "stopped") {
		t.Errorf("panic page after stop = %q", s)
	}
	if got := botB.call("GET", "/api/v3/account", ""); got < 500 {
		t.Errorf("bot request after panic = %d, want a refusal (5xx)", got)
	}
	sh.take("panic-stopped")

	// The withdraw attempt (a critical alert) and the panic opened an
	// incident; its page shows both on the timeline.
	do(t, ctx, console, "incidents", chromedp.Navigate(base+"/ui/incidents"), chromedp.WaitVisible(chromedp.CSS(`main table tbody a`)),
		chromedp.Click(chromedp.CSS(`main table tbody tr:first-child a`)), chromedp.WaitVisible(chromedp.CSS("#tl-h")))
	if s := text(t, ctx, "ol.timeline"); !strings.Contains(s, "alert") || !strings.Contains(s, "panic") {
		t.Errorf("incident timeline = %q, want the alert and the panic", s)
	}
	sh.take("incident")

	// 5. Search the audit log for the stop, and open its record.
	do(t, ctx, console, "audit", chromedp.Navigate(base+"/ui/audit"), chromedp.WaitVisible(chromedp.CSS("#f-type")),
		chromedp.SetValue(chromedp.CSS("#f-type"), "event"),
		chromedp.Click(chromedp.CSS(`form[role="search"] button`)))
	waitLocation(t, ctx, "type=event")
	do(t, ctx, console, "audit results", chromedp.WaitVisible(chromedp.CSS(`table.audit tbody a`)))
	rows := text(t, ctx, "table.audit")
	if !strings.Contains(rows, "admin.gateway.stop by alice") || !strings.Contains(rows, "admin.client.revoke by alice") || strings.Contains(rows, "allow GET") {
		t.Errorf("event search = %q, want the stop and the revoke and no intents", rows)
	}
	sh.take("audit")
	do(t, ctx, console, "denials", chromedp.Navigate(base+"/ui/audit?decision=deny"), chromedp.WaitVisible(chromedp.CSS(`table.audit tbody a`)))
	if s := text(t, ctx, "table.audit"); !strings.Contains(s, "withdraw") && !strings.Contains(s, "scope") {
		t.Errorf("denial search = %q, want the refused withdrawal", s)
	}
	do(t, ctx, console, "record", chromedp.Click(chromedp.CSS(`table.audit tbody tr:first-child a`)),
		chromedp.WaitVisible(chromedp.CSS("#chain-h")))
	if s := text(t, ctx, "ul.checks"); !strings.Contains(s, "The whole log verifies, checkpoint signatures included") || !strings.Contains(s, "Linked to record") {
		t.Errorf("chain verification = %q", s)
	}
	sh.take("record")

	// The remaining pages, for the record.
	do(t, ctx, console, "alerts", chromedp.Navigate(base+"/ui/alerts"), chromedp.WaitVisible(chromedp.CSS("table")))
	sh.take("alerts")
	do(t, ctx, console, "policies", chromedp.Navigate(base+"/ui/policies"), chromedp.WaitVisible(chromedp.CSS("#toml")),
		chromedp.SendKeys(chromedp.CSS("#toml"), "[policy.trader]\nscopes = [\"read\", \"trade\"]\nsymbols = [\"BTCUSDT\", \"ETHUSDT\"]\nmax_order_notional = 50000.0\n"),
		chromedp.SetValue(chromedp.CSS("#against"), "trader"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/policies/check"] button`)),
		chromedp.WaitVisible(chromedp.CSS("pre.diff")))
	if s := text(t, ctx, "pre.diff"); !strings.Contains(s, "ETHUSDT") {
		t.Errorf("policy diff = %q", s)
	}
	sh.take("policies")

	// No page showed an exchange secret.
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, marker) {
		t.Error("a page shows a secret")
	}
	if errs := console.list(); len(errs) > 0 {
		t.Errorf("the pages reported errors (script, loading or CSP): %q", errs)
	}
	t.Logf("screenshots in %s", dir)
}
