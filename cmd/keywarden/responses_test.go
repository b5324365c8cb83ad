package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/server"
)

func TestAlertResponsesConfig(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want map[string]string
		err  string // substring of the error, "" for none
	}{
		{"none configured", "[alerts]\n", map[string]string{}, ""},
		{"every action", `[alerts]
on_critical = "panic-all"

[alerts.responses]
auth_failures = "suspend-client"
withdraw_attempt = "read-only"
venue_key_rejected = "suspend-key"
notional_surge = "panic-key"
error_rate = "panic-venue"
rate_surge = "none"
posture_change = "suspend-key"
`, map[string]string{"auth_failures": "suspend-client", "withdraw_attempt": "read-only", "venue_key_rejected": "suspend-key",
			"notional_surge": "panic-key", "error_rate": "panic-venue", "rate_surge": "none", "posture_change": "suspend-key"}, ""},
		{"unknown rule", "[alerts.responses]\nwithdraw_attempt = \"read-only\"\nauth_failure_burst = \"suspend-client\"\n", nil,
			"keywarden.toml:3: alerts.responses.auth_failure_burst: unknown rule"},
		{"unknown action", "\n[alerts.responses]\nwithdraw_attempt = \"nuke\"\n", nil,
			"keywarden.toml:3: alerts.responses.withdraw_attempt: unknown action \"nuke\""},
		{"test alerts take no response", "[alerts.responses]\ntest = \"panic-all\"\n", nil, "unknown rule \"test\""},
		{"unknown on_critical", "[alerts]\non_critical = \"nuke\"\n", nil, "alerts on_critical \"nuke\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keywarden.toml")
			writeFile(t, path, tt.toml, 0o600)
			cfg, err := loadConfig(path, func(string) string { return "" })
			if err == nil {
				err = cfg.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("load %q = %v, want an error containing %q", tt.toml, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.Alerts.responses(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("responses() = %v, want %v", got, tt.want)
			}
			for r, act := range tt.want {
				if got[r] != act {
					t.Errorf("responses()[%s] = %q, want %q", r, got[r], act)
				}
			}
		})
	}
}

// TestResponsePlan: the rule's entry wins over on_critical, "none" turns a
// rule off, the subject comes from the alert's evidence, the notification
// says which response is taken, and a response to one subject is taken
// once per burst (the alerts cooldown).
func TestResponsePlan(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := &responder{a: &app{}, rules: map[string]string{monitor.RuleVenueAuth: respondSuspendKey, monitor.RuleErrorRate: respondPanicVenue,
		monitor.RuleWithdraw: respondNone, monitor.RuleDenialBurst: respondReadOnly},
		onCritical: respondPanicKey, window: 10 * time.Minute, now: func() time.Time { return now },
		srv: func() *server.Server { return nil }, taken: map[string]time.Time{}, pending: map[string]responsePlan{}}
	alert := func(rule string, sev monitor.Severity, ev map[string]string) monitor.Alert {
		return monitor.Alert{Rule: rule, Severity: sev, Subject: "binance/x", Evidence: ev, Time: now}
	}
	tests := []struct {
		name     string
		al       monitor.Alert
		run      bool
		response string // evidence "response"
	}{
		{"rule entry", alert(monitor.RuleVenueAuth, monitor.SeverityCritical, map[string]string{"venue": "binance-usdm", "key": "main"}), true, "suspend-key key binance/main"},
		{"same key again in the burst", alert(monitor.RuleVenueAuth, monitor.SeverityCritical, map[string]string{"venue": "binance", "key": "main"}), false, "none (suspend-key: already taken at 2026-11-25T12:00:00Z for this burst)"},
		{"none overrides on_critical", alert(monitor.RuleWithdraw, monitor.SeverityCritical, map[string]string{"venue": "binance", "key": "main", "client": "kw1"}), false, ""},
		{"on_critical default", alert(monitor.RuleAuthFailures, monitor.SeverityCritical, map[string]string{"venue": "okx", "key": "k2"}), true, "panic-key key okx/k2"},
		{"warning without entry", alert(monitor.RuleRateSurge, monitor.SeverityWarning, map[string]string{"venue": "okx", "key": "k2"}), false, ""},
		{"key as venue/name (rate alerts)", alert(monitor.RuleVenueAuth, monitor.SeverityCritical, map[string]string{"venue": "kraken", "key": "kraken/k3"}), true, "suspend-key key kraken/k3"},
		{"posture key as exchange/name", alert(monitor.RuleVenueAuth, monitor.SeverityWarning, map[string]string{"key": "bybit/k4"}), true, "suspend-key key bybit/k4"},
		{"warning with entry", alert(monitor.RuleErrorRate, monitor.SeverityWarning, map[string]string{"venue": "okx"}), true, "panic-venue venue okx"},
		{"no subject in the evidence", alert(monitor.RuleAuthFailures, monitor.SeverityCritical, map[string]string{"venue": "okx"}), false, "none (panic-key: the alert names no exchange key)"},
		{"client unknown while the server starts", alert(monitor.RuleDenialBurst, monitor.SeverityWarning, map[string]string{"venue": "okx", "client": "kw1"}), false, "none (read-only: the server is not running yet)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.plan(tt.al); got != tt.run {
				t.Errorf("plan() = %v, want %v", got, tt.run)
			}
			if got := tt.al.Evidence["response"]; got != tt.response {
				t.Errorf("evidence response = %q, want %q", got, tt.response)
			}
			if id := tt.al.Evidence["alert_id"]; tt.response != "" && !strings.HasPrefix(id, "al-20261125T120000-") {
				t.Errorf("evidence alert_id = %q", id)
			}
			if p, ok := r.take(tt.al.Evidence["alert_id"]); ok != tt.run || (ok && p.Rule != tt.al.Rule) {
				t.Errorf("pending plan = %+v, %v; want one: %v", p, ok, tt.run)
			}
		})
	}
	// After the window the same response is planned again.
	now = now.Add(10 * time.Minute)
	if !r.plan(alert(monitor.RuleVenueAuth, monitor.SeverityCritical, map[string]string{"venue": "binance", "key": "main"})) {
		t.Error("response to the same key after the burst window not planned")
	}
}

