// Package server assembles a running keywarden from its parts: the vault,
// the client registry, the policy engine, the audit log and the gateway with
// one route per configured venue. `keywarden serve`, `keywarden demo`, the
// benchmark and the end-to-end tests all build keywarden through New, so they
// run the same wiring.
package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
	"github.com/keywarden/keywarden/internal/wsgateway"
)

// Route is one venue to serve and where its upstream is.
type Route struct {
	Def            venues.Def
	Upstream       *url.URL // nil: the venue's real host
	PublicCacheTTL time.Duration
}

// Options configure New.
type Options struct {
	Store    store.Store
	Vault    *vault.Vault // unsealed
	Policies map[string]*policy.Policy
	Routes   []Route
	AuditDir string
	// AuditNoSync skips audit flushes (benchmarks of the non-durable path
	// only; never in production).
	AuditNoSync     bool
	AuditHashFields []string
	TrustedProxies  []netip.Prefix
	UpstreamTimeout time.Duration
	// Limits of the gateway (see gateway.Options): request body and target
	// sizes, and how long a client order id is held against repeats.
	MaxBody           int64
	MaxURI            int
	IdempotencyWindow time.Duration
	Transport         gateway.TransportOptions
	Logger            *slog.Logger
	Observe           func(gateway.Observation)
	// AuditSinks receive a copy of every audit record (SIEM, syslog), each
	// from its own cursor in the audit directory: a slow or failing sink
	// loses nothing and holds nothing back.
	AuditSinks []NamedSink
	// AuditCommit, when set, is told about every durable audit batch
	// (metrics).
	AuditCommit audit.CommitObserver
	// AuditHealth, when set, is told when the audit log fails (the error)
	// and when it has recovered (nil); it is called from the log's writer
	// and must not wait for the log.
	AuditHealth func(error)
	// VaultTamper, when set, is told when the vault refuses an exchange key
	// a request needs as tampered with or rolled back (the request fails
	// closed either way). It must not block.
	VaultTamper func(exchange, name string, err error)
}

// NamedSink is an audit destination with the name its cursor is kept under.
type NamedSink struct {
	Name string
	Sink audit.Sink
}

// Server is an assembled keywarden.
type Server struct {
	Vault      *vault.Vault
	Store      store.Store // the records: operator accounts are read from it for step-up
	Clients    *client.Registry
	Engine     *policy.Engine
	Audit      *audit.Log
	Gateway    *gateway.Gateway
	WS         *wsgateway.Proxy // WebSockets on the gateway's listener
	Forwarders []*audit.Forwarder
	// Metrics, when set, is served at GET /metrics on the admin listener.
	Metrics http.Handler

	policies *policyAdapter
	stop     context.CancelFunc
	done     chan struct{}
}

// Vault record ids of keywarden's own keys.
const (
	auditKind     = "audit"
	auditSignerID = "checkpoint-ed25519"
	auditHashID   = "field-hmac"
)

