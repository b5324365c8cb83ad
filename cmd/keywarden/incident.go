package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// incidentSocket is the Unix socket (mode 0600, in the data directory)
// through which the incident commands reach a running serve.
const incidentSocket = "incident.sock"

// Automatic responses to a critical alert ([alerts] on_critical).
const (
	respondNone          = "none"
	respondSuspendClient = "suspend-client"
	respondPanicKey      = "panic-key"
)

// serveIncidents are the incidents of a running serve: the manager, and the
// server the automatic responses act on once bind has named it.
type serveIncidents struct {
	a    *app
	mgr  *incident.Manager
	srv  atomic.Pointer[server.Server]
	resp *responder // nil: no automatic response configured (responses.go)
	// auditDir is the audit log the evidence bundles read (set by start).
	auditDir atomic.Pointer[string]
}

func (a *app) newServeIncidents(db store.Store) (*serveIncidents, error) {
	s := &serveIncidents{a: a}
	resp, err := a.newResponder(s.srv.Load)
	if err != nil {
		return nil, err
	}
	o := incident.Options{Store: db, Logger: a.log.With("component", "incident"), OnPanic: s.onPanic}
	if resp != nil {
		o.Respond = resp.respond
	}
	s.mgr = incident.New(o)
	if resp != nil {
		resp.mgr, s.resp = s.mgr, resp
	}
	return s, nil
}

// start points the automatic responses at srv, records alerts until ctx
// ends and serves the incident commands on incident.sock.
func (s *serveIncidents) start(ctx context.Context, srv *server.Server, auditDir string) (io.Closer, error) {
	s.srv.Store(srv)
	s.auditDir.Store(&auditDir)
	s.a.bg.Go(func() { s.mgr.Run(ctx) })
	if s.resp != nil {
		s.a.bg.Go(func() { s.resp.work(ctx) })
	}
	return s.a.startIncidentControl(s, auditDir)
}

// onAlert is the monitor's alert hook: counted in the metrics, recorded in
// incidents.
func (s *serveIncidents) onAlert(met *serveMetrics) func(monitor.Alert) {
	return func(al monitor.Alert) {
		met.CountAlert(al.Rule, string(al.Severity))
		s.record(al)
	}
}

// sink is the audit destination through which panics reach incidents.
func (s *serveIncidents) sink() server.NamedSink {
	return server.NamedSink{Name: "incidents", Sink: s.mgr}
}

