package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/okx"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/venues"
)

// venueUnderTest is one simulated venue behind the gateway.
type venueUnderTest struct {
	name   string
	kit    *sim.Kit
	up     *httptest.Server
	key    exchange.Credential // the exchange key, at the simulator
	build  func(*url.URL) exchange.Venue
	client *exchange.Credential // a bot credential issued for it
	// order places one resting order through the gateway.
	order func(t *testing.T, d exchange.Doer, cred *exchange.Credential, i int)
}

func jsonOrder(path, body string) func(t *testing.T, d exchange.Doer, cred *exchange.Credential, i int) {
	return func(t *testing.T, d exchange.Doer, cred *exchange.Credential, i int) {
		t.Helper()
		b := strings.ReplaceAll(body, "SYM", []string{"BTC", "ETH"}[i%2])
		st, out, err := d.Do(context.Background(), &exchange.Request{Method: http.MethodPost, Path: path, Body: []byte(b),
			Header: http.Header{"Content-Type": {"application/json"}}}, cred)
		if err != nil || st != http.StatusOK || strings.Contains(string(out), `"retCode":1`) {
			t.Fatalf("order through the gateway: %d %s %v", st, out, err)
		}
	}
}

func queryOrder(method, path, query string) func(t *testing.T, d exchange.Doer, cred *exchange.Credential, i int) {
	return func(t *testing.T, d exchange.Doer, cred *exchange.Credential, i int) {
		t.Helper()
		q := strings.ReplaceAll(query, "SYM", []string{"BTC", "ETH"}[i%2])
		st, out, err := d.Do(context.Background(), &exchange.Request{Method: method, Path: path, RawQuery: q, Header: http.Header{}}, cred)
		if err != nil || st != http.StatusOK {
			t.Fatalf("order through the gateway: %d %s %v", st, out, err)
		}
	}
}

