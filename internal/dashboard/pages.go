package dashboard

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

func (h *Handler) routes() {
	m := h.mux
	m.Handle("GET /ui/static/", staticFiles())
	m.HandleFunc("GET /ui/login", h.loginPage)
	m.HandleFunc("POST /ui/login", h.login)
	m.Handle("POST /ui/logout", h.page("", h.logout))
	m.Handle("GET /ui/{$}", h.page("", h.overview))
	m.Handle("GET /ui/live", h.page(operator.PermGatewayRead, h.live))
	m.Handle("GET /ui/keys", h.page(operator.PermKeysRead, h.keys))
	m.Handle("GET /ui/keys/{venue}/{name}", h.page(operator.PermKeysRead, h.key))
	m.Handle("POST /ui/keys/{venue}/{name}/inspect", h.page(operator.PermKeysRead, h.keyInspect))
	m.Handle("POST /ui/keys/{venue}/{name}/revoke", h.page(operator.PermKeysWrite, h.keyRevoke))
	m.Handle("POST /ui/keys/{venue}/{name}/rotate", h.page(operator.PermKeysWrite, h.keyRotate))
	m.Handle("GET /ui/clients", h.page(operator.PermClientsRead, h.clients))
	m.Handle("POST /ui/clients", h.page(operator.PermClientsWrite, h.clientIssue))
	m.Handle("POST /ui/clients/{venue}/{id}/revoke", h.page(operator.PermClientsWrite, h.clientRevoke))
	m.Handle("GET /ui/policies", h.page(operator.PermPoliciesRead, h.policies))
	m.Handle("GET /ui/policies/{name}", h.page(operator.PermPoliciesRead, h.policyShow))
	m.Handle("POST /ui/policies/check", h.page(operator.PermPoliciesRead, h.policyCheck))
	m.Handle("GET /ui/audit", h.page(operator.PermAuditRead, h.auditSearch))
	m.Handle("GET /ui/audit/{seq}", h.page(operator.PermAuditRead, h.auditRecord))
	m.Handle("GET /ui/alerts", h.page(operator.PermGatewayRead, h.alerts))
	m.Handle("POST /ui/alerts/{id}/close", h.page(operator.PermGatewayControl, h.alertClose))
	m.Handle("GET /ui/panic", h.page(operator.PermGatewayRead, h.panicPage))
	m.Handle("POST /ui/panic/stop", h.page(operator.PermGatewayControl, h.panicStop))
	m.Handle("POST /ui/panic/resume", h.page(operator.PermGatewayControl, h.panicResume))
	m.Handle("GET /ui/incidents", h.page(operator.PermGatewayRead, h.incidents))
	m.Handle("GET /ui/incidents/{id}", h.page(operator.PermGatewayRead, h.incident))
	m.Handle("POST /ui/incidents/{id}/note", h.page(operator.PermGatewayControl, h.incidentNote))
	m.Handle("POST /ui/incidents/{id}/check", h.page(operator.PermGatewayControl, h.incidentCheck))
	m.Handle("POST /ui/incidents/{id}/close", h.page(operator.PermGatewayControl, h.incidentClose))
	m.Handle("/ui/", h.page("", func(c *call) error { return h.o.Admin.Refusal(errNotFoundPage) }))
}

var errNotFoundPage = &admin.APIError{Status: http.StatusNotFound, Code: "not_found", Msg: "no such page"}

// seeOther answers a successful form post: a redirect to the page showing
// the result, with an optional notice.
func seeOther(c *call, path, notice string) error {
	return c.redirect(path, notice, nil)
}

