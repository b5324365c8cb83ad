package faults

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// marker is planted in every secret of the rig; no output may contain it.
const marker = "KWFAULTMARKER"

// rig is one keywarden (server.New, as `keywarden serve` builds it) in front
// of a Binance simulator behind an Upstream.
type rig struct {
	t        *testing.T
	db       *sqlite.DB
	vault    *vault.Vault
	srv      *server.Server
	kit      *sim.Kit
	up       *Upstream
	upURL    string
	upConns  atomic.Int64 // connections open to the venue simulator
	gw       string       // gateway base URL
	auditDir string
	pub      ed25519.PublicKey
	logs     *syncBuffer
	exKey    string
	secrets  []string
	cred     *client.Issued
	hc       *http.Client

	opts server.Options // to restart with

	mu       sync.Mutex
	obs      []gateway.Observation
	tampered []error        // the vault's refusals the server reported (VaultTamper)
	cur      *server.Server // what the gateway listener serves
}

type rigOptions struct {
	timeout  time.Duration // upstream timeout (default 2 s)
	upstream *url.URL      // overrides the Upstream's URL (TLS tests)
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	kitNow   func() time.Time
	policy   *policy.Definition
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const passphrase = "correct horse battery " + marker

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	if o.timeout == 0 {
		o.timeout = 2 * time.Second
	}
	r := &rig{t: t, logs: &syncBuffer{}, hc: &http.Client{Timeout: 30 * time.Second}}
	logger := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: dir + "/data", BusyTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	v, err := vault.New(vault.Options{Store: db, Logger: logger.With("component", "vault")})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte(passphrase), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	r.vault = v
	def := policy.Definition{Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"},
		MaxOrderNotional: 1_000_000, NotionalCurrency: "USDT"}
	if o.policy != nil {
		def = *o.policy
	}
	pols, err := policy.CompileAll(map[string]policy.Definition{"trader": def})
	if err != nil {
		t.Fatal(err)
	}
	r.kit = sim.NewKit()
	if o.kitNow != nil {
		r.kit.Now = o.kitNow
	}
	r.kit.SetPrice("BTCUSDT", 50000)
	vdef, err := venues.ByName("binance")
	if err != nil {
		t.Fatal(err)
	}
	r.up = NewUpstream(vdef.Simulator(r.kit))
	us := httptest.NewUnstartedServer(r.up)
	us.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			r.upConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			r.upConns.Add(-1)
		}
	}
	us.Start()
	t.Cleanup(us.Close)
	r.upURL = us.URL
	u, _ := url.Parse(us.URL)
	if o.upstream != nil {
		u = o.upstream
	}
	r.auditDir = dir + "/audit"
	r.opts = server.Options{Store: db, Vault: v, Policies: pols,
		Routes: []server.Route{{Def: vdef, Upstream: u}}, AuditDir: r.auditDir, UpstreamTimeout: o.timeout,
		Logger: logger, Transport: gateway.TransportOptions{Dial: o.dial},
		Observe: func(ob gateway.Observation) {
			r.mu.Lock()
			r.obs = append(r.obs, ob)
			r.mu.Unlock()
		},
		VaultTamper: func(exchange, name string, err error) {
			r.mu.Lock()
			r.tampered = append(r.tampered, fmt.Errorf("%s/%s: %w", exchange, name, err))
			r.mu.Unlock()
		}}
	r.srv, err = server.New(ctx, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	r.cur = r.srv
	t.Cleanup(func() { r.srv.Close() })
	if r.pub, err = server.AuditPublicKey(ctx, v); err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		s := r.cur
		r.mu.Unlock()
		s.Gateway.ServeHTTP(w, req)
	}))
	t.Cleanup(gs.Close)
	r.gw = gs.URL

	r.exKey = "EXKEY" + randHex(10)
	exSecret := marker + "exsecret" + randHex(16)
	r.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: r.exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "main", APIKey: r.exKey,
		Secret: exchange.Secret(exSecret), Kind: exchange.KeyHMAC}); err != nil {
		t.Fatal(err)
	}
	r.cred, err = r.srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "main", Policy: "trader",
		TTL: time.Hour, Format: vdef.Format})
	if err != nil {
		t.Fatal(err)
	}
	r.secrets = []string{marker, exSecret, passphrase, string(r.cred.Secret)}
	t.Cleanup(r.hygiene)
	return r
}

// answer is what the bot got.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

// call signs method path?query with body as a Binance client holding the
// rig's client credential and sends it through the gateway.
func (r *rig) call(method, path, query, body string) answer {
	return r.callWith(r.hc, method, path, query, body)
}

