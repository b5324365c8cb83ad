package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/server"
)

// Automatic responses to monitor alerts. [alerts.responses] names a
// response per rule; [alerts] on_critical is the response to a critical
// alert whose rule has no entry. The actions besides those in incident.go:
const (
	respondReadOnly   = "read-only"
	respondSuspendKey = "suspend-key"
	respondPanicVenue = "panic-venue"
	respondPanicAll   = "panic-all"
)

// responseActions are the actions [alerts.responses] and on_critical accept.
var responseActions = []string{respondNone, respondReadOnly, respondSuspendClient, respondSuspendKey,
	respondPanicKey, respondPanicVenue, respondPanicAll}

// responseRules are the rule ids [alerts.responses] accepts: the
// monitor's rules and the scheduled posture checks' alerts.
var responseRules = []string{
	monitor.RuleAuthFailures, monitor.RuleDenialBurst, monitor.RuleErrorRate, monitor.RuleNewSourceIP,
	monitor.RuleNewSymbol, monitor.RuleNotionalSurge, monitor.RuleOffHours, monitor.RulePriceDeviation,
	monitor.RuleRateSurge, monitor.RuleVenueAuth, monitor.RuleWithdraw, posture.RuleChange,
}

// Actors recorded in the audit log for responses and client downgrades.
const (
	actorAutomatic = "automatic-response"
	actorControl   = "control-socket"
)

// responsePlan is what one alert's response will do: the action and its
// subject, worked out from the alert's evidence when the alert is raised.
type responsePlan struct {
	AlertID string
	Action  string
	Rule    string
	Subject string // the alert's
	// One of these, by action: a client (venue, id), an exchange key
	// (exchange/name), a venue, or everything (panic-all).
	Venue, Client, Key string
	// Skip, when set, says why nothing will be done (the subject is
	// unknown, or the same response was taken within the burst window).
	Skip string
	at   time.Time // when planned
}

// target names what the plan acts on, as it appears in notifications and
// in the de-duplication of responses.
func (p responsePlan) target() string {
	switch p.Action {
	case respondReadOnly, respondSuspendClient:
		return "client " + p.Venue + "/" + p.Client
	case respondSuspendKey, respondPanicKey:
		return "key " + p.Key
	case respondPanicVenue:
		return "venue " + p.Venue
	case respondPanicAll:
		return "all credentials"
	}
	return ""
}

// responder runs the automatic responses of a serve. Plan runs on the
// monitor's OnAlert hook (it only reads memory); the responses themselves
// run later: critical alerts through the incident manager's Respond hook
// (after the alert is on an incident's timeline), other alerts on the
// responder's own worker. A responder is safe for concurrent use.
type responder struct {
	a          *app
	rules      map[string]string // rule -> action
	onCritical string
	// window is how long a response to one subject is not repeated: one
	// response per subject per alert burst (the alerts cooldown).
	window time.Duration
	now    func() time.Time
	srv    func() *server.Server
	mgr    *incident.Manager
	pv     atomic.Value // peersBox, set once the replicas are joined

	mu      sync.Mutex
	taken   map[string]time.Time    // action + target -> when planned
	pending map[string]responsePlan // alert id -> plan, until run
	queue   chan monitor.Alert      // non-critical alerts with a response
}

// maxPending bounds the plans waiting to run; beyond it alerts get no
// response (and say so).
const maxPending = 256