// configDigest is the SHA-256 of the configuration file in force.
func (a *app) configDigest() string {
	if a.cfg.path == "" {
		return "no configuration file (defaults and environment)"
	}
	b, err := os.ReadFile(a.cfg.path)
	if err != nil {
		return "unreadable configuration file"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The evidence signing key: an Ed25519 seed sealed in the vault, created
// on first use. It is not the audit checkpoint key: the two sign different
// things for different readers (checkpoints are checked by keywarden's own
// audit verify, bundles by whoever receives them), so each can be handed
// out, pinned or replaced on its own.
const (
	evidenceKind  = "evidence"
	evidenceKeyID = "bundle-ed25519"
)

// evidenceKey returns the evidence signing key from the unsealed vault v,
// creating it the first time.
func evidenceKey(ctx context.Context, v *vault.Vault) (ed25519.PrivateKey, error) {
	seed, err := v.Secret(ctx, evidenceKind, evidenceKeyID)
	if errors.Is(err, vault.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := v.PutSecret(ctx, evidenceKind, evidenceKeyID, seed); err != nil {
			clear(seed)
			return nil, fmt.Errorf("evidence key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("evidence key: %w", err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("evidence key: the stored seed is not an Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// incidentOps is what the incident commands need, from a running serve
// (socketIncidents) or from the store directly (localIncidents).
type incidentOps interface {
	List(ctx context.Context) ([]incident.Incident, error)
	Get(ctx context.Context, id string) (*incident.Incident, error)
	Note(ctx context.Context, r incidentChange) (*incident.Incident, error)
	Check(ctx context.Context, r incidentChange) (*incident.Incident, error)
	Close(ctx context.Context, r incidentChange) (*incident.Incident, error)
	Export(ctx context.Context, id string) (*incidentBundle, error)
}

type incidentChange struct {
	ID    string `json:"id"`
	Actor string `json:"actor"`
	Text  string `json:"text,omitempty"`
	Item  int    `json:"item,omitempty"`
}

type incidentBundle struct {
	Bundle   []byte            `json:"bundle"`
	Manifest incident.Manifest `json:"manifest"`
}

// managerOps serves incidentOps from a Manager.
type managerOps struct {
	mgr      *incident.Manager
	evidence func(ctx context.Context) (incident.Evidence, error)
}

func (o managerOps) List(ctx context.Context) ([]incident.Incident, error) { return o.mgr.List(ctx) }
func (o managerOps) Get(ctx context.Context, id string) (*incident.Incident, error) {
	return o.mgr.Get(ctx, id)
}
func (o managerOps) Note(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	return o.mgr.Note(ctx, r.ID, r.Actor, r.Text)
}
func (o managerOps) Check(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	return o.mgr.Check(ctx, r.ID, r.Item, r.Actor)
}
func (o managerOps) Close(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	return o.mgr.Close(ctx, r.ID, r.Actor, r.Text)
}
func (o managerOps) Export(ctx context.Context, id string) (*incidentBundle, error) {
	in, err := o.mgr.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ev, err := o.evidence(ctx)
	if err != nil {
		return nil, err
	}
	defer clear(ev.SignKey)
	var buf bytes.Buffer
	man, err := incident.Export(&buf, in, ev)
	if err != nil {
		return nil, err
	}
	return &incidentBundle{Bundle: buf.Bytes(), Manifest: man}, nil
}

// evidence is what a running serve bundles: its audit log verified against
// the checkpoint key, the configuration digest, and the evidence signing key.
func (s *serveIncidents) evidence(ctx context.Context) (incident.Evidence, error) {
	ev := incident.Evidence{ConfigDigest: s.a.configDigest()}
	if dir := s.auditDir.Load(); dir != nil {
		ev.AuditDir = *dir
	}
	srv := s.srv.Load()
	if srv == nil {
		return ev, errors.New("the server is not running yet: no evidence signing key")
	}
	pub, err := server.AuditPublicKey(ctx, srv.Vault)
	if err != nil {
		return ev, err
	}
	ev.AuditKey = pub
	ev.SignKey, err = evidenceKey(ctx, srv.Vault)
	return ev, err
}

// startIncidentControl serves the incident commands on incident.sock.
func (a *app) startIncidentControl(s *serveIncidents, auditDir string) (io.Closer, error) {
	path := filepath.Join(a.cfg.DataDir, incidentSocket)
	_ = os.Remove(path) // stale: the data directory lock proves nobody serves it
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("incident socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("incident socket: %w", err)
	}
	ops := managerOps{mgr: s.mgr, evidence: s.evidence}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/incidents", func(w http.ResponseWriter, r *http.Request) {
		all, err := ops.List(r.Context())
		writeControl(w, all, err)
	})
	mux.HandleFunc("GET /v1/incidents/{id}", func(w http.ResponseWriter, r *http.Request) {
		in, err := ops.Get(r.Context(), r.PathValue("id"))
		writeControl(w, in, err)
	})
	change := func(fn func(context.Context, incidentChange) (*incident.Incident, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var c incidentChange
			if !decodeControl(w, r, &c) {
				return
			}
			in, err := fn(r.Context(), c)
			writeControl(w, in, err)
		}
	}
	mux.HandleFunc("POST /v1/incidents/note", change(ops.Note))
	mux.HandleFunc("POST /v1/incidents/check", change(ops.Check))
	mux.HandleFunc("POST /v1/incidents/close", change(ops.Close))
	// A panic's venue actions, followed by the panic command.
	mux.HandleFunc("GET /v1/panic/venue/{id}", handleVenueRun)
	mux.HandleFunc("GET /v1/evidence/public-key", func(w http.ResponseWriter, r *http.Request) {
		srv := s.srv.Load()
		if srv == nil {
			writeControl(w, nil, errors.New("the server is not running yet"))
			return
		}
		key, err := evidenceKey(r.Context(), srv.Vault)
		if err != nil {
			writeControl(w, nil, err)
			return
		}
		defer clear(key)
		writeControl(w, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)), nil)
	})
	mux.HandleFunc("POST /v1/incidents/export", func(w http.ResponseWriter, r *http.Request) {
		var c incidentChange
		if !decodeControl(w, r, &c) {
			return
		}
		b, err := ops.Export(r.Context(), c.ID)
		writeControl(w, b, err)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return closerFunc(func() error {
		err := hs.Close()
		_ = os.Remove(path)
		return err
	}), nil
}

// socketIncidents implements incidentOps over a running serve's socket.
type socketIncidents struct{ s *socketOps }

func dialIncidents(dataDir string) *socketIncidents {
	path := filepath.Join(dataDir, incidentSocket)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &socketIncidents{s: &socketOps{hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}}
}

func (o *socketIncidents) List(ctx context.Context) ([]incident.Incident, error) {
	var out []incident.Incident
	return out, o.s.call(ctx, "GET", "/v1/incidents", nil, &out)
}
func (o *socketIncidents) Get(ctx context.Context, id string) (*incident.Incident, error) {
	var out incident.Incident
	return &out, o.s.call(ctx, "GET", "/v1/incidents/"+url.PathEscape(id), nil, &out)
}
func (o *socketIncidents) Note(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	var out incident.Incident
	return &out, o.s.call(ctx, "POST", "/v1/incidents/note", r, &out)
}
func (o *socketIncidents) Check(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	var out incident.Incident
	return &out, o.s.call(ctx, "POST", "/v1/incidents/check", r, &out)
}
func (o *socketIncidents) Close(ctx context.Context, r incidentChange) (*incident.Incident, error) {
	var out incident.Incident
	return &out, o.s.call(ctx, "POST", "/v1/incidents/close", r, &out)
}
func (o *socketIncidents) Export(ctx context.Context, id string) (*incidentBundle, error) {
	var out incidentBundle
	return &out, o.s.call(ctx, "POST", "/v1/incidents/export", incidentChange{ID: id}, &out)
}

// incidentOps returns the running serve's incidents, or the store's when
// no serve runs; done releases the store.
func (a *app) incidentOps(cmd *cobra.Command, pinnedKey string) (incidentOps, func(), error) {
	if s := dialIncidents(a.cfg.DataDir); s != nil {
		return s, func() {}, nil
	}
	ctx := cmd.Context()
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return nil, nil, err
	}
	ops := managerOps{mgr: incident.New(incident.Options{Store: db, Logger: a.log}),
		evidence: func(ctx context.Context) (incident.Evidence, error) {
			ev := incident.Evidence{AuditDir: a.auditDir(), ConfigDigest: a.configDigest()}
			if pinnedKey != "" {
				pub, err := parsePublicKey(pinnedKey)
				if err != nil {
					return ev, err
				}
				ev.AuditKey = pub
			}
			// The bundle is signed with the evidence key, sealed in the
			// vault: unseal it for this export only.
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return ev, fmt.Errorf("export: the evidence signing key is in the vault: %w", err)
			}
			defer v.Seal()
			key, err := evidenceKey(ctx, v)
			ev.SignKey = key
			return ev, err
		}}
	return ops, func() { db.Close() }, nil
}

// actorName is who the CLI records as the author of a change.
func actorName(given string) string {
	if given != "" {
		return given
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "os:" + u.Username
	}
	return "cli"
}

func newIncidentCmd(a *app) *cobra.Command {
	cmd := group("incident", "List, annotate, close and export incidents")
	var actor, pinned, out string
	var asJSON bool
	withOps := func(fn func(cmd *cobra.Command, ops incidentOps, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			ops, done, err := a.incidentOps(cmd, pinned)
			if err != nil {
				return err
			}
			defer done()
			return fn(cmd, ops, args)
		}
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first",
		Args:  noArgs,
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, _ []string) error {
			all, err := ops.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(all)
			}
			if len(all) == 0 {
				fmt.Fprintln(a.stdout, "no incidents")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tOPENED\tCHECKLIST\tTITLE")
			for _, in := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Status, in.Severity, in.Opened.UTC().Format(time.RFC3339), in.Progress(), in.Title)
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an incident's timeline and checklist",
		Args:  cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			in, err := ops.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(in)
			}
			printIncident(a.stdout, in)
			return nil
		}),
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	note := &cobra.Command{
		Use:   "note ID TEXT",
		Short: "Add a note to an incident's timeline",
		Args:  cobra.ExactArgs(2),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			in, err := ops.Note(cmd.Context(), incidentChange{ID: args[0], Actor: actorName(actor), Text: args[1]})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "noted in %s (%d timeline entries)\n", in.ID, len(in.Timeline))
			return nil
		}),
	}
	check := &cobra.Command{
		Use:   "check ID ITEM",
		Short: "Mark a checklist item (as numbered by show) done",
		Args:  cobra.ExactArgs(2),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("item %q: want a number", args[1])
			}
			in, err := ops.Check(cmd.Context(), incidentChange{ID: args[0], Actor: actorName(actor), Item: n})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "checklist of %s: %s done\n", in.ID, in.Progress())
			return nil
		}),
	}
	closeCmd := &cobra.Command{
		Use:   "close ID SUMMARY",
		Short: "Close an incident with a summary",
		Args:  cobra.ExactArgs(2),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			in, err := ops.Close(cmd.Context(), incidentChange{ID: args[0], Actor: actorName(actor), Text: args[1]})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "closed %s; checklist %s done\n", in.ID, in.Progress())
			return nil
		}),
	}
	export := &cobra.Command{
		Use:   "export ID",
		Short: "Write an incident's evidence bundle (tar.gz)",
		Long: `export writes a tar.gz holding the incident record, its alerts, the audit
records of its window as stored (with the result of verifying the whole audit
chain), the SHA-256 of the configuration and a manifest with the SHA-256 of
every file, signed with the evidence key sealed in the vault (manifest.sig;
the public key is bundled as evidence.pub and printed by "keywarden incident
public-key"). Check a bundle with "keywarden incident verify-bundle". With a
running serve the bundle is built and signed there; otherwise the vault is
unsealed for the export, and the audit chain is verified against
--public-key when given, or without checkpoint signatures.`,
		Args: cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			b, err := ops.Export(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			path := out
			if path == "" {
				path = args[0] + ".tar.gz"
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if _, err := f.Write(b.Bundle); err != nil {
				f.Close()
				return fmt.Errorf("export: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			sum := sha256.Sum256(b.Bundle)
			fmt.Fprintf(a.stdout, "wrote %s (%d bytes, sha256 %s): %d files, %d audit records\n", path, len(b.Bundle),
				hex.EncodeToString(sum[:]), len(b.Manifest.Files)+1, b.Manifest.AuditRecords)
			return nil
		}),
	}
	export.Flags().StringVar(&out, "out", "", "bundle file to create (default ID.tar.gz)")
	export.Flags().StringVar(&pinned, "public-key", "", "audit checkpoint public key, when no serve is running (base64, hex or a file)")
	for _, c := range []*cobra.Command{note, check, closeCmd} {
		c.Flags().StringVar(&actor, "actor", "", "who is acting (default the OS user)")
	}
	var format string
	report := &cobra.Command{
		Use:   "report ID",
		Short: "Write a post-mortem draft of an incident (Markdown or HTML)",
		Long: `report writes a post-mortem draft of the incident to stdout (or --out): its
summary, the affected credentials and keys, the timeline, the response
checklist with who did what and when, the audited calls of the affected
subjects in the incident's window (from an hour before it opened to ten
minutes after it closed), and the sections the team fills in by hand.`,
		Args: cobra.ExactArgs(1),
		RunE: withOps(func(cmd *cobra.Command, ops incidentOps, args []string) error {
			if format != "md" && format != "html" {
				return fmt.Errorf("report: format %q: want md or html", format)
			}
			in, err := ops.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			now := time.Now()
			calls, err := incident.Calls(a.auditDir(), in, 0, 0, now)
			if err != nil {
				return err
			}
			w := a.stdout
			if out != "" {
				f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				defer f.Close()
				w = f
			}
			return incident.WriteReport(w, in, calls, format, now)
		}),
	}
	report.Flags().StringVar(&format, "format", "md", "md or html")
	report.Flags().StringVar(&out, "out", "", "file to create instead of writing to stdout")
	cmd.AddCommand(list, show, note, check, closeCmd, export, report, newVerifyBundleCmd(a), newEvidenceKeyCmd(a))
	return cmd
}

func newVerifyBundleCmd(a *app) *cobra.Command {
	var pinned string
	cmd := &cobra.Command{
		Use:   "verify-bundle FILE",
		Short: "Check an evidence bundle's file hashes and manifest signature",
		Long: `verify-bundle checks every file of an evidence bundle (keywarden incident
export, or a panic snapshot) against the SHA-256 and size in its manifest,
that no file is missing or added, and the Ed25519 signature over the
manifest. With --public-key (base64, hex or a file; see "keywarden incident
public-key") the signature must be by that key, which proves where the
bundle came from; without it the bundle's own evidence.pub is used, which
proves only that the bundle is intact. It names every check that fails and
exits non-zero. It needs no vault and no running serve.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pub ed25519.PublicKey
			if pinned != "" {
				k, err := parsePublicKey(pinned)
				if err != nil {
					return err
				}
				pub = k
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("verify-bundle: %w", err)
			}
			defer f.Close()
			c, err := incident.VerifyBundle(f, pub)
			if c == nil {
				return err
			}
			for _, p := range c.Problems {
				fmt.Fprintf(a.stdout, "FAIL %s\n", p)
			}
			if err != nil {
				return fmt.Errorf("%s: %d check(s) failed", args[0], len(c.Problems))
			}
			how := "the bundle's own public key (intact; pin a key with --public-key to prove its origin)"
			if c.Pinned {
				how = "the pinned public key"
			}
			fmt.Fprintf(a.stdout, "OK %s: incident %s, %d files match the manifest, signature verified with %s %s\n",
				args[0], c.Incident, len(c.Files), how, base64.StdEncoding.EncodeToString(c.PublicKey))
			return nil
		},
	}
	cmd.Flags().StringVar(&pinned, "public-key", "", "evidence public key the signature must be by (base64, hex or a file)")
	return cmd
}

func newEvidenceKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "public-key",
		Short: "Print the evidence signing public key (base64), to pin it for verify-bundle",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if s := dialIncidents(a.cfg.DataDir); s != nil {
				var pub string
				if err := s.s.call(ctx, "GET", "/v1/evidence/public-key", nil, &pub); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, pub)
				return nil
			}
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			defer v.Seal()
			key, err := evidenceKey(ctx, v)
			if err != nil {
				return err
			}
			defer clear(key)
			fmt.Fprintln(a.stdout, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
			return nil
		},
	}
}

func printIncident(w io.Writer, in *incident.Incident) {
	fmt.Fprintf(w, "%s  %s  severity %s\n%s\n", in.ID, strings.ToUpper(in.Status), in.Severity, in.Title)
	fmt.Fprintf(w, "opened %s", in.Opened.UTC().Format(time.RFC3339))
	if !in.Closed.IsZero() {
		fmt.Fprintf(w, ", closed %s", in.Closed.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if len(in.Subjects) > 0 {
		fmt.Fprintf(w, "subjects: %s\n", strings.Join(in.Subjects, ", "))
	}
	if in.Summary != "" {
		fmt.Fprintf(w, "summary: %s\n", in.Summary)
	}
	fmt.Fprintln(w, "\ntimeline:")
	for _, e := range in.Timeline {
		who := ""
		if e.Actor != "" {
			who = " [" + e.Actor + "]"
		}
		fmt.Fprintf(w, "  %s  %-8s%s %s\n", e.Time.UTC().Format(time.RFC3339), e.Kind, who, e.Text)
	}
	fmt.Fprintf(w, "\nchecklist (%s):\n", in.Progress())
	for i, it := range in.Checklist {
		mark := " "
		if it.Done {
			mark = "x"
		}
		fmt.Fprintf(w, "  %2d [%s] %-11s %s", i+1, mark, it.Phase, it.Text)
		if it.Done {
			fmt.Fprintf(w, " (%s)", it.By)
		}
		fmt.Fprintln(w)
	}
}

// newPanicDrillCmd is `keywarden panic drill`: a rehearsal on a private
// keywarden and Binance simulator, never on the configured one.
func newPanicDrillCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "drill",
		Short: "Rehearse a panic against a simulator and score time to containment",
		Long: `drill starts a private keywarden (memory store, new vault, temporary audit log)
in front of the Binance simulator, issues a bot credential and checks that it
trades; then panics the whole gateway through the same path as "keywarden
panic --all", checks that the next request is refused and that an incident
was recorded from the audit log, lifts the panic, checks that requests pass
again and closes the incident. It touches neither the configured data
directory nor any real venue.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.panicDrill(cmd.Context()) },
	}
}

