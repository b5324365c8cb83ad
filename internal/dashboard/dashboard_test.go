package dashboard

import (
	"encoding/base32"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/operator"
)

// TestLogin: the login form needs the password and a TOTP code; the session
// cookie is __Host-, Secure, HttpOnly and SameSite=Strict; pages redirect
// to the login form without a session; logout ends the session.
func TestLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if p := b.get("/ui/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/keys without a session = %d %q, want 303 to /ui/login", p.status, p.header.Get("Location"))
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d %q, want 303 to /ui/", p.status, p.header.Get("Location"))
	}
	lp := b.get("/ui/login")
	for _, want := range []string{`for="name"`, `for="password"`, `for="code"`, `<main id="main"`} {
		if !strings.Contains(lp.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	bad := b.do("POST", "/ui/login", url.Values{"csrf": {lp.csrf()}, "name": {"admin"}, "password": {password}, "code": {"000000"}})
	if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, "invalid credentials") {
		t.Errorf("login with a wrong code = %d, want 401 with the API's message", bad.status)
	}
	lp = b.get("/ui/login")
	res := b.do("POST", "/ui/login", url.Values{"csrf": {lp.csrf()}, "name": {"admin"}, "password": {password}, "code": {e.code("admin")}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("login = %d, want 303\n%s", res.status, res.body)
	}
	var session string
	for _, sc := range res.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, sessionCookie+"=") {
			session = sc
		}
	}
	for _, want := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	if strings.Contains(session, "Domain=") {
		t.Errorf("session cookie %q has a Domain", session)
	}
	ov := b.get("/ui/")
	if ov.status != http.StatusOK || !strings.Contains(ov.body, "admin") || !strings.Contains(ov.body, "Overview") {
		t.Fatalf("overview after login = %d", ov.status)
	}
	if got := len(e.events("admin.login")); got != 2 {
		t.Errorf("%d admin.login audit events, want 2 (one failed, one ok)", got)
	}
	if p := b.post("/ui/", "/ui/logout", nil); p.status != http.StatusSeeOther {
		t.Errorf("logout = %d, want 303", p.status)
	}
	if p := b.get("/ui/"); p.status != http.StatusSeeOther {
		t.Errorf("overview after logout = %d, want 303 to the login page", p.status)
	}
}

// TestAPITokenIsNoSession: an API token in the session cookie is refused.
func TestAPITokenIsNoSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("admin")
	p, err := e.ops.Authenticate(t.Context(), sessionOf(t, b))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := e.ops.CreateToken(t.Context(), p, "auto", []operator.Permission{operator.PermKeysRead}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b2 := e.browser()
	u, _ := url.Parse(e.ts.URL)
	b2.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: tok, Path: "/", Secure: true}})
	if r := b2.get("/ui/keys"); r.status != http.StatusSeeOther {
		t.Errorf("GET /ui/keys with an API token cookie = %d, want 303 to login", r.status)
	}
}

