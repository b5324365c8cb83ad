package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const password = "a long enough password"

// env is a running admin API over a real vault, client registry, audit log
// and gateway on an in-memory store.
type env struct {
	t      *testing.T
	ts     *httptest.Server
	srv    *server.Server
	ops    *operator.Manager
	clock  *clock
	seeds  map[string][]byte
	client string // an issued client id for binance/main

	vault       *vault.Vault
	overlay     *policy.Overlay
	setPolicies int // calls of Options.SetPolicies
	history     *posture.History
}

func newEnv(t *testing.T, approvals map[string]operator.Rule) *env {
	t.Helper()
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
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "main", APIKey: "k1", Secret: exchange.Secret("s1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "other", APIKey: "k2", Secret: exchange.Secret("s2")}); err != nil {
		t.Fatal(err)
	}
	binance, _ := venues.ByName("binance")
	dir := t.TempDir()
	srv, err := server.New(ctx, server.Options{Store: st, Vault: v, AuditDir: dir, Routes: []server.Route{{Def: binance}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := &clock{t: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)}
	ops, err := operator.New(operator.Options{Store: st, Secrets: v, Now: c.Now, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	overlay := policy.NewOverlay(st, map[string]policy.Definition{"read": {}, "trade": {Scopes: []string{"trade"}, MaxOrderQty: 1}}, c.Now)
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, ops: ops, clock: c, seeds: map[string][]byte{}, vault: v, overlay: overlay}
	h := New(Options{Operators: ops, Keys: v, Clients: srv.Clients, Gateway: srv.Gateway, Audit: srv.Audit, AuditDir: dir,
		Policies: overlay, SetPolicies: func(ps map[string]*policy.Policy) { e.setPolicies++; srv.SetPolicies(ps) },
		KeyLifecycle: &fakeLifecycle{v: v}, Seal: &fakeSeal{}, AuditKey: pub, Posture: e.posture(st), Reports: fakeReports{},
		Approvals: approvals, Now: c.Now})
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	e.ts = ts
	for _, n := range []struct {
		name string
		role operator.Role
		keys []string
	}{
		{"admin", operator.RoleAdmin, nil}, {"security", operator.RoleSecurity, nil}, {"trader-ops", operator.RoleTraderOps, nil},
		{"auditor", operator.RoleAuditor, nil}, {"sec2", operator.RoleSecurity, nil}, {"sec3", operator.RoleSecurity, nil},
		{"scoped", operator.RoleTraderOps, []string{"binance/main"}}, {"victim", operator.RoleAuditor, nil},
	} {
		_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: n.name, Role: n.role, Keys: n.keys, Password: []byte(password)})
		if err != nil {
			t.Fatal(err)
		}
		e.seeds[n.name] = enr.Seed
	}
	issued, err := srv.Clients.Issue(ctx, clientIssue("binance", "main"))
	if err != nil {
		t.Fatal(err)
	}
	e.client = issued.ID
	return e
}

// code returns name's TOTP code for the next time step: the clock moves on
// 30 seconds first, because a code is accepted once.
func (e *env) code(name string) string {
	e.clock.Add(30 * time.Second)
	return operator.Code(e.seeds[name], e.clock.Now())
}

type resp struct {
	status int
	body   map[string]any
	raw    []byte
}

func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd *bytes.Reader
	if s, ok := body.(string); ok {
		rd = bytes.NewReader([]byte(s))
	} else {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	r := resp{status: res.StatusCode, raw: buf.Bytes()}
	_ = json.Unmarshal(r.raw, &r.body)
	return r
}

func (e *env) login(name string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/auth/login", "", map[string]string{"name": name, "password": password, "code": e.code(name)})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s = %d %s", name, r.status, r.raw)
	}
	return r.body["token"].(string)
}

func (e *env) stepUp(name, tok string) {
	e.t.Helper()
	if r := e.do("POST", "/v1/auth/step-up", tok, map[string]string{"code": e.code(name)}); r.status != http.StatusNoContent {
		e.t.Fatalf("step-up %s = %d %s", name, r.status, r.raw)
	}
}

func (e *env) events(kind string) []audit.Event {
	var out []audit.Event
	for rec, err := range audit.Search(e.srv.Audit.Dir(), audit.Filter{Types: []audit.Type{audit.TypeEvent}}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.Event != nil && rec.Event.Kind == kind {
			out = append(out, *rec.Event)
		}
	}
	return out
}