// respServe is a keywarden serve in front of a Binance simulator, with a
// webhook that records the alerts it is sent.
type respServe struct {
	t      *testing.T
	c      *cli
	kit    *sim.Kit
	exKey  string
	base   string
	seed   []byte // the operator root's TOTP seed
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	alerts []monitor.Alert
}

func startRespServe(t *testing.T, alerts string) *respServe {
	t.Helper()
	e := &respServe{t: t, c: newCLI(t), kit: sim.NewKit(), exKey: "EXKEYresponse0123456789"}
	e.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: e.exKey, Secret: exchange.Secret(marker + "exsecret0123456789abcdef")},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(e.kit))
	t.Cleanup(up.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var al monitor.Alert
		if json.NewDecoder(r.Body).Decode(&al) == nil {
			e.mu.Lock()
			e.alerts = append(e.alerts, al)
			e.mu.Unlock()
		}
	}))
	t.Cleanup(hook.Close)
	writeFile(t, filepath.Join(e.c.dir, "hook-key"), "hook-key-0123456789\n", 0o600)
	addr := freePort(t)
	f, err := os.OpenFile(e.c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + addr + `"
plaintext = true

[admin]
listen = "` + freePort(t) + `"

[[venue]]
name = "binance"
upstream = "` + up.URL + `"

[policy.trader]
scopes = ["read", "trade"]
max_order_qty = 2

` + alerts + `

[[alerts.webhook]]
url = "` + hook.URL + `/alerts"
key_file = "hook-key"
`)
	f.Close()
	pwFile := filepath.Join(e.c.dir, "admin-pass")
	writeFile(t, pwFile, "the first admin's password\n", 0o600)
	out := e.c.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", pwFile)
	e.seed = totpSeed(t, out)
	e.c.ok("api_key="+e.exKey+"\nsecret="+marker+"exsecret0123456789abcdef\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	e.base = "http://" + addr
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *respServe) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func(done chan error) {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return e.c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), io.Discard, io.Discard)
	}(e.done)
	waitHealthy(e.t, e.base, e.done)
}

func (e *respServe) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("serve: %v", err)
	}
	e.cancel = nil
}