// TestPermissionsPerPage: each role sees the pages its permissions allow
// and gets 403 (audited) elsewhere, in the dashboard as in the API.
func TestPermissionsPerPage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path string
		want map[string]int // role → status; missing roles get 200
	}{
		{"/ui/", nil},
		{"/ui/keys", nil},
		{"/ui/keys/binance/main", nil},
		{"/ui/clients", nil},
		{"/ui/policies", nil},
		{"/ui/policies/trade", nil},
		{"/ui/audit", map[string]int{"trader-ops": 403}},
		{"/ui/audit/1", map[string]int{"trader-ops": 403}},
		{"/ui/alerts", map[string]int{"trader-ops": 403}},
		{"/ui/panic", map[string]int{"trader-ops": 403}},
		{"/ui/live", map[string]int{"trader-ops": 403}},
		{"/ui/incidents", map[string]int{"trader-ops": 403}},
		{"/ui/nonesuch", map[string]int{"admin": 404, "security": 404, "trader-ops": 404, "auditor": 404}},
	}
	for _, role := range []string{"admin", "security", "trader-ops", "auditor"} {
		b := e.browser()
		b.login(role)
		for _, tt := range tests {
			want := http.StatusOK
			if s, ok := tt.want[role]; ok {
				want = s
			}
			p := b.get(tt.path)
			if p.status != want {
				t.Errorf("%s GET %s = %d, want %d", role, tt.path, p.status, want)
			}
		}
		// Navigation offers only what the role may open.
		ov := b.get("/ui/")
		if got := strings.Contains(ov.body, `href="/ui/audit"`); got != (role != "trader-ops") {
			t.Errorf("%s: overview links the audit log = %v", role, got)
		}
	}
	denied := e.events("admin.denied")
	found := false
	for _, ev := range denied {
		if ev.Actor == "trader-ops" && ev.Detail["route"] == "dashboard GET /ui/audit" && ev.Detail["perm"] == "audit:read" {
			found = true
		}
	}
	if !found {
		t.Errorf("no audited denial of trader-ops on /ui/audit among %d denials", len(denied))
	}

	// Actions: stop needs gateway:control, issuing needs clients:write.
	actions := []struct {
		role, from, path string
		form             url.Values
		want             int
	}{
		{"auditor", "/ui/panic", "/ui/panic/stop", url.Values{"confirm": {"stop"}}, 403},
		{"trader-ops", "/ui/", "/ui/panic/stop", url.Values{"confirm": {"stop"}}, 403},
		{"security", "/ui/clients", "/ui/clients", url.Values{"venue": {"binance"}, "key": {"main"}, "policy": {"read"}, "ttl": {"1h"}}, 403},
		{"auditor", "/ui/clients", "/ui/clients/binance/" + e.client + "/revoke", nil, 403},
		{"trader-ops", "/ui/clients", "/ui/clients", url.Values{"venue": {"binance"}, "key": {"main"}, "policy": {"read"}, "ttl": {"1h"}}, 201},
	}
	for _, a := range actions {
		b := e.browser()
		b.login(a.role)
		if p := b.post(a.from, a.path, a.form); p.status != a.want {
			t.Errorf("%s POST %s = %d, want %d", a.role, a.path, p.status, a.want)
		}
	}
	if err := e.srv.Gateway.Healthy(); err != nil {
		t.Errorf("gateway stopped by a role without gateway:control: %v", err)
	}
}

// TestCSRF: a state-changing request needs the session's synchronizer
// token and a same-origin request; refusals change nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("admin")
	other := e.browser()
	other.login("security")
	otherToken := other.get("/ui/panic").csrf()
	good := b.get("/ui/panic").csrf()
	if good == "" || good == otherToken {
		t.Fatalf("csrf tokens %q and %q: want distinct non-empty tokens per session", good, otherToken)
	}
	tests := []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", url.Values{"confirm": {"stop"}}, nil},
		{"wrong token", url.Values{"confirm": {"stop"}, "csrf": {strings.Repeat("0", len(good))}}, nil},
		{"another session's token", url.Values{"confirm": {"stop"}, "csrf": {otherToken}}, nil},
		{"cross-site", url.Values{"confirm": {"stop"}, "csrf": {good}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site other origin", url.Values{"confirm": {"stop"}, "csrf": {good}}, []string{"Sec-Fetch-Site", "same-site"}},
		{"foreign origin", url.Values{"confirm": {"stop"}, "csrf": {good}}, []string{"Origin", "https://evil.example"}},
	}
	for _, tt := range tests {
		p := b.do("POST", "/ui/panic/stop", tt.form, tt.hdr...)
		if p.status != http.StatusForbidden {
			t.Errorf("%s: POST /ui/panic/stop = %d, want 403", tt.name, p.status)
		}
		if err := e.srv.Gateway.Healthy(); err != nil {
			t.Fatalf("%s: the gateway was stopped: %v", tt.name, err)
		}
	}
	// Logout is state-changing too.
	if p := b.do("POST", "/ui/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("logout without token = %d, want 403", p.status)
	}
	// The login form has its own token.
	if p := e.browser().do("POST", "/ui/login", url.Values{"name": {"admin"}, "password": {password}, "code": {e.code("admin")}}); p.status != http.StatusForbidden {
		t.Errorf("login without the form's token = %d, want 403", p.status)
	}
	p := b.do("POST", "/ui/panic/stop", url.Values{"confirm": {"stop"}, "csrf": {good}}, "Origin", e.ts.URL, "Sec-Fetch-Site", "same-origin")
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/panic/stop with the token = %d, want 303\n%s", p.status, p.body)
	}
	if err := e.srv.Gateway.Healthy(); err == nil {
		t.Error("the gateway still runs after a confirmed stop")
	}
}

