package server

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
)

var randRead = rand.Read

// policyAdapter lets the gateway ask the policy engine. Windows per exchange
// key are keyed "exchange/name", so binance and binance-usdm share a key's
// budget.
type policyAdapter struct {
	engine *policy.Engine
	prices policy.PriceSource
}

func (a *policyAdapter) Check(ctx context.Context, c gateway.Check) (gateway.Permit, error) {
	in := policy.Input{
		Call: c.Call, Client: c.Client.ID, Key: c.Exchange + "/" + c.Client.Key, Venue: c.Call.Venue,
		SourceIP: c.SourceIP, Now: c.Now, CredentialExpires: c.Client.Expires, Prices: a.prices,
	}
	res, err := a.engine.Check(c.Client.Policy, in)
	if err != nil {
		var d *policy.Denial
		if errors.As(err, &d) {
			return nil, &gateway.Denial{Rule: d.Rule, Reason: d.Reason}
		}
		return nil, err
	}
	if res == nil {
		return nil, nil
	}
	return res, nil
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

func (a auditAdapter) Outcome(ctx context.Context, o gateway.Outcome) error {
	_, err := a.log.Append(ctx, audit.Record{Type: audit.TypeOutcome, RequestID: o.RequestID, Outcome: &audit.Outcome{
		Status: o.Status, VenueOrderID: o.VenueOrderID, LatencyMicros: o.Latency.Microseconds(), Error: o.Error,
	}})
	return err
}