// newResponder returns the responder for the [alerts] section, or nil when
// no response is configured.
func (a *app) newResponder(srv func() *server.Server) (*responder, error) {
	on, err := a.cfg.Alerts.onCritical()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	rules, err := a.cfg.Alerts.responses(a.cfg.path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	active := on != respondNone
	for _, act := range rules {
		active = active || act != respondNone
	}
	if !active {
		return nil, nil
	}
	window, _, err := a.cfg.Alerts.monitorOptions()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if window <= 0 {
		window = 10 * time.Minute
	}
	return &responder{a: a, rules: rules, onCritical: on, window: window, now: time.Now, srv: srv,
		taken: map[string]time.Time{}, pending: map[string]responsePlan{}, queue: make(chan monitor.Alert, maxPending)}, nil
}

// action returns the configured response to al: its rule's entry, else
// on_critical for a critical alert.
func (r *responder) action(al monitor.Alert) string {
	if act, ok := r.rules[al.Rule]; ok {
		return act
	}
	if al.Severity == monitor.SeverityCritical {
		return r.onCritical
	}
	return respondNone
}

// plan decides the response to al and writes it into the alert's evidence
// ("alert_id", "response"), so that the notifications say which response
// is taken. It reports whether al has a response to run. It must be quick:
// it runs on the monitor's OnAlert hook, before the notifiers see al.
func (r *responder) plan(al monitor.Alert) bool {
	act := r.action(al)
	if act == respondNone || al.Evidence == nil {
		return false
	}
	now := r.now()
	p := responsePlan{AlertID: newAlertID(al.Time), Action: act, Rule: al.Rule, Subject: al.Subject, at: now}
	ev := al.Evidence
	r.resolve(&p, ev)
	r.mu.Lock()
	// A plan whose alert never reached its runner (a queue was full) is
	// dropped after the window.
	for id, old := range r.pending {
		if now.Sub(old.at) >= r.window {
			delete(r.pending, id)
		}
	}
	if p.Skip == "" {
		k := act + " " + p.target()
		if t, ok := r.taken[k]; ok && now.Sub(t) < r.window {
			p.Skip = "already taken at " + t.UTC().Format(time.RFC3339) + " for this burst"
		} else if len(r.pending) >= maxPending {
			p.Skip = "too many responses waiting"
		} else {
			for tk, tt := range r.taken {
				if now.Sub(tt) >= r.window {
					delete(r.taken, tk)
				}
			}
			r.taken[k] = now
			r.pending[p.AlertID] = p
		}
	}
	r.mu.Unlock()
	ev["alert_id"] = p.AlertID
	if p.Skip != "" {
		ev["response"] = "none (" + act + ": " + p.Skip + ")"
		return false
	}
	ev["response"] = act + " " + p.target()
	return true
}

// resolve fills in p's subject from an alert's evidence, or p.Skip. The
// rules name clients and keys by id, or as venue/id in rate and notional
// alerts; posture alerts name keys exchange/name without a venue.
func (r *responder) resolve(p *responsePlan, ev map[string]string) {
	venue := ev["venue"]
	id := strings.TrimPrefix(ev["client"], venue+"/")
	key := strings.TrimPrefix(ev["key"], venue+"/")
	// Only an active client of ours: failed logins name whatever id the
	// caller claimed.
	var cl *client.Entry
	if srv := r.srv(); srv != nil && venue != "" && id != "" {
		cl, _ = srv.Clients.Lookup(venue, id)
	}
	switch p.Action {
	case respondReadOnly, respondSuspendClient:
		switch {
		case venue == "" || id == "":
			p.Skip = "the alert names no client credential"
		case r.srv() == nil:
			p.Skip = "the server is not running yet"
		case cl == nil:
			p.Skip = "the alert names no active client credential"
		default:
			p.Venue, p.Client = venue, id
		}
	case respondSuspendKey, respondPanicKey:
		switch {
		case key != "" && venue != "":
			p.Key = exchangeOf(venue) + "/" + key
		case venue == "" && strings.Count(key, "/") == 1:
			p.Key = key
		case cl != nil: // a client's alert: its exchange key
			p.Key = exchangeOf(cl.Venue) + "/" + cl.Key
		default:
			p.Skip = "the alert names no exchange key"
		}
	case respondPanicVenue:
		if p.Venue = venue; venue == "" {
			p.Skip = "the alert names no venue"
		}
	}
}

// onAlert is the monitor's alert hook with responses: it plans al's
// response, then hands al to the incident manager, or, for an alert that
// is not critical but has a response, to the responder's worker, which
// records it on an incident itself.
func (r *responder) onAlert(al monitor.Alert, record func(monitor.Alert)) {
	if !r.plan(al) || al.Severity == monitor.SeverityCritical {
		record(al)
		return
	}
	select {
	case r.queue <- al:
	default:
		r.a.log.Error("automatic response queue full: response not run", "rule", al.Rule, "alert_id", al.Evidence["alert_id"])
		r.take(al.Evidence["alert_id"])
		record(al)
	}
}

// record hands al to the incidents, through the responder when automatic
// responses are configured.
func (s *serveIncidents) record(al monitor.Alert) {
	if s.resp == nil {
		s.mgr.Alert(al)
		return
	}
	s.resp.onAlert(al, s.mgr.Alert)
}

// peersBox holds the replicas to tell about a response's changes.
type peersBox struct{ p peers }

// setPeers names the replicas that automatic responses tell about their
// changes (revoked credentials, a stopped gateway).
func (s *serveIncidents) setPeers(p peers) {
	if s.resp != nil {
		s.resp.pv.Store(peersBox{p})
	}
}

func (r *responder) peers() peers {
	b, _ := r.pv.Load().(peersBox)
	return b.p
}

// take removes and returns the pending plan of alert id.
func (r *responder) take(id string) (responsePlan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[id]
	delete(r.pending, id)
	return p, ok
}

// respond is the incident manager's Respond hook for critical alerts: it
// runs the planned response and describes it for the incident timeline.
func (r *responder) respond(ctx context.Context, al monitor.Alert) (string, error) {
	p, ok := r.take(al.Evidence["alert_id"])
	if !ok {
		return "", nil
	}
	return r.run(ctx, p)
}

// work runs the responses of non-critical alerts until ctx ends: the alert
// joins the open incident or opens one, then the response runs and is
// noted on that incident's timeline.
func (r *responder) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case al := <-r.queue:
			p, ok := r.take(al.Evidence["alert_id"])
			if !ok {
				continue
			}
			in, err := r.mgr.RecordAlert(ctx, al)
			if err == nil && in == nil {
				if _, err = r.mgr.Open(ctx, "keywarden", "alert "+al.Rule+" for "+al.Subject); err == nil {
					in, err = r.mgr.RecordAlert(ctx, al)
				}
			}
			did, rerr := r.run(ctx, p)
			if rerr != nil {
				did = "automatic response failed: " + rerr.Error()
			}
			if err != nil || in == nil {
				r.a.log.Error("automatic response not recorded in an incident", "alert_id", p.AlertID, "response", did, "err", err)
				continue
			}
			if _, err := r.mgr.Note(ctx, in.ID, "keywarden", did); err != nil {
				r.a.log.Error("automatic response not recorded in an incident", "alert_id", p.AlertID, "response", did, "err", err)
			}
		}
	}
}