// TestHeaders: every response carries the CSP and no-store, whatever the
// page, status or authentication.
func TestHeaders(t *testing.T) {
	e := newEnv(t)
	anon := e.browser()
	b := e.browser()
	b.login("admin")
	check := func(what string, p page) {
		t.Helper()
		if got := p.header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP = %q, want %q", what, got, CSP)
		}
		if got := p.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", what, got)
		}
		if got := p.header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options = %q", what, got)
		}
	}
	for _, path := range []string{"/", "/ui/", "/ui/login", "/ui/keys", "/ui/static/style.css", "/ui/static/htmx.min.js", "/ui/static/nope"} {
		check("anonymous GET "+path, anon.get(path))
	}
	for _, path := range []string{"/ui/", "/ui/keys", "/ui/keys/binance/main", "/ui/keys/binance/nope", "/ui/clients", "/ui/policies",
		"/ui/policies/trade", "/ui/audit", "/ui/audit/1", "/ui/audit/999999", "/ui/alerts", "/ui/panic", "/ui/live", "/ui/incidents", "/ui/x"} {
		p := b.get(path)
		check("GET "+path, p)
		if got := p.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", path, got)
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, "<style") {
			t.Errorf("GET %s: inline script or style", path)
		}
	}
	check("POST without token", b.do("POST", "/ui/panic/stop", url.Values{}))
	if p := b.get("/ui/static/htmx.min.js"); p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), "javascript") {
		t.Errorf("htmx: %d %s", p.status, p.header.Get("Content-Type"))
	}
}

// TestKeyRevokeNeedsStepUp: revoking a key needs a fresh TOTP code in the
// dashboard, goes through the API (keys:write, audited there) and disables
// the key in the vault.
func TestKeyRevokeNeedsStepUp(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("security")
	form := url.Values{"reason": {"leaked in a paste"}}
	if p := b.post("/ui/keys/binance/main", "/ui/keys/binance/main/revoke", form); p.status != http.StatusForbidden || !strings.Contains(p.body, "fresh TOTP code") {
		t.Fatalf("revoke without a code = %d, want 403 asking for a code", p.status)
	}
	form.Set("code", "123456")
	if p := b.post("/ui/keys/binance/main", "/ui/keys/binance/main/revoke", form); p.status != http.StatusForbidden {
		t.Fatalf("revoke with a wrong code = %d, want 403", p.status)
	}
	if k, _ := e.vault.Key(t.Context(), "binance", "main"); !k.Disabled.IsZero() {
		t.Fatal("key disabled without step-up")
	}
	form.Set("code", e.code("security"))
	p := b.post("/ui/keys/binance/main", "/ui/keys/binance/main/revoke", form)
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke with a code = %d, want 303\n%s", p.status, p.body)
	}
	if loc := p.header.Get("Location"); !strings.Contains(loc, "Revoked+binance%2Fmain") {
		t.Errorf("revoke redirect %q does not carry the API's report", loc)
	}
	k, _ := e.vault.Key(t.Context(), "binance", "main")
	if k.Disabled.IsZero() || k.DisabledReason != "leaked in a paste" {
		t.Errorf("key after revoke: disabled %v reason %q", k.Disabled, k.DisabledReason)
	}
	evs := e.events("admin.key.revoke")
	if len(evs) != 1 || evs[0].Actor != "security" || evs[0].Detail["key"] != "binance/main" {
		t.Errorf("key.revoke audit events = %+v", evs)
	}
	if page := b.get("/ui/keys/binance/main"); !strings.Contains(page.body, "revoked") {
		t.Error("key page does not show the key revoked")
	}
	// trader-ops cannot revoke keys at all.
	tb := e.browser()
	tb.login("trader-ops")
	if p := tb.post("/ui/keys/binance/old", "/ui/keys/binance/old/revoke", url.Values{"reason": {"x"}, "code": {e.code("trader-ops")}}); p.status != http.StatusForbidden {
		t.Errorf("trader-ops revoke = %d, want 403", p.status)
	}
}

