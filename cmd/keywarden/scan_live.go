package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/scan"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
)

// RuleLeakedLiveKey is the alert rule of a live key found by a scan.
const RuleLeakedLiveKey = "leaked_live_key"

// liveMatcher recognises the vault's keys and the client credentials by
// their keyed fingerprints: it holds fingerprints, never material.
type liveMatcher struct {
	fingerprint func([]byte) string
	prints      map[string]*scan.Live
}

var _ scan.Matcher = (*liveMatcher)(nil)

// Match fingerprints b with the vault's fingerprint key. Both kinds of
// material share one space: PublicKeyDER is what the vault's
// PublicKeyFingerprint fingerprints.
func (m *liveMatcher) Match(_ scan.MaterialKind, b []byte) (*scan.Live, bool) {
	fp := m.fingerprint(b)
	if fp == "" {
		return nil, false
	}
	l, ok := m.prints[fp]
	return l, ok
}

// liveSession is the unsealed vault and the client registry a scan
// matches with and revokes through; all nil when matching is off.
type liveSession struct {
	matcher *liveMatcher
	vault   *vault.Vault
	db      interface{ Close() error }
	reg     *client.Registry
	alog    *audit.Log
}

func (l *liveSession) close() {
	if l.alog != nil {
		l.alog.Close()
	}
	if l.reg != nil {
		l.reg.Forget()
	}
	if l.vault != nil {
		l.vault.Seal()
	}
	if l.db != nil {
		l.db.Close()
	}
}

// openLive unseals the vault for live matching. mode auto tries when the
// data directory holds a vault and the passphrase can be had without
// surprise (a passphrase file, or a terminal to ask on), and says why it
// skipped; on fails instead; off does nothing.
func (a *app) openLive(ctx context.Context, mode string) (*liveSession, error) {
	l := &liveSession{}
	switch mode {
	case "off":
		return l, nil
	case "auto", "on":
	default:
		return nil, fmt.Errorf("--live %q: want auto, on or off", mode)
	}
	required := mode == "on"
	skip := func(err error) (*liveSession, error) {
		l.close()
		if required {
			return nil, fmt.Errorf("live-key matching: %w", err)
		}
		fmt.Fprintf(a.stderr, "live-key matching skipped: %v\n", err)
		return &liveSession{}, nil
	}
	if a.cfg.Store.driver() != driverPostgres {
		if _, err := os.Stat(filepath.Join(a.cfg.DataDir, sqlite.DBFile)); err != nil {
			// No local vault (a CI runner, another machine): nothing
			// to match against, and nothing is created.
			if required {
				return nil, fmt.Errorf("live-key matching: no vault in %s (set --data-dir or KEYWARDEN_DATA_DIR)", a.cfg.DataDir)
			}
			return l, nil
		}
	}
	if dialControl(a.cfg.DataDir) != nil {
		return skip(errors.New("keywarden serve holds the data directory; stop it or scan with --live off"))
	}
	if a.cfg.Vault.PassphraseFile == "" && !a.prompt.interactive() && !required {
		return skip(errors.New("no passphrase file configured and no terminal to ask on"))
	}
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return skip(err)
	}
	l.vault, l.db = v, db
	if st, err := v.Status(ctx); err == nil && st.Sealed && st.SealType == vault.SealShamir && !a.prompt.interactive() {
		return skip(fmt.Errorf("the vault is sealed by %s and there is no terminal to ask on", st.SealType))
	}
	if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
		return skip(err)
	}
	l.reg = client.New(client.Options{Store: db, Secrets: v, Logger: a.log})
	m, err := buildMatcher(ctx, v, l.reg)
	if err != nil {
		return skip(err)
	}
	l.matcher = m
	fmt.Fprintf(a.stderr, "live-key matching: %d fingerprints of the vault's keys and client credentials\n", len(m.prints))
	return l, nil
}

// buildMatcher fingerprints every exchange key's id, secret and
// passphrase, and every client credential's id and secret (or public
// key).
func buildMatcher(ctx context.Context, v *vault.Vault, reg *client.Registry) (*liveMatcher, error) {
	m := &liveMatcher{fingerprint: v.Fingerprint, prints: map[string]*scan.Live{}}
	keys, err := v.KeyPrints(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		add := func(fp, part string) {
			if fp != "" {
				m.prints[fp] = &scan.Live{Kind: "exchange-key", Owner: k.Key.ID(), Part: part, Exchange: k.Key.Exchange, Name: k.Key.Name}
			}
		}
		add(k.APIKey, "api key id")
		secretPart := "secret"
		if k.Key.Kind != exchange.KeyHMAC {
			secretPart = "private key"
		}
		for _, fp := range k.Secret {
			add(fp, secretPart)
		}
		add(k.Passphrase, "passphrase")
	}
	if err := reg.Load(ctx); err != nil {
		return nil, err
	}
	clients, err := reg.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range clients {
		add := func(fp, part string) {
			if fp != "" {
				m.prints[fp] = &scan.Live{Kind: "client", Owner: c.Venue + "/" + c.ID, Part: part, Venue: c.Venue, ClientID: c.ID}
			}
		}
		add(v.Fingerprint([]byte(c.ID)), "client id")
		e, err := reg.Lookup(c.Venue, c.ID)
		if err != nil {
			continue // revoked or expired: its secret is gone
		}
		if e.Cred.Secret != nil {
			add(v.Fingerprint(e.Cred.Secret), "client secret")
		}
		if e.Cred.Passphrase != nil {
			add(v.Fingerprint(e.Cred.Passphrase), "client passphrase")
		}
		if e.Cred.PublicKey != nil {
			fp, err := v.PublicKeyFingerprint(e.Cred.PublicKey)
			if err == nil {
				add(fp, "client private key")
			}
		}
	}
	return m, nil
}

