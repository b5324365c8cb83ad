package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/rotation"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

func newKeyPlanCmd(a *app) *cobra.Command {
	var ex, purpose string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan --exchange EXCHANGE --purpose trading|readonly|withdraw",
		Short: "Print the least-privilege permissions and IP allowlist to set for a new key",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kp, err := posture.Plan(ex, posture.Purpose(purpose))
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(kp)
			}
			_, err = fmt.Fprint(a.stdout, kp.Text())
			return err
		},
	}
	cmd.Flags().StringVar(&ex, "exchange", "", "exchange (binance, okx, ...)")
	cmd.Flags().StringVar(&purpose, "purpose", "trading", "trading, readonly or withdraw")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// venueFor returns the configured venue that inspects and manages keys of
// exchange ex: the first configured venue of that exchange with an
// Inspector, at its configured upstream or its real host.
func (a *app) venueFor(ex string) (exchange.Venue, error) {
	rs, err := routes(a.cfg.Venues)
	if err != nil {
		return exchange.Venue{}, err
	}
	for _, r := range rs {
		if r.Def.Exchange != ex {
			continue
		}
		u := r.Upstream
		if u == nil {
			if u, err = url.Parse(r.Def.Upstream); err != nil {
				return exchange.Venue{}, err
			}
		}
		if v := r.Def.Build(u); v.Inspector != nil {
			return v, nil
		}
	}
	return exchange.Venue{}, fmt.Errorf("no configured venue can inspect %s keys", ex)
}

func (a *app) httpClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// unsealedVault opens and unseals the vault; close the returned store.
func (a *app) unsealedVault(ctx context.Context) (*vault.Vault, interface{ Close() error }, error) {
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return nil, nil, err
	}
	if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
		db.Close()
		return nil, nil, err
	}
	return v, db, nil
}

// postureFlags are the thresholds of key audit and report compliance.
type postureFlags struct {
	maxAge, unused int
	egress         []string
}

func (f *postureFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.maxAge, "max-age-days", 90, "rotation policy: keys older than this are findings")
	cmd.Flags().IntVar(&f.unused, "unused-days", 30, "keys unused this long are findings")
	cmd.Flags().StringSliceVar(&f.egress, "egress-ip", nil, "the gateway's egress address; each key's venue allowlist must hold it")
}

func (f *postureFlags) policy() posture.Policy {
	pol := posture.DefaultPolicy()
	pol.MaxAge = time.Duration(f.maxAge) * 24 * time.Hour
	pol.UnusedAfter = time.Duration(f.unused) * 24 * time.Hour
	pol.EgressIPs = f.egress
	return pol
}

// auditKeys inspects keys at their venues and returns one entry per key.
func (a *app) auditKeys(ctx context.Context, v *vault.Vault, keys []vault.KeyInfo, pol posture.Policy, now time.Time) []posture.KeyEntry {
	dups := posture.Duplicates(keys)
	var out []posture.KeyEntry
	for _, k := range keys {
		e := posture.KeyEntry{Key: k, Status: "active"}
		if !k.Disabled.IsZero() {
			e.Status = "revoked"
			out = append(out, e)
			continue
		}
		p, err := a.inspectKey(ctx, v, k, now)
		if err != nil {
			e.Findings = append(e.Findings, posture.Finding{Key: k.ID(), Code: posture.CodeInspectError, Severity: posture.Medium, Message: err.Error()})
			e.Findings = append(e.Findings, posture.Lifecycle(k, pol, now)...)
		} else {
			e.Posture = &p
			e.Findings = posture.Evaluate(k, p, pol, now)
		}
		for _, d := range dups {
			if d.Key == k.ID() {
				e.Findings = append(e.Findings, d)
			}
		}
		posture.Sort(e.Findings)
		out = append(out, e)
	}
	return out
}

func (a *app) inspectKey(ctx context.Context, v *vault.Vault, k vault.KeyInfo, now time.Time) (exchange.KeyPosture, error) {
	ven, err := a.venueFor(k.Exchange)
	if err != nil {
		return exchange.KeyPosture{}, err
	}
	cred, err := v.Credential(ctx, k.Exchange, k.Name)
	if err != nil {
		return exchange.KeyPosture{}, err
	}
	return posture.Inspect(ctx, a.httpClient(), ven, cred, now)
}

