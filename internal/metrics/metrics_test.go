package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

const marker = "KWMETRICSMARKER"

// scrape fetches h's exposition and parses it.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d %s", rec.Code, rec.Body.String())
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, text)
	}
	return fams, text
}

// value returns the value of the sample of family name whose labels
// include want; for histograms it is the sample count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestObserveCounts(t *testing.T) {
	sealed := false
	var health error
	m := New(Options{
		Sealed:  func() bool { return sealed },
		Healthy: func() error { return health },
		RateLimits: func() map[string]exchange.RateLimit {
			return map[string]exchange.RateLimit{"binance/main": {Used: 300, Limit: 1200, Window: time.Minute}}
		},
		ReplayFull: func() uint64 { return 7 },
	})
	obs := []gateway.Observation{
		{Venue: "binance", Scope: exchange.ScopeTrade, Decision: "allow", Status: 200, Overhead: time.Millisecond, Upstream: 20 * time.Millisecond},
		{Venue: "binance", Scope: exchange.ScopeTrade, Decision: "allow", Status: 200, Overhead: time.Millisecond, Upstream: 20 * time.Millisecond},
		{Venue: "binance", Scope: exchange.ScopeWithdraw, Decision: "deny", Rule: "scope", Status: 403, Overhead: time.Millisecond},
		{Venue: "okx", Scope: exchange.ScopeTrade, Decision: "deny", Rule: "max_order_notional", Status: 403},
		{Venue: "okx", Decision: "error", Status: 401},
		{Venue: "okx", Scope: "bogus", Decision: "strange", Rule: "Not A Rule!", Status: 500},
	}
	for _, o := range obs {
		m.Observe(o)
	}
	m.ObserveAuditCommit(3, 2*time.Millisecond)
	fams, text := scrape(t, m.Handler())
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{NameRequests, map[string]string{"venue": "binance", "scope": "trade", "decision": "allow"}, 2},
		{NameRequests, map[string]string{"venue": "binance", "scope": "withdraw", "decision": "deny"}, 1},
		{NameRequests, map[string]string{"venue": "binance", "scope": "read", "decision": "allow"}, 0},
		{NameRequests, map[string]string{"venue": "okx", "scope": "none", "decision": "error"}, 1},
		{NameRequests, map[string]string{"venue": "okx", "scope": "other", "decision": "other"}, 1},
		{NameDenials, map[string]string{"venue": "binance", "rule": "scope"}, 1},
		{NameDenials, map[string]string{"venue": "okx", "rule": "max_order_notional"}, 1},
		{NameOverhead, map[string]string{"venue": "binance"}, 3},
		{NameUpstream, map[string]string{"venue": "binance"}, 2},
		{NameUpstream, map[string]string{"venue": "okx"}, 0},
		{NameAuditCommit, nil, 1},
		{NameAuditBatch, nil, 1},
		{NameRateLimitUsed, map[string]string{"venue": "binance", "key": "main"}, 300},
		{NameRateLimitLimit, map[string]string{"venue": "binance", "key": "main"}, 1200},
		{NameRateLimitRatio, map[string]string{"venue": "binance", "key": "main"}, 0.25},
		{NameSealed, nil, 0},
		{NameGatewayAccepts, nil, 1},
		{NameReplayFull, nil, 7},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if strings.Contains(text, "Not A Rule") {
		t.Error("a rule name that is no identifier became a label")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("runtime or process metric %s missing", name)
		}
	}
	sealed, health = true, errors.New("sealed")
	fams, _ = scrape(t, m.Handler())
	if v, _ := value(fams, NameSealed, nil); v != 1 {
		t.Errorf("%s after sealing = %v, want 1", NameSealed, v)
	}
	if v, _ := value(fams, NameGatewayAccepts, nil); v != 0 {
		t.Errorf("%s while refusing = %v, want 0", NameGatewayAccepts, v)
	}
}

