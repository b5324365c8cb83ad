package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/dashboard"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/tlsca"
	"github.com/keywarden/keywarden/internal/vault"
)

func newServeCmd(a *app) *cobra.Command {
	var plaintext, insecure bool
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the signing gateway",
		Long: `serve unseals the vault (passphrase file, terminal prompt, or Shamir shares
typed one per line), then runs the gateway: bots call /{venue}/... with their
keywarden client credential and keywarden signs for them.

Operators manage client credentials of a running gateway with the keywarden
client commands, which talk to it over a socket in the data directory.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("listen") {
				a.cfg.Gateway.Listen = listen
			}
			if plaintext {
				a.cfg.Gateway.Plaintext = true
			}
			if insecure {
				a.cfg.Gateway.Plaintext, a.cfg.Gateway.InsecurePlaintext = true, true
			}
			if err := validateGateway(&a.cfg); err != nil {
				return fmt.Errorf("config: %w", err)
			}
			return a.serve(cmd.Context(), nil)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "gateway address (default 127.0.0.1:8443)")
	cmd.Flags().BoolVar(&plaintext, "plaintext", false, "serve plain HTTP (loopback addresses only)")
	cmd.Flags().BoolVar(&insecure, "insecure-plaintext", false, "serve plain HTTP on any address (only behind a TLS-terminating proxy)")
	return cmd
}

// serve runs the gateway until ctx ends. ready, if not nil, receives the
// gateway's base URL once it is listening.
func (a *app) serve(ctx context.Context, ready func(base string)) error {
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
		return err
	}
	defer v.Seal()
	// Whatever way serve returns, its background work is told to stop and
	// has ended first (below, before the audit log closes; here for the
	// returns on the way up).
	ctx, stop := context.WithCancel(ctx)
	defer a.waitBackground()
	defer stop()
	applyMemoryLimit(ctx, a.log) // memlimit.go
	g := a.cfg.Gateway.withDefaults(a.cfg.DataDir)
	pols, err := policy.CompileAll(a.cfg.Policies)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	rs, err := routes(a.cfg.Venues)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	sinks, err := auditSinks(g)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	trusted, _ := parsePrefixes(g.TrustedProxies)
	timeout, _ := time.ParseDuration(g.UpstreamTimeout)
	limits, _ := g.limits() // checked by validateGateway
	met := newServeMetrics(v)
	inc, err := a.newServeIncidents(db)
	if err != nil {
		return err
	}
	// The dashboard's live traffic and alerts see what the monitor sees.
	act := dashboard.NewActivity(nil)
	onAlert := inc.onAlert(met)
	record := func(al monitor.Alert) { onAlert(al); act.Alert(al) }
	mon, err := a.startMonitor(ctx, record)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Options{
		Store: db, Vault: v, Policies: pols, Routes: rs, AuditDir: g.AuditDir, AuditHashFields: g.AuditHashFields,
		TrustedProxies: trusted, UpstreamTimeout: timeout, Logger: a.log,
		MaxBody: limits.maxBody, MaxURI: limits.maxURI, IdempotencyWindow: limits.idempotency, AuditSinks: append(sinks, inc.sink()),
		Observe: met.observeWith(act.Observer(mon.Observe)), AuditCommit: met.ObserveAuditCommit,
		AuditHealth: func(err error) { a.bg.Go(func() { mon.Raise(auditHealthAlert(err, time.Now())) }) },
		VaultTamper: vaultTamperAlerts(func(al monitor.Alert) { a.bg.Go(func() { mon.Raise(al) }) }, time.Now),
	})
	if err != nil {
		return err
	}
	// Checked before anything listens; closed after srv (deferred first),
	// so that the log's final checkpoint reaches the witness.
	wit, err := a.startAuditWitness(ctx, v, srv.Audit, g, a.raiseNow(record))
	if err != nil {
		srv.Close()
		return err
	}
	defer wit.Close()
	defer srv.Close()
	defer func() { stop(); a.waitBackground() }()
	met.bind(srv)
	if err := a.keepPanicState(ctx, db, srv.Gateway); err != nil {
		return err
	}
	ictl, err := inc.start(ctx, srv, g.AuditDir)
	if err != nil {
		return err
	}
	defer ictl.Close()
	peers, leave, err := a.joinCluster(ctx, db, srv, a.raiseNow(record))
	if err != nil {
		return err
	}
	defer leave.Close()
	inc.setPeers(peers)

	ln, err := net.Listen("tcp", g.Listen)
	if err != nil {
		return fmt.Errorf("gateway listen: %w", err)
	}
	scheme := "https"
	if g.Plaintext {
		scheme = "http"
	} else {
		tc, err := a.tlsConfig(ctx, db, v, g)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	hs := &http.Server{
		// POST /v1/unwrap hands out wrapped credentials; every other
		// path is the gateway's.
		Handler:           client.WithUnwrap(srv.Gateway, unwrapHandler(srv, func(al monitor.Alert) { mon.Raise(al) })),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    limits.serverMaxHeaderBytes(), // net/http allows 4 KiB more
		// Handshake failures and malformed requests are the callers'
		// problem, not the operator's: debug level.
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	ctl, err := a.startControl(ctx, srv, peers)
	if err != nil {
		ln.Close()
		return err
	}
	defer ctl.Close()
	adm, err := a.startAdmin(ctx, db, v, srv, g, dashboardDeps{act: act, incidents: inc.mgr})
	if err != nil {
		ln.Close()
		return err
	}
	defer adm.Close()
	stopPosture, err := a.leaderOnly(ctx, db, func(ctx context.Context) (func(), error) {
		return a.startPosture(ctx, db, v, mon.Raise)
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer stopPosture()

	errc := make(chan error, 1)
	// Request heads are checked on the wire before net/http reads them
	// leniently: no bare LF or CR, no obs-fold, plain Content-Length.
	go func() { errc <- hs.Serve(gateway.StrictListener(ln)) }()
	base := scheme + "://" + ln.Addr().String()
	a.log.Info("gateway listening", "url", base, "venues", len(rs), "policies", len(pols), "audit_dir", g.AuditDir,
		"not_dumpable", hardened)
	if ready != nil {
		ready(base)
	}
	var stopErr error
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case stopErr = <-wit.Err(): // fork: stop serving on a contested log
	case stopErr = <-leave.Err(): // the same, found by the cluster audit witness
	case <-ctx.Done():
	}
	a.log.Info("gateway shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return stopErr
}

// waitBackground waits for the work serve started in the background
// (a.bg); each piece is bounded by its own timeout. A wait that takes
// long is logged, so a slow shutdown says why.
func (a *app) waitBackground() {
	done := make(chan struct{})
	go func() { a.bg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(2 * time.Second):
	}
	a.log.Info("gateway shutting down: waiting for background work (alert delivery, evidence snapshot, venue actions)")
	<-done
}

// tlsConfig loads the configured certificate, or issues one from the local
// CA sealed in the vault.
func (a *app) tlsConfig(ctx context.Context, db store.Store, v tlsca.Secrets, g GatewayConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if g.ClientCA != "" {
		pem, err := os.ReadFile(g.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("gateway client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gateway client_ca %s: no PEM certificate found", g.ClientCA)
		}
		// Certificates are verified when given; credentials bound to one
		// refuse requests without it.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	if g.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(g.TLSCert, g.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("gateway tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
		return tc, nil
	}
	ca, err := tlsca.LoadOrCreate(ctx, db, v, time.Now())
	if err != nil {
		return nil, err
	}
	cert, err := ca.ServerCertificate(g.Hosts, time.Now())
	if err != nil {
		return nil, fmt.Errorf("gateway tls: %w", err)
	}
	tc.Certificates = []tls.Certificate{cert}
	return tc, nil
}

// dashboardDeps are what the dashboard shows besides the admin API.
type dashboardDeps struct {
	act       *dashboard.Activity
	incidents dashboard.Incidents
}

// withDashboard returns the admin listener's handler: the admin API under
// /v1/ and the dashboard under /ui/, on the API's authorization.
func (a *app) withDashboard(ctx context.Context, o admin.Options, v *vault.Vault, d dashboardDeps) (http.Handler, error) {
	api, hooks := admin.NewWithDashboard(o)
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("dashboard: audit key: %w", err)
	}
	ui, err := dashboard.New(dashboard.Options{
		Admin: hooks, Vault: v, Activity: d.act, Incidents: d.incidents, AuditDir: o.AuditDir, AuditKey: pub,
		Logger: a.log.With("component", "dashboard"),
		Inspect: func(ctx context.Context, k vault.KeyInfo) (exchange.KeyPosture, error) {
			return a.inspectKey(ctx, v, k, time.Now())
		},
	})
	if err != nil {
		return nil, err
	}
	return dashboard.Mount(api, ui), nil
}
