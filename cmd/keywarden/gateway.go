package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/operator"
)

// resumeRequest asks the control socket to lift a stop or a panic. Leaving
// a panic is a step-up action (security.md V11): it needs an operator
// allowed to control the gateway and a fresh TOTP code of theirs. The code
// is single use and never logged or audited.
type resumeRequest struct {
	Operator string `json:"operator,omitempty"`
	TOTP     string `json:"totp,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// errResumeNoOperator refuses a resume on a vault without operator
// accounts: nobody could prove a second factor, so the stop stays (fail
// closed). It says how to enrol the first operator.
var errResumeNoOperator = errors.New("gateway resume: leaving a stop or panic needs an operator's TOTP code, and this vault has no operator yet; " +
	"enrol one: stop keywarden serve (the gateway stays stopped across the restart), run `keywarden operator first-admin --name NAME`, " +
	"start keywarden serve again, then `keywarden gateway resume --operator NAME --reason TEXT`")

// resumeAuthorizer checks resume step-ups. One per control socket: the
// operator manager serialises the check and the use of a code, so the same
// code sent twice at once passes at most once.
type resumeAuthorizer struct {
	ops *operator.Manager
}

// authorize checks req's step-up and returns the actor for the audit log:
// the operator exists, is enabled, holds gateway:control, and sent a fresh
// TOTP code of theirs. A wrong or reused code counts towards the operator's
// lockout.
func (z resumeAuthorizer) authorize(ctx context.Context, req resumeRequest) (string, error) {
	any, err := z.ops.Any(ctx)
	if err != nil {
		return "", fmt.Errorf("gateway resume: operator accounts: %w", err)
	}
	if !any {
		return "", errResumeNoOperator
	}
	if strings.TrimSpace(req.Reason) == "" {
		return "", errors.New("gateway resume: a reason is required (--reason)")
	}
	if req.Operator == "" {
		return "", errors.New("gateway resume: an operator and their fresh TOTP code are required (--operator NAME; the code is asked for)")
	}
	if req.TOTP == "" {
		return "", fmt.Errorf("gateway resume: operator %q sent no TOTP code: a fresh code is required", req.Operator)
	}
	if err := z.ops.VerifyCode(ctx, req.Operator, req.TOTP); err != nil {
		if errors.Is(err, operator.ErrStepUp) {
			err = errors.New("not a fresh TOTP code of this operator (wrong, expired or already used: each code works once)")
		}
		return "", fmt.Errorf("gateway resume: step-up failed for operator %q: %w", req.Operator, err)
	}
	op, err := z.ops.Get(ctx, req.Operator)
	if err != nil {
		return "", fmt.Errorf("gateway resume: operator %q: %w", req.Operator, err)
	}
	if op.Disabled || !op.Role.Grants(operator.PermGatewayControl) {
		return "", fmt.Errorf("gateway resume: operator %q may not resume the gateway (needs the admin or security role)", req.Operator)
	}
	return op.Name + " (" + actorControl + ")", nil
}

// gatewaySwitch is the panic switch as the control socket's stop and resume
// use it (*gateway.Gateway).
type gatewaySwitch interface {
	Stop()
	Resume()
	Stopped() bool
}

// handleResume serves POST /v1/gateway/resume on the control socket. Every
// attempt is audited: a refusal as gateway.resume_refused (the operator
// named and why, never the code), a resume as gateway.resume with the
// operator, written before the switch moves: if the audit log cannot take
// it, the gateway stays stopped.
func (a *app) handleResume(sw gatewaySwitch, auditLog auditAppender, peers peers, z resumeAuthorizer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req resumeRequest
		if !decodeControl(w, r, &req) {
			a.auditResumeRefused(r.Context(), auditLog, req, errors.New("malformed request"))
			return
		}
		actor, err := z.authorize(r.Context(), req)
		if err != nil {
			a.auditResumeRefused(r.Context(), auditLog, req, err)
			writeControl(w, nil, err)
			return
		}
		detail := map[string]string{"operator": req.Operator, "reason": req.Reason, "source": actorControl,
			"was_stopped": fmt.Sprint(sw.Stopped())}
		if _, err := auditLog.Append(context.WithoutCancel(r.Context()), audit.Record{Type: audit.TypeEvent,
			Event: &audit.Event{Kind: "gateway.resume", Actor: actor, Detail: detail}}); err != nil {
			writeControl(w, nil, fmt.Errorf("gateway resume: the audit log is unavailable, the gateway stays stopped: %w", err))
			return
		}
		sw.Resume()
		a.log.Warn("gateway resumed by operator", "actor", actor, "reason", req.Reason)
		writeControl(w, map[string]string{"gateway": "running", "by": actor},
			peers.SetGatewayStopped(context.WithoutCancel(r.Context()), false))
	}
}

// auditResumeRefused records a refused resume. The request is refused
// whether or not the record is written.
func (a *app) auditResumeRefused(ctx context.Context, auditLog auditAppender, req resumeRequest, why error) {
	a.log.Warn("gateway resume refused", "operator", req.Operator, "err", why)
	detail := map[string]string{"error": why.Error(), "source": actorControl, "totp_sent": fmt.Sprint(req.TOTP != "")}
	if req.Operator != "" {
		detail["operator"] = req.Operator
	}
	if req.Reason != "" {
		detail["reason"] = req.Reason
	}
	if _, err := auditLog.Append(context.WithoutCancel(ctx), audit.Record{Type: audit.TypeEvent,
		Event: &audit.Event{Kind: "gateway.resume_refused", Actor: actorControl, Detail: detail}}); err != nil {
		a.log.Error("audit of a refused gateway resume failed", "err", err)
	}
}

// handleStop serves POST /v1/gateway/stop: stop first, no second factor
// (entering a panic must never wait), audit after.
func (a *app) handleStop(sw gatewaySwitch, auditLog auditAppender, peers peers) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw.Stop()
		a.log.Warn("gateway stopped by operator: every request is refused until resumed")
		err := peers.SetGatewayStopped(context.WithoutCancel(r.Context()), true)
		if _, aerr := auditLog.Append(context.WithoutCancel(r.Context()), audit.Record{Type: audit.TypeEvent,
			Event: &audit.Event{Kind: "gateway.stop", Actor: actorControl, Detail: map[string]string{"source": actorControl}}}); aerr != nil {
			err = errors.Join(err, fmt.Errorf("gateway stopped, but the audit record failed: %w", aerr))
		}
		writeControl(w, map[string]string{"gateway": "stopped"}, err)
	}
}

func newGatewayCmd(a *app) *cobra.Command {
	cmd := group("gateway", "Inspect, stop or resume a running gateway")
	control := func(cmd *cobra.Command) (*socketOps, error) {
		s := dialControl(a.cfg.DataDir)
		if s == nil {
			return nil, errors.New("no keywarden serve is running on data directory " + a.cfg.DataDir)
		}
		return s, nil
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether the gateway accepts requests and each key's venue rate-limit usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := control(cmd)
			if err != nil {
				return err
			}
			var st gatewayStatus
			if err := s.call(cmd.Context(), "GET", "/v1/gateway/status", nil, &st); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(st)
			}
			fmt.Fprintf(a.stdout, "gateway: %s", st.State)
			if st.Reason != "" {
				fmt.Fprintf(a.stdout, " (%s)", st.Reason)
			}
			fmt.Fprintln(a.stdout)
			keys := make([]string, 0, len(st.RateLimits))
			for k := range st.RateLimits {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				rl := st.RateLimits[k]
				fmt.Fprintf(a.stdout, "  %s: %d of %d per %s\n", k, rl.Used, rl.Limit, rl.Window)
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Refuse every request until resumed (emergency stop; needs no second factor)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := control(cmd)
			if err != nil {
				return err
			}
			var out map[string]string
			if err := s.call(cmd.Context(), "POST", "/v1/gateway/stop", struct{}{}, &out); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "gateway %s\n", out["gateway"])
			return nil
		},
	}
	var req resumeRequest
	resume := &cobra.Command{
		Use:   "resume --operator NAME --reason TEXT",
		Short: "Accept requests again after a stop or panic (asks for the operator's TOTP code)",
		Long: `resume lifts a stop or a "keywarden panic --all" in the running gateway. Stopping
needs no second factor; leaving the stop does: resume asks for a fresh TOTP
code of --operator, who must hold the admin or security role (gateway
control). A wrong, expired or already used code is refused and counts
towards the operator's lockout. Every attempt is audited: a resume as
gateway.resume with the operator and the reason, a refusal as
gateway.resume_refused. The code is read from the terminal without echo, or
as one line of stdin.

A gateway whose vault has no operator stays stopped: enrol the first operator
with "keywarden operator first-admin" (stop keywarden serve first; the
gateway comes back up stopped) and resume with that operator.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := control(cmd)
			if err != nil {
				return err
			}
			if req.Operator != "" {
				if strings.TrimSpace(req.Reason) == "" {
					return errors.New("gateway resume: --reason is required")
				}
				code, err := a.prompt.secret("TOTP code of " + req.Operator + ": ")
				if err != nil {
					return fmt.Errorf("gateway resume: %w", err)
				}
				req.TOTP = strings.TrimSpace(string(code))
				clear(code)
			}
			// Without --operator the request still goes to the server, which
			// refuses and audits it, and says what is missing (or how to
			// enrol an operator when there is none).
			var out map[string]string
			err = s.call(cmd.Context(), "POST", "/v1/gateway/resume", req, &out)
			req.TOTP = ""
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "gateway %s (resumed by %s)\n", out["gateway"], out["by"])
			return nil
		},
	}
	resume.Flags().StringVar(&req.Operator, "operator", "", "the operator whose TOTP code approves the resume")
	resume.Flags().StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	cmd.AddCommand(status, stop, resume)
	return cmd
}