// selectKeys returns the key named by args, or every key with all.
func selectKeys(ctx context.Context, cmd *cobra.Command, v *vault.Vault, args []string, all bool) ([]vault.KeyInfo, error) {
	if all {
		if len(args) > 0 {
			return nil, errors.New("give EXCHANGE/NAME or --all, not both")
		}
		return v.Keys(ctx)
	}
	ex, name, err := splitKeyID(cmd, args)
	if err != nil {
		return nil, err
	}
	k, err := v.Key(ctx, ex, name)
	if err != nil {
		return nil, err
	}
	return []vault.KeyInfo{k}, nil
}

func newKeyAuditCmd(a *app) *cobra.Command {
	var all, asJSON bool
	var pf postureFlags
	cmd := &cobra.Command{
		Use:   "audit [EXCHANGE/NAME | --all]",
		Short: "Check what each venue really lets a key do, its IP allowlist, age and use",
		Long: `Ask each venue's key self-inspection endpoint, through the vault, what the
key can do, and compare it with the scopes it was declared for. Findings have a
severity: critical (withdraw enabled but not declared), high (no IP allowlist,
permissions broader than declared, the same venue key stored twice), medium
(older than the rotation policy, venue-side expiry soon, not inspectable), low
(unused, rotation due soon). Exits with an error when any finding is high or
critical.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			v, db, err := a.unsealedVault(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := selectKeys(ctx, cmd, v, args, all)
			if err != nil {
				return err
			}
			entries := a.auditKeys(ctx, v, keys, pf.policy(), time.Now())
			var fs []posture.Finding
			for _, e := range entries {
				fs = append(fs, e.Findings...)
			}
			if asJSON {
				if err := json.NewEncoder(a.stdout).Encode(entries); err != nil {
					return err
				}
			} else {
				for _, e := range entries {
					fmt.Fprintf(a.stdout, "%s (%s)\n", e.Key.ID(), e.Status)
					if len(e.Findings) == 0 && e.Status == "active" {
						fmt.Fprintln(a.stdout, "  ok")
					}
					for _, f := range e.Findings {
						fmt.Fprintf(a.stdout, "  %-8s %s: %s\n", f.Severity, f.Code, f.Message)
					}
				}
			}
			if w := posture.Worst(fs); w >= posture.High {
				return fmt.Errorf("key audit: %s findings", w)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "audit every key")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	pf.add(cmd)
	return cmd
}

func newKeyRevokeCmd(a *app) *cobra.Command {
	var reason, manager, subAccount string
	var venueToo bool
	cmd := &cobra.Command{
		Use:   "revoke EXCHANGE/NAME --reason TEXT",
		Short: "Disable a key at once and delete it at the venue where the venue allows",
		Long: `Disable the key in the vault at once: the gateway refuses to sign with it, so
every client bound to it fails on its next request. With --at-venue, also
delete the key at the venue when the venue's API can (the key itself must be
allowed to manage keys, or --manager names the vault key that manages the
sub-account's keys, with --sub-account). Bitget cannot delete a key through
its API: there the key is neutralised (no permissions, an IP allowlist of an
unroutable address) and must still be deleted in Bitget's web interface. The
reason is recorded with the key.

When keywarden serve is running, the command goes through its control socket
and the running gateway stops signing with the key on the next request.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, name, err := splitKeyID(cmd, args)
			if err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return errors.New("key revoke needs --reason")
			}
			ctx := cmd.Context()
			req := keyRevokeRequest{Exchange: ex, Name: name, Reason: reason, AtVenue: venueToo, Manager: manager, SubAccount: subAccount}
			var out keyRevokeResult
			if s := dialControl(a.cfg.DataDir); s != nil {
				// A running gateway must stop signing at once: it revokes
				// the key in its own process.
				err = s.call(ctx, "POST", "/v1/keys/revoke", req, &out)
			} else {
				var v *vault.Vault
				var db interface{ Close() error }
				v, db, err = a.unsealedVault(ctx)
				if err != nil {
					return err
				}
				defer db.Close()
				out, err = a.revokeKey(ctx, v, req)
			}
			for _, l := range out.Lines {
				fmt.Fprintln(a.stdout, l)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the key is revoked (recorded; no secrets)")
	cmd.Flags().BoolVar(&venueToo, "at-venue", false, "also delete the key at the venue through its API")
	cmd.Flags().StringVar(&manager, "manager", "", "with --at-venue: the vault key EXCHANGE/NAME that manages the sub-account's keys")
	cmd.Flags().StringVar(&subAccount, "sub-account", "", "with --at-venue: the key's sub-account, where the venue manages sub-account keys")
	return cmd
}

// keyRevokeRequest asks to revoke an exchange key, locally or in a running
// gateway through the control socket.
type keyRevokeRequest struct {
	Exchange string `json:"exchange"`
	Name     string `json:"name"`
	Reason   string `json:"reason"`
	AtVenue  bool   `json:"at_venue"`
	// Manager names the vault key that manages the key at the venue
	// (sub-account keys); empty means the key itself.
	Manager    string `json:"manager,omitempty"`
	SubAccount string `json:"sub_account,omitempty"`
}

// keyRevokeResult is what the operator is told.
type keyRevokeResult struct {
	Lines []string `json:"lines"`
}

// revokeKey disables the key in v (the gateway refuses to sign with it from
// the next request) and, when asked, deletes it at the venue.
func (a *app) revokeKey(ctx context.Context, v *vault.Vault, r keyRevokeRequest) (keyRevokeResult, error) {
	var out keyRevokeResult
	var cred *exchange.Credential
	if r.AtVenue {
		// read it before it is disabled: deleting it at the venue needs it
		c, err := v.Credential(ctx, r.Exchange, r.Name)
		if err != nil {
			return out, err
		}
		// a copy of the secrets too: disabling the key zeroes the vault's
		// cached credential, which c shares
		cp := *c
		cp.Secret, cp.Passphrase = bytes.Clone(c.Secret), bytes.Clone(c.Passphrase)
		defer cp.Secret.Zero()
		defer cp.Passphrase.Zero()
		cred = &cp
	}
	signer := cred
	if r.AtVenue && r.Manager != "" {
		mex, mname, ok := strings.Cut(r.Manager, "/")
		if !ok || mex != r.Exchange {
			return out, fmt.Errorf("manager key %q is not a %s key EXCHANGE/NAME", r.Manager, r.Exchange)
		}
		m, err := v.Credential(ctx, mex, mname)
		if err != nil {
			return out, fmt.Errorf("manager key: %w", err)
		}
		signer = m
	}
	info, err := v.DisableKey(ctx, r.Exchange, r.Name, r.Reason)
	if err != nil {
		return out, err
	}
	a.log.Warn("exchange key revoked", "key", info.ID(), "reason", r.Reason)
	out.Lines = append(out.Lines, fmt.Sprintf("Revoked %s: keywarden no longer signs with it.", info.ID()))
	if !r.AtVenue {
		out.Lines = append(out.Lines, "Delete the key at the exchange too: it still works there.")
		return out, nil
	}
	ven, err := a.venueFor(r.Exchange)
	if err != nil {
		return out, err
	}
	hv := &rotation.HTTPVenue{Venue: ven, Client: a.httpClient()}
	spec := exchange.KeySpec{Passphrase: cred.Passphrase, SubAccount: r.SubAccount}
	if err := hv.DeleteKey(ctx, signer, rotation.KeyID(r.Exchange, cred), spec); err != nil {
		return out, fmt.Errorf("the key is disabled in keywarden but could not be deleted at %s (delete it there by hand): %w", r.Exchange, err)
	}
	if note := hv.DeleteNote(); note != "" {
		a.log.Warn("exchange key neutralised at the venue", "key", info.ID())
		out.Lines = append(out.Lines, fmt.Sprintf("%s: %s.", info.ID(), note))
		return out, nil
	}
	a.log.Warn("exchange key deleted at the venue", "key", info.ID())
	out.Lines = append(out.Lines, fmt.Sprintf("Deleted %s at the venue.", info.ID()))
	return out, nil
}

func newKeyRotateCmd(a *app) *cobra.Command {
	var perms, ips []string
	var subAccount, manager string
	var grace time.Duration
	var guided, confirm bool
	var f keyAddFlags
	cmd := &cobra.Command{
		Use:   "rotate EXCHANGE/NAME",
		Short: "Rotate an exchange key: automated where the venue's API allows, guided elsewhere",
		Long: `Rotate an exchange key. Client credentials bound to it are untouched.

Every step is recorded in the audit log (key.rotate.<step> events).

Automated (--permission names the venue's permissions of the new key): create
the new key at the venue, verify it with a read call and the posture check,
switch the vault to it, keep the old key for --grace, then delete it at the
venue. Every step is persisted: run the same command again to resume after a
crash or once the grace period is over.

Guided (--guided): create the new key at the venue yourself (see keywarden
key plan), give it like key add does (prompt, --stdin or --from-file); it is
verified and switched to. Delete the old key at the venue, then run
keywarden key rotate --confirm EXCHANGE/NAME.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, name, err := splitKeyID(cmd, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v, db, err := a.unsealedVault(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			st, ok := db.(store.Store)
			if !ok {
				return errors.New("key rotate: the data store is not a store")
			}
			// Every step goes to the hash-chained audit log; a step that
			// cannot be recorded stops the rotation (it resumes later).
			g := a.cfg.Gateway.withDefaults(a.cfg.DataDir)
			alog, err := server.OpenAudit(ctx, v, g.AuditDir, g.AuditHashFields, a.log)
			if err != nil {
				return err
			}
			defer alog.Close()
			r, err := rotation.New(rotation.Options{Store: st, Vault: v, Audit: chainAuditor{log: alog, actor: "cli"}, Log: a.log, Grace: grace, Permissions: perms, IPs: ips, SubAccount: subAccount, Manager: manager})
			if err != nil {
				return err
			}
			ven, err := a.rotationVenue(ex)
			if err != nil {
				return err
			}
			hv := rotation.VenueFor(&rotation.HTTPVenue{Venue: ven, Client: a.httpClient()}, st, v, ex, name)
			var state *rotation.State
			switch {
			case confirm:
				state, err = r.Confirm(ctx, ex, name)
			case guided:
				f.exchange = ex
				m, merr := f.readMaterial(a.prompt)
				if merr != nil {
					return merr
				}
				defer m.zero()
				state, err = r.StartGuided(ctx, hv, ex, name, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: m.apiKey,
					Secret: exchange.Secret(m.secret), Passphrase: exchange.Secret(m.passphrase)})
			default:
				if cur, lerr := r.Load(ctx, ex, name); lerr == nil && cur.Step != rotation.StepDone {
					state, err = r.Resume(ctx, hv, ex, name)
				} else {
					if len(perms) == 0 {
						return errors.New("key rotate: give the new key's --permission names, or use --guided")
					}
					state, err = r.Start(ctx, hv, ex, name)
				}
			}
			if state != nil {
				fmt.Fprintf(a.stdout, "Rotation of %s: %s\n", state.ID(), state.Step)
				if state.Step == rotation.StepSwitched {
					if state.Guided {
						fmt.Fprintln(a.stdout, "Delete the old key at the venue, then run keywarden key rotate --confirm.")
					} else {
						fmt.Fprintf(a.stdout, "The old key is deleted after %s: run keywarden key rotate again then.\n", state.GraceUntil.Format(time.RFC3339))
					}
				}
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&perms, "permission", nil, "the venue's permission names for the new key (automated)")
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "the new key's IP allowlist (automated)")
	cmd.Flags().StringVar(&subAccount, "sub-account", "", "the sub-account of the key, where the venue creates keys for sub-accounts (automated)")
	cmd.Flags().StringVar(&manager, "manager", "", "the vault key EXCHANGE/NAME that manages sub-account keys, when not the key itself (automated)")
	cmd.Flags().DurationVar(&grace, "grace", 0, "keep the old key working this long after the switch")
	cmd.Flags().BoolVar(&guided, "guided", false, "switch to a key you created at the venue by hand")
	cmd.Flags().BoolVar(&confirm, "confirm", false, "confirm the old key of a guided rotation is deleted at the venue")
	cmd.Flags().StringVar(&f.fromFile, "from-file", "", "guided: read the new key material from this file")
	cmd.Flags().BoolVar(&f.stdin, "stdin", false, "guided: read the new key material from stdin")
	return cmd
}

// PostureConfig is the [posture] section: posture checks scheduled in
// keywarden serve.
type PostureConfig struct {
	// Interval is the time between checks (default "6h"); "off" disables
	// them. Without it, only keys at real exchanges are checked; once it
	// is set, keys at simulators too.
	Interval string `toml:"interval"`
	// MaxAgeDays and UnusedDays are the rotation policy (default 90) and
	// the unused threshold (default 30).
	MaxAgeDays int `toml:"max_age_days"`
	UnusedDays int `toml:"unused_days"`
	// EgressIPs are the gateway's egress addresses each key's venue
	// allowlist must hold.
	EgressIPs []string `toml:"egress_ips"`
}

// schedule returns the interval and whether simulated venues are checked;
// a zero interval means no schedule.
func (c PostureConfig) schedule() (time.Duration, bool, error) {
	switch c.Interval {
	case "":
		return 6 * time.Hour, false, nil
	case "off":
		return 0, false, nil
	}
	d, err := time.ParseDuration(c.Interval)
	if err != nil || d < time.Minute {
		return 0, false, fmt.Errorf("posture interval %q: a duration of a minute or more, or \"off\"", c.Interval)
	}
	return d, true, nil
}

func (c PostureConfig) policy() posture.Policy {
	pol := posture.DefaultPolicy()
	if c.MaxAgeDays > 0 {
		pol.MaxAge = time.Duration(c.MaxAgeDays) * 24 * time.Hour
	}
	if c.UnusedDays > 0 {
		pol.UnusedAfter = time.Duration(c.UnusedDays) * 24 * time.Hour
	}
	pol.EgressIPs = c.EgressIPs
	return pol
}

// simulated reports whether the configured venue of exchange ex is a
// simulator: an http upstream, which the config allows on loopback only.
func (a *app) simulated(ex string) bool {
	rs, err := routes(a.cfg.Venues)
	if err != nil {
		return true
	}
	for _, r := range rs {
		if r.Def.Exchange == ex && r.Upstream != nil && r.Upstream.Scheme == "http" {
			return true
		}
	}
	return false
}

// postureRun checks the enabled keys that a configured venue can inspect
// (keys at simulators only with sims) and returns the run.
func (a *app) postureRun(ctx context.Context, v *vault.Vault, pol posture.Policy, sims bool, now time.Time) (posture.Run, error) {
	all, err := v.Keys(ctx)
	if err != nil {
		return posture.Run{}, err
	}
	var keys []vault.KeyInfo
	for _, k := range all {
		if !k.Disabled.IsZero() || (!sims && a.simulated(k.Exchange)) {
			continue
		}
		if _, err := a.venueFor(k.Exchange); err != nil {
			continue
		}
		keys = append(keys, k)
	}
	run := posture.Run{Time: now.UTC(), Keys: []string{}, Findings: []posture.Finding{}}
	for _, e := range a.auditKeys(ctx, v, keys, pol, now) {
		run.Keys = append(run.Keys, e.Key.ID())
		run.Findings = append(run.Findings, e.Findings...)
	}
	return run, nil
}

// startPosture runs the scheduled posture checks of [posture] until ctx
// ends or the returned stop is called (which waits for a run under way).
func (a *app) startPosture(ctx context.Context, db store.Store, v *vault.Vault, raise func(monitor.Alert) bool) (stop func(), err error) {
	interval, sims, err := a.cfg.Posture.schedule()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if interval == 0 {
		return func() {}, nil
	}
	pol := a.cfg.Posture.policy()
	s, err := posture.NewScheduler(posture.ScheduleOptions{
		Interval: interval, History: posture.NewHistory(db, 0), Alert: raise, Logger: a.log.With("component", "posture"),
		Check: func(ctx context.Context) (posture.Run, error) { return a.postureRun(ctx, v, pol, sims, time.Now()) },
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	a.log.Info("posture checks scheduled", "interval", interval.String(), "simulators", sims)
	return func() { cancel(); <-done }, nil
}
