// Package dashboard is keywarden's web dashboard for operators: server-rendered
// html/template pages under /ui/ on the admin listener, enhanced by a vendored
// copy of htmx (embedded; no other script, no build step). Every page reads
// and every form posts without JavaScript; htmx only swaps pages in place and
// refreshes the live traffic panel.
//
// Authorization is the admin API's own (admin.Dashboard): the same operators,
// sessions, permissions per page, step-up rules, login throttle and audit
// records. Actions the API offers (login, client issue and revoke, panic stop
// and resume) are made through the API in-process, on behalf of the session.
//
// Security: every response carries a strict Content-Security-Policy (no
// inline script or style) and no-store; the session cookie is __Host-,
// Secure, HttpOnly and SameSite=Strict; every state-changing request needs a
// synchronizer token bound to the session (compared in constant time) and a
// same-origin Origin / Sec-Fetch-Site; every value is escaped by
// html/template. No page shows an exchange secret, a TOTP seed or a session
// token; the only secret ever rendered is a newly issued client credential,
// once, on the page that answers its issue form.
//
// A Handler is safe for concurrent use.
package dashboard

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/vault"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Sealer reports the vault's seal state; *vault.Vault implements it.
type Sealer interface {
	Sealed() bool
}

// Inspector asks a key's venue what the key may do (posture.Inspect with
// the key's credential).
type Inspector func(ctx context.Context, k vault.KeyInfo) (exchange.KeyPosture, error)

// Options configure New.
type Options struct {
	// Admin is the admin API's authorization; required.
	Admin *admin.Dashboard
	// Vault reports the seal state; nil shows it as unknown.
	Vault Sealer
	// Inspect checks a key at its venue; nil hides the venue check.
	Inspect Inspector
	// Posture holds the thresholds of the posture badges; zero means
	// posture.DefaultPolicy.
	Posture posture.Policy
	// Activity is the live traffic and alerts; nil means an empty one.
	Activity *Activity
	// AuditDir is the audit log searched by the audit pages; AuditKey
	// verifies its checkpoints (nil: signatures are not checked).
	AuditDir string
	AuditKey ed25519.PublicKey
	// Incidents are the incident records; nil shows a note instead of the
	// incident pages.
	Incidents Incidents
	Logger    *slog.Logger
	Now       func() time.Time
}

// Handler serves the dashboard. Create it with New.
type Handler struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	csrfKey []byte // HMAC key of the CSRF tokens, random per process
	pages   map[string]*template.Template
	mux     *http.ServeMux

	mu       sync.Mutex
	inspects map[string]inspection // "exchange/name" → last venue check
}

type inspection struct {
	At      time.Time
	Posture exchange.KeyPosture
	Err     string
}

// Cookie names. The __Host- prefix makes browsers refuse the cookie unless
// it is Secure, has Path=/ and no Domain: no subdomain can plant or read it.
const (
	sessionCookie = "__Host-keywarden-session"
	loginCookie   = "__Host-keywarden-login"
)