func (e *respServe) issue() *exchange.Credential {
	e.t.Helper()
	var iss issuedCredential
	if err := json.Unmarshal([]byte(e.c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")), &iss); err != nil {
		e.t.Fatal(err)
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
}

func (e *respServe) call(cred *exchange.Credential, method, path, query string) (int, string) {
	e.t.Helper()
	bot := &demoBot{base: e.base + "/binance", venue: binance.Spot(mustURL(e.base)), cred: cred, hc: http.DefaultClient}
	code, body, err := bot.call(context.Background(), method, path, query)
	if err != nil {
		e.t.Fatal(err)
	}
	return code, string(body)
}

func (e *respServe) balance(cred *exchange.Credential) (int, string) {
	return e.call(cred, "GET", "/api/v3/account", "")
}

func (e *respServe) order(cred *exchange.Credential, qty string) (int, string) {
	return e.call(cred, "POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity="+qty+"&price=100")
}

func (e *respServe) withdraw(cred *exchange.Credential) {
	e.t.Helper()
	if code, _ := e.call(cred, "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&network=BTC&address=bc1qthief000000000000000000000000000&amount=1"); code < 400 {
		e.t.Fatalf("withdraw attempt = %d, want a refusal", code)
	}
}

// eventually polls cond for up to 20 seconds.
func (e *respServe) eventually(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; incidents:\n%s", what, e.c.ok("", "incident", "list", "--json"))
		}
	}
}

// incidentEntry returns the first timeline entry of kind whose text holds
// text, in any incident.
func (e *respServe) incidentEntry(kind, text string) (incident.Entry, bool) {
	var all []incident.Incident
	if err := json.Unmarshal([]byte(e.c.ok("", "incident", "list", "--json")), &all); err != nil {
		e.t.Fatal(err)
	}
	for _, in := range all {
		for _, en := range in.Timeline {
			if en.Kind == kind && strings.Contains(en.Text, text) {
				return en, true
			}
		}
	}
	return incident.Entry{}, false
}

// notified returns the alert of rule the webhook received, once it has.
func (e *respServe) notified(rule string) monitor.Alert {
	e.t.Helper()
	var got monitor.Alert
	e.eventually("the "+rule+" notification", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, al := range e.alerts {
			if al.Rule == rule {
				got = al
				return true
			}
		}
		return false
	})
	return got
}

// events returns the audit events of kind.
func (e *respServe) events(kind string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	for rec, err := range audit.Search(filepath.Join(e.c.dir, "data", "audit"), audit.Filter{Types: []audit.Type{audit.TypeEvent}}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.Event != nil && rec.Event.Kind == kind {
			out = append(out, *rec.Event)
		}
	}
	return out
}

