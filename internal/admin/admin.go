// Package admin is keywarden's admin JSON API, versioned under /v1/, used by
// the CLI and the dashboard. It runs on its own TLS listener, never on the
// gateway's.
//
// Every endpoint but login and the OpenAPI document needs a session or an
// API token (Authorization: Bearer ...). Each route names the permission it
// needs; dangerous actions also need step-up: a session that proved a TOTP
// code within the last minutes, or a fresh code in the X-Keywarden-TOTP
// header. API tokens can never step up, so a stolen token or a stolen
// session cookie cannot lift a panic or create an admin. Configured actions
// also need k-of-n approval. Every action is written to the audit log, with
// its actor, before it runs; when the audit log is unavailable the action
// is refused (fail closed).
//
// Policy edits go to a policy.Overlay over the configured policies and
// reach the gateway at once; an edit that widens a policy needs step-up,
// and enabling withdrawals or adding withdrawal addresses can need
// approvals of that exact edit.
//
// The whole surface is in routes.go; openapi.json describes it and a test
// keeps the two in step. No endpoint ever returns an exchange secret.
package admin

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/vault"
)

// Keys lists exchange key metadata; *vault.Vault implements it.
type Keys interface {
	Keys(ctx context.Context) ([]vault.KeyInfo, error)
	Key(ctx context.Context, ex, name string) (vault.KeyInfo, error)
}

// Clients manages client credentials; *client.Registry implements it.
type Clients interface {
	List(ctx context.Context) ([]client.Client, error)
	Find(ctx context.Context, id string) (client.Client, error)
	Issue(ctx context.Context, o client.IssueOptions) (*client.Issued, error)
	Revoke(ctx context.Context, venue, id string) error
	Rotate(ctx context.Context, venue, id string, format client.Format, pubPEM string) (*client.Issued, error)
}

// Gateway is the panic switch; *gateway.Gateway implements it.
type Gateway interface {
	Stop()
	Resume()
	Healthy() error
}

// Auditor records admin actions; *audit.Log implements it.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Receipt, error)
}

// KeyLifecycle revokes and rotates exchange keys; serve implements it over
// the running gateway's vault.
type KeyLifecycle interface {
	// Revoke disables the key at once and, with atVenue, deletes it at the
	// venue. It returns what the operator is told.
	Revoke(ctx context.Context, venue, name, reason string, atVenue bool) ([]string, error)
	// Rotate starts or resumes the automated rotation of the key.
	Rotate(ctx context.Context, venue, name string, r RotateRequest) ([]string, error)
}

// RotateRequest is an automated rotation's parameters.
type RotateRequest struct {
	Permissions []string `json:"permissions"`
	IPs         []string `json:"ips"`
	SubAccount  string   `json:"sub_account"`
	Manager     string   `json:"manager"`
	Grace       string   `json:"grace"`
}

// Seal rotates the vault's keyring and seal; serve implements it over the
// running vault.
type Seal interface {
	// Rotate adds a keyring term: new secrets are sealed under it.
	Rotate(ctx context.Context) error
	// Rekey replaces the seal by passphrase or, when passphrase is empty,
	// by shares new unseal shares of which threshold unseal. It returns the
	// new shares, encoded, once.
	Rekey(ctx context.Context, passphrase []byte, shares, threshold int) ([]string, error)
}

// Posture reads the scheduled posture checks; *posture.History implements
// it.
type Posture interface {
	Runs(ctx context.Context, limit int) ([]posture.Run, error)
}

// Reports writes the compliance report; serve implements it over the vault,
// the rotations and the latest scheduled posture run.
type Reports interface {
	// Compliance renders the report as format (md, html or json), with
	// only the keys inScope says the caller may see.
	Compliance(ctx context.Context, format string, inScope func(venue, name string) bool) ([]byte, error)
}

// Options configure New.
type Options struct {
	Operators *operator.Manager
	Keys      Keys
	Clients   Clients
	Gateway   Gateway
	// Policies are the policies: the configured ones with the edits made
	// through the API.
	Policies *policy.Overlay
	// SetPolicies is called with the compiled policies after every edit,
	// so that the gateway uses them from its next request.
	SetPolicies func(map[string]*policy.Policy)
	// KeyLifecycle revokes and rotates exchange keys; nil: not offered.
	KeyLifecycle KeyLifecycle
	// Seal rotates the keyring and rekeys the vault; nil: not offered.
	Seal Seal
	// AuditKey is the public key that verifies the audit checkpoints.
	AuditKey ed25519.PublicKey
	// Posture is the history of scheduled posture checks; nil: none.
	Posture Posture
	// Reports writes the compliance report; nil: not offered.
	Reports Reports
	Audit   Auditor
	// AuditDir is the audit log directory searched by GET /v1/audit.
	AuditDir string
	// Approvals maps an action (see the Action* constants) to the k-of-n
	// approval it needs.
	Approvals map[string]operator.Rule
	// Format returns a venue's credential format; nil means the default.
	Format func(venue string) client.Format
	Logger *slog.Logger
	Now    func() time.Time
}

// Actions that can be configured to need approval.
const (
	ActionGatewayResume  = "gateway.resume"
	ActionOperatorCreate = "operators.create"
	ActionOperatorRole   = "operators.role"
	// ActionPolicyWithdraw is a policy edit that enables the withdraw
	// scope.
	ActionPolicyWithdraw = "policies.withdraw"
	// ActionPolicyAddress is a policy edit that adds withdrawal addresses.
	ActionPolicyAddress = "policies.withdraw-address"
)

// Actions lists every action that can be configured to need approval.
var Actions = []string{ActionGatewayResume, ActionOperatorCreate, ActionOperatorRole, ActionPolicyWithdraw, ActionPolicyAddress}

type api struct {
	Options
	ops      *operator.Manager
	log      *slog.Logger
	throttle *throttle
}

// Failed logins allowed per source address in loginWindow.
const (
	loginLimit  = 20
	loginWindow = 15 * time.Minute
)

// New returns the admin API handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Format == nil {
		o.Format = func(string) client.Format { return client.Format{} }
	}
	s := &api{Options: o, ops: o.Operators, log: o.Logger, throttle: newThrottle(o.Now, loginLimit, loginWindow)}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, s.guard(rt))
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.log, errNotFound)
	}))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// remoteAddr is the request's source for the audit record.
func remoteAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return ap.Addr().String()
}

// event writes an admin action to the audit log. An error means the action
// must not run.
func (s *api) event(ctx context.Context, kind, actor string, detail map[string]string) error {
	if s.Audit == nil {
		return errAuditUnavailable
	}
	if _, err := s.Audit.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "admin." + kind, Actor: actor, Detail: detail}}); err != nil {
		s.log.Error("admin audit append", "err", err, "kind", kind)
		return errAuditUnavailable
	}
	return nil
}
