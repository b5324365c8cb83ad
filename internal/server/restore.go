package server

import (
	"context"
	"fmt"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/policy"
)

// restoreWindows counts again, from the audit log, the calls the gateway
// allowed within the policies' longest rolling window, so that a restart
// does not hand every credential a fresh budget. A call counts unless its
// outcome says the venue refused it (status 300 and up), just as the
// gateway gives a refused call's budget back; a call without an outcome
// counts, since the order may exist. Calls are charged to the policy their
// credential is bound to now. It returns how many calls it restored.
func restoreWindows(ctx context.Context, dir string, e *policy.Engine, clients []client.Client, exchangeOf map[string]string, hashKey []byte, now time.Time) (int, error) {
	span := e.LongestWindow()
	if span == 0 {
		return 0, nil
	}
	// Intents name the credential by id, or by its keyed hash when the log
	// hashes that field.
	byID := make(map[[2]string]*client.Client, 2*len(clients))
	for i := range clients {
		c := &clients[i]
		byID[[2]string{c.Venue, c.ID}] = c
		if len(hashKey) > 0 {
			byID[[2]string{c.Venue, audit.HashValue(hashKey, c.ID)}] = c
		}
	}
	type allowed struct {
		reqID  string
		policy string
		in     policy.Input
	}
	var calls []allowed
	refused := map[string]bool{}
	f := audit.Filter{From: now.Add(-span), Types: []audit.Type{audit.TypeIntent, audit.TypeOutcome}}
	for r, err := range audit.Search(dir, f) {
		if err != nil {
			return 0, fmt.Errorf("restore policy windows: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if o := r.Outcome; o != nil {
			if o.Status >= 300 {
				refused[r.RequestID] = true
			}
			continue
		}
		in := r.Intent
		if in == nil || in.Decision != audit.DecisionAllow || len(in.Call.Orders) == 0 {
			continue
		}
		c := byID[[2]string{in.Venue, in.Client}]
		if c == nil {
			continue // the credential is gone: nothing more is charged to it
		}
		calls = append(calls, allowed{reqID: r.RequestID, policy: c.Policy, in: policy.Input{
			Call: in.Call, Client: c.ID, Key: exchangeOf[c.Venue] + "/" + c.Key, Venue: in.Venue,
			Now: r.Time, CredentialExpires: c.Expires,
		}})
	}
	n := 0
	for _, a := range calls {
		if a.reqID != "" && refused[a.reqID] {
			continue
		}
		e.Restore(a.policy, a.in)
		n++
	}
	return n, nil
}

// restoreWindows loads the engine's rolling windows from the audit log.
func (s *Server) restoreWindows(ctx context.Context, o Options, hashKey []byte) error {
	clients, err := s.Clients.List(ctx)
	if err != nil {
		return fmt.Errorf("restore policy windows: %w", err)
	}
	exchangeOf := make(map[string]string, len(o.Routes))
	for _, r := range o.Routes {
		exchangeOf[r.Def.Name] = r.Def.Exchange
	}
	n, err := restoreWindows(ctx, o.AuditDir, s.Engine, clients, exchangeOf, hashKey, time.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		o.Logger.Info("policy windows restored from the audit log", "calls", n)
	}
	return nil
}
