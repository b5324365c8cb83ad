package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/incident"
)

func TestPanicDrill(t *testing.T) {
	c := newCLI(t)
	out := c.ok("", "panic", "drill")
	for _, want := range []string{"1. the bot trades", "next call is refused with 503", "incident inc-", "panic lifted", "drill passed: time to containment"} {
		if !strings.Contains(out, want) {
			t.Errorf("drill output lacks %q:\n%s", want, out)
		}
	}
}

// TestIncidentsThroughServe runs `keywarden serve` with on_critical =
// "suspend-client": a withdraw attempt opens an incident and suspends the
// client; a panic joins the incident; the incident commands annotate,
// export and close it through the running server; the bundle holds no
// secret; and the record survives the server.
func TestIncidentsThroughServe(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := "EXKEYincident0123456789"
	exSecret := marker + "exsecret0123456789abcdef"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	hookKey := marker + "whsec0123456789"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer hook.Close()
	writeFile(t, filepath.Join(c.dir, "hook-key"), hookKey+"\n", 0o600)
	addr, adminAddr := freePort(t), freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + addr + `"
plaintext = true

[admin]
listen = "` + adminAddr + `"

[[venue]]
name = "binance"
upstream = "` + up.URL + `"

[policy.trader]
scopes = ["read", "trade"]

[alerts]
on_critical = "suspend-client"

[[alerts.webhook]]
url = "` + hook.URL + `/alerts"
key_file = "hook-key"
`)
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	if out := c.ok("", "incident", "list"); !strings.Contains(out, "no incidents") {
		t.Errorf("incident list before any: %s", out)
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

	var secrets []string
	issue := func() *exchange.Credential {
		t.Helper()
		out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")
		var iss issuedCredential
		if err := json.Unmarshal([]byte(out), &iss); err != nil {
			t.Fatalf("client issue output: %v\n%s", err, out)
		}
		secrets = append(secrets, iss.SecretText)
		return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	}
	thief, other := issue(), issue()
	if code, body := botCall(t, base, thief); code != 200 {
		t.Fatalf("call before the incident = %d %s", code, body)
	}
	bot := &demoBot{base: base + "/binance", venue: binance.Spot(mustURL(base)), cred: thief, hc: http.DefaultClient}
	code, _, err := bot.call(ctx, "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&network=BTC&address=bc1qthief000000000000000000000000000&amount=1")
	if err != nil || code < 400 {
		t.Fatalf("withdraw attempt = %d (%v), want a refusal", code, err)
	}

	// The critical withdraw alert opens an incident and the automatic
	// response suspends the client.
	list := func() []incident.Incident {
		var all []incident.Incident
		if err := json.Unmarshal([]byte(c.ok("", "incident", "list", "--json")), &all); err != nil {
			t.Fatal(err)
		}
		return all
	}
	waitFor := func(what string, ok func(incident.Incident) bool) incident.Incident {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			for _, in := range list() {
				if ok(in) {
					return in
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no incident with %s; have %+v", what, list())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	has := func(in incident.Incident, kind, text string) bool {
		for _, e := range in.Timeline {
			if e.Kind == kind && strings.Contains(e.Text, text) {
				return true
			}
		}
		return false
	}
	in := waitFor("the suspension", func(in incident.Incident) bool {
		return has(in, incident.KindAlert, "withdraw attempt") && has(in, incident.KindResponse, "revoked binance/"+thief.APIKey)
	})
	if code, body := botCall(t, base, thief); code != 401 {
		t.Errorf("suspended client's call = %d %s, want 401", code, body)
	}
	if code, body := botCall(t, base, other); code != 200 {
		t.Errorf("the other client's call = %d %s, want 200 (only the thief is suspended)", code, body)
	}

	// A panic joins the open incident, from the audit log.
	c.ok("", "panic", "--venue", "binance", "--reason", "contain the leak")
	in = waitFor("the panic", func(x incident.Incident) bool { return x.ID == in.ID && has(x, incident.KindPanic, "contain the leak") })
	if code, _ := botCall(t, base, other); code != 401 {
		t.Errorf("call after the venue panic = %d, want 401", code)
	}

	c.ok("", "incident", "note", in.ID, "bot host reimaged", "--actor", "alice")
	if out := c.ok("", "incident", "check", in.ID, "3", "--actor", "alice"); !strings.Contains(out, "1/10 done") {
		t.Errorf("incident check: %s", out)
	}
	show := c.ok("", "incident", "show", in.ID)
	for _, want := range []string{"OPEN", "withdraw attempt", "automatic response (suspend-client)", "panic: binance (contain the leak)",
		"[alice] bot host reimaged", " 3 [x] contain"} {
		if !strings.Contains(show, want) {
			t.Errorf("incident show lacks %q:\n%s", want, show)
		}
	}

	bundle := filepath.Join(c.dir, "evidence.tar.gz")
	if out := c.ok("", "incident", "export", in.ID, "--out", bundle); !strings.Contains(out, "wrote "+bundle) {
		t.Errorf("incident export: %s", out)
	}
	files := readBundle(t, bundle)
	var man incident.Manifest
	if err := json.Unmarshal(files[in.ID+"/manifest.json"], &man); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	for _, mf := range man.Files {
		sum := sha256.Sum256(files[in.ID+"/"+mf.Name])
		if hex.EncodeToString(sum[:]) != mf.SHA256 {
			t.Errorf("%s: SHA-256 does not match the manifest", mf.Name)
		}
	}
	var vr incident.VerifyResult
	if err := json.Unmarshal(files[in.ID+"/audit-verify.json"], &vr); err != nil || !vr.OK {
		t.Errorf("audit-verify.json = %+v (%v), want a verified chain", vr, err)
	}
	if recs := string(files[in.ID+"/audit.jsonl"]); !strings.Contains(recs, "capital/withdraw/apply") || !strings.Contains(recs, `"kind":"panic"`) {
		t.Errorf("audit.jsonl lacks the withdraw attempt or the panic")
	}
	cfg, _ := os.ReadFile(c.config)
	sum := sha256.Sum256(cfg)
	if !bytes.Contains(files[in.ID+"/config.sha256"], []byte(hex.EncodeToString(sum[:]))) {
		t.Errorf("config.sha256 = %q, want the configuration's digest", files[in.ID+"/config.sha256"])
	}
	// The bundle is signed by the evidence key, which the running serve
	// prints; verify-bundle checks it pinned, and names what was altered.
	pub := strings.TrimSpace(c.ok("", "incident", "public-key"))
	if got := strings.TrimSpace(string(files[in.ID+"/evidence.pub"])); got != pub {
		t.Errorf("evidence.pub = %q, incident public-key = %q", got, pub)
	}
	writeFile(t, filepath.Join(c.dir, "evidence.pub"), pub+"\n", 0o600)
	if out := c.ok("", "incident", "verify-bundle", bundle, "--public-key", filepath.Join(c.dir, "evidence.pub")); !strings.Contains(out, "OK ") ||
		!strings.Contains(out, "signature verified with the pinned public key "+pub) {
		t.Errorf("verify-bundle: %s", out)
	}
	tampered := filepath.Join(c.dir, "tampered.tar.gz")
	var tb bytes.Buffer
	gz := gzip.NewWriter(&tb)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"incident.json", "alerts.json", "audit.jsonl", "audit-verify.json", "config.sha256", "manifest.json", "manifest.sig", "evidence.pub"} {
		body := files[in.ID+"/"+name]
		if name == "audit.jsonl" {
			body = bytes.Replace(body, []byte("contain the leak"), []byte("routine check!!"), 1)
		}
		tw.WriteHeader(&tar.Header{Name: in.ID + "/" + name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	gz.Close()
	writeFile(t, tampered, tb.String(), 0o600)
	if msg := c.fails("1 check(s) failed", "", "incident", "verify-bundle", tampered, "--public-key", pub); !strings.Contains(msg, tampered) {
		t.Errorf("verify-bundle of a tampered bundle: %s", msg)
	}
	if out := c.outputs[len(c.outputs)-3]; !strings.Contains(out, "FAIL audit.jsonl: SHA-256 or size does not match the manifest") {
		t.Errorf("verify-bundle did not name the altered file:\n%s", out)
	}

	planted := append([]string{marker, exSecret, hookKey, "correct horse battery staple"}, secrets...)
	for name, body := range files {
		for _, s := range planted {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("bundle file %s contains a secret (%.10s...)", name, s)
			}
		}
	}

	c.ok("", "incident", "close", in.ID, "thief suspended, key rotated")
	c.fails("incident is closed", "", "incident", "note", in.ID, "too late")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	// Without a server the evidence key comes from the vault itself.
	if got := strings.TrimSpace(c.ok("", "incident", "public-key")); got != pub {
		t.Errorf("incident public-key without serve = %q, want %q", got, pub)
	}
	// Without a server the commands read the store.
	if out := c.ok("", "incident", "show", in.ID); !strings.Contains(out, "CLOSED") || !strings.Contains(out, "thief suspended, key rotated") {
		t.Errorf("incident show after serve stopped:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "data", incidentSocket)); !os.IsNotExist(err) {
		t.Errorf("incident socket left behind: %v", err)
	}
	// The post-mortem draft names the incident and the refused withdrawal.
	if out := c.ok("", "incident", "report", in.ID); !strings.Contains(out, "# Post-mortem (draft): ") ||
		!strings.Contains(out, "| Incident | "+in.ID+" |") || !strings.Contains(out, "| deny |") || !strings.Contains(out, "withdraw") {
		t.Errorf("incident report:\n%s", out)
	}
}

func readBundle(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v, want 0600", fi.Mode().Perm())
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

// TestAutomaticPanicKey: with on_critical = "panic-key", the venue refusing
// the exchange key (a 401 to a forwarded call) revokes every client bound
// to that key, and the incident says so.
func TestAutomaticPanicKey(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := "EXKEYpanickey0123456789"
	exSecret := marker + "exsecret0123456789abcdef"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	addr := freePort(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`
[gateway]
listen = "` + addr + `"
plaintext = true

[admin]
disabled = true

[[venue]]
name = "binance"
upstream = "` + up.URL + `"

[policy.trader]
scopes = ["read", "trade"]

[alerts]
on_critical = "panic-key"
`)
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key="+exKey+"\nsecret="+exSecret+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
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
	var creds []*exchange.Credential
	for range 2 {
		var iss issuedCredential
		if err := json.Unmarshal([]byte(c.ok("", "client", "issue", "--key", "binance/main", "--policy", "trader", "--ttl", "1h", "--json")), &iss); err != nil {
			t.Fatal(err)
		}
		creds = append(creds, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)})
	}
	kit.Inject(sim.Fault{Status: 401, Body: `{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}`, Count: 1})
	if code, _ := botCall(t, base, creds[0]); code != 401 {
		t.Fatalf("call the venue refuses = %d, want its 401", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var all []incident.Incident
		if err := json.Unmarshal([]byte(c.ok("", "incident", "list", "--json")), &all); err != nil {
			t.Fatal(err)
		}
		found := ""
		for _, in := range all {
			for _, e := range in.Timeline {
				if e.Kind == incident.KindResponse {
					found = e.Text
				}
			}
		}
		if found != "" {
			for _, cr := range creds {
				if !strings.Contains(found, "binance/"+cr.APIKey) {
					t.Errorf("response %q does not name client %s", found, cr.APIKey)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no automatic response recorded; incidents: %+v", all)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, cr := range creds {
		if code, body := botCall(t, base, cr); code != 401 || !strings.Contains(body, "invalid API key or signature") {
			t.Errorf("client %d after panic-key = %d %s, want keywarden's 401", i, code, body)
		}
	}
	signed := 0
	for _, l := range kit.Log() {
		if l.APIKey == exKey {
			signed++
		}
	}
	// The refused call was answered by the injected fault before the
	// simulator's log; after the response nothing reached the venue.
	if signed != 0 {
		t.Errorf("the venue saw %d calls with the exchange key after it refused the key, want none", signed)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestAlertThresholdsConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keywarden.toml")
	writeFile(t, path, `[alerts]
on_critical = "suspend-client"

[alerts.thresholds]
interval = "2m"
notional_min = 500
price_deviation = 0.05
off_hours_learn = "72h"
`, 0o600)
	cfg, err := loadConfig(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	th := cfg.Alerts.Thresholds
	if th.Interval != 2*time.Minute || th.NotionalMin != 500 || th.PriceDeviation != 0.05 || th.OffHoursLearn != 72*time.Hour || th.SurgeFactor != 0 {
		t.Errorf("thresholds = %+v", th)
	}
	if on, err := cfg.Alerts.onCritical(); err != nil || on != respondSuspendClient {
		t.Errorf("onCritical = %q, %v", on, err)
	}
	writeFile(t, path, "[alerts.thresholds]\nprice_deviaton = 0.05\n", 0o600)
	if _, err := loadConfig(path, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "price_deviaton") {
		t.Errorf("misspelt threshold: %v, want an error naming it", err)
	}
	writeFile(t, path, "[alerts]\non_critical = \"nuke\"\n", 0o600)
	cfg, err = loadConfig(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Alerts.onCritical(); err == nil {
		t.Error("on_critical = nuke accepted")
	}
}
