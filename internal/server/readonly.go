package server

import (
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/gateway"
)

// RuleReadOnly is the policy rule that refuses a downgraded credential's
// trade, transfer, withdraw and account-admin calls.
const RuleReadOnly = "read_only"

// readOnly returns the denial of c's call when its credential is
// downgraded to read-only, or nil. The registry's current entry decides: a
// WebSocket session holds the entry of its logon, which may predate a
// downgrade or a restore. Only when the registry no longer has the
// credential (the gateway refuses it anyway) does the copy in c decide.
func (a *policyAdapter) readOnly(c gateway.Check) *gateway.Denial {
	cl := c.Client
	if cl == nil || client.ReadOnlyAllows(c.Call.Scope) {
		return nil // reads need no second look at the registry
	}
	down := cl.ReadOnly != nil
	if a.clients != nil {
		if e, err := a.clients.Lookup(cl.Venue, cl.ID); err == nil {
			down = e.ReadOnly != nil
		}
	}
	if !down {
		return nil
	}
	return &gateway.Denial{Rule: RuleReadOnly, Reason: "client credential downgraded to read-only: only public and read calls are allowed until an operator restores trading"}
}
