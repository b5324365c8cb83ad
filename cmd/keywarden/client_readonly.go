package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/venues"
)

// modeRequest asks the control socket to downgrade a client credential to
// read-only, or to restore its trading. Restoring needs an operator's
// fresh TOTP code (step-up): TOTP is a one-time code, never logged.
type modeRequest struct {
	Venue    string `json:"venue"`
	ID       string `json:"id"`
	Reason   string `json:"reason"`
	Operator string `json:"operator,omitempty"`
	TOTP     string `json:"totp,omitempty"`
}

// modeResult is the control socket's answer.
type modeResult struct {
	Client  client.Client `json:"client"`
	Changed bool          `json:"changed"`
}

// clientModeRoutes adds the read-only and restore routes to the control
// socket's mux.
func (a *app) clientModeRoutes(mux *http.ServeMux, srv *server.Server, peers peers) {
	mux.HandleFunc("POST /v1/clients/read-only", func(w http.ResponseWriter, r *http.Request) {
		var req modeRequest
		if !decodeControl(w, r, &req) {
			return
		}
		c, changed, err := a.downgradeClient(r.Context(), srv, req.Venue, req.ID, actorControl, req.Reason)
		if err == nil && changed {
			err = peers.ClientsChanged(context.WithoutCancel(r.Context()))
		}
		writeControl(w, modeResult{Client: c, Changed: changed}, err)
	})
	mux.HandleFunc("POST /v1/clients/restore", func(w http.ResponseWriter, r *http.Request) {
		var req modeRequest
		if !decodeControl(w, r, &req) {
			return
		}
		actor, err := a.stepUpOperator(r.Context(), srv, req)
		var c client.Client
		if err == nil {
			c, err = a.restoreTrading(r.Context(), srv, req.Venue, req.ID, actor, req.Reason)
		}
		if err == nil {
			err = peers.ClientsChanged(context.WithoutCancel(r.Context()))
		}
		writeControl(w, modeResult{Client: c, Changed: err == nil}, err)
	})
}

// errNoOperator is returned when restoring trading on a vault without
// operator accounts: there is nobody who could step up.
var errNoOperator = errors.New("restoring trading needs an operator's TOTP code, and this vault has no operator yet (keywarden operator first-admin)")

// stepUpOperator checks the step-up of a restore: the named operator
// exists, is enabled, may write client credentials of the client's key,
// and sent a fresh TOTP code of theirs (single use; failures count towards
// the operator's lockout). It returns the actor for the audit log.
func (a *app) stepUpOperator(ctx context.Context, srv *server.Server, req modeRequest) (string, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return "", errors.New("restore trading: a reason is required")
	}
	c, err := srv.Clients.Get(ctx, req.Venue, req.ID)
	if err != nil {
		return "", fmt.Errorf("restore trading: %w", err)
	}
	ops, err := operator.New(operator.Options{Store: srv.Store, Secrets: srv.Vault})
	if err != nil {
		return "", err
	}
	if any, err := ops.Any(ctx); err != nil {
		return "", err
	} else if !any {
		return "", errNoOperator
	}
	if req.Operator == "" || req.TOTP == "" {
		return "", errors.New("restore trading: an operator and a fresh TOTP code are required (step-up)")
	}
	if err := ops.VerifyCode(ctx, req.Operator, req.TOTP); err != nil {
		a.log.Warn("restore trading refused: step-up failed", "operator", req.Operator, "client", req.Venue+"/"+req.ID)
		return "", fmt.Errorf("restore trading: step-up failed for operator %q: %w", req.Operator, err)
	}
	op, err := ops.Get(ctx, req.Operator)
	if err != nil {
		return "", err
	}
	if op.Disabled || !op.Role.Grants(operator.PermClientsWrite) || !op.InScope(c.Venue, c.Key) {
		return "", fmt.Errorf("restore trading: operator %q may not change client %s/%s", req.Operator, req.Venue, req.ID)
	}
	return op.Name + " (" + actorControl + ")", nil
}

// clientRef splits VENUE/ID; the id may hold slashes itself (Coinbase key
// names), the venue never does.
func clientRef(ref string) (venue, id string, err error) {
	venue, id, ok := strings.Cut(ref, "/")
	if ok && id != "" {
		if _, verr := venues.ByName(venue); verr == nil {
			return venue, id, nil
		}
	}
	return "", "", fmt.Errorf("%q: want VENUE/ID, e.g. binance/kw…", ref)
}

func newClientReadOnlyCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "read-only VENUE/ID --reason TEXT",
		Short: "Downgrade a client credential to read-only in the running gateway",
		Long: `read-only downgrades a client credential from its next request: public and
read calls still work; trade, transfer, withdraw and account-admin calls are
refused 403 in the venue's error shape (rule read_only), on REST and on open
WebSocket sessions. The downgrade is audited, kept across restarts, reaches
every replica and shows in keywarden client list. Lift it with
keywarden client restore-trading (needs an operator's TOTP code).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			venue, id, err := clientRef(args[0])
			if err != nil {
				return fmt.Errorf("client read-only: %w", err)
			}
			if strings.TrimSpace(reason) == "" {
				return errors.New("client read-only: --reason is required")
			}
			s := dialControl(a.cfg.DataDir)
			if s == nil {
				return errors.New("client read-only: no keywarden serve is running on data directory " + a.cfg.DataDir)
			}
			var res modeResult
			if err := s.call(cmd.Context(), "POST", "/v1/clients/read-only", modeRequest{Venue: venue, ID: id, Reason: reason}, &res); err != nil {
				return fmt.Errorf("client read-only: %w", err)
			}
			if !res.Changed && res.Client.ReadOnly != nil {
				fmt.Fprintf(a.stdout, "%s/%s was already read-only (since %s, by %s)\n", venue, id,
					res.Client.ReadOnly.Since.Format(time.RFC3339), res.Client.ReadOnly.By)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s/%s is read-only from its next request\n", venue, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

func newClientRestoreCmd(a *app) *cobra.Command {
	var reason, op string
	cmd := &cobra.Command{
		Use:   "restore-trading VENUE/ID --reason TEXT --operator NAME",
		Short: "Lift a client credential's read-only downgrade (asks for the operator's TOTP code)",
		Long: `restore-trading lets a downgraded client credential trade again, as its policy
allows, from its next request. It is a step-up action: it asks for a fresh
TOTP code of --operator, who must be allowed to write client credentials of
the client's exchange key. It is audited with the operator and the reason.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			venue, id, err := clientRef(args[0])
			if err != nil {
				return fmt.Errorf("client restore-trading: %w", err)
			}
			if strings.TrimSpace(reason) == "" || op == "" {
				return errors.New("client restore-trading: --reason and --operator are required")
			}
			s := dialControl(a.cfg.DataDir)
			if s == nil {
				return errors.New("client restore-trading: no keywarden serve is running on data directory " + a.cfg.DataDir)
			}
			code, err := a.prompt.secret("TOTP code of " + op + ": ")
			if err != nil {
				return err
			}
			req := modeRequest{Venue: venue, ID: id, Reason: reason, Operator: op, TOTP: strings.TrimSpace(string(code))}
			clear(code)
			var res modeResult
			if err := s.call(cmd.Context(), "POST", "/v1/clients/restore", req, &res); err != nil {
				return fmt.Errorf("client restore-trading: %w", err)
			}
			fmt.Fprintf(a.stdout, "%s/%s may trade again from its next request\n", venue, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	cmd.Flags().StringVar(&op, "operator", "", "the operator whose TOTP code approves it")
	return cmd
}
