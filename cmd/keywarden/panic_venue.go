package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/bitget"
	"github.com/keywarden/keywarden/internal/exchange/bitmex"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/exchange/coinbase"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/gate"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/kraken"
	"github.com/keywarden/keywarden/internal/exchange/krakenfutures"
	"github.com/keywarden/keywarden/internal/exchange/kucoin"
	"github.com/keywarden/keywarden/internal/exchange/okx"
	"github.com/keywarden/keywarden/internal/rotation"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/vault"
)

// OrderCanceller cancels every open order of an exchange key at one venue,
// through the venue's own cancel-all endpoints (cancelall.go in each venue
// package), signed with the key through d.
type OrderCanceller interface {
	CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error)
}

// cancellers are the gateway venues whose open orders a panic can cancel.
var cancellers = map[string]OrderCanceller{
	"binance":        binance.SpotCanceller{},
	"binance-usdm":   binance.FuturesCanceller{},
	"okx":            okx.Canceller{},
	"bybit":          bybit.Canceller{},
	"deribit":        deribit.Canceller{},
	"kraken":         kraken.Canceller{},
	"kraken-futures": krakenfutures.Canceller{},
	"bitmex":         bitmex.Canceller{},
	"kucoin":         kucoin.Canceller{},
	"gate":           gate.Canceller{},
	"coinbase":       coinbase.Canceller{},
	"bitget":         bitget.Canceller{},
	"hyperliquid":    hyperliquid.Canceller{},
}

// panicVenueTimeout bounds all the venue actions of one panic.
const panicVenueTimeout = 60 * time.Second

// venueStep is one venue action of a panic and, once run, its result.
type venueStep struct {
	Action string `json:"action"` // cancel-orders or delete-key
	Venue  string `json:"venue,omitempty"`
	Key    string `json:"key"` // exchange/name
	Done   bool   `json:"done"`
	OK     bool   `json:"ok"`
	Result string `json:"result,omitempty"`
}

// venueRun is the venue actions of one panic, followed by the CLI.
type venueRun struct {
	ID    string      `json:"id"`
	Done  bool        `json:"done"`
	Steps []venueStep `json:"steps"`
}

// venueRuns keeps the runs of this process for an hour, so that the panic
// command can follow them after the suspension was acknowledged.
var venueRuns = &runRegistry{runs: map[string]*trackedRun{}}

type trackedRun struct {
	mu      sync.Mutex
	run     venueRun
	started time.Time
}

type runRegistry struct {
	mu   sync.Mutex
	runs map[string]*trackedRun
}

func (g *runRegistry) add(steps []venueStep) *trackedRun {
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := &trackedRun{run: venueRun{ID: hex.EncodeToString(b[:]), Steps: steps}, started: time.Now()}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, r := range g.runs {
		if time.Since(r.started) > time.Hour {
			delete(g.runs, id)
		}
	}
	g.runs[t.run.ID] = t
	return t
}