func (a *app) panicDrill(ctx context.Context) error {
	out := a.stdout
	step := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	dir, err := os.MkdirTemp("", "keywarden-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	kit := sim.NewKit()
	def, err := venues.ByName("binance")
	if err != nil {
		return err
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: def.Simulator(kit), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()
	simURL := mustURL("http://" + simLn.Addr().String())

	db := memory.New()
	v, err := vault.New(vault.Options{Store: db, Logger: a.log})
	if err != nil {
		return err
	}
	pass := make([]byte, 32)
	if _, err := rand.Read(pass); err != nil {
		return err
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: pass, KDF: &kdf}); err != nil {
		return err
	}
	clear(pass)
	defer v.Seal()
	exKey, exSecret := "drill"+randHex(20), randHex(32)
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true}})
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "drill", APIKey: exKey,
		Secret: exchange.Secret(exSecret), Scopes: []string{"read", "trade"}}); err != nil {
		return err
	}
	pols, err := policy.CompileAll(map[string]policy.Definition{"drill": {Scopes: []string{"read", "trade"}}})
	if err != nil {
		return err
	}
	mgr := incident.New(incident.Options{Store: db, Logger: a.log})
	srv, err := server.New(ctx, server.Options{Store: db, Vault: v, Policies: pols,
		Routes: []server.Route{{Def: def, Upstream: simURL}}, AuditDir: filepath.Join(dir, "audit"),
		UpstreamTimeout: 5 * time.Second, Logger: a.log,
		AuditSinks: []server.NamedSink{{Name: "incidents", Sink: mgr}}})
	if err != nil {
		return err
	}
	defer srv.Close()
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gw := &http.Server{Handler: srv.Gateway, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = gw.Serve(gwLn) }()
	defer gw.Close()
	base := "http://" + gwLn.Addr().String()
	iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "drill", Policy: "drill", TTL: time.Hour, Format: def.Format})
	if err != nil {
		return err
	}
	bot := &demoBot{base: base + "/binance", venue: def.Build(mustURL(base)),
		cred: &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}, hc: &http.Client{Timeout: 10 * time.Second}}
	call := func() (int, error) {
		code, _, err := bot.call(ctx, "GET", "/api/v3/account", "")
		return code, err
	}
	step("panic drill: private keywarden at %s in front of the Binance simulator at %s", base, simURL)
	if code, err := call(); err != nil || code != http.StatusOK {
		return fmt.Errorf("drill: the bot's first call = %d (%v), want 200", code, err)
	}
	step("  1. the bot trades: GET /api/v3/account → 200")

	start := time.Now()
	res, err := a.runPanic(ctx, srv, panicRequest{All: true, Reason: "panic drill"}, "drill", start)
	if err != nil {
		return fmt.Errorf("drill: panic: %w", err)
	}
	code, err := call()
	contained := time.Since(start)
	if err != nil || code == http.StatusOK {
		return fmt.Errorf("drill: the call after the panic = %d (%v), want a refusal", code, err)
	}
	step("  2. panic (gateway stopped in %s); the next call is refused with %d; time to containment %s",
		res.Took, code, contained.Round(time.Microsecond))

	var rec *incident.Incident
	for deadline := time.Now().Add(15 * time.Second); rec == nil; {
		all, err := mgr.List(ctx)
		if err != nil {
			return err
		}
		for i := range all {
			for _, e := range all[i].Timeline {
				if e.Kind == incident.KindPanic {
					rec = &all[i]
				}
			}
		}
		if rec == nil {
			if time.Now().After(deadline) {
				return errors.New("drill: no incident recorded the panic within 15s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	step("  3. incident %s opened from the audit log %s after the panic", rec.ID, time.Since(start).Round(time.Millisecond))

	srv.Gateway.Resume()
	if _, err := srv.Audit.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "gateway.resume", Actor: "drill"}}); err != nil {
		return err
	}
	if code, err := call(); err != nil || code != http.StatusOK {
		return fmt.Errorf("drill: the call after lifting the panic = %d (%v), want 200", code, err)
	}
	recovered := time.Since(start)
	step("  4. panic lifted; the bot trades again (%s after the panic)", recovered.Round(time.Millisecond))
	if _, err := mgr.Close(ctx, rec.ID, "drill", "panic drill: contained in "+contained.Round(time.Microsecond).String()); err != nil {
		return err
	}
	step("drill passed: time to containment %s, incident recorded, recovery %s", contained.Round(time.Microsecond), recovered.Round(time.Millisecond))
	return nil
}
