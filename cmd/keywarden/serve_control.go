package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/venues"
)

// The control socket lets the keywarden CLI manage a running gateway's
// client credentials and panic switch: the data directory is locked by the
// server, and a revocation must reach the process that serves requests. It
// is a Unix socket in the data directory, mode 0600: only the owner of the
// data directory can use it.
const controlSocket = "control.sock"

// issueRequest asks for a client credential.
type issueRequest struct {
	Venue     string   `json:"venue"`
	Key       string   `json:"key"`
	Policy    string   `json:"policy"`
	TTL       string   `json:"ttl"`
	CIDRs     []string `json:"cidrs,omitempty"`
	Label     string   `json:"label,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	PublicKey string   `json:"public_key,omitempty"`
	// CertSHA256 binds the credential to a TLS client certificate.
	CertSHA256 string `json:"cert_sha256,omitempty"`
	// WrapTTL, when set, answers a single-use wrapping token valid this
	// long instead of the secret.
	WrapTTL string `json:"wrap_ttl,omitempty"`
}

// issuedCredential is shown to the operator once. Secret fields are plain
// strings on purpose: this is the one place they are printed.
type issuedCredential struct {
	client.Client
	SecretText     string    `json:"secret,omitempty"`
	PassphraseText string    `json:"passphrase,omitempty"`
	WrapToken      string    `json:"wrap_token,omitempty"`
	WrapExpires    time.Time `json:"wrap_expires,omitzero"`
}

type idRequest struct {
	Venue     string `json:"venue"`
	ID        string `json:"id"`
	PublicKey string `json:"public_key,omitempty"`
}

// gatewayStatus is what `keywarden gateway status` shows.
type gatewayStatus struct {
	State      string                     `json:"state"`
	Reason     string                     `json:"reason,omitempty"`
	RateLimits map[string]rateLimitStatus `json:"rate_limits"`
}

type rateLimitStatus struct {
	Used   int    `json:"used"`
	Limit  int    `json:"limit"`
	Window string `json:"window"`
}

type controlError struct {
	Error string `json:"error"`
}

// clientOps is what the client commands need, served either by a running
// gateway over the control socket or by the data directory directly.
type clientOps interface {
	Issue(ctx context.Context, r issueRequest) (*issuedCredential, error)
	List(ctx context.Context) ([]client.Client, error)
	Revoke(ctx context.Context, r idRequest) error
	Rotate(ctx context.Context, r idRequest) (*issuedCredential, error)
}

// registryOps implements clientOps over a client registry.
type registryOps struct {
	reg      *client.Registry
	policies map[string]bool
	keys     func(ctx context.Context, exchange, name string) error
}

func (o registryOps) Issue(ctx context.Context, r issueRequest) (*issuedCredential, error) {
	def, err := venues.ByName(r.Venue)
	if err != nil {
		return nil, err
	}
	if !o.policies[r.Policy] {
		return nil, fmt.Errorf("no policy named %q in the configuration", r.Policy)
	}
	if err := o.keys(ctx, def.Exchange, r.Key); err != nil {
		return nil, fmt.Errorf("exchange key %s/%s: %w", def.Exchange, r.Key, err)
	}
	ttl, err := time.ParseDuration(r.TTL)
	if err != nil || ttl <= 0 {
		return nil, fmt.Errorf("ttl %q: want a positive duration like 24h", r.TTL)
	}
	var cidrs []netip.Prefix
	if cidrs, err = parsePrefixes(r.CIDRs); err != nil {
		return nil, fmt.Errorf("cidr: %w", err)
	}
	kind := exchange.KeyKind(r.Kind)
	iss, err := o.reg.Issue(ctx, client.IssueOptions{Venue: r.Venue, Key: r.Key, Policy: r.Policy, TTL: ttl, CIDRs: cidrs,
		Label: r.Label, Kind: kind, PublicKeyPEM: r.PublicKey, Format: def.Format, CertSHA256: r.CertSHA256})
	if err != nil {
		return nil, err
	}
	if r.WrapTTL != "" {
		return wrapIssued(ctx, o.reg, iss, r.WrapTTL)
	}
	return shown(iss), nil
}

func shown(iss *client.Issued) *issuedCredential {
	out := &issuedCredential{Client: iss.Client, SecretText: string(iss.Secret), PassphraseText: string(iss.Passphrase)}
	iss.Secret.Zero()
	iss.Passphrase.Zero()
	return out
}

func (o registryOps) List(ctx context.Context) ([]client.Client, error) { return o.reg.List(ctx) }

func (o registryOps) Revoke(ctx context.Context, r idRequest) error {
	return o.reg.Revoke(ctx, r.Venue, r.ID)
}

func (o registryOps) Rotate(ctx context.Context, r idRequest) (*issuedCredential, error) {
	def, err := venues.ByName(r.Venue)
	if err != nil {
		return nil, err
	}
	iss, err := o.reg.Rotate(ctx, r.Venue, r.ID, def.Format, r.PublicKey)
	if err != nil {
		return nil, err
	}
	return shown(iss), nil
}

// startControl serves the control socket for srv.
func (a *app) startControl(ctx context.Context, srv *server.Server, peers peers) (io.Closer, error) {
	path := filepath.Join(a.cfg.DataDir, controlSocket)
	// A stale socket from a crashed server: the data directory lock we
	// hold proves nobody else serves it.
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	pols := map[string]bool{}
	for n := range a.cfg.Policies {
		pols[n] = true
	}
	ops := registryOps{reg: srv.Clients, policies: pols, keys: func(ctx context.Context, ex, name string) error {
		_, err := srv.Vault.Key(ctx, ex, name)
		return err
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/clients/issue", func(w http.ResponseWriter, r *http.Request) {
		var req issueRequest
		if !decodeControl(w, r, &req) {
			return
		}
		out, err := ops.Issue(r.Context(), req)
		if err == nil {
			err = peers.ClientsChanged(r.Context())
		}
		writeControl(w, out, err)
	})
	mux.HandleFunc("GET /v1/clients", func(w http.ResponseWriter, r *http.Request) {
		out, err := ops.List(r.Context())
		writeControl(w, out, err)
	})
	mux.HandleFunc("POST /v1/clients/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req idRequest
		if !decodeControl(w, r, &req) {
			return
		}
		err := ops.Revoke(r.Context(), req)
		if err == nil {
			err = peers.ClientsChanged(r.Context())
		}
		writeControl(w, map[string]string{"revoked": req.ID}, err)
	})
	mux.HandleFunc("POST /v1/clients/rotate", func(w http.ResponseWriter, r *http.Request) {
		var req idRequest
		if !decodeControl(w, r, &req) {
			return
		}
		out, err := ops.Rotate(r.Context(), req)
		if err == nil {
			err = peers.ClientsChanged(r.Context())
		}
		writeControl(w, out, err)
	})
	// Stopping needs no second factor; resuming needs an operator's
	// fresh TOTP code (gateway.go).
	resumeOps, err := operator.New(operator.Options{Store: srv.Store, Secrets: srv.Vault})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux.HandleFunc("POST /v1/gateway/stop", a.handleStop(srv.Gateway, srv.Audit, peers))
	mux.HandleFunc("POST /v1/gateway/resume", a.handleResume(srv.Gateway, srv.Audit, peers, resumeAuthorizer{ops: resumeOps}))
	mux.HandleFunc("POST /v1/panic", afterPanic(a.handlePanic(srv), peers))
	a.clientModeRoutes(mux, srv, peers)
	mux.HandleFunc("GET /v1/gateway/status", func(w http.ResponseWriter, r *http.Request) {
		st := gatewayStatus{State: "running", RateLimits: map[string]rateLimitStatus{}}
		if err := srv.Gateway.Healthy(); err != nil {
			st.State, st.Reason = "refusing", err.Error()
		}
		for k, rl := range srv.Gateway.RateLimits() {
			st.RateLimits[k] = rateLimitStatus{Used: rl.Used, Limit: rl.Limit, Window: rl.Window.String()}
		}
		writeControl(w, st, nil)
	})
	mux.HandleFunc("POST /v1/keys/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req keyRevokeRequest
		if !decodeControl(w, r, &req) {
			return
		}
		out, err := a.revokeKey(r.Context(), srv.Vault, req)
		ev := audit.Event{Kind: "key.revoke", Actor: "control-socket", Detail: map[string]string{
			"key": req.Exchange + "/" + req.Name, "reason": req.Reason, "at_venue": fmt.Sprint(req.AtVenue)}}
		if err != nil {
			ev.Detail["error"] = err.Error()
		}
		if _, aerr := srv.Audit.Append(r.Context(), audit.Record{Event: &ev}); aerr != nil {
			a.log.Error("audit of a key revocation failed", "err", aerr)
		}
		if err != nil {
			writeControl(w, nil, errors.New(strings.Join(append(out.Lines, err.Error()), "; ")))
			return
		}
		writeControl(w, out, nil)
	})
	mux.HandleFunc("POST /v1/seal/migrate", func(w http.ResponseWriter, r *http.Request) {
		var req sealMigrateRequest
		if !decodeControl(w, r, &req) {
			return
		}
		out, err := a.migrateSealOnline(r.Context(), srv, req.To)
		writeControl(w, out, err)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return closerFunc(func() error {
		err := hs.Close()
		_ = os.Remove(path)
		return err
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeControl(w, nil, fmt.Errorf("bad request: %w", err))
		return false
	}
	return true
}

func writeControl(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(controlError{Error: err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// socketOps implements clientOps by talking to a running gateway.
type socketOps struct {
	hc *http.Client
}

// dialControl returns socketOps when a gateway serves dataDir, or nil.
func dialControl(dataDir string) *socketOps {
	path := filepath.Join(dataDir, controlSocket)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &socketOps{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (s *socketOps) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://keywarden"+path, body)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("running gateway: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce controlError
		if json.NewDecoder(resp.Body).Decode(&ce) == nil && ce.Error != "" {
			return errors.New(ce.Error)
		}
		return fmt.Errorf("running gateway answered %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (s *socketOps) Issue(ctx context.Context, r issueRequest) (*issuedCredential, error) {
	var out issuedCredential
	return &out, s.call(ctx, "POST", "/v1/clients/issue", r, &out)
}

func (s *socketOps) List(ctx context.Context) ([]client.Client, error) {
	var out []client.Client
	return out, s.call(ctx, "GET", "/v1/clients", nil, &out)
}

func (s *socketOps) Revoke(ctx context.Context, r idRequest) error {
	var out map[string]string
	return s.call(ctx, "POST", "/v1/clients/revoke", r, &out)
}

func (s *socketOps) Rotate(ctx context.Context, r idRequest) (*issuedCredential, error) {
	var out issuedCredential
	return &out, s.call(ctx, "POST", "/v1/clients/rotate", r, &out)
}