// --- login ---

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.showLogin(w, r, http.StatusOK, "")
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce, err := randomHex(32)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setCookie(w, loginCookie, nonce)
	c := &call{h: h, w: w, r: r, csrf: h.csrfToken("login", nonce)}
	name := ""
	if r.Method == http.MethodPost {
		name = r.PostFormValue("name")
	}
	h.render(c, status, "login", "Sign in", "", map[string]string{"Error": msg, "Name": name})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(loginCookie)
	if err != nil || h.checkCSRF(w, r, "login", ck.Value) != nil {
		h.showLogin(w, r, http.StatusForbidden, errCSRF.Error())
		return
	}
	var out struct {
		Token string `json:"token"`
	}
	err = h.o.Admin.Call(r.Context(), admin.APICall{Method: "POST", Path: "/v1/auth/login", Source: r.RemoteAddr,
		Body: map[string]string{"name": r.PostFormValue("name"), "password": r.PostFormValue("password"), "code": r.PostFormValue("code")}}, &out)
	if err != nil {
		ae := h.o.Admin.Refusal(err)
		h.showLogin(w, r, ae.Status, ae.Msg)
		return
	}
	clearCookie(w, loginCookie)
	setCookie(w, sessionCookie, out.Token)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (h *Handler) logout(c *call) error {
	_ = c.api(h, "POST", "/v1/auth/logout", nil, nil)
	clearCookie(c.w, sessionCookie)
	http.Redirect(c.w, c.r, "/ui/login", http.StatusSeeOther)
	return nil
}

// --- overview ---

// keyRow is a key with its posture badges.
type keyRow struct {
	vault.KeyInfo
	Findings  []posture.Finding
	Worst     posture.Severity
	Revoked   bool
	Inspected *inspection // the last check from this page, when it is the newest
	Checked   time.Time   // when the scheduled posture run checked it, when that is the newest
}

// badge is the short label of a finding code.
func badge(code string) string {
	switch code {
	case posture.CodeWithdraw:
		return "withdraw enabled"
	case posture.CodeTransfer:
		return "transfer enabled"
	case posture.CodeTrade:
		return "trade enabled"
	case posture.CodeNoIP:
		return "no IP restriction"
	case posture.CodeIPMismatch:
		return "IP allowlist mismatch"
	case posture.CodeAge:
		return "rotation overdue"
	case posture.CodeRotationDue:
		return "rotation due soon"
	case posture.CodeUnused:
		return "unused"
	case posture.CodeDuplicate:
		return "duplicate"
	case posture.CodeExpiry:
		return "venue expiry"
	case posture.CodeInspectError:
		return "venue check failed"
	case posture.CodePermsUnknown:
		return "permissions unreported"
	case posture.CodeIPUnknown:
		return "IP list unreported"
	}
	return code
}

// keyRows lists the keys in the operator's scope with their findings:
// local lifecycle checks always, venue checks from the last inspection.
func (h *Handler) keyRows(c *call) ([]keyRow, error) {
	var keys []vault.KeyInfo
	if err := c.api(h, "GET", "/v1/keys", nil, &keys); err != nil {
		return nil, err
	}
	now := h.now()
	dups := posture.Duplicates(keys)
	run := h.postureRun(c)
	out := make([]keyRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, h.keyRow(k, dups, run, now))
	}
	slices.SortFunc(out, func(a, b keyRow) int {
		return cmp.Or(cmp.Compare(b.Worst, a.Worst), cmp.Compare(a.ID(), b.ID()))
	})
	return out, nil
}

// postureRun returns the newest scheduled posture check through the API,
// or nil when there is none or the operator may not read it.
func (h *Handler) postureRun(c *call) *posture.Run {
	if !c.p.Can(operator.PermPostureRead) {
		return nil
	}
	var out struct {
		Runs []posture.Run `json:"runs"`
	}
	if err := c.api(h, "GET", "/v1/posture?limit=1", nil, &out); err != nil || len(out.Runs) == 0 {
		return nil
	}
	return &out.Runs[0]
}

