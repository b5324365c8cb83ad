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
	// CancelOrders and DeleteKeys act at the venue once the credentials
	// are suspended (panic_venue.go).
	CancelOrders bool `json:"cancel_orders,omitempty"`
	DeleteKeys   bool `json:"delete_keys,omitempty"`
}

// panicResult is what a panic did.
type panicResult struct {
	Stopped bool     `json:"stopped,omitempty"`
	Revoked []string `json:"revoked"` // venue/client
	// Took is the server's time from receiving the panic to every
	// credential being refused.
	Took string `json:"took"`
	// Venue is the plan of the venue actions, which run after the answer;
	// follow them at GET /v1/panic/venue/{id} on the incident socket.
	Venue *venueRun `json:"venue,omitempty"`
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
	if req.CancelOrders {
		detail["cancel_orders"] = "true"
	}
	if req.DeleteKeys {
		detail["delete_keys"] = "true"
	}
	rcpt, aerr := srv.Audit.Append(context.WithoutCancel(ctx),
		audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "panic", Actor: actor, Detail: detail}})
	if req.CancelOrders || req.DeleteKeys {
		// After the suspension and its audit record: the venue actions
		// never delay containment, and their failures never undo it.
		run, verr := a.startVenueActions(ctx, srv, req, actor, rcpt.Seq)
		if verr != nil {
			serr = errors.Join(serr, fmt.Errorf("panic: venue actions not started: %w", verr))
		}
		res.Venue = run
	}
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
gets 503 until "keywarden gateway resume", which asks for an operator's TOTP
code). A panic itself needs no second factor. The panic is audited.

After the suspension is acknowledged, --cancel-orders cancels every open
order of the affected exchange keys at each configured venue (through the
venue's own cancel-all endpoints, signed with the key), and --delete-keys
then deletes those keys at the venue where its API allows it (as "keywarden
key revoke --at-venue" does) and disables them in keywarden. These venue
actions run in the server within ` + panicVenueTimeout.String() + `; each is audited and added
to the panic's incident, and a failure never lifts the suspension. The
command prints their results as they finish.`,
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
				fmt.Fprintln(a.stdout, "gateway stopped: every request is refused until `keywarden gateway resume --operator NAME --reason TEXT` (asks for the operator's TOTP code)")
			}
			for _, c := range res.Revoked {
				fmt.Fprintf(a.stdout, "revoked %s\n", c)
			}
			if !res.Stopped && len(res.Revoked) == 0 {
				fmt.Fprintln(a.stdout, "no active credential matched")
			}
			fmt.Fprintf(a.stdout, "suspension took %s (gateway %s)\n", took.Round(time.Microsecond), res.Took)
			if res.Venue == nil {
				return nil
			}
			return a.followVenueRun(cmd.Context(), res.Venue)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Client, "client", "", "revoke this client credential")
	f.StringVar(&req.Key, "key", "", "revoke every client bound to this exchange key (EXCHANGE/NAME)")
	f.StringVar(&req.Venue, "venue", "", "revoke every client of this venue")
	f.BoolVar(&req.All, "all", false, "stop the gateway: refuse every request")
	f.StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	f.BoolVar(&req.CancelOrders, "cancel-orders", false, "then cancel the affected keys' open orders at the venues")
	f.BoolVar(&req.DeleteKeys, "delete-keys", false, "then delete the affected keys at the venues where the API allows (and disable them here)")
	cmd.AddCommand(newPanicDrillCmd(a))
	return cmd
}

// followVenueRun prints a panic's venue actions as they finish.
func (a *app) followVenueRun(ctx context.Context, plan *venueRun) error {
	if len(plan.Steps) == 0 {
		fmt.Fprintln(a.stdout, "venue actions: no configured venue holds an affected key")
		return nil
	}
	inc := dialIncidents(a.cfg.DataDir)
	if inc == nil {
		return errors.New("the credentials are suspended, but the venue actions cannot be followed (no incident socket): see the audit log and the incident")
	}
	s := inc.s
	fmt.Fprintf(a.stdout, "venue actions: %d step(s) running in the server\n", len(plan.Steps))
	printed := make([]bool, len(plan.Steps))
	failed := 0
	deadline := time.Now().Add(panicVenueTimeout + 15*time.Second)
	for {
		var run venueRun
		if err := s.call(ctx, "GET", "/v1/panic/venue/"+plan.ID, nil, &run); err != nil {
			return fmt.Errorf("the credentials are suspended, but the venue actions could not be followed (see the audit log and the incident): %w", err)
		}
		for i, st := range run.Steps {
			if !st.Done || i >= len(printed) || printed[i] {
				continue
			}
			printed[i] = true
			mark, where := "ok  ", st.Key
			if !st.OK {
				mark = "FAIL"
				failed++
			}
			if st.Venue != "" {
				where = st.Venue + " " + st.Key
			}
			fmt.Fprintf(a.stdout, "  %s %-13s %s: %s\n", mark, st.Action, where, st.Result)
		}
		if run.Done {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the credentials are suspended, but the venue actions did not finish in time (see the audit log and the incident)")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if failed > 0 {
		return fmt.Errorf("the credentials are suspended, but %d venue action(s) failed: finish them at the venue by hand", failed)
	}
	return nil
}