// respond alerts on live keys found and offers to revoke them.
func (l *liveSession) respond(ctx context.Context, a *app, r *scan.Report, revoke, canAsk bool) {
	owners := liveOwners(r)
	a.alertLive(ctx, r, owners)
	for _, o := range owners {
		what := "key " + o.Owner
		if o.Kind == "client" {
			what = "client credential " + o.Owner
		}
		loc := firstLocation(r, o)
		fmt.Fprintf(a.stderr, "LIVE: %s (%s) is in %s:%d. Revoke it and replace it.\n", what, o.Part, loc.Source, loc.Line)
		do := revoke
		if !do && canAsk {
			ans, err := a.prompt.text(fmt.Sprintf("Revoke %s now? [y/N] ", what))
			do = err == nil && yes(ans)
		}
		if !do {
			if o.Kind == "client" {
				fmt.Fprintf(a.stderr, "  to revoke: keywarden client revoke %s\n", o.ClientID)
			} else {
				fmt.Fprintf(a.stderr, "  to revoke: keywarden key revoke %s --reason leaked\n", o.Owner)
			}
			continue
		}
		if err := l.revoke(ctx, a, o, loc); err != nil {
			fmt.Fprintf(a.stderr, "  revoking %s failed: %v\n", what, err)
		}
	}
}

// revoke goes the way keywarden key revoke and client revoke go; the
// vault this process unsealed is the operator's proof, as there. Each
// revocation is also recorded in the hash-chained audit log (the key or
// client id, the reason and the place of the leak; never the material).
func (l *liveSession) revoke(ctx context.Context, a *app, o *scan.Live, loc scan.Finding) error {
	reason := "leaked: found by keywarden scan in " + loc.Source + ":" + strconv.Itoa(loc.Line)
	if o.Kind == "client" {
		if err := l.reg.Revoke(ctx, o.Venue, o.ClientID); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "  Revoked client credential %s.\n", o.Owner)
		return l.audit(ctx, a, "client.revoke", map[string]string{"client": o.ClientID, "venue": o.Venue, "reason": reason})
	}
	info, err := l.vault.Key(ctx, o.Exchange, o.Name)
	if err != nil {
		return err
	}
	if !info.Disabled.IsZero() {
		fmt.Fprintf(a.stderr, "  %s was already revoked; delete it at the exchange if it still exists there.\n", o.Owner)
		return nil
	}
	out, err := a.revokeKey(ctx, l.vault, keyRevokeRequest{Exchange: o.Exchange, Name: o.Name, Reason: reason})
	for _, line := range out.Lines {
		fmt.Fprintln(a.stderr, "  "+line)
	}
	detail := map[string]string{"key": o.Owner, "reason": reason, "at_venue": "false"}
	if err != nil {
		detail["error"] = err.Error()
	}
	if aerr := l.audit(ctx, a, "key.revoke", detail); aerr != nil && err == nil {
		return aerr
	}
	return err
}

// audit appends one event by the scan to the audit log, opened on first
// use.
func (l *liveSession) audit(ctx context.Context, a *app, kind string, detail map[string]string) error {
	if l.alog == nil {
		g := a.cfg.Gateway.withDefaults(a.cfg.DataDir)
		alog, err := server.OpenAudit(ctx, l.vault, g.AuditDir, g.AuditHashFields, a.log)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		l.alog = alog
	}
	ev := audit.Event{Kind: kind, Actor: "keywarden-scan", Detail: detail}
	if _, err := l.alog.Append(ctx, audit.Record{Event: &ev}); err != nil {
		return fmt.Errorf("audit %s: %w", kind, err)
	}
	return nil
}

// alertLive sends one alert per live key found through the [alerts]
// notifiers, if any. Evidence names the key and where it was found, never
// the material.
func (a *app) alertLive(ctx context.Context, r *scan.Report, owners []*scan.Live) {
	ns, err := a.cfg.Alerts.notifiers(a.cfg.path)
	if err != nil {
		fmt.Fprintf(a.stderr, "alerts not sent: %v\n", err)
		return
	}
	if len(ns) == 0 {
		return
	}
	host, _ := os.Hostname()
	for _, o := range owners {
		loc := firstLocation(r, o)
		al := monitor.Alert{Rule: RuleLeakedLiveKey, Severity: monitor.SeverityCritical, Subject: o.Owner,
			Summary: fmt.Sprintf("a live %s (%s) was found by keywarden scan in %s", o.Owner, o.Part, loc.Source),
			Evidence: map[string]string{"kind": o.Kind, "part": o.Part, "source": loc.Source, "line": strconv.Itoa(loc.Line),
				"rule": loc.Rule, "commit": loc.Commit, "host": host},
			Time: time.Now().UTC()}
		for _, n := range ns {
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := n.Notify(nctx, al)
			cancel()
			if err != nil {
				fmt.Fprintf(a.stderr, "alert through %s failed: %v\n", notifierName(n), err)
			}
		}
	}
}