// keyRow computes a key's badges: the venue-side findings of the newest
// look at the venue (a check from this page, or the scheduled posture
// run, whichever is newer), and the lifecycle findings (age, last use)
// as of now.
func (h *Handler) keyRow(k vault.KeyInfo, dups []posture.Finding, run *posture.Run, now time.Time) keyRow {
	row := keyRow{KeyInfo: k, Revoked: !k.Disabled.IsZero()}
	h.mu.Lock()
	in, ok := h.inspects[k.ID()]
	h.mu.Unlock()
	fromRun := run != nil && slices.Contains(run.Keys, k.ID()) && (!ok || run.Time.After(in.At))
	switch {
	case fromRun:
		row.Findings = posture.Lifecycle(k, h.o.Posture, now)
		for _, f := range run.Findings {
			if f.Key == k.ID() && !slices.ContainsFunc(row.Findings, func(g posture.Finding) bool { return g.Code == f.Code }) &&
				f.Code != posture.CodeAge && f.Code != posture.CodeRotationDue && f.Code != posture.CodeUnused && f.Code != posture.CodeDuplicate {
				row.Findings = append(row.Findings, f)
			}
		}
		row.Checked = run.Time
	case ok && in.Err == "":
		row.Findings = posture.Evaluate(k, in.Posture, h.o.Posture, now)
	case ok:
		row.Findings = append(posture.Lifecycle(k, h.o.Posture, now), posture.Finding{Key: k.ID(),
			Code: posture.CodeInspectError, Severity: posture.Medium, Message: in.Err})
	default:
		row.Findings = posture.Lifecycle(k, h.o.Posture, now)
	}
	if ok && !fromRun {
		row.Inspected = &in
	}
	for _, f := range dups {
		if f.Key == k.ID() {
			row.Findings = append(row.Findings, f)
		}
	}
	posture.Sort(row.Findings)
	row.Worst = posture.Worst(row.Findings)
	return row
}

type overviewData struct {
	Notice    string
	Gateway   map[string]string
	Keys      []keyRow
	KeysError string
	Live      liveData
	Alerts    []Alert
	Incidents []incident.Incident // open ones
}

func (h *Handler) overview(c *call) error {
	d := overviewData{Notice: c.notice()}
	if c.p.Can(operator.PermGatewayRead) {
		if err := c.api(h, "GET", "/v1/gateway", nil, &d.Gateway); err != nil {
			return err
		}
		d.Live = h.liveData()
		for _, a := range h.o.Activity.Alerts() {
			if a.Closed.IsZero() {
				d.Alerts = append(d.Alerts, a)
			}
		}
		if h.o.Incidents != nil {
			list, err := h.o.Incidents.List(c.r.Context())
			if err != nil {
				return err
			}
			for _, in := range list {
				if in.Status == incident.StatusOpen {
					d.Incidents = append(d.Incidents, in)
				}
			}
		}
	}
	if c.p.Can(operator.PermKeysRead) {
		rows, err := h.keyRows(c)
		if err != nil {
			d.KeysError = h.o.Admin.Refusal(err).Msg
		}
		d.Keys = rows
	}
	h.render(c, http.StatusOK, "overview", "Overview", "overview", d)
	return nil
}

// liveData is the live traffic panel.
type liveData struct {
	PerSecond  string
	LastMinute Point // the last complete minute
	Now        Point // the current minute so far
	Requests   chart
	Denials    chart
	Latency    chart
	// Notional has one chart per key that allowed orders in the window.
	Notional    []chart
	WindowLabel string
}

