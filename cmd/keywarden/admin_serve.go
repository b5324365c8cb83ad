package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// AdminConfig is the [admin] section: the admin API's own TLS listener.
type AdminConfig struct {
	// Listen is the admin API's address (default 127.0.0.1:8444).
	Listen string `toml:"listen"`
	// Disabled turns the admin API off.
	Disabled bool `toml:"disabled"`
	// Approvals maps an action (gateway.resume, operators.create,
	// operators.role) to the k-of-n approval it needs.
	Approvals map[string]ApprovalConfig `toml:"approvals"`
}

// ApprovalConfig is one [admin.approvals.<action>] table.
type ApprovalConfig struct {
	Role     string `toml:"role"`
	Required int    `toml:"required"`
	TTL      string `toml:"ttl"` // default 24h
}

func (c AdminConfig) rules() (map[string]operator.Rule, error) {
	out := map[string]operator.Rule{}
	for action, ac := range c.Approvals {
		if !slices.Contains(admin.Actions, action) {
			return nil, fmt.Errorf("admin approvals: unknown action %q (known: %s)", action, strings.Join(admin.Actions, ", "))
		}
		ttl := 24 * time.Hour
		if ac.TTL != "" {
			d, err := time.ParseDuration(ac.TTL)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("admin approvals %s: ttl %q: a positive duration", action, ac.TTL)
			}
			ttl = d
		}
		r := operator.Rule{Role: operator.Role(ac.Role), Required: ac.Required, TTL: ttl}
		if !r.Role.Valid() || r.Required < 1 {
			return nil, fmt.Errorf("admin approvals %s: a known role and required of 1 or more", action)
		}
		out[action] = r
	}
	return out, nil
}

// newOperators returns the operator accounts kept in db, with TOTP seeds
// sealed by v. Sessions go to their own table when db is a SQL database
// (the data directory), so that they survive a restart.
func newOperators(ctx context.Context, db store.Store, v *vault.Vault) (*operator.Manager, error) {
	o := operator.Options{Store: db, Secrets: v}
	if m, ok := db.(operator.Migrator); ok {
		sess, err := operator.NewSQLSessions(ctx, m)
		if err != nil {
			return nil, err
		}
		o.Sessions = sess
	}
	return operator.New(o)
}

// startAdmin serves the admin API on its own TLS listener, with the
// gateway's certificate (configured or from the local CA) and without
// client certificates.
func (a *app) startAdmin(ctx context.Context, db store.Store, v *vault.Vault, srv *server.Server, g GatewayConfig, ui dashboardDeps) (io.Closer, error) {
	c := a.cfg.Admin
	// Policies edited through the admin API outlive restarts: the gateway
	// starts with them, before it serves its first request.
	overlay := policy.NewOverlay(db, a.cfg.Policies, nil)
	pols, err := overlay.Compiled(ctx)
	if err != nil {
		return nil, fmt.Errorf("policies (configured and edited through the admin API): %w", err)
	}
	srv.SetPolicies(pols)
	if c.Disabled {
		return io.NopCloser(nil), nil
	}
	rules, err := c.rules()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ops, err := newOperators(ctx, db, v)
	if err != nil {
		return nil, err
	}
	if c.Listen == "" {
		// Without a configured address the admin API starts once an
		// operator exists: before that nobody could log in to it.
		if any, err := ops.Any(ctx); err != nil {
			return nil, err
		} else if !any {
			a.log.Info("admin API not started: no operator yet (keywarden operator first-admin) and no [admin] listen")
			return io.NopCloser(nil), nil
		}
		c.Listen = "127.0.0.1:8444"
	}
	formats := map[string]client.Format{}
	if rs, err := routes(a.cfg.Venues); err == nil {
		for _, r := range rs {
			formats[r.Def.Name] = r.Def.Format
		}
	}
	auditKey, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("admin API: audit key: %w", err)
	}
	h, err := a.withDashboard(ctx, admin.Options{
		Operators: ops, Keys: v, Clients: srv.Clients, Gateway: srv.Gateway, Audit: srv.Audit, AuditDir: g.AuditDir,
		Policies: overlay, SetPolicies: srv.SetPolicies,
		KeyLifecycle: &adminKeys{a: a, v: v, st: db, audit: srv.Audit}, Seal: &adminSeal{v: v, kdf: a.cfg.Vault.KDF()},
		AuditKey: auditKey, Posture: posture.NewHistory(db, 0),
		Reports:   &adminReports{v: v, st: db, pol: a.cfg.Posture.policy(), history: posture.NewHistory(db, 0)},
		Approvals: rules, Logger: a.log.With("component", "admin"),
		Format: func(venue string) client.Format { return formats[venue] },
	}, v, ui)
	if err != nil {
		return nil, err
	}
	g.ClientCA = "" // the admin API authenticates operators, not certificates
	tc, err := a.tlsConfig(ctx, db, v, g)
	if err != nil {
		return nil, err
	}
	tc.MinVersion = tls.VersionTLS12
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		// Serving without the admin API the operator configured would
		// hide the problem until they need it (to lift a panic, say).
		return nil, fmt.Errorf("admin API: %w (free the address, change [admin] listen, or set [admin] disabled = true)", err)
	}
	hs := &http.Server{
		Handler:           withMetrics(h, srv.Metrics),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go func() { _ = hs.Serve(tls.NewListener(ln, tc)) }()
	a.log.Info("admin API listening", "url", "https://"+ln.Addr().String())
	return hs, nil
}