// TestPanicStopAndResume: stop needs the confirmation; resume needs a
// fresh code through the API's step-up.
func TestPanicStopAndResume(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("security")
	if p := b.post("/ui/panic", "/ui/panic/stop", nil); p.status != http.StatusBadRequest {
		t.Errorf("stop without confirmation = %d, want 400", p.status)
	}
	if p := b.post("/ui/panic", "/ui/panic/stop", url.Values{"confirm": {"stop"}}); p.status != http.StatusSeeOther {
		t.Fatalf("stop = %d, want 303", p.status)
	}
	if page := b.get("/ui/panic"); !strings.Contains(page.body, "stopped") {
		t.Error("panic page does not show the gateway stopped")
	}
	if p := b.post("/ui/panic", "/ui/panic/resume", nil); p.status != http.StatusForbidden {
		t.Errorf("resume without a code = %d, want 403", p.status)
	}
	if e.srv.Gateway.Healthy() == nil {
		t.Fatal("resumed without step-up")
	}
	if p := b.post("/ui/panic", "/ui/panic/resume", url.Values{"code": {e.code("security")}}); p.status != http.StatusSeeOther {
		t.Fatalf("resume with a code = %d, want 303", p.status)
	}
	if err := e.srv.Gateway.Healthy(); err != nil {
		t.Errorf("gateway after resume: %v", err)
	}
	if len(e.events("admin.gateway.stop")) != 1 || len(e.events("admin.gateway.resume")) != 1 {
		t.Error("stop and resume are not both audited")
	}
}

// TestClientIssueAndRevoke: the new secret is shown once, on the issue
// answer only; revoking goes through the API.
func TestClientIssueAndRevoke(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("trader-ops")
	p := b.post("/ui/clients", "/ui/clients", url.Values{"venue": {"binance"}, "key": {"main"}, "policy": {"trade"}, "ttl": {"2h"}, "label": {"bot <1>"}})
	if p.status != http.StatusCreated {
		t.Fatalf("issue = %d\n%s", p.status, p.body)
	}
	cls, _ := e.srv.Clients.List(t.Context())
	var id string
	for _, c := range cls {
		if c.Label == "bot <1>" {
			id = c.ID
		}
	}
	if id == "" || !strings.Contains(p.body, id) {
		t.Fatalf("issued client not shown (id %q)", id)
	}
	entry, err := e.srv.Clients.Lookup("binance", id)
	if err != nil {
		t.Fatal(err)
	}
	secret := string(entry.Cred.Secret)
	if !strings.Contains(p.body, secret) {
		t.Error("the issue answer does not show the new secret")
	}
	if strings.Contains(p.body, "bot <1>") || !strings.Contains(p.body, "bot &lt;1&gt;") && strings.Contains(p.body, "bot") {
		t.Error("label not escaped")
	}
	list := b.get("/ui/clients")
	if strings.Contains(list.body, secret) {
		t.Error("the client list shows a client secret")
	}
	e.activity.Observe(gateway.Observation{Venue: "binance", Client: id, SourceIP: mustAddr("198.51.100.7"), Decision: "allow", Status: 200})
	if list := b.get("/ui/clients"); !strings.Contains(list.body, "198.51.100.7") {
		t.Error("the client list does not show the last seen address")
	}
	if r := b.post("/ui/clients", "/ui/clients/binance/"+id+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d\n%s", r.status, r.body)
	}
	if _, err := e.srv.Clients.Lookup("binance", id); err == nil {
		t.Error("client still usable after revoke")
	}
	if len(e.events("admin.client.revoke")) != 1 {
		t.Error("client revoke not audited")
	}
}