// New builds a Server. The vault must be unsealed: New opens the client
// credentials and the audit signing key.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil || o.Vault == nil {
		return nil, errors.New("server: a store and a vault are required")
	}
	if o.Vault.Sealed() {
		return nil, vault.ErrSealed
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{Vault: o.Vault, Store: o.Store}
	s.Clients = client.New(client.Options{Store: o.Store, Secrets: o.Vault, Logger: o.Logger.With("component", "clients")})
	if err := s.Clients.Load(ctx); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	signer, err := vaultKey(ctx, o.Vault, auditSignerID, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(nil)
		return priv.Seed(), err
	})
	if err != nil {
		return nil, fmt.Errorf("server: audit signing key: %w", err)
	}
	hashKey, err := vaultKey(ctx, o.Vault, auditHashID, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := randRead(b)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("server: audit hash key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(signer)
	clear(signer)
	ao := audit.Options{
		Dir: o.AuditDir, Logger: o.Logger.With("component", "audit"), Signer: priv,
		HashKey: hashKey, HashFields: o.AuditHashFields, NoSync: o.AuditNoSync,
	}
	if o.AuditCommit != nil {
		ao.WrapFile = audit.ObserveCommits(nil, o.AuditCommit)
	}
	ao.OnHealth = o.AuditHealth
	s.Audit, err = audit.Open(ao)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := closeOrphans(ctx, s.Audit, time.Now()); err != nil {
		s.Audit.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	pa := &policyAdapter{clients: s.Clients}
	s.Engine = policy.NewEngine(policy.Options{Policies: o.Policies})
	if err := s.restoreWindows(ctx, o, hashKey); err != nil {
		s.Audit.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	pa.engine.Store(s.Engine)
	s.policies = pa
	exchangeOf := make(map[string]string, len(o.Routes))
	for _, r := range o.Routes {
		exchangeOf[r.Def.Name] = r.Def.Exchange
	}
	used := newUsage(o.Vault, exchangeOf, o.Logger.With("component", "key-usage"))
	observe := func(ob gateway.Observation) {
		used.observe(ob, time.Now())
		if o.Observe != nil {
			o.Observe(ob)
		}
	}
	var routes []gateway.Route
	built := map[string]exchange.Venue{} // the REST venues, shared with their WebSocket APIs
	for _, r := range o.Routes {
		u := r.Upstream
		if u == nil {
			if u, err = url.Parse(r.Def.Upstream); err != nil {
				return nil, err
			}
		}
		ven := r.Def.Build(u)
		built[r.Def.Name] = ven
		routes = append(routes, gateway.Route{Venue: ven, Exchange: r.Def.Exchange, PublicCacheTTL: r.PublicCacheTTL})
	}
	var keys vaultKeys = o.Vault
	if o.VaultTamper != nil {
		keys = tamperWatch{keys: o.Vault, onTamper: o.VaultTamper}
	}
	s.Gateway, err = gateway.New(gateway.Options{
		Routes: routes, Clients: s.Clients, Keys: keys, Policy: pa, Audit: auditAdapter{s.Audit},
		Logger: o.Logger.With("component", "gateway"), TrustedProxies: o.TrustedProxies,
		UpstreamTimeout: o.UpstreamTimeout, Transport: gateway.NewTransport(o.Transport), Observe: observe,
		MaxBody: o.MaxBody, MaxURI: o.MaxURI, IdempotencyWindow: o.IdempotencyWindow,
		Ready: func() error {
			if o.Vault.Sealed() {
				return vault.ErrSealed
			}
			return nil
		},
	})
	if err != nil {
		s.Audit.Close()
		return nil, err
	}
	pa.prices = s.Gateway
	wsr, err := wsRoutes(o.Routes, built)
	if err == nil {
		s.WS, err = wsgateway.New(wsgateway.Options{Routes: wsr, Clients: s.Clients, Keys: keys, Policy: pa,
			Audit: auditAdapter{s.Audit}, Healthy: s.Gateway.Healthy, Logger: o.Logger.With("component", "wsgateway"),
			ListenKeys: s.Gateway})
	}
	if err != nil {
		s.Audit.Close()
		return nil, err
	}
	s.Gateway.SetUpgradeHandler(s.WS)
	s.Gateway.OnStop(s.WS.CloseAll)
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = stop, make(chan struct{})
	var running []chan struct{}
	usageDone := make(chan struct{})
	running = append(running, usageDone)
	go func() {
		defer close(usageDone)
		used.run(fctx, usageFlushEvery)
	}()
	for _, ns := range o.AuditSinks {
		f, err := audit.NewForwarder(audit.ForwarderOptions{Log: s.Audit, Sink: ns.Sink, Name: ns.Name,
			Logger: o.Logger.With("component", "audit-forward", "sink", ns.Name)})
		if err != nil {
			stop()
			s.Audit.Close()
			return nil, fmt.Errorf("server: audit sink %s: %w", ns.Name, err)
		}
		s.Forwarders = append(s.Forwarders, f)
		d := make(chan struct{})
		running = append(running, d)
		go func() {
			defer close(d)
			_ = f.Run(fctx)
		}()
	}
	go func() {
		for _, d := range running {
			<-d
		}
		close(s.done)
	}()
	return s, nil
}

// orphanWindow is how far back start-up looks for intents without outcome.
const orphanWindow = 7 * 24 * time.Hour

// closeOrphans records an outcome for every allowed intent that has none:
// calls that may have reached the venue while keywarden stopped. Their
// state at the venue is unknown, and the audit trail says so.
func closeOrphans(ctx context.Context, l *audit.Log, now time.Time) error {
	orphans, err := audit.Orphans(l.Dir(), now.Add(-orphanWindow))
	if err != nil {
		return fmt.Errorf("audit orphans: %w", err)
	}
	for _, r := range orphans {
		_, err := l.Append(ctx, audit.Record{Type: audit.TypeOutcome, RequestID: r.RequestID, Outcome: &audit.Outcome{
			Error: "unknown: keywarden stopped before the venue's answer was recorded; check the order at the venue",
		}})
		if err != nil {
			return fmt.Errorf("audit orphan %s: %w", r.RequestID, err)
		}
	}
	return nil
}

// AuditPublicKey returns the key that verifies the audit log's checkpoints.
func AuditPublicKey(ctx context.Context, v *vault.Vault) (ed25519.PublicKey, error) {
	seed, err := v.Secret(ctx, auditKind, auditSignerID)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// Close waits for in-flight requests, stops the audit forwarders and closes
// the audit log.
func (s *Server) Close() error {
	s.WS.Close()
	s.Gateway.Wait()
	s.stop()
	<-s.done
	return s.Audit.Close()
}

// vaultKey returns the vault secret auditKind/id, creating it with gen the
// first time.
func vaultKey(ctx context.Context, v *vault.Vault, id string, gen func() ([]byte, error)) ([]byte, error) {
	b, err := v.Secret(ctx, auditKind, id)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, vault.ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	b, err = gen()
	if err != nil {
		return nil, err
	}
	if err := v.PutSecret(ctx, auditKind, id, b); err != nil {
		return nil, err
	}
	return b, nil
}