func (g *runRegistry) get(id string) (venueRun, bool) {
	g.mu.Lock()
	t, ok := g.runs[id]
	g.mu.Unlock()
	if !ok {
		return venueRun{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return venueRun{ID: t.run.ID, Done: t.run.Done, Steps: slices.Clone(t.run.Steps)}, true
}

func (t *trackedRun) set(i int, ok bool, result string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.run.Steps[i].Done, t.run.Steps[i].OK, t.run.Steps[i].Result = true, ok, result
}

func (t *trackedRun) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.run.Done = true
}

// venueKey is an exchange key at one configured venue.
type venueKey struct {
	venue string // gateway venue name
	ex    string
	name  string
}

// venueTargets lists the (venue, exchange key) pairs a panic acts on at
// the venue: --client its key at its venue; --key that key at every
// configured venue of its exchange; --venue and --all every key bound to a
// client (active or not) of that venue, or of any configured venue.
func venueTargets(ctx context.Context, srv *server.Server, rs []server.Route, r panicRequest) ([]venueKey, error) {
	configured := map[string]bool{}
	for _, rt := range rs {
		configured[rt.Def.Name] = true
	}
	seen := map[venueKey]bool{}
	var out []venueKey
	add := func(venue, key string) {
		k := venueKey{venue: venue, ex: exchangeOf(venue), name: key}
		if configured[venue] && key != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if r.Key != "" {
		ex, name, _ := strings.Cut(r.Key, "/")
		for _, rt := range rs {
			if rt.Def.Exchange == ex {
				add(rt.Def.Name, name)
			}
		}
		return out, nil
	}
	all, err := srv.Clients.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	for _, c := range all {
		switch {
		case r.Client != "" && c.ID == r.Client, r.Venue != "" && c.Venue == r.Venue, r.All:
			add(c.Venue, c.Key)
		}
	}
	return out, nil
}

// planVenueSteps orders the steps: every cancel first (a deleted key can
// no longer cancel), then one deletion per exchange key.
func planVenueSteps(targets []venueKey, req panicRequest) []venueStep {
	var steps []venueStep
	if req.CancelOrders {
		for _, t := range targets {
			steps = append(steps, venueStep{Action: "cancel-orders", Venue: t.venue, Key: t.ex + "/" + t.name})
		}
	}
	if req.DeleteKeys {
		seen := map[string]bool{}
		for _, t := range targets {
			if id := t.ex + "/" + t.name; !seen[id] {
				seen[id] = true
				steps = append(steps, venueStep{Action: "delete-key", Key: id})
			}
		}
	}
	return steps
}

// startVenueActions plans the panic's venue actions and runs them in the
// background, bounded by panicVenueTimeout; it returns the run's id and
// plan at once. Each step is audited (event "panic.venue", which the
// incident manager puts on the panic's incident timeline). A failure
// never undoes the suspension.
func (a *app) startVenueActions(ctx context.Context, srv *server.Server, req panicRequest, actor string, panicSeq uint64) (*venueRun, error) {
	rs, err := routes(a.cfg.Venues)
	if err != nil {
		return nil, err
	}
	targets, err := venueTargets(ctx, srv, rs, req)
	if err != nil {
		return nil, err
	}
	steps := planVenueSteps(targets, req)
	t := venueRuns.add(steps)
	plan := t.run
	plan.Steps = slices.Clone(steps)
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), panicVenueTimeout)
	a.bg.Go(func() {
		defer cancel()
		defer t.finish()
		a.runVenueSteps(bg, srv, rs, req, actor, panicSeq, t)
	})
	return &plan, nil
}

func (a *app) runVenueSteps(ctx context.Context, srv *server.Server, rs []server.Route, req panicRequest, actor string, panicSeq uint64, t *trackedRun) {
	byName := map[string]server.Route{}
	for _, rt := range rs {
		byName[rt.Def.Name] = rt
	}
	t.mu.Lock()
	steps := slices.Clone(t.run.Steps)
	t.mu.Unlock()
	for i, s := range steps {
		var ok bool
		var result string
		var cancelled int
		ex, name, _ := strings.Cut(s.Key, "/")
		switch s.Action {
		case "cancel-orders":
			rep, err := a.cancelAtVenue(ctx, srv, byName[s.Venue], ex, name)
			cancelled = rep.Cancelled
			if errors.Is(err, vault.ErrDisabled) {
				// Disabled before this panic (or by an earlier one that
				// deleted it at the venue): keywarden no longer signs with it.
				ok, result = true, "skipped: the key is disabled in keywarden, which no longer signs with it"
			} else if err != nil {
				result = err.Error()
				if rep.Cancelled > 0 {
					result = fmt.Sprintf("%d open orders cancelled, then: %s", rep.Cancelled, result)
				}
			} else {
				ok, result = true, fmt.Sprintf("%d open orders cancelled", rep.Cancelled)
				if len(rep.Scopes) > 0 {
					result += " (" + strings.Join(rep.Scopes, ", ") + ")"
				}
			}
		case "delete-key":
			if err := a.deleteAtVenue(ctx, srv, ex, name, "panic: "+req.Reason); errors.Is(err, vault.ErrDisabled) {
				ok, result = true, "skipped: the key is already disabled in keywarden"
			} else if err != nil {
				result = err.Error()
			} else {
				ok, result = true, "key disabled in keywarden and deleted at the venue"
			}
		}
		if ctx.Err() != nil && !ok {
			result = "not finished within " + panicVenueTimeout.String() + ": " + result
		}
		t.set(i, ok, result)
		detail := map[string]string{"action": s.Action, "key": s.Key, "ok": strconv.FormatBool(ok), "result": result,
			"panic_seq": strconv.FormatUint(panicSeq, 10)}
		if s.Venue != "" {
			detail["venue"] = s.Venue
		}
		if s.Action == "cancel-orders" {
			detail["cancelled"] = strconv.Itoa(cancelled)
		}
		if _, err := srv.Audit.Append(context.WithoutCancel(ctx), audit.Record{Type: audit.TypeEvent,
			Event: &audit.Event{Kind: "panic.venue", Actor: actor, Detail: detail}}); err != nil {
			a.log.Error("panic: venue action not audited", "action", s.Action, "key", s.Key, "err", err)
		}
		lvl := a.log.Warn
		if !ok {
			lvl = a.log.Error
		}
		lvl("panic: venue action", "action", s.Action, "venue", s.Venue, "key", s.Key, "ok", ok, "result", result)
	}
}

