package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// TestServeMetrics runs `keywarden serve`, drives requests through the
// gateway and scrapes /metrics on the admin listener.
func TestServeMetrics(t *testing.T) {
	c := newCLI(t)
	kit := sim.NewKit()
	exKey := "EXKEYmetrics0123456789"
	exSecret := marker + "exsecret0123456789abcdef"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
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

[policy.reader]
scopes = ["read"]
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

	out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "reader", "--ttl", "1h", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil {
		t.Fatal(err)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	for range 3 {
		if code, body := botCall(t, base, cred); code != 200 {
			t.Fatalf("account = %d %s", code, body)
		}
	}
	bot := &demoBot{base: base + "/binance", venue: binance.Spot(mustURL(base)), cred: cred, hc: http.DefaultClient}
	if code, _, err := bot.call(ctx, "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&network=BTC&address=bc1qx00000000000000000000000000000000&amount=1"); err != nil || code < 400 {
		t.Fatalf("withdraw = %d (%v), want a refusal", code, err)
	}

	// The admin listener's certificate comes from keywarden's local CA;
	// this test checks the exposition, not the chain.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func() (map[string]*dto.MetricFamily, string) {
		t.Helper()
		resp, err := hc.Get("https://" + adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /metrics = %d %s", resp.StatusCode, b)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return fams, string(b)
	}
	sample := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		t.Helper()
	next:
		for _, m := range fams[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if m.Histogram != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v in the exposition", name, labels)
		return 0
	}
	var fams map[string]*dto.MetricFamily
	var text string
	// The alert counter moves when the monitor's hook has run; poll briefly.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams, text = scrape()
		if fams["keywarden_alerts_total"] != nil || time.Now().After(deadline) {
			break
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keywarden_requests_total", map[string]string{"venue": "binance", "scope": "read", "decision": "allow"}, 3},
		{"keywarden_requests_total", map[string]string{"venue": "binance", "scope": "withdraw", "decision": "deny"}, 1},
		{"keywarden_policy_denials_total", map[string]string{"venue": "binance", "rule": "scope"}, 1},
		{"keywarden_upstream_seconds", map[string]string{"venue": "binance"}, 3},
		{"keywarden_gateway_overhead_seconds", map[string]string{"venue": "binance"}, 4},
		{"keywarden_alerts_total", map[string]string{"rule": "withdraw_attempt", "severity": "critical"}, 1},
		{"keywarden_vault_sealed", nil, 0},
		{"keywarden_gateway_accepting", nil, 1},
	}
	for _, ck := range checks {
		if got := sample(fams, ck.name, ck.labels); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.name, ck.labels, got, ck.want)
		}
	}
	if n := sample(fams, "keywarden_audit_commit_seconds", nil); n < 1 {
		t.Errorf("audit commits observed = %v, want some", n)
	}
	for _, s := range []string{marker, exKey, iss.SecretText} {
		if strings.Contains(text, s) {
			t.Errorf("the exposition contains a secret or exchange key id (%.8s...)", s)
		}
	}
	c.ok("", "gateway", "stop")
	fams, _ = scrape()
	if got := sample(fams, "keywarden_gateway_accepting", nil); got != 0 {
		t.Errorf("keywarden_gateway_accepting after gateway stop = %v, want 0", got)
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