// TestScopeLabels: every scope keywarden knows has its own label, in the
// order scopeIndex uses.
func TestScopeLabels(t *testing.T) {
	if len(scopeLabels) != nScopes {
		t.Fatalf("len(scopeLabels) = %d, want nScopes = %d", len(scopeLabels), nScopes)
	}
	for _, s := range exchange.Scopes {
		if got := scopeLabels[scopeIndex(s)]; got != string(s) {
			t.Errorf("scopeLabels[scopeIndex(%q)] = %q", s, got)
		}
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := New(Options{})
	o := gateway.Observation{Venue: "binance", Client: "c1", Key: "main", Scope: exchange.ScopeTrade,
		Decision: "deny", Rule: "max_order_notional", Status: 403, Overhead: time.Millisecond}
	m.Observe(o) // warm-up resolves the label sets
	if n := testing.AllocsPerRun(100, func() { m.Observe(o) }); n != 0 {
		t.Errorf("Observe allocates %v times per call after warm-up, want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	m := New(Options{})
	obs := []gateway.Observation{
		{Venue: "binance", Scope: exchange.ScopeTrade, Decision: "allow", Status: 200, Overhead: 300 * time.Microsecond, Upstream: 20 * time.Millisecond},
		{Venue: "okx", Scope: exchange.ScopeRead, Decision: "deny", Rule: "scope", Status: 403, Overhead: 200 * time.Microsecond},
	}
	for _, o := range obs {
		m.Observe(o)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Observe(obs[i&1])
			i++
		}
	})
}

// TestGatewayEndToEnd drives real requests through a gateway assembled by
// server.New against the Binance simulator and checks what a scrape shows.
func TestGatewayEndToEnd(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("correct horse battery"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	kit := sim.NewKit()
	exKey, exSecret := "EXKEYmetrics0001", marker+"exsecret0123456789abcdef"
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "main", APIKey: exKey,
		Secret: exchange.Secret(exSecret), Kind: exchange.KeyHMAC}); err != nil {
		t.Fatal(err)
	}
	pols, err := policy.CompileAll(map[string]policy.Definition{"reader": {Scopes: []string{"read"}},
		"trader": {Scopes: []string{"read", "trade"}, PriceBandPct: 90}})
	if err != nil {
		t.Fatal(err)
	}
	def, err := venues.ByName("binance")
	if err != nil {
		t.Fatal(err)
	}
	var m *Metrics
	var obsMu sync.Mutex
	var seen []gateway.Observation
	srv, err := server.New(ctx, server.Options{Store: st, Vault: v, Policies: pols, AuditDir: t.TempDir(),
		Routes: []server.Route{{Def: def, Upstream: upURL}},
		Observe: func(o gateway.Observation) {
			m.Observe(o)
			obsMu.Lock()
			seen = append(seen, o)
			obsMu.Unlock()
		},
		AuditCommit: func(n int, d time.Duration) { m.ObserveAuditCommit(n, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m = New(Options{Sealed: v.Sealed, Healthy: srv.Gateway.Healthy, RateLimits: srv.Gateway.RateLimits, ReplayFull: srv.Gateway.ReplayFull})
	gw := httptest.NewServer(srv.Gateway)
	defer gw.Close()
	iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "main", Policy: "reader", TTL: time.Hour, Format: def.Format})
	if err != nil {
		t.Fatal(err)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}
	spot := binance.Spot(upURL)
	call := func(method, path, query string, c *exchange.Credential) int {
		t.Helper()
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
		if err := spot.Signer.Sign(r, c, time.Now()); err != nil {
			t.Fatal(err)
		}
		u := gw.URL + "/binance" + r.Path
		if r.RawQuery != "" {
			u += "?" + r.RawQuery
		}
		req, _ := http.NewRequest(method, u, strings.NewReader(string(r.Body)))
		req.Header = r.Header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if code := call("GET", "/api/v3/account", "", cred); code != 200 {
			t.Fatalf("account = %d, want 200", code)
		}
	}
	if code := call("POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=30000", cred); code != 401 {
		// Binance answers a permission refusal with 401 and code -1002.
		t.Fatalf("order under a read-only policy = %d, want 401", code)
	}
	forged := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(marker + "wrong")}
	if code := call("GET", "/api/v3/account", "", forged); code != 401 {
		t.Fatalf("forged signature = %d, want 401", code)
	}
	// A trader's limit order: the observation carries its symbol, notional
	// and distance from the venue's last price (fetched by the price band).
	tiss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour, Format: def.Format})
	if err != nil {
		t.Fatal(err)
	}
	tcred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: tiss.ID, Secret: tiss.Secret}
	last, ok := srv.Gateway.LastPrice("binance", "BTCUSDT")
	if !ok {
		t.Fatal("no last price for BTCUSDT from the simulator")
	}
	price := strconv.FormatFloat(last*1.1, 'f', 2, 64)
	if code := call("POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price="+price, tcred); code != 200 {
		t.Fatalf("trader's order = %d, want 200", code)
	}
	srv.Gateway.Wait()
	obsMu.Lock()
	lastObs := seen[len(seen)-1]
	obsMu.Unlock()
	p, _ := strconv.ParseFloat(price, 64)
	if lastObs.Symbol != "BTCUSDT" || math.Abs(lastObs.Notional-0.01*p) > 1e-6 || math.Abs(lastObs.PriceDeviation-(p-last)/last) > 1e-9 {
		t.Errorf("order observation: symbol %q notional %v deviation %v; want BTCUSDT, %v, %v",
			lastObs.Symbol, lastObs.Notional, lastObs.PriceDeviation, 0.01*p, (p-last)/last)
	}
	if err := srv.Audit.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	fams, text := scrape(t, m.Handler())
	got := map[string]float64{}
	for _, k := range []struct{ scope, decision string }{{"read", "allow"}, {"trade", "deny"}, {"none", "error"}, {"trade", "allow"}} {
		got[k.scope+"/"+k.decision], _ = value(fams, NameRequests, map[string]string{"venue": "binance", "scope": k.scope, "decision": k.decision})
	}
	got["denials/scope"], _ = value(fams, NameDenials, map[string]string{"venue": "binance", "rule": "scope"})
	got["upstream"], _ = value(fams, NameUpstream, map[string]string{"venue": "binance"})
	got["overhead"], _ = value(fams, NameOverhead, map[string]string{"venue": "binance"})
	want := map[string]float64{"read/allow": 3, "trade/deny": 1, "none/error": 1, "denials/scope": 1, "upstream": 4, "overhead": 6, "trade/allow": 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("scraped counts (-want +got):\n%s", d)
	}
	if n, ok := value(fams, NameReplayFull, nil); !ok || n != 0 {
		t.Errorf("%s = %v (present %v), want 0: nothing was refused for want of room", NameReplayFull, n, ok)
	}
	if n, _ := value(fams, NameAuditCommit, nil); n < 1 {
		t.Errorf("%s count = %v, want at least one commit", NameAuditCommit, n)
	}
	if sum := histogramSum(fams, NameAuditBatch); sum < 5 {
		t.Errorf("%s sum = %v, want at least the 5 intents", NameAuditBatch, sum)
	}
	if rl, ok := value(fams, NameRateLimitUsed, map[string]string{"venue": "binance", "key": "main"}); !ok || rl <= 0 {
		t.Errorf("rate-limit usage for binance/main = %v (present %v), want the simulator's weight", rl, ok)
	}
	for _, secret := range []string{marker, exKey, string(iss.Secret), iss.ID, tiss.ID} {
		if strings.Contains(text, secret) {
			t.Errorf("the exposition contains a secret or exchange key id (%.8s...)", secret)
		}
	}
}

func histogramSum(fams map[string]*dto.MetricFamily, name string) float64 {
	var s float64
	if f := fams[name]; f != nil {
		for _, m := range f.GetMetric() {
			s += m.GetHistogram().GetSampleSum()
		}
	}
	return s
}