// run carries out p through the same code as the operator's commands
// (keywarden panic, client read-only, key revoke), audited with the alert
// id as reason, and describes what it did.
func (r *responder) run(ctx context.Context, p responsePlan) (string, error) {
	srv := r.srv()
	if srv == nil {
		return "", errors.New("the server is not running yet")
	}
	reason := "alert " + p.AlertID + " (" + p.Rule + " " + p.Subject + ")"
	head := "automatic response (" + p.Action + ") to alert " + p.AlertID + ": "
	switch p.Action {
	case respondReadOnly:
		c, changed, err := r.a.downgradeClient(ctx, srv, p.Venue, p.Client, actorAutomatic, reason)
		if err != nil {
			return "", err
		}
		r.clientsChanged(ctx)
		if !changed {
			return head + "client " + p.Venue + "/" + p.Client + " was already read-only (since " + c.ReadOnly.Since.Format(time.RFC3339) + ")", nil
		}
		return head + "client " + p.Venue + "/" + p.Client + " downgraded to read-only", nil
	case respondSuspendKey:
		ex, name, _ := strings.Cut(p.Key, "/")
		if _, err := r.a.suspendKey(ctx, srv, keyRevokeRequest{Exchange: ex, Name: name, Reason: reason}, actorAutomatic); err != nil {
			return "", err
		}
		return head + "exchange key " + p.Key + " disabled: every client bound to it is refused", nil
	}
	req := panicRequest{Reason: "automatic response to " + reason}
	switch p.Action {
	case respondSuspendClient:
		req.Client = p.Client
	case respondPanicKey:
		req.Key = p.Key
	case respondPanicVenue:
		req.Venue = p.Venue
	case respondPanicAll:
		req.All = true
	default:
		return "", fmt.Errorf("unknown response %q", p.Action)
	}
	res, err := r.a.runPanic(ctx, srv, req, actorAutomatic, time.Now())
	if err != nil {
		return "", err
	}
	if pr := r.peers(); pr != nil {
		if req.All {
			err = pr.SetGatewayStopped(context.WithoutCancel(ctx), true)
		} else {
			err = pr.ClientsChanged(context.WithoutCancel(ctx))
		}
		if err != nil {
			r.a.log.Error("automatic response applied here but the other replicas were not told", "alert_id", p.AlertID, "err", err)
		}
	}
	switch {
	case res.Stopped:
		return head + "gateway stopped: every request is refused until resumed", nil
	case len(res.Revoked) == 0:
		return head + "no active credential matched", nil
	}
	return head + "revoked " + strings.Join(res.Revoked, ", ") + " in " + res.Took, nil
}

