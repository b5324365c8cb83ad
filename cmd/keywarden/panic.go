package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/venues"
	"github.com/spf13/cobra"
)

// panicRequest selects what a panic suspends: exactly one of Client, Key
// (exchange/name), Venue or All.
type panicRequest struct {
	Client string `json:"client,omitempty"`
	Key    string `json:"key,omitempty"`
	Venue  string `json:"venue,omitempty"`
	All    bool   `json:"all,omitempty"`
	Reason string `json:"reason"`
}

// panicResult is what a panic did.
type panicResult struct {
	Stopped bool     `json:"stopped,omitempty"`
	Revoked []string `json:"revoked"` // venue/client
	// Took is the server's time from receiving the panic to every
	// credential being refused.
	Took string `json:"took"`
}

func (r panicRequest) validate() error {
	n := 0
	for _, set := range []bool{r.Client != "", r.Key != "", r.Venue != "", r.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("panic: give exactly one of --client, --key, --venue or --all")
	}
	if strings.TrimSpace(r.Reason) == "" {
		return errors.New("panic: --reason is required")
	}
	if r.Key != "" {
		if ex, name, ok := strings.Cut(r.Key, "/"); !ok || ex == "" || name == "" {
			return fmt.Errorf("panic: --key %q: want EXCHANGE/NAME", r.Key)
		}
	}
	return nil
}

// suspend revokes the credentials r selects, or stops the gateway for All.
// It revokes everything it can and reports the first failure.
func suspend(ctx context.Context, srv *server.Server, r panicRequest) (panicResult, error) {
	var res panicResult
	if r.All {
		srv.Gateway.Stop()
		res.Stopped = true
		return res, nil
	}
	var targets []client.Client
	if r.Client != "" {
		c, err := srv.Clients.Find(ctx, r.Client)
		if err != nil {
			return res, fmt.Errorf("panic: client %s: %w", r.Client, err)
		}
		targets = append(targets, c)
	} else {
		all, err := srv.Clients.List(ctx)
		if err != nil {
			return res, fmt.Errorf("panic: list clients: %w", err)
		}
		ex, name, _ := strings.Cut(r.Key, "/")
		for _, c := range all {
			if !c.Revoked.IsZero() {
				continue
			}
			switch {
			case r.Venue != "" && c.Venue == r.Venue:
				targets = append(targets, c)
			case r.Key != "" && c.Key == name && exchangeOf(c.Venue) == ex:
				targets = append(targets, c)
			}
		}
	}
	var errs []error
	for _, c := range targets {
		if err := srv.Clients.Revoke(ctx, c.Venue, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("revoke %s/%s: %w", c.Venue, c.ID, err))
			continue
		}
		res.Revoked = append(res.Revoked, c.Venue+"/"+c.ID)
	}
	return res, errors.Join(errs...)
}

// exchangeOf returns the exchange a gateway venue belongs to.
func exchangeOf(venue string) string {
	if def, err := venues.ByName(venue); err == nil && def.Exchange != "" {
		return def.Exchange
	}
	return venue
}

// handlePanic serves POST /v1/panic on the control socket.
func (a *app) handlePanic(srv *server.Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var req panicRequest
		if !decodeControl(w, r, &req) {
			return
		}
		if err := req.validate(); err != nil {
			writeControl(w, nil, err)
			return
		}
		res, err := a.runPanic(r.Context(), srv, req, "control-socket", start)
		writeControl(w, res, err)
	}
}

// runPanic is the one path every panic takes (the control socket,
// automatic responses, drills): it suspends first and audits after, so
// that the audit write never delays containment; a failed audit is
// reported. start is when the panic was asked for.
func (a *app) runPanic(ctx context.Context, srv *server.Server, req panicRequest, actor string, start time.Time) (panicResult, error) {
	res, serr := suspend(ctx, srv, req)
	res.Took = time.Since(start).String()
	if res.Revoked == nil {
		res.Revoked = []string{}
	}
	target := map[bool]string{true: "all"}[req.All] + req.Client + req.Key + req.Venue
	detail := map[string]string{"target": target, "reason": req.Reason, "revoked": strconv.Itoa(len(res.Revoked)),
		"stopped": strconv.FormatBool(res.Stopped), "took": res.Took}
	if len(res.Revoked) > 0 {
		detail["clients"] = strings.Join(res.Revoked, ",")
	}
	if serr != nil {
		detail["error"] = serr.Error()
	}
	_, aerr := srv.Audit.Append(context.WithoutCancel(ctx),
		audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "panic", Actor: actor, Detail: detail}})
	a.log.Warn("panic: credentials suspended", "actor", actor, "target", target, "reason", req.Reason, "revoked", len(res.Revoked),
		"stopped", res.Stopped, "took", res.Took)
	switch {
	case serr != nil:
		return res, fmt.Errorf("%w (suspended %d before the failure)", serr, len(res.Revoked))
	case aerr != nil:
		return res, fmt.Errorf("panic: suspended %d, stopped %v, but the audit record failed: %w", len(res.Revoked), res.Stopped, aerr)
	}
	return res, nil
}

func newPanicCmd(a *app) *cobra.Command {
	var req panicRequest
	cmd := &cobra.Command{
		Use:   "panic (--client ID | --key EXCHANGE/NAME | --venue V | --all) --reason TEXT",
		Short: "Suspend credentials at once in a running gateway",
		Long: `Suspend credentials in the running gateway, effective on the next request:
--client revokes one client credential, --key and --venue revoke every client
bound to that exchange key or venue, and --all stops the gateway (every request
gets 503 until "keywarden gateway resume"). The panic is audited.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := req.validate(); err != nil {
				return err
			}
			start := time.Now()
			s := dialControl(a.cfg.DataDir)
			if s == nil {
				return errors.New("no keywarden serve is running on data directory " + a.cfg.DataDir)
			}
			var res panicResult
			if err := s.call(cmd.Context(), "POST", "/v1/panic", req, &res); err != nil {
				return err
			}
			took := time.Since(start)
			if res.Stopped {
				fmt.Fprintln(a.stdout, "gateway stopped: every request is refused until `keywarden gateway resume`")
			}
			for _, c := range res.Revoked {
				fmt.Fprintf(a.stdout, "revoked %s\n", c)
			}
			if !res.Stopped && len(res.Revoked) == 0 {
				fmt.Fprintln(a.stdout, "no active credential matched")
			}
			fmt.Fprintf(a.stdout, "suspension took %s (gateway %s)\n", took.Round(time.Microsecond), res.Took)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Client, "client", "", "revoke this client credential")
	f.StringVar(&req.Key, "key", "", "revoke every client bound to this exchange key (EXCHANGE/NAME)")
	f.StringVar(&req.Venue, "venue", "", "revoke every client of this venue")
	f.BoolVar(&req.All, "all", false, "stop the gateway: refuse every request")
	f.StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	cmd.AddCommand(newPanicDrillCmd(a))
	return cmd
}