// TestNoSecretInAnyPage opens every page as an admin after activity and
// looks for exchange secrets, API key ids, passwords, TOTP seeds and the
// session token.
func TestNoSecretInAnyPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("admin")
	session := sessionOf(t, b)
	e.activity.Observe(gateway.Observation{Venue: "binance", Client: e.client, Key: "main", SourceIP: mustAddr("192.0.2.1"), Decision: "deny", Rule: "scope", Status: 403})
	e.activity.Alert(monitor.Alert{Rule: monitor.RuleWithdraw, Severity: monitor.SeverityCritical, Subject: "binance/" + e.client, Summary: "withdraw attempt", Time: e.clock.Now()})
	for _, name := range []string{"security", "auditor", "trader-ops"} {
		e.browser().login(name)
	}
	b.post("/ui/policies", "/ui/policies/check", url.Values{"toml": {"[policy.trade]\nscopes = [\"read\"]\n"}, "against": {"trade"}})
	var secrets []string
	secrets = append(secrets, marker, session)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for _, s := range e.seeds {
		secrets = append(secrets, enc.EncodeToString(s))
	}
	paths := []string{"/ui/", "/ui/keys", "/ui/keys/binance/main", "/ui/keys/binance/old", "/ui/clients", "/ui/policies", "/ui/policies/trade",
		"/ui/policies/read", "/ui/audit", "/ui/alerts", "/ui/panic", "/ui/live", "/ui/incidents", "/ui/login"}
	n := 0
	for rec := range auditSeqs(t, e) {
		paths = append(paths, "/ui/audit/"+rec)
		n++
	}
	if n < 3 {
		t.Fatalf("only %d audit records to view", n)
	}
	for _, path := range paths {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s = %d", path, p.status)
		}
		for _, s := range secrets {
			if strings.Contains(p.body, s) {
				t.Errorf("GET %s shows a secret (%.6s…)", path, s)
			}
		}
	}
	if p := b.get("/ui/audit/2"); !strings.Contains(p.body, "The whole log verifies, checkpoint signatures included") {
		t.Errorf("record view does not show a verified chain:\n%s", p.body)
	}
}

// TestPolicyCheck validates pasted TOML strictly and diffs it against the
// running policy.
func TestPolicyCheck(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("auditor")
	bad := b.post("/ui/policies", "/ui/policies/check", url.Values{"toml": {"[policy.trade]\nscopes = [\"read\"]\nmax_order_notionl = 5\n"}})
	if bad.status != http.StatusUnprocessableEntity || !strings.Contains(bad.body, "max_order_notionl") {
		t.Errorf("invalid policy = %d, want 422 naming the unknown key", bad.status)
	}
	ok := b.post("/ui/policies", "/ui/policies/check", url.Values{"toml": {"[policy.trade]\nscopes = [\"read\", \"trade\"]\nsymbols = [\"ETHUSDT\"]\nmax_order_notional = 1000.0\n"}, "against": {"trade"}})
	if ok.status != http.StatusOK || !strings.Contains(ok.body, "Valid: trade") {
		t.Fatalf("valid policy = %d\n%s", ok.status, ok.body)
	}
	for _, want := range []string{`class="ddel">-\s+symbols = \[&#34;BTCUSDT&#34;\]`, `class="dadd">&#43;\s+symbols = \[&#34;ETHUSDT&#34;\]`} {
		if !regexp.MustCompile(want).MatchString(ok.body) {
			t.Errorf("diff lacks %s", want)
		}
	}
	if n := strings.Count(ok.body, `class="ddel"`) + strings.Count(ok.body, `class="dadd"`); n != 2 {
		t.Errorf("diff has %d changed lines, want 2", n)
	}
}

// TestKeyRotateNeedsStepUp: rotation goes through the API, which wants a
// fresh code with the request; the API's failure report reaches the page.
func TestKeyRotateNeedsStepUp(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("security")
	form := url.Values{"permissions": {"read,trade"}, "ips": {"203.0.113.7"}}
	if p := b.post("/ui/keys/binance/main", "/ui/keys/binance/main/rotate", form); p.status != http.StatusForbidden || !strings.Contains(p.body, "fresh TOTP code") {
		t.Fatalf("rotate without a code = %d, want 403 asking for a code", p.status)
	}
	if n := len(e.events("admin.key.rotate")); n != 0 {
		t.Fatalf("%d key.rotate events before step-up, want 0", n)
	}
	form.Set("code", e.code("security"))
	p := b.post("/ui/keys/binance/main", "/ui/keys/binance/main/rotate", form)
	if p.status != http.StatusBadGateway || !strings.Contains(p.body, "rotation needs a venue") {
		t.Errorf("rotate with a code = %d, want the API's 502 with its report\n%s", p.status, p.body)
	}
	evs := e.events("admin.key.rotate")
	if len(evs) != 1 || evs[0].Detail["ips"] != "203.0.113.7" {
		t.Errorf("key.rotate events = %+v", evs)
	}
}