func (r *rig) callWith(hc *http.Client, method, path, query, body string) answer {
	req := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if body != "" {
		req.Body = []byte(body)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: r.cred.ID, Secret: r.cred.Secret}
	if err := binance.Spot(nil).Signer.Sign(req, cred, time.Now()); err != nil {
		return answer{err: err}
	}
	target := r.gw + "/binance" + path
	if req.RawQuery != "" {
		target += "?" + req.RawQuery
	}
	hr, err := http.NewRequest(method, target, bytes.NewReader(req.Body))
	if err != nil {
		return answer{err: err}
	}
	hr.Header.Set("X-MBX-APIKEY", r.cred.ID)
	if len(req.Body) > 0 {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

const (
	orderPath   = "/api/v3/order"
	accountPath = "/api/v3/account"
)

var orderSeq struct {
	mu sync.Mutex
	n  int
}

// order places a limit order with a fresh client order id and returns it
// with the answer.
func (r *rig) order() (string, answer) {
	orderSeq.mu.Lock()
	orderSeq.n++
	id := "faults" + randHex(4)
	orderSeq.mu.Unlock()
	body := "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49000&newClientOrderId=" + id
	return id, r.call(http.MethodPost, orderPath, "", body)
}

// binanceError checks that a is an error in Binance's shape and returns it.
func (r *rig) binanceError(a answer) (int, string) {
	r.t.Helper()
	var e struct {
		Code *int   `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Code == nil || e.Msg == "" {
		r.t.Errorf("answer %d %q is not in Binance's error shape {code,msg}", a.status, a.body)
		return 0, ""
	}
	return *e.Code, e.Msg
}

// simOrders counts the orders the simulator holds with client order id id.
func (r *rig) simOrders(id string) int {
	n := 0
	for _, o := range r.kit.Orders(r.exKey) {
		if o.ClientOrderID == id {
			n++
		}
	}
	return n
}

// records waits for in-flight requests, flushes the audit log and returns
// every record.
func (r *rig) records() []audit.Record {
	r.t.Helper()
	r.srv.Gateway.Wait()
	if err := r.srv.Audit.Sync(context.Background()); err != nil {
		r.t.Fatalf("audit sync: %v", err)
	}
	var out []audit.Record
	for rec, err := range audit.Search(r.auditDir, audit.Filter{}) {
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// verify checks the audit chain is whole.
func (r *rig) verify() {
	r.t.Helper()
	r.records()
	if _, err := audit.Verify(r.auditDir, r.pub); err != nil {
		r.t.Errorf("audit verify: %v", err)
	}
}

// requestTrail returns, for every allowed request, whether it has an intent
// and how many outcomes, keyed by request id.
type trail struct {
	intent   bool
	outcomes []audit.Outcome
}

func (r *rig) trails() map[string]*trail {
	out := map[string]*trail{}
	for _, rec := range r.records() {
		if rec.RequestID == "" {
			continue
		}
		tr := out[rec.RequestID]
		if tr == nil {
			tr = &trail{}
			out[rec.RequestID] = tr
		}
		if rec.Intent != nil && rec.Intent.Decision == "allow" {
			tr.intent = true
		}
		if rec.Outcome != nil {
			tr.outcomes = append(tr.outcomes, *rec.Outcome)
		}
	}
	return out
}

// checkTrails checks that every allowed intent has exactly one outcome.
func (r *rig) checkTrails() map[string]*trail {
	r.t.Helper()
	ts := r.trails()
	for id, tr := range ts {
		if tr.intent && len(tr.outcomes) != 1 {
			r.t.Errorf("request %s: allowed intent with %d outcomes, want 1", id, len(tr.outcomes))
		}
		if !tr.intent && len(tr.outcomes) > 0 {
			r.t.Errorf("request %s: outcome without an allowed intent", id)
		}
	}
	return ts
}

// hygiene scans logs and audit files for the rig's secrets at the end.
func (r *rig) hygiene() {
	r.srv.Gateway.Wait()
	_ = r.srv.Audit.Sync(context.Background())
	var files []string
	for rec, err := range audit.Search(r.auditDir, audit.Filter{}) {
		if err != nil {
			break
		}
		b, _ := json.Marshal(rec)
		files = append(files, string(b))
	}
	all := r.logs.String() + strings.Join(files, "\n")
	for _, s := range r.secrets {
		if s != "" && strings.Contains(all, s) {
			r.t.Errorf("a secret reached the logs or the audit trail")
		}
	}
}

// waitHealthy polls the gateway's health until it is nil or d passes.
func (r *rig) waitHealthy(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := r.srv.Gateway.Healthy()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart closes the server and assembles a new one on the same store,
// vault and audit directory, as a restarted `keywarden serve` would.
func (r *rig) restart() {
	r.t.Helper()
	_ = r.srv.Close() // may report the audit failure that caused the restart
	srv, err := server.New(context.Background(), r.opts)
	if err != nil {
		r.t.Fatalf("restart: %v", err)
	}
	r.mu.Lock()
	r.srv, r.cur = srv, srv
	r.mu.Unlock()
}
