package e2e

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// Env is one keywarden with simulators, all in this process, assembled by
// server.New exactly as `keywarden serve` assembles it.
type Env struct {
	t        *testing.T
	Vault    *vault.Vault
	Server   *server.Server
	Clients  *client.Registry
	AuditDir string
	AuditPub ed25519.PublicKey
	URL      string // gateway base, e.g. http://127.0.0.1:PORT
	Sims     map[string]*Sim
}

// Sim is one venue's simulator.
type Sim struct {
	Kit *sim.Kit
	URL string
	Def venues.Def
}

// Marker is planted in every secret so tests can search outputs for it.
const Marker = "KWMARKER"

// NewEnv starts simulators for the named venues and a keywarden routing to
// them, with the given policies.
func NewEnv(t *testing.T, names []string, policies map[string]policy.Definition) *Env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: dir + "/data"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v, err := vault.New(vault.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("correct horse battery " + Marker), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	compiled, err := policy.CompileAll(policies)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Vault: v, Sims: map[string]*Sim{}, AuditDir: dir + "/audit"}
	var routes []server.Route
	byExchange := map[string]*Sim{} // venues of one exchange share a simulator
	for _, n := range names {
		def, err := venues.ByName(n)
		if err != nil {
			t.Fatal(err)
		}
		s := &Sim{Def: def}
		if shared, ok := byExchange[def.Exchange]; ok {
			s.Kit, s.URL = shared.Kit, shared.URL
		} else {
			s.Kit = sim.NewKit()
			srv := httptest.NewServer(def.Simulator(s.Kit))
			t.Cleanup(srv.Close)
			s.URL = srv.URL
			byExchange[def.Exchange] = s
		}
		e.Sims[n] = s
		u, _ := url.Parse(s.URL)
		routes = append(routes, server.Route{Def: def, Upstream: u})
	}
	e.Server, err = server.New(ctx, server.Options{Store: db, Vault: v, Policies: compiled, Routes: routes,
		AuditDir: e.AuditDir, UpstreamTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Server.Close() })
	e.Clients = e.Server.Clients
	if e.AuditPub, err = server.AuditPublicKey(ctx, v); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.Server.Gateway)
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// Key is an exchange key registered both at the simulator and in the vault.
type Key struct {
	APIKey, Secret, Passphrase string
}

// AddKey creates an account at venue's simulator with perms and stores its
// key in the vault as exchange/name.
func (e *Env) AddKey(venue, name string, perms ...string) Key {
	e.t.Helper()
	s := e.Sims[venue]
	k := Key{APIKey: "EXKEY" + randHex(12), Secret: Marker + "exsecret" + randHex(20)}
	if s.Def.Format.Base64Secret {
		k.Secret = b64(Marker + "exsecret" + randHex(20))
	}
	if s.Def.Format.Passphrase {
		k.Passphrase = Marker + "pass" + randHex(4)
	}
	p := map[string]bool{}
	for _, x := range perms {
		p[x] = true
	}
	s.Kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: k.APIKey,
		Secret: exchange.Secret(k.Secret), Passphrase: exchange.Secret(k.Passphrase)}, Permissions: p})
	_, err := e.Vault.AddKey(context.Background(), vault.KeyInput{Exchange: s.Def.Exchange, Name: name, APIKey: k.APIKey,
		Secret: exchange.Secret(k.Secret), Passphrase: exchange.Secret(k.Passphrase), Kind: exchange.KeyHMAC})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// Issue issues a client credential for venue bound to key name and policy.
func (e *Env) Issue(venue, key, pol string) *client.Issued {
	e.t.Helper()
	s := e.Sims[venue]
	iss, err := e.Clients.Issue(context.Background(), client.IssueOptions{Venue: venue, Key: key, Policy: pol, TTL: time.Hour, Format: s.Def.Format})
	if err != nil {
		e.t.Fatal(err)
	}
	return iss
}

// Records returns every audit record so far, once in-flight requests are
// done and lazily written outcomes are durable.
func (e *Env) Records() []audit.Record {
	e.t.Helper()
	e.Server.Gateway.Wait()
	if err := e.Server.Audit.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	for r, err := range audit.Search(e.AuditDir, audit.Filter{}) {
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// AssertNoSecretIn fails if any of secrets appears in s.
func (e *Env) AssertNoSecretIn(what, s string, secrets ...string) {
	e.t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			e.t.Errorf("%s contains a secret", what)
		}
	}
}

// CheckAudit verifies the audit chain and that no secret appears anywhere in
// the audit files, and returns the records.
func (e *Env) CheckAudit(secrets ...string) []audit.Record {
	e.t.Helper()
	e.Server.Gateway.Wait()
	if err := e.Server.Audit.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if _, err := audit.Verify(e.AuditDir, e.AuditPub); err != nil {
		e.t.Errorf("audit verify: %v", err)
	}
	files, _ := os.ReadDir(e.AuditDir)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(e.AuditDir, f.Name()))
		if err != nil {
			continue
		}
		e.AssertNoSecretIn("audit file "+f.Name(), string(b), append(secrets, Marker)...)
	}
	return e.Records()
}

// Decisions counts intent decisions by "type/decision/rule".
func Decisions(recs []audit.Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Intent != nil {
			out[string(r.Type)+"/"+r.Intent.Decision+"/"+r.Intent.Rule]++
		}
		if r.Outcome != nil {
			out["outcome"]++
		}
	}
	return out
}