func (h *Handler) liveData() liveData {
	s := h.o.Activity.Series(30)
	var d liveData
	if n := len(s); n >= 2 {
		d.LastMinute, d.Now = s[n-2], s[n-1]
	}
	d.PerSecond = strconv.FormatFloat(float64(d.LastMinute.Requests)/60, 'f', 2, 64)
	d.Requests = barChart("Requests per minute", "requests", s, func(p Point) float64 { return float64(p.Requests) }, fmtCount)
	d.Denials = barChart("Denials and errors per minute", "denials", s, func(p Point) float64 { return float64(p.Denials + p.Errors) }, fmtCount)
	d.Latency = barChart("Mean latency per minute", "latency", s, func(p Point) float64 { return float64(p.MeanLatency.Microseconds()) / 1000 }, fmtMillis)
	var keys []string
	for _, p := range s {
		for k := range p.Notional {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		d.Notional = append(d.Notional, barChart("Notional allowed per minute, "+k, "notional-"+strconv.Itoa(i), s,
			func(p Point) float64 { return p.Notional[k] }, fmtAmount))
	}
	d.WindowLabel = "last 30 minutes"
	return d
}

func (h *Handler) live(c *call) error {
	h.fragment(c, "overview", "live", h.liveData())
	return nil
}

// --- keys ---

func (h *Handler) keys(c *call) error {
	rows, err := h.keyRows(c)
	if err != nil {
		return err
	}
	h.render(c, http.StatusOK, "keys", "Keys", "keys", map[string]any{"Keys": rows, "Notice": c.notice()})
	return nil
}

// scopedKey returns the key venue/name of the path through the API (which
// applies the operator's key scope).
func (h *Handler) scopedKey(c *call) (vault.KeyInfo, error) {
	var k vault.KeyInfo
	err := c.api(h, "GET", "/v1/keys/"+url.PathEscape(c.r.PathValue("venue"))+"/"+url.PathEscape(c.r.PathValue("name")), nil, &k)
	return k, err
}

func (h *Handler) key(c *call) error {
	k, err := h.scopedKey(c)
	if err != nil {
		return err
	}
	var keys []vault.KeyInfo
	_ = c.api(h, "GET", "/v1/keys", nil, &keys)
	row := h.keyRow(k, posture.Duplicates(keys), h.postureRun(c), h.now())
	var clients []client.Client
	if c.p.Can(operator.PermClientsRead) {
		var all []client.Client
		if err := c.api(h, "GET", "/v1/clients", nil, &all); err == nil {
			for _, cl := range all {
				if cl.Key == k.Name && exchangeOf(cl.Venue) == k.Exchange {
					clients = append(clients, cl)
				}
			}
		}
	}
	h.render(c, http.StatusOK, "key", "Key "+k.ID(), "keys", map[string]any{
		"Key": row, "Clients": clients, "Notice": c.notice(),
		"CanInspect": h.o.Inspect != nil, "CanWrite": c.p.Can(operator.PermKeysWrite),
		"Fresh": h.o.Admin.Fresh(c.p), "Lines": c.lines(),
	})
	return nil
}

// exchangeOf is the exchange of a gateway venue name: venues of one
// exchange ("binance-usdm") share its keys.
func exchangeOf(venue string) string {
	if d, err := venues.ByName(venue); err == nil {
		return d.Exchange
	}
	return venue
}

func (h *Handler) keyInspect(c *call) error {
	if h.o.Inspect == nil {
		return errNotFoundPage
	}
	k, err := h.scopedKey(c)
	if err != nil {
		return err
	}
	if err := h.o.Admin.Record(c.r.Context(), "key.inspect", c.p.Name, map[string]string{"key": k.ID(), "via": "dashboard"}); err != nil {
		return err
	}
	p, err := h.o.Inspect(c.r.Context(), k)
	in := inspection{At: h.now(), Posture: p}
	if err != nil {
		// The inspection's errors never hold the key's secret (posture.Inspect).
		in.Err = err.Error()
	}
	h.mu.Lock()
	h.inspects[k.ID()] = in
	h.mu.Unlock()
	return seeOther(c, "/ui/keys/"+url.PathEscape(k.Exchange)+"/"+url.PathEscape(k.Name), "Checked at the venue.")
}

// keyPath is the dashboard page of key k.
func keyPath(k vault.KeyInfo) string {
	return "/ui/keys/" + url.PathEscape(k.Exchange) + "/" + url.PathEscape(k.Name)
}

// keyResult redirects to the key page with the API's report lines.
func keyResult(c *call, k vault.KeyInfo, notice string, lines []string) error {
	return c.redirect(keyPath(k), notice, lines)
}

// keyRevoke revokes a key through the API (keys:write, audited there).
// The dashboard asks for step-up first: a stolen browser session alone
// must not cut every bot off, nor let an attacker silence a key.
func (h *Handler) keyRevoke(c *call) error {
	k, err := h.scopedKey(c)
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(c.r.PostFormValue("reason"))
	if reason == "" {
		return badRequest("a reason is required")
	}
	if err := h.o.Admin.StepUp(c.r, c.p, c.token, strings.TrimSpace(c.r.PostFormValue("code"))); err != nil {
		return err
	}
	var out struct {
		Lines []string `json:"lines"`
	}
	body := map[string]any{"reason": reason, "at_venue": c.r.PostFormValue("at_venue") == "yes"}
	if err := c.api(h, "POST", "/v1/keys/"+url.PathEscape(k.Exchange)+"/"+url.PathEscape(k.Name)+"/revoke", body, &out); err != nil {
		return err
	}
	return keyResult(c, k, "Key revoked: keywarden no longer signs with it.", out.Lines)
}

// keyRotate starts or resumes the key's automated rotation through the
// API, which needs a fresh TOTP code (sent with the request).
func (h *Handler) keyRotate(c *call) error {
	k, err := h.scopedKey(c)
	if err != nil {
		return err
	}
	body := map[string]any{"permissions": formList(c.r.PostFormValue("permissions")), "ips": formList(c.r.PostFormValue("ips")),
		"sub_account": strings.TrimSpace(c.r.PostFormValue("sub_account")), "manager": strings.TrimSpace(c.r.PostFormValue("manager")),
		"grace": strings.TrimSpace(c.r.PostFormValue("grace"))}
	var out struct {
		Lines []string `json:"lines"`
	}
	err = h.o.Admin.Call(c.r.Context(), admin.APICall{Method: "POST", Token: c.token, Source: c.r.RemoteAddr, Body: body,
		TOTP: strings.TrimSpace(c.r.PostFormValue("code")),
		Path: "/v1/keys/" + url.PathEscape(k.Exchange) + "/" + url.PathEscape(k.Name) + "/rotate"}, &out)
	if err != nil {
		return err
	}
	return keyResult(c, k, "Rotation done or advanced.", out.Lines)
}

// --- clients ---

type clientRow struct {
	client.Client
	Seen   []SourceSeen
	Status string
}

func (h *Handler) clients(c *call) error {
	var list []client.Client
	if err := c.api(h, "GET", "/v1/clients", nil, &list); err != nil {
		return err
	}
	now := h.now()
	rows := make([]clientRow, 0, len(list))
	for _, cl := range list {
		st := "active"
		switch {
		case !cl.Revoked.IsZero():
			st = "revoked"
		case cl.Active(now) != nil:
			st = "expired"
		case cl.ReadOnly != nil:
			st = "read-only"
		}
		rows = append(rows, clientRow{Client: cl, Seen: h.o.Activity.Seen(cl.ID), Status: st})
	}
	slices.SortFunc(rows, func(a, b clientRow) int {
		return cmp.Or(cmp.Compare(a.Status, b.Status), cmp.Compare(a.Venue, b.Venue), cmp.Compare(a.ID, b.ID))
	})
	var keys []vault.KeyInfo
	var policies []string
	if c.p.Can(operator.PermClientsWrite) {
		_ = c.api(h, "GET", "/v1/keys", nil, &keys)
		_ = c.api(h, "GET", "/v1/policies", nil, &policies)
	}
	h.render(c, http.StatusOK, "clients", "Clients", "clients", map[string]any{
		"Clients": rows, "Keys": keys, "Policies": policies, "Notice": c.notice(),
	})
	return nil
}

func (h *Handler) clientIssue(c *call) error {
	f := c.r.PostForm
	cidrs := formList(f.Get("cidrs"))
	ttl := strings.TrimSpace(f.Get("ttl"))
	if ttl == "" {
		ttl = "720h"
	}
	body := map[string]any{"venue": strings.TrimSpace(f.Get("venue")), "key": strings.TrimSpace(f.Get("key")),
		"policy": f.Get("policy"), "ttl": ttl, "label": strings.TrimSpace(f.Get("label")), "cidrs": cidrs}
	var out struct {
		Client     client.Client `json:"client"`
		Secret     string        `json:"secret"`
		Passphrase string        `json:"passphrase"`
	}
	if err := c.api(h, "POST", "/v1/clients", body, &out); err != nil {
		return err
	}
	// The one page that shows a secret: the new client credential, once.
	h.render(c, http.StatusCreated, "issued", "Client credential issued", "clients", out)
	return nil
}

func (h *Handler) clientRevoke(c *call) error {
	venue, id := c.r.PathValue("venue"), c.r.PathValue("id")
	if err := c.api(h, "DELETE", "/v1/clients/"+url.PathEscape(venue)+"/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	return seeOther(c, "/ui/clients", "Client "+id+" revoked: its next request is refused.")
}

// --- alerts ---

func (h *Handler) alerts(c *call) error {
	h.render(c, http.StatusOK, "alerts", "Alerts", "alerts", map[string]any{
		"Alerts": h.o.Activity.Alerts(), "Notice": c.notice(),
	})
	return nil
}

func (h *Handler) alertClose(c *call) error {
	id, err := strconv.Atoi(c.r.PathValue("id"))
	if err != nil {
		return errNotFoundPage
	}
	if err := h.o.Admin.Record(c.r.Context(), "alert.close", c.p.Name, map[string]string{"alert": strconv.Itoa(id), "via": "dashboard"}); err != nil {
		return err
	}
	if !h.o.Activity.CloseAlert(id, c.p.Name) {
		return errNotFoundPage
	}
	return seeOther(c, "/ui/alerts", "Alert acknowledged.")
}

// --- panic ---

func (h *Handler) panicPage(c *call) error {
	var st map[string]string
	if err := c.api(h, "GET", "/v1/gateway", nil, &st); err != nil {
		return err
	}
	h.render(c, http.StatusOK, "panic", "Panic switch", "panic", map[string]any{
		"Status": st["status"], "Detail": st["detail"], "Notice": c.notice(),
	})
	return nil
}

func (h *Handler) panicStop(c *call) error {
	if c.r.PostFormValue("confirm") != "stop" {
		return &admin.APIError{Status: http.StatusBadRequest, Code: "bad_request",
			Msg: "tick the confirmation box to stop the gateway"}
	}
	var body any
	cancelOrders, deleteKeys := c.r.PostFormValue("cancel_orders") != "", c.r.PostFormValue("delete_keys") != ""
	if cancelOrders || deleteKeys {
		body = map[string]any{"cancel_orders": cancelOrders, "delete_keys": deleteKeys, "reason": c.r.PostFormValue("reason")}
	}
	if err := c.api(h, "POST", "/v1/gateway/stop", body, nil); err != nil {
		return err
	}
	msg := "The gateway is stopped: every signed request is refused until it is resumed."
	if body != nil {
		msg += " The venue actions run now; their results go to the audit log and the incident."
	}
	return seeOther(c, "/ui/panic", msg)
}

func (h *Handler) panicResume(c *call) error {
	code := strings.TrimSpace(c.r.PostFormValue("code"))
	var out map[string]any
	err := h.o.Admin.Call(c.r.Context(), admin.APICall{Method: "POST", Path: "/v1/gateway/resume", Token: c.token,
		Source: c.r.RemoteAddr, TOTP: code}, &out)
	if err != nil {
		return err
	}
	if id, ok := out["id"].(string); ok && out["status"] != "running" {
		return seeOther(c, "/ui/panic", "Resuming needs approval: request "+id+" is pending.")
	}
	return seeOther(c, "/ui/panic", "The gateway is running again.")
}

// formList splits a form field holding a list separated by commas, spaces
// or lines.
func formList(v string) []string {
	return append([]string{}, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' })...)
}