// CSP is the Content-Security-Policy of every response: scripts, styles and
// connections from the dashboard's own origin only (htmx's requests need
// connect-src), images also as data: URLs, and no inline script or style.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the dashboard handler, to be mounted at /ui/ (see Mount).
func New(o Options) (*Handler, error) {
	if o.Admin == nil {
		return nil, errors.New("dashboard: the admin hooks are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Posture.MaxAge == 0 && o.Posture.UnusedAfter == 0 && o.Posture.WarnBefore == 0 && o.Posture.ExpiryLead == 0 {
		eg := o.Posture.EgressIPs
		o.Posture = posture.DefaultPolicy()
		o.Posture.EgressIPs = eg
	}
	if o.Activity == nil {
		o.Activity = NewActivity(o.Now)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{o: o, log: o.Logger, now: o.Now, csrfKey: key, pages: pages, inspects: map[string]inspection{}}
	h.mux = http.NewServeMux()
	h.routes()
	return h, nil
}

// ServeHTTP serves a dashboard request with the security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// Mount returns the admin listener's handler: the API under /v1/, the
// dashboard under /ui/, and / redirecting to /ui/. Everything else is the
// API's (its JSON 404).
func Mount(api http.Handler, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/ui/", ui)
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", CSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	}))
	return mux
}

// staticFiles serves the embedded stylesheet and htmx.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/ui/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		// The files are embedded: they change only with the binary.
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// call is one authenticated dashboard request.
type call struct {
	h     *Handler
	w     http.ResponseWriter
	r     *http.Request
	p     operator.Principal
	token string
	csrf  string
}

// api calls the admin API on behalf of the session.
func (c *call) api(h *Handler, method, path string, body any, out any) error {
	return h.o.Admin.Call(c.r.Context(), admin.APICall{Method: method, Path: path, Token: c.token,
		Source: c.r.RemoteAddr, Body: body}, out)
}

// flashSig binds a notice and its lines to the session, so that a page
// shows only the notices of this session's own actions, never text from a
// crafted link.
func (c *call) flashSig(notice string, lines []string) string {
	return c.h.csrfToken("flash", c.token+"\x00"+notice+"\x00"+strings.Join(lines, "\x00"))
}

// redirect answers a successful form post with a redirect to path,
// carrying a signed notice and report lines.
func (c *call) redirect(path, notice string, lines []string) error {
	if notice != "" {
		q := url.Values{"notice": {notice}, "line": lines, "sig": {c.flashSig(notice, lines)}}
		path += "?" + q.Encode()
	}
	http.Redirect(c.w, c.r, path, http.StatusSeeOther)
	return nil
}

// flash returns the signed notice and lines of the request, or nothing
// when they were not made by this session's redirect.
func (c *call) flash() (string, []string) {
	q := c.r.URL.Query()
	n, lines := q.Get("notice"), q["line"]
	if n == "" || c.token == "" || !hmac.Equal([]byte(q.Get("sig")), []byte(c.flashSig(n, lines))) {
		return "", nil
	}
	return n, lines
}

func (c *call) notice() string { n, _ := c.flash(); return n }

func (c *call) lines() []string { _, l := c.flash(); return l }

// page wraps a handler: it authenticates the session cookie (redirecting to
// the login page without one), checks CSRF on every state-changing
// request, and the permission perm ("" is any operator).
func (h *Handler) page(perm operator.Permission, fn func(*call) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			h.toLogin(w, r)
			return
		}
		p, err := h.o.Admin.Session(r.Context(), ck.Value)
		if err != nil {
			clearCookie(w, sessionCookie)
			h.toLogin(w, r)
			return
		}
		c := &call{h: h, w: w, r: r, p: p, token: ck.Value, csrf: h.csrfToken("session", ck.Value)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := h.checkCSRF(w, r, "session", ck.Value); err != nil {
				h.refuse(c, http.StatusForbidden, err.Error())
				return
			}
		}
		if perm != "" {
			if err := h.o.Admin.Allow(r, p, perm); err != nil {
				h.fail(c, err)
				return
			}
		}
		if err := fn(c); err != nil {
			h.fail(c, err)
		}
	})
}

// toLogin sends an unauthenticated browser to the login page.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", "/ui/login")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// csrfToken is the synchronizer token of a session (or of a login form):
// an HMAC of its cookie under a key that never leaves the process, so it
// is bound to that one session and cannot be computed by a page on
// another origin.
func (h *Handler) csrfToken(purpose, cookie string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(cookie))
	return hex.EncodeToString(m.Sum(nil))
}

var errCSRF = errors.New("request refused: it did not come from this dashboard's own form (reload the page and try again)")

// checkCSRF refuses a state-changing request from another origin or
// without the form's synchronizer token.
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request, purpose, cookie string) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errCSRF
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "https://"+r.Host {
		return errCSRF
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	got := r.PostFormValue("csrf")
	want := h.csrfToken(purpose, cookie)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errCSRF
	}
	return nil
}

const maxForm = 256 << 10

func setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// fail renders err as the API would classify it: its status and safe
// message.
func (h *Handler) fail(c *call, err error) {
	ae := h.o.Admin.Refusal(err)
	h.refuse(c, ae.Status, ae.Msg)
}

func (h *Handler) refuse(c *call, status int, msg string) {
	h.render(c, status, "error", "Refused", "", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