// TestIncidents: readers see incidents; gateway controllers add notes,
// tick the checklist and close with a report, each audited.
func TestIncidents(t *testing.T) {
	e := newEnv(t)
	in, err := e.incidents.Open(t.Context(), "security", "Withdrawals <from> a bot")
	if err != nil {
		t.Fatal(err)
	}
	path := "/ui/incidents/" + in.ID
	ab := e.browser()
	ab.login("auditor")
	list := ab.get("/ui/incidents")
	if list.status != 200 || !strings.Contains(list.body, "Withdrawals &lt;from&gt; a bot") || !strings.Contains(list.body, path) {
		t.Fatalf("incident list = %d\n%s", list.status, list.body)
	}
	if ov := ab.get("/ui/"); !strings.Contains(ov.body, path) {
		t.Error("overview does not list the open incident")
	}
	if p := ab.post(path, path+"/note", url.Values{"text": {"looking"}}); p.status != http.StatusForbidden {
		t.Errorf("auditor note = %d, want 403", p.status)
	}
	sb := e.browser()
	sb.login("security")
	for _, step := range []struct {
		action string
		form   url.Values
	}{
		{"note", url.Values{"text": {"bot host isolated"}}},
		{"check", url.Values{"item": {"1"}}},
		{"close", url.Values{"summary": {"leaked config; credential rotated"}}},
	} {
		if p := sb.post(path, path+"/"+step.action, step.form); p.status != http.StatusSeeOther {
			t.Fatalf("%s = %d\n%s", step.action, p.status, p.body)
		}
	}
	if p := sb.post(path, path+"/note", url.Values{"text": {"late"}}); p.status != http.StatusConflict {
		t.Errorf("note on a closed incident = %d, want 409", p.status)
	}
	got, _ := e.incidents.Get(t.Context(), in.ID)
	if got.Status != "closed" || got.Summary != "leaked config; credential rotated" || !got.Checklist[0].Done || got.Checklist[0].By != "security" {
		t.Errorf("incident after the dashboard's changes = %+v", got)
	}
	page := sb.get(path)
	for _, want := range []string{"bot host isolated", "leaked config; credential rotated", "Report"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
	for _, kind := range []string{"admin.incident.note", "admin.incident.check", "admin.incident.close"} {
		if n := len(e.events(kind)); n != 1 {
			t.Errorf("%d %s events, want 1", n, kind)
		}
	}
	if p := sb.get("/ui/incidents/nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown incident = %d, want 404", p.status)
	}
}

// TestNoticeIsSigned: a page shows the notice of the session's own
// action, never text from a crafted link.
func TestNoticeIsSigned(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("security")
	p := b.post("/ui/panic", "/ui/panic/stop", url.Values{"confirm": {"stop"}})
	loc := p.header.Get("Location")
	if p.status != http.StatusSeeOther || !strings.Contains(loc, "sig=") {
		t.Fatalf("stop = %d %q, want a redirect with a signed notice", p.status, loc)
	}
	if page := b.get(loc); !strings.Contains(page.body, "The gateway is stopped") {
		t.Error("the action's own notice is not shown")
	}
	other := e.browser()
	other.login("auditor")
	if page := other.get(loc); strings.Contains(page.body, "The gateway is stopped:") {
		t.Error("another session shows a notice signed for the first one")
	}
	crafted := "/ui/?notice=" + url.QueryEscape("Session expired: sign in again at evil.example")
	if page := b.get(crafted); strings.Contains(page.body, "evil.example") {
		t.Error("a crafted notice is shown")
	}
	if page := b.get(crafted + "&sig=00"); strings.Contains(page.body, "evil.example") {
		t.Error("a crafted notice with a bad signature is shown")
	}
}
