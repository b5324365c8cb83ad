package server

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
)

var randRead = rand.Read

// policyAdapter lets the gateway ask the policy engine. Windows per exchange
// key are keyed "exchange/name", so binance and binance-usdm share a key's
// budget.
type policyAdapter struct {
	engine atomic.Pointer[policy.Engine] // swapped by Server.SetPolicies
	prices policy.PriceSource
	shared policy.SharedWindows // set by Server.ShareWindows before serving
	// clients, when set, is asked for the credential's current read-only
	// state (client.Downgrade), so that a downgrade reaches WebSocket
	// sessions logged on before it.
	clients gateway.Clients
}

func (a *policyAdapter) Check(ctx context.Context, c gateway.Check) (gateway.Permit, error) {
	if d := a.readOnly(c); d != nil {
		return nil, d
	}
	in := policy.Input{
		Call: c.Call, Client: c.Client.ID, Key: c.Exchange + "/" + c.Client.Key, Venue: c.Call.Venue,
		SourceIP: c.SourceIP, Now: c.Now, CredentialExpires: c.Client.Expires, Prices: a.prices,
	}
	engine := a.engine.Load()
	res, release, err := engine.CheckShared(a.shared, c.Client.Policy, in)
	if err != nil {
		var d *policy.Denial
		if errors.As(err, &d) {
			return nil, &gateway.Denial{Rule: d.Rule, Reason: d.Reason}
		}
		return nil, err
	}
	closes := closedBy(&c.Call)
	if res == nil && closes == 0 {
		return nil, nil
	}
	return &permit{res: res, release: release, limiter: engine.Limiter(), client: c.Client.ID, closes: closes}, nil
}

// closedBy counts the open orders a call closes once the venue accepts it:
// cancels, and new orders the policy counted as opening but that cannot rest
// on the book (IOC, FOK), so the open-order count follows what the bot does
// through keywarden. Market orders are never counted as open, so they close
// nothing.
func closedBy(c *exchange.Call) int {
	n := 0
	for _, o := range c.Orders {
		switch {
		case o.Action == exchange.ActionCancel:
			n++
		case o.Action == exchange.ActionNew && immediate(o.Type):
			n++
		}
	}
	return n
}

func immediate(orderType string) bool {
	switch orderType {
	case "ioc", "fok", "immediate_or_cancel", "fill_or_kill":
		return true
	}
	return false
}

// permit commits a policy reservation and reports closed orders.
type permit struct {
	res     *policy.Reservation
	release func() // gives back the shared windows' budget; nil without
	limiter *policy.Limiter
	client  string
	closes  int
}

func (p *permit) Commit() {
	p.res.Commit()
	if p.closes > 0 {
		p.limiter.OrdersClosed(p.client, p.closes)
	}
}

func (p *permit) Release() {
	p.res.Release()
	if p.release != nil {
		p.release()
	}
}

// auditAdapter writes the gateway's records to the audit log.
type auditAdapter struct{ log *audit.Log }

func (a auditAdapter) Intent(ctx context.Context, in gateway.Intent) error {
	typ := audit.TypeIntent
	if in.Decision == audit.DecisionDeny {
		typ = audit.TypeDenied
	}
	_, err := a.log.Append(ctx, audit.Record{Type: typ, RequestID: in.RequestID, Intent: &audit.Intent{
		Client: in.Client, Key: in.Key, Venue: in.Venue, Method: in.Method, Path: in.Path, SourceIP: in.SourceIP,
		Call: in.Call, Decision: in.Decision, Rule: in.Rule, Reason: in.Reason, Body: string(in.Body),
	}})
	return err
}

// Outcome is written lazily: the bot already has its answer and the intent
// was durable before anything went upstream, so the outcome shares the next
// flush instead of waiting for one of its own. A failed write still puts the
// log, and so the gateway, into the failed state.
func (a auditAdapter) Outcome(ctx context.Context, o gateway.Outcome) error {
	return a.log.AppendLazy(ctx, audit.Record{Type: audit.TypeOutcome, RequestID: o.RequestID, Outcome: &audit.Outcome{
		Status: o.Status, VenueOrderID: o.VenueOrderID, LatencyMicros: o.Latency.Microseconds(), Error: o.Error,
	}})
}
