package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/operator"
)

// Dashboard is the admin API's authorization as the web dashboard uses it:
// the same operators, sessions, permissions, step-up rules, login throttle
// and audit records as the JSON API, so the dashboard is not a second
// authentication system. Actions the API offers go through the API itself
// (Call); the hooks below cover what only the dashboard shows.
//
// A Dashboard is safe for concurrent use.
type Dashboard struct {
	s *api
	h http.Handler
}

// NewWithDashboard returns the admin API handler, as New does, and the
// dashboard's hooks into that same API (one login throttle for both). It
// builds the handler exactly as New does; keep the two in step.
func NewWithDashboard(o Options) (http.Handler, *Dashboard) {
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
	h := securityHeaders(mux)
	return h, &Dashboard{s: s, h: h}
}

// APIError is a refusal by the admin API: the HTTP status, the stable code
// and the message safe to show the operator.
type APIError struct {
	Status int
	Code   string
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// APICall is one in-process request to the admin API on behalf of a
// dashboard session.
type APICall struct {
	Method string
	Path   string // with its query, e.g. /v1/audit?limit=50
	Token  string // the session token; empty for login
	Source string // the browser's address (r.RemoteAddr), for the throttle and audit
	TOTP   string // a fresh code for a step-up action, or empty
	Body   any    // JSON-encoded when not nil
}

// Call runs c through the admin API handler, exactly as a CLI request
// would be, and decodes a successful JSON answer into out (when not nil).
// A refusal is an *APIError.
func (d *Dashboard) Call(ctx context.Context, c APICall, out any) error {
	var body bytes.Buffer
	if c.Body != nil {
		if err := json.NewEncoder(&body).Encode(c.Body); err != nil {
			return fmt.Errorf("admin call: %w", err)
		}
	}
	r, err := http.NewRequestWithContext(ctx, c.Method, c.Path, &body)
	if err != nil {
		return fmt.Errorf("admin call: %w", err)
	}
	r.RemoteAddr = c.Source
	r.RequestURI = c.Path
	if c.Body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		r.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.TOTP != "" {
		r.Header.Set(TOTPHeader, c.TOTP)
	}
	w := &memWriter{h: http.Header{}}
	d.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 300 {
		return decodeAPIError(w.status, w.buf.Bytes())
	}
	if out == nil || w.buf.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(w.buf.Bytes(), out); err != nil {
		return fmt.Errorf("admin call %s %s: decode: %w", c.Method, strings.SplitN(c.Path, "?", 2)[0], err)
	}
	return nil
}

func decodeAPIError(status int, b []byte) *APIError {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error, e.Code = http.StatusText(status), "error"
	}
	return &APIError{Status: status, Code: e.Code, Msg: e.Error}
}

// Session returns the operator of a dashboard session token. Only session
// tokens are accepted: an API token is for automation, never a browser.
func (d *Dashboard) Session(ctx context.Context, token string) (operator.Principal, error) {
	if !strings.HasPrefix(token, "kws_") {
		return operator.Principal{}, d.Refusal(operator.ErrUnauthorized)
	}
	p, err := d.s.ops.Authenticate(ctx, token)
	if err != nil {
		return operator.Principal{}, d.Refusal(operator.ErrUnauthorized)
	}
	return p, nil
}

// Allow checks that p holds perm, as the API's routes do; a refusal is
// recorded in the audit log (source and page) and returned as a 403
// *APIError.
func (d *Dashboard) Allow(r *http.Request, p operator.Principal, perm operator.Permission) error {
	if p.Can(perm) {
		return nil
	}
	_ = d.s.event(r.Context(), "denied", p.Name, map[string]string{"route": "dashboard " + r.Method + " " + r.URL.Path,
		"perm": string(perm), "source": remoteAddr(r)})
	return d.Refusal(errForbidden)
}

// Fresh reports whether the session stepped up recently enough for a
// step-up action.
func (d *Dashboard) Fresh(p operator.Principal) bool { return d.s.ops.Fresh(p) }

// StepUp applies the API's step-up rule to a dashboard action: a fresh
// session passes; otherwise code must be a new TOTP code of the operator,
// which also makes the session fresh (and is audited as the API's step-up
// is). API tokens never pass. A refusal without a code checked is audited
// as the API's is.
func (d *Dashboard) StepUp(r *http.Request, p operator.Principal, token, code string) error {
	if p.Token != "" {
		d.s.stepUpRefused(r, p, stepUpCauseToken)
		return d.Refusal(operator.ErrStepUp)
	}
	if code == "" {
		if d.s.ops.Fresh(p) {
			return nil
		}
		d.s.stepUpRefused(r, p, stepUpCause(p))
		return d.Refusal(operator.ErrStepUp)
	}
	err := d.s.ops.StepUp(r.Context(), token, code)
	result := "ok"
	if err != nil {
		result = "failed"
	}
	if aerr := d.s.event(r.Context(), "step-up", p.Name, map[string]string{"result": result, "source": remoteAddr(r)}); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		return d.Refusal(err)
	}
	return nil
}

// Record writes a dashboard action to the audit log before it runs, as the
// API does for its own. An error means the action must not run.
func (d *Dashboard) Record(ctx context.Context, kind, actor string, detail map[string]string) error {
	if err := d.s.event(ctx, kind, actor, detail); err != nil {
		return d.Refusal(err)
	}
	return nil
}

// Refusal maps err to the *APIError the API would answer with: the same
// statuses and safe messages (unexpected errors are logged, not shown).
func (d *Dashboard) Refusal(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	w := &memWriter{h: http.Header{}}
	writeError(w, d.s.log, err)
	return decodeAPIError(w.status, w.buf.Bytes())
}

// memWriter collects an in-process answer.
type memWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (w *memWriter) Header() http.Header { return w.h }

func (w *memWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *memWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}