// clientsChanged tells the other replicas, when there are any, that a
// credential changed (the store's trigger tells them too; this is faster).
func (r *responder) clientsChanged(ctx context.Context) {
	if pr := r.peers(); pr != nil {
		if err := pr.ClientsChanged(context.WithoutCancel(ctx)); err != nil {
			r.a.log.Error("client change not published to the other replicas", "err", err)
		}
	}
}

// newAlertID names one alert for the audit log, the incident timeline and
// the notifications: al-<UTC time>-<random>.
func newAlertID(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "al-" + t.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// downgradeClient downgrades venue/id to read-only and audits it
// (client.read_only): the one path of the control socket's read-only
// command and of automatic responses.
func (a *app) downgradeClient(ctx context.Context, srv *server.Server, venue, id, actor, reason string) (client.Client, bool, error) {
	c, changed, err := srv.Clients.SetReadOnly(ctx, venue, id, actor, reason)
	if err != nil {
		return c, false, err
	}
	if !changed {
		return c, false, nil
	}
	_, aerr := srv.Audit.Append(context.WithoutCancel(ctx), audit.Record{Type: audit.TypeEvent, Event: &audit.Event{
		Kind: "client.read_only", Actor: actor, Detail: map[string]string{"client": venue + "/" + id, "reason": reason}}})
	a.log.Warn("client credential downgraded to read-only", "actor", actor, "client", venue+"/"+id, "reason", reason)
	if aerr != nil {
		return c, true, fmt.Errorf("client %s/%s is read-only, but the audit record failed: %w", venue, id, aerr)
	}
	return c, true, nil
}

// restoreTrading lifts the read-only downgrade of venue/id and audits it
// (client.restore_trading). The caller has checked the operator's step-up.
func (a *app) restoreTrading(ctx context.Context, srv *server.Server, venue, id, actor, reason string) (client.Client, error) {
	// Audited before it runs: lifting a containment must leave a trace.
	if _, err := srv.Audit.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{
		Kind: "client.restore_trading", Actor: actor, Detail: map[string]string{"client": venue + "/" + id, "reason": reason}}}); err != nil {
		return client.Client{}, fmt.Errorf("restore trading: audit log unavailable: %w", err)
	}
	c, err := srv.Clients.RestoreTrading(ctx, venue, id)
	if err != nil {
		return c, err
	}
	a.log.Warn("client credential may trade again", "actor", actor, "client", venue+"/"+id, "reason", reason)
	return c, nil
}

// suspendKey disables an exchange key in the running server (as keywarden
// key revoke does, without deleting it at the venue) and audits it
// (key.revoke).
func (a *app) suspendKey(ctx context.Context, srv *server.Server, req keyRevokeRequest, actor string) (keyRevokeResult, error) {
	out, err := a.revokeKey(ctx, srv.Vault, req)
	ev := audit.Event{Kind: "key.revoke", Actor: actor, Detail: map[string]string{
		"key": req.Exchange + "/" + req.Name, "reason": req.Reason, "at_venue": fmt.Sprint(req.AtVenue)}}
	if err != nil {
		ev.Detail["error"] = err.Error()
	}
	if _, aerr := srv.Audit.Append(context.WithoutCancel(ctx), audit.Record{Type: audit.TypeEvent, Event: &ev}); aerr != nil && err == nil {
		err = fmt.Errorf("key %s/%s disabled, but the audit record failed: %w", req.Exchange, req.Name, aerr)
	}
	return out, err
}