// TestReadOnlyResponseThroughServe: a withdraw attempt, with
// withdraw_attempt = "read-only", downgrades the client: its next order is
// refused as a policy denial in Binance's error shape (401, code -1002)
// naming rule read_only (nothing reaches the venue) while its balance read still works and the other
// client trades on. The notification names the response and the alert id,
// the audit log and the incident record it with that id, client list shows
// it, and it survives a restart. Lifting it needs the operator's fresh
// TOTP code; an operator can also downgrade a client by hand.
func TestReadOnlyResponseThroughServe(t *testing.T) {
	e := startRespServe(t, "[alerts.responses]\nwithdraw_attempt = \"read-only\"\n")
	thief, other := e.issue(), e.issue()
	if code, body := e.order(thief, "1"); code != 200 {
		t.Fatalf("order before the alert = %d %s", code, body)
	}
	// A policy denial's status in Binance's shape (401, code -1002): the
	// read-only refusal answers the same way.
	deny, body := e.order(other, "5")
	if deny < 400 || !strings.Contains(body, "max_order_qty") {
		t.Fatalf("order above max_order_qty = %d %s, want a policy denial", deny, body)
	}
	e.withdraw(thief)
	al := e.notified(monitor.RuleWithdraw)
	id := al.Evidence["alert_id"]
	if want := "read-only client binance/" + thief.APIKey; al.Evidence["response"] != want || !strings.HasPrefix(id, "al-") {
		t.Errorf("notification evidence = %v, want response %q and an alert id", al.Evidence, want)
	}
	e.eventually("the downgrade", func() bool { code, _ := e.order(thief, "1"); return code == deny })
	before := len(e.kit.Log())
	code, body := e.order(thief, "1")
	if code != deny || !strings.Contains(body, "read_only") || !strings.Contains(body, `"code":-1002`) {
		t.Errorf("order of the read-only client = %d %s, want %d in Binance's shape naming read_only", code, body, deny)
	}
	if n := len(e.kit.Log()); n != before {
		t.Errorf("the refused order reached the venue (%d requests, want %d)", n, before)
	}
	if code, body := e.balance(thief); code != 200 {
		t.Errorf("balance read of the read-only client = %d %s, want 200", code, body)
	}
	if code, body := e.order(other, "1"); code != 200 {
		t.Errorf("the other client's order = %d %s, want 200", code, body)
	}
	for rec, err := range audit.Search(filepath.Join(e.c.dir, "data", "audit"), audit.Filter{Types: []audit.Type{audit.TypeEvent}}) {
		if err == nil && rec.Event != nil && rec.Event.Kind == "client.read_only" {
			t.Logf("the downgrade was durable in the audit log %s after the alert was raised", rec.Time.Sub(al.Time))
			break
		}
	}
	evs := e.events("client.read_only")
	if len(evs) != 1 || evs[0].Actor != actorAutomatic || !strings.Contains(evs[0].Detail["reason"], id) ||
		evs[0].Detail["client"] != "binance/"+thief.APIKey {
		t.Errorf("client.read_only audit events = %+v, want one by %s naming alert %s", evs, actorAutomatic, id)
	}
	e.eventually("the incident's response entry", func() bool {
		en, ok := e.incidentEntry(incident.KindResponse, id)
		return ok && strings.Contains(en.Text, "downgraded to read-only")
	})
	if out := e.c.ok("", "client", "list"); !regexp.MustCompile(thief.APIKey + `.*read-only`).MatchString(out) {
		t.Errorf("client list does not show the downgrade:\n%s", out)
	}

	// Restart: still read-only.
	e.stop()
	e.start()
	if code, body := e.order(thief, "1"); code != deny || !strings.Contains(body, "read_only") {
		t.Errorf("order after a restart = %d %s, want %d read_only", code, body, deny)
	}

	// Lifting it needs the operator's TOTP code.
	ref := "binance/" + thief.APIKey
	e.c.fails("--reason and --operator are required", "", "client", "restore-trading", ref, "--reason", "cleaned")
	e.c.fails("step-up failed", "000000\n", "client", "restore-trading", ref, "--reason", "cleaned", "--operator", "root")
	e.c.fails("step-up failed", operator.Code(e.seed, time.Now())+"\n", "client", "restore-trading", ref, "--reason", "cleaned", "--operator", "nobody")
	if code, _ := e.order(thief, "1"); code != deny {
		t.Errorf("order after refused restores = %d, want %d", code, deny)
	}
	if out := e.c.ok(operator.Code(e.seed, time.Now())+"\n", "client", "restore-trading", ref, "--reason", "bot host reimaged", "--operator", "root"); !strings.Contains(out, "may trade again") {
		t.Errorf("restore-trading: %s", out)
	}
	if code, body := e.order(thief, "1"); code != 200 {
		t.Errorf("order after restore = %d %s, want 200", code, body)
	}
	if evs := e.events("client.restore_trading"); len(evs) != 1 || evs[0].Actor != "root (control-socket)" || evs[0].Detail["reason"] != "bot host reimaged" {
		t.Errorf("client.restore_trading audit events = %+v", evs)
	}

	// By hand.
	e.c.fails("--reason is required", "", "client", "read-only", "binance/"+other.APIKey)
	if out := e.c.ok("", "client", "read-only", "binance/"+other.APIKey, "--reason", "investigating"); !strings.Contains(out, "read-only from its next request") {
		t.Errorf("client read-only: %s", out)
	}
	if code, body := e.order(other, "1"); code != deny || !strings.Contains(body, "read_only") {
		t.Errorf("order after a manual downgrade = %d %s, want %d read_only", code, body, deny)
	}
	if evs := e.events("client.read_only"); len(evs) != 2 || evs[1].Actor != actorControl || evs[1].Detail["reason"] != "investigating" {
		t.Errorf("client.read_only audit events = %+v", evs)
	}
}