// cancelAtVenue cancels every open order of exchange key ex/name at the
// venue of route rt.
func (a *app) cancelAtVenue(ctx context.Context, srv *server.Server, rt server.Route, ex, name string) (exchange.CancelReport, error) {
	c, ok := cancellers[rt.Def.Name]
	if !ok {
		return exchange.CancelReport{}, fmt.Errorf("keywarden cannot cancel orders at %s through its API: cancel them at the venue by hand", rt.Def.Name)
	}
	u := rt.Upstream
	if u == nil {
		var err error
		if u, err = url.Parse(rt.Def.Upstream); err != nil {
			return exchange.CancelReport{}, err
		}
	}
	cred, err := srv.Vault.Credential(ctx, ex, name)
	if err != nil {
		return exchange.CancelReport{}, fmt.Errorf("key %s/%s: %w", ex, name, err)
	}
	d := &exchange.HTTPDoer{Venue: rt.Def.Build(u), Client: a.httpClient()}
	return c.CancelAll(ctx, d, cred)
}

// deleteAtVenue disables exchange key ex/name in keywarden and deletes it
// at the venue through the venue's key manager, as "keywarden key revoke
// --at-venue" does. The credential is copied before the key is disabled:
// disabling zeroes the vault's cached copy.
func (a *app) deleteAtVenue(ctx context.Context, srv *server.Server, ex, name, reason string) error {
	c, err := srv.Vault.Credential(ctx, ex, name)
	if err != nil {
		return fmt.Errorf("key %s/%s: %w", ex, name, err)
	}
	cred := detachCredential(c)
	defer zeroDetached(cred)
	if _, err := srv.Vault.DisableKey(ctx, ex, name, reason); err != nil {
		return fmt.Errorf("disable %s/%s: %w", ex, name, err)
	}
	ven, err := a.venueFor(ex)
	if err != nil {
		return fmt.Errorf("the key is disabled in keywarden but could not be deleted at %s (delete it there by hand): %w", ex, err)
	}
	hv := &rotation.HTTPVenue{Venue: ven, Client: a.httpClient()}
	if err := hv.DeleteKey(ctx, cred, rotation.KeyID(ex, cred), exchange.KeySpec{Passphrase: cred.Passphrase}); err != nil {
		return fmt.Errorf("the key is disabled in keywarden but could not be deleted at %s (delete it there by hand): %w", ex, err)
	}
	return nil
}

// detachCredential copies c with its own secret bytes.
func detachCredential(c *exchange.Credential) *exchange.Credential {
	cp := *c
	cp.Secret = exchange.Secret(bytes.Clone(c.Secret))
	cp.Passphrase = exchange.Secret(bytes.Clone(c.Passphrase))
	if k, ok := c.PrivateKey.(ed25519.PrivateKey); ok {
		cp.PrivateKey = ed25519.PrivateKey(bytes.Clone(k))
	}
	return &cp
}

func zeroDetached(c *exchange.Credential) {
	c.Secret.Zero()
	c.Passphrase.Zero()
	if k, ok := c.PrivateKey.(ed25519.PrivateKey); ok {
		clear(k)
	}
}

// handleVenueRun serves GET /v1/panic/venue/{id}: how a panic's venue
// actions are going.
func handleVenueRun(w http.ResponseWriter, r *http.Request) {
	run, ok := venueRuns.get(r.PathValue("id"))
	if !ok {
		writeControl(w, nil, errors.New("no such panic venue run (they are kept an hour, by the replica that ran them)"))
		return
	}
	writeControl(w, run, nil)
}