// TestPanicAtTheVenue: orders placed through the gateway at four simulated
// venues are cancelled by panics with --cancel-orders, a key is deleted at
// the venue with --delete-keys, a failing venue is reported while the
// suspension stands, and every venue action reaches the incident.
func TestPanicAtTheVenue(t *testing.T) {
	c := newCLI(t)
	vs := []*venueUnderTest{
		{name: "binance", build: binance.Spot,
			key:   exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "BNKEY0123456789", Secret: exchange.Secret(marker + "binance-secret-0123")},
			order: queryOrder(http.MethodPost, "/api/v3/order", "symbol=SYMUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100")},
		{name: "okx", build: okx.New,
			key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "okx-key-0123456789", Secret: exchange.Secret(marker + "okx-secret-0123"),
				Passphrase: exchange.Secret("okx-pass-0123")},
			order: jsonOrder("/api/v5/trade/order", `{"instId":"SYM-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"100"}`)},
		{name: "bybit", build: bybit.New,
			key:   exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "BYBITKEY012345", Secret: exchange.Secret(marker + "bybit-secret-0123")},
			order: jsonOrder("/v5/order/create", `{"category":"spot","symbol":"SYMUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"100"}`)},
		{name: "deribit", build: deribit.New,
			key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "DRBTclient01", Secret: exchange.Secret(marker + "deribit-secret-0123"),
				Account: "4242"},
			order: queryOrder(http.MethodGet, "/api/v2/private/buy", "instrument_name=SYM-PERPETUAL&amount=10&type=limit&price=100")},
	}
	cfg := ""
	for _, v := range vs {
		v.kit = sim.NewKit()
		v.kit.AddAccount(sim.Account{Key: v.key, Permissions: map[string]bool{"read": true, "trade": true, "admin": true}})
		switch v.name {
		case "binance":
			v.up = httptest.NewServer(binance.NewSimulator(v.kit))
		case "okx":
			v.up = httptest.NewServer(okx.NewSimulator(v.kit))
		case "bybit":
			v.up = httptest.NewServer(bybit.NewSimulator(v.kit))
		case "deribit":
			v.up = httptest.NewServer(deribit.NewSimulator(v.kit))
		}
		defer v.up.Close()
		cfg += "\n[[venue]]\nname = \"" + v.name + "\"\nupstream = \"" + v.up.URL + "\"\n"
	}
	addr := freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[gateway]\nlisten = \"" + addr + "\"\nplaintext = true\n" + cfg + "\n[policy.trader]\nscopes = [\"read\", \"trade\"]\n")
	f.Close()
	c.ok("", "operator", "init")
	for _, v := range vs {
		in := "api_key=" + v.key.APIKey + "\nsecret=" + string(v.key.Secret) + "\n"
		if len(v.key.Passphrase) > 0 {
			in += "passphrase=" + string(v.key.Passphrase) + "\n"
		}
		args := []string{"key", "add", "--exchange", v.name, "--name", "main", "--stdin"}
		if v.key.Account != "" {
			args = append(args, "--account", v.key.Account)
		}
		c.ok(in, args...)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), io.Discard, io.Discard)
	}()
	base := "http://" + addr
	waitHealthy(t, base, done)

	gateway := func(v *venueUnderTest) *exchange.HTTPDoer {
		return &exchange.HTTPDoer{Venue: v.build(mustURL(base + "/" + v.name)), Client: http.DefaultClient}
	}
	for _, v := range vs {
		out := c.ok("", "client", "issue", "--key", v.name+"/main", "--policy", "trader", "--ttl", "1h", "--json")
		var iss issuedCredential
		if err := json.Unmarshal([]byte(out), &iss); err != nil {
			t.Fatalf("client issue: %v\n%s", err, out)
		}
		v.client = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText),
			Passphrase: exchange.Secret(iss.PassphraseText)}
		for i := range 3 {
			v.order(t, gateway(v), v.client, i)
		}
		if n := len(v.kit.OpenOrders(v.key.APIKey)); n != 3 {
			t.Fatalf("%s: %d open orders at the simulator after placing 3 through the gateway", v.name, n)
		}
	}
	open := func(v *venueUnderTest) int { return len(v.kit.OpenOrders(v.key.APIKey)) }

	// 1. One venue: its orders go, the others' stay.
	out := c.ok("", "panic", "--venue", "binance", "--reason", "leaked bot host", "--cancel-orders")
	if !strings.Contains(out, "revoked binance/"+vs[0].client.APIKey) ||
		!strings.Contains(out, "ok   cancel-orders binance binance/main: 3 open orders cancelled (BTCUSDT, ETHUSDT)") {
		t.Errorf("panic --venue binance --cancel-orders:\n%s", out)
	}
	if code, _ := botCall(t, base, vs[0].client); code != http.StatusUnauthorized {
		t.Errorf("binance client after the panic = %d, want 401", code)
	}
	for _, v := range vs {
		if want := map[bool]int{true: 0, false: 3}[v.name == "binance"]; open(v) != want {
			t.Errorf("%s: %d open orders after the binance panic, want %d", v.name, open(v), want)
		}
	}

	// 2. Delete a key at the venue: Deribit removes the calling key by id.
	out, _, err = c.run("", "panic", "--key", "deribit/main", "--reason", "key leaked", "--cancel-orders", "--delete-keys")
	if err != nil {
		t.Fatalf("panic --key deribit/main: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ok   cancel-orders deribit deribit/main: 3 open orders cancelled") ||
		!strings.Contains(out, "ok   delete-key    deribit/main: key disabled in keywarden and deleted at the venue") {
		t.Errorf("panic --key deribit/main --cancel-orders --delete-keys:\n%s", out)
	}
	direct := &exchange.HTTPDoer{Venue: deribit.New(mustURL(vs[3].up.URL)), Client: http.DefaultClient}
	if st, body, err := direct.Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/api/v2/private/get_open_orders", Header: http.Header{}}, &vs[3].key); err != nil || st == http.StatusOK {
		t.Errorf("the deleted key at the venue = %d %s %v, want a refusal", st, body, err)
	}
	if open(vs[3]) != 0 {
		t.Errorf("deribit: %d open orders left", open(vs[3]))
	}

	// 3. Everything, with one venue failing: the failure is reported, the
	// other venues are swept, and the gateway stays stopped.
	vs[1].kit.Inject(sim.Fault{Status: http.StatusServiceUnavailable, Body: `{"code":"50001","msg":"Service temporarily unavailable"}`})
	outAll, _, err := c.run("", "panic", "--all", "--reason", "contain everything", "--cancel-orders")
	t.Logf("panic --all --cancel-orders:\n%s", outAll)
	if err == nil || !strings.Contains(err.Error(), "1 venue action(s) failed") {
		t.Errorf("panic --all with okx failing = %v, want a reported failure", err)
	}
	if !strings.Contains(outAll, "FAIL cancel-orders okx okx/main: okx: list open orders: status 503") ||
		!strings.Contains(outAll, "ok   cancel-orders bybit bybit/main: 3 open orders cancelled") ||
		!strings.Contains(outAll, "gateway stopped") {
		t.Errorf("panic --all output:\n%s", outAll)
	}
	vs[1].kit.ClearFaults()
	if open(vs[1]) != 3 || open(vs[2]) != 0 {
		t.Errorf("open orders after panic --all: okx %d (want 3: it failed), bybit %d (want 0)", open(vs[1]), open(vs[2]))
	}
	if code, _ := botCall(t, base, vs[0].client); code != http.StatusServiceUnavailable && code != http.StatusUnauthorized {
		t.Errorf("a call after panic --all = %d, want a refusal", code)
	}
	st, _, _ := gateway(vs[2]).Do(ctx, &exchange.Request{Method: http.MethodGet, Path: "/v5/order/realtime", RawQuery: "category=spot", Header: http.Header{}}, vs[2].client)
	if st == http.StatusOK {
		t.Error("bybit call after panic --all passed: the venue failure undid the suspension")
	}

	// 4. Every venue action is on the incident's timeline, from the audit log.
	var venueTexts []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		var all []incident.Incident
		if err := json.Unmarshal([]byte(c.ok("", "incident", "list", "--json")), &all); err != nil {
			t.Fatal(err)
		}
		venueTexts = venueTexts[:0]
		for _, in := range all {
			for _, e := range in.Timeline {
				if e.Kind == incident.KindVenue {
					venueTexts = append(venueTexts, e.Text)
				}
			}
		}
		if len(venueTexts) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	joined := strings.Join(venueTexts, "\n")
	for _, want := range []string{
		"panic cancel-orders at binance binance/main done: 3 open orders cancelled",
		"panic delete-key at deribit/main done",
		"panic cancel-orders at okx okx/main FAILED: okx: list open orders: status 503",
		"panic cancel-orders at bybit bybit/main done: 3 open orders cancelled",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("incident timeline lacks %q; venue entries:\n%s", want, joined)
		}
	}

	// 5. Each panic left a signed evidence snapshot in the data directory,
	// noted on its incident, that verifies against the evidence key.
	pub := strings.TrimSpace(c.ok("", "incident", "public-key"))
	var snaps []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		snaps, _ = filepath.Glob(filepath.Join(c.dir, "data", "evidence", "inc-*-panic-*.tar.gz"))
		if len(snaps) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(snaps) == 0 {
		t.Fatal("no evidence snapshot written for the panics")
	}
	for _, p := range snaps {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", p, err, fi.Mode())
		}
		if out := c.ok("", "incident", "verify-bundle", p, "--public-key", pub); !strings.Contains(out, "signature verified with the pinned public key") {
			t.Errorf("verify-bundle %s: %s", p, out)
		}
		for name, body := range readBundle(t, p) {
			for _, v := range vs {
				if strings.Contains(string(body), marker) || strings.Contains(string(body), string(v.key.Secret)) ||
					strings.Contains(string(body), string(v.client.Secret)) {
					t.Errorf("snapshot %s: %s holds a secret", p, name)
				}
			}
		}
	}
	if show := c.ok("", "incident", "list", "--json"); !strings.Contains(show, "evidence snapshot of the panic: "+snaps[0]) {
		t.Errorf("no incident notes the snapshot %s", snaps[0])
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestEveryVenueHasACanceller: every known venue can cancel orders in a
// panic, and no canceller names an unknown venue.
func TestEveryVenueHasACanceller(t *testing.T) {
	notCovered := map[string]bool{}
	known := map[string]bool{}
	for _, d := range venues.Known() {
		known[d.Name] = true
		if _, ok := cancellers[d.Name]; ok == notCovered[d.Name] {
			t.Errorf("venue %s: canceller present = %v, want %v", d.Name, ok, !notCovered[d.Name])
		}
	}
	for name := range cancellers {
		if !known[name] {
			t.Errorf("canceller for unknown venue %s", name)
		}
	}
}

// TestAdminStopCancelsOrders: a stop through the admin API that asks for
// cancel_orders stops the gateway, and keywarden serve then cancels the
// open orders at the venue from the stop's audit record.
func TestAdminStopCancelsOrders(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "BNADMIN0123456789", Secret: exchange.Secret(marker + "admin-stop-secret")}
	kit.AddAccount(sim.Account{Key: exKey, Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	addr, adminAddr := freePort(t), freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[gateway]\nlisten = \"" + addr + "\"\nplaintext = true\n\n[admin]\nlisten = \"" + adminAddr +
		"\"\n\n[[venue]]\nname = \"binance\"\nupstream = \"" + up.URL + "\"\n\n[policy.trader]\nscopes = [\"read\", \"trade\"]\n")
	f.Close()
	pwFile := filepath.Join(c.dir, "admin-pass")
	writeFile(t, pwFile, "the first admin's password\n", 0o600)
	out := c.ok("", "operator", "init", "--admin-name", "root", "--admin-password-file", pwFile)
	seed := totpSeed(t, out)
	caFile := filepath.Join(c.dir, "ca.pem")
	writeFile(t, caFile, c.ok("", "tls", "ca"), 0o600)
	c.ok("api_key="+exKey.APIKey+"\nsecret="+string(exKey.Secret)+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), io.Discard, io.Discard)
	}()
	base := "http://" + addr
	waitHealthy(t, base, done)

	out = c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil {
		t.Fatal(err)
	}
	bot := &exchange.HTTPDoer{Venue: binance.Spot(mustURL(base + "/binance")), Client: http.DefaultClient}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	for i := range 2 {
		queryOrder(http.MethodPost, "/api/v3/order", "symbol=SYMUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100")(t, bot, cred, i)
	}
	if n := len(kit.OpenOrders(exKey.APIKey)); n != 2 {
		t.Fatalf("%d open orders, want 2", n)
	}

	c.ok("the first admin's password\n"+operator.Code(seed, time.Now().Add(-30*time.Second))+"\n", "login", "--url", "https://"+adminAddr, "--name", "root", "--ca", caFile)
	out = c.ok("", "admin", "POST", "/v1/gateway/stop", "--data", `{"cancel_orders":true,"reason":"admin drill"}`)
	if !strings.Contains(out, `"venue_actions":"requested`) {
		t.Errorf("admin stop answer: %s", out)
	}
	if code, _ := botCall(t, base, cred); code == http.StatusOK {
		t.Error("a call after the admin stop passed")
	}
	for deadline := time.Now().Add(20 * time.Second); len(kit.OpenOrders(exKey.APIKey)) != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d open orders 20s after the admin stop, want 0", len(kit.OpenOrders(exKey.APIKey)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var joined string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(joined, "panic cancel-orders at binance binance/main done: 2 open orders cancelled"); {
		if time.Now().After(deadline) {
			t.Fatalf("the incident lacks the admin stop's venue action:\n%s", joined)
		}
		time.Sleep(50 * time.Millisecond)
		joined = c.ok("", "incident", "list", "--json")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestPlanVenueSteps: every cancel comes before any deletion (a deleted key
// can no longer cancel), and a key at two venues is deleted once.
func TestPlanVenueSteps(t *testing.T) {
	targets := []venueKey{{"binance", "binance", "main"}, {"binance-usdm", "binance", "main"}, {"okx", "okx", "hedge"}}
	got := planVenueSteps(targets, panicRequest{CancelOrders: true, DeleteKeys: true})
	want := []venueStep{
		{Action: "cancel-orders", Venue: "binance", Key: "binance/main"},
		{Action: "cancel-orders", Venue: "binance-usdm", Key: "binance/main"},
		{Action: "cancel-orders", Venue: "okx", Key: "okx/hedge"},
		{Action: "delete-key", Key: "binance/main"},
		{Action: "delete-key", Key: "okx/hedge"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
	if got := planVenueSteps(targets, panicRequest{DeleteKeys: true}); len(got) != 2 || got[0].Action != "delete-key" {
		t.Errorf("delete-only plan = %+v", got)
	}
}