// TestResponseActionsThroughServe: each action, configured for a rule,
// applied by a real serve to the traffic that fires the rule.
func TestResponseActionsThroughServe(t *testing.T) {
	tests := []struct {
		name   string
		action string
		alerts string
		fire   func(e *respServe, thief *exchange.Credential)
		rule   string
		// thief and other: the status of a balance read afterwards.
		thief, other int
		entry        string // kind of the incident entry with the response
		text         string
	}{
		{"suspend-client", respondSuspendClient, "[alerts.responses]\nwithdraw_attempt = \"suspend-client\"\n",
			func(e *respServe, thief *exchange.Credential) { e.withdraw(thief) }, monitor.RuleWithdraw, 401, 200, incident.KindResponse, "revoked binance/"},
		{"panic-key", respondPanicKey, "[alerts]\non_critical = \"panic-key\"\n",
			func(e *respServe, thief *exchange.Credential) { e.withdraw(thief) }, monitor.RuleWithdraw, 401, 401, incident.KindResponse, "revoked binance/"},
		{"panic-venue", respondPanicVenue, "[alerts.responses]\nwithdraw_attempt = \"panic-venue\"\n",
			func(e *respServe, thief *exchange.Credential) { e.withdraw(thief) }, monitor.RuleWithdraw, 401, 401, incident.KindResponse, "revoked binance/"},
		{"panic-all", respondPanicAll, "[alerts.responses]\nwithdraw_attempt = \"panic-all\"\n",
			func(e *respServe, thief *exchange.Credential) { e.withdraw(thief) }, monitor.RuleWithdraw, 503, 503, incident.KindResponse, "gateway stopped"},
		{"suspend-key", respondSuspendKey, "[alerts.responses]\nvenue_key_rejected = \"suspend-key\"\n",
			func(e *respServe, thief *exchange.Credential) {
				e.kit.Inject(sim.Fault{Status: 401, Body: `{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}`, Count: 1})
				if code, _ := e.balance(thief); code != 401 {
					e.t.Fatalf("call the venue refuses = %d, want its 401", code)
				}
			}, monitor.RuleVenueAuth, 0, 0, incident.KindResponse, "exchange key binance/main disabled"},
		// A client's alert with a key action: the client's exchange key.
		{"new source address panic-key", respondPanicKey, "[alerts.responses]\nnew_source_ip = \"panic-key\"\n",
			func(e *respServe, thief *exchange.Credential) {
				if code, body := e.balance(thief); code != 200 {
					e.t.Fatalf("balance from 127.0.0.1 = %d %s", code, body)
				}
				// The same credential from another loopback address.
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
				hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
				defer hc.CloseIdleConnections()
				if code, body := botCallWith(e.t, hc, e.base, thief); code != 200 {
					e.t.Fatalf("balance from 127.0.0.2 = %d %s", code, body)
				}
			}, monitor.RuleNewSourceIP, 401, 401, incident.KindNote, "revoked binance/"},
		// A warning: the responder opens the incident and notes the response.
		{"warning denial burst", respondSuspendClient, "[alerts.responses]\ndenial_burst = \"suspend-client\"\n\n[alerts.thresholds]\ndenials = 3\n",
			func(e *respServe, thief *exchange.Credential) {
				for range 3 {
					if code, body := e.order(thief, "5"); code < 400 || !strings.Contains(body, "max_order_qty") {
						e.t.Fatalf("order above max_order_qty = %d %s, want a policy denial", code, body)
					}
				}
			}, monitor.RuleDenialBurst, 401, 200, incident.KindNote, "automatic response (suspend-client) to alert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startRespServe(t, tt.alerts)
			thief, other := e.issue(), e.issue()
			tt.fire(e, thief)
			al := e.notified(tt.rule)
			id := al.Evidence["alert_id"]
			if !strings.HasPrefix(al.Evidence["response"], tt.action+" ") || id == "" {
				t.Errorf("notification evidence = %v, want the response and an alert id", al.Evidence)
			}
			var en incident.Entry
			e.eventually("the response on the incident", func() bool {
				var ok bool
				en, ok = e.incidentEntry(tt.entry, id)
				return ok
			})
			if !strings.Contains(en.Text, tt.text) {
				t.Errorf("incident entry %q lacks %q", en.Text, tt.text)
			}
			before := 0
			for _, l := range e.kit.Log() {
				if l.APIKey == e.exKey {
					before++
				}
			}
			for who, want := range map[*exchange.Credential]int{thief: tt.thief, other: tt.other} {
				code, body := e.balance(who)
				if want == 0 && code < 400 || want != 0 && code != want {
					t.Errorf("balance read of %s after %s = %d %s, want %d (0: any refusal)", who.APIKey, tt.name, code, body, want)
				}
			}
			if tt.action == respondSuspendKey {
				after := 0
				for _, l := range e.kit.Log() {
					if l.APIKey == e.exKey {
						after++
					}
				}
				if after != before {
					t.Errorf("the venue saw %d calls with the disabled key", after-before)
				}
				if evs := e.events("key.revoke"); len(evs) != 1 || evs[0].Actor != actorAutomatic || !strings.Contains(evs[0].Detail["reason"], id) {
					t.Errorf("key.revoke audit events = %+v", evs)
				}
			} else if evs := e.events("panic"); tt.entry == incident.KindResponse && (len(evs) != 1 || !strings.Contains(evs[0].Detail["reason"], id)) {
				t.Errorf("panic audit events = %+v, want one naming alert %s", evs, id)
			}
		})
	}
}
