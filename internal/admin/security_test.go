package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/operator"
)

// TestStolenCredentialsCannotStepUp: a session that never proved a fresh
// TOTP code, or any API token, even one sent with a valid code, cannot do a
// step-up action.
func TestStolenCredentialsCannotStepUp(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Gateway.Stop()
	session := e.login("admin")

	// An admin API token with gateway:control, as automation would hold.
	fresh := e.login("admin")
	r := e.do("POST", "/v1/auth/tokens", fresh, map[string]any{"name": "bot", "scopes": []string{"gateway:control", "operators:write"}, "ttl": "1h"})
	if r.status != http.StatusCreated {
		t.Fatalf("create token = %d %s", r.status, r.raw)
	}
	token := r.body["token"].(string)

	tests := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		hdr    []string
	}{
		{"session resume", session, "POST", "/v1/gateway/resume", nil, nil},
		{"session wrong code", session, "POST", "/v1/gateway/resume", nil, []string{TOTPHeader, "000000"}},
		{"session create admin", session, "POST", "/v1/operators", map[string]any{"name": "mallory", "role": "admin", "password": password}, nil},
		{"session grant admin", session, "PUT", "/v1/operators/victim/role", map[string]any{"role": "admin"}, nil},
		{"token resume", token, "POST", "/v1/gateway/resume", nil, nil},
		{"token resume with code", token, "POST", "/v1/gateway/resume", nil, []string{TOTPHeader, e.code("admin")}},
		{"token create admin", token, "POST", "/v1/operators", map[string]any{"name": "mallory", "role": "admin", "password": password}, []string{TOTPHeader, e.code("admin")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if r.status != http.StatusForbidden || r.body["code"] != "step_up_required" {
				t.Errorf("%s %s = %d %s, want 403 step_up_required", tt.method, tt.path, r.status, r.raw)
			}
		})
	}
	if e.srv.Gateway.Healthy() == nil {
		t.Errorf("gateway resumed by a stolen credential")
	}
	if _, err := e.ops.Get(t.Context(), "mallory"); err == nil {
		t.Errorf("admin created by a stolen credential")
	}
	if op, _ := e.ops.Get(t.Context(), "victim"); op.Role != operator.RoleAuditor {
		t.Errorf("victim role = %s, want unchanged auditor", op.Role)
	}
	// The owner with a fresh code in the header can.
	if r := e.do("POST", "/v1/gateway/resume", session, nil, TOTPHeader, e.code("admin")); r.status != http.StatusOK {
		t.Errorf("resume with fresh code = %d %s, want 200", r.status, r.raw)
	}
	if err := e.srv.Gateway.Healthy(); err != nil {
		t.Errorf("gateway after resume: %v", err)
	}
	// A creating admin with a fresh code works; the step-up is audited.
	code := e.code("admin")
	if r := e.do("POST", "/v1/operators", session, map[string]any{"name": "second-admin", "role": "admin", "password": password}, TOTPHeader, code); r.status != http.StatusCreated {
		t.Errorf("create admin with fresh code = %d %s, want 201", r.status, r.raw)
	} else if !strings.HasPrefix(r.body["totp_url"].(string), "otpauth://totp/") {
		t.Errorf("create admin: totp_url = %v, want an otpauth URL", r.body["totp_url"])
	}
	// The same code again is refused: single use.
	if r := e.do("POST", "/v1/gateway/resume", session, nil, TOTPHeader, code); r.status != http.StatusForbidden {
		t.Errorf("resume with a used code = %d, want 403", r.status)
	}
}

// TestApprovalFlow: resuming the gateway needs 2 security approvals; the
// requester cannot approve, approvers need step-up, the approval is used
// once and expires.
func TestApprovalFlow(t *testing.T) {
	e := newEnv(t, map[string]operator.Rule{ActionGatewayResume: {Role: operator.RoleSecurity, Required: 2, TTL: time.Hour}})
	e.srv.Gateway.Stop()
	sec := e.login("security")
	e.stepUp("security", sec)

	r := e.do("POST", "/v1/gateway/resume", sec, nil)
	if r.status != http.StatusAccepted || r.body["state"] != operator.StatePending {
		t.Fatalf("resume = %d %s, want 202 pending", r.status, r.raw)
	}
	id := r.body["id"].(string)
	if e.srv.Gateway.Healthy() == nil {
		t.Fatalf("gateway resumed before approval")
	}
	if r := e.do("POST", "/v1/approvals/"+id+"/approve", sec, nil); r.status != http.StatusForbidden || r.body["code"] != "self_approval" {
		t.Errorf("self-approve = %d %s, want 403 self_approval", r.status, r.raw)
	}
	s2 := e.login("sec2")
	if r := e.do("POST", "/v1/approvals/"+id+"/approve", s2, nil); r.status != http.StatusForbidden || r.body["code"] != "step_up_required" {
		t.Errorf("approve without step-up = %d %s, want 403 step_up_required", r.status, r.raw)
	}
	aud := e.login("auditor")
	e.stepUp("auditor", aud)
	if r := e.do("POST", "/v1/approvals/"+id+"/approve", aud, nil); r.status != http.StatusForbidden {
		t.Errorf("auditor approve = %d %s, want 403", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/approvals/"+id+"/approve", s2, nil, TOTPHeader, e.code("sec2")); r.status != http.StatusOK || r.body["state"] != operator.StatePending {
		t.Errorf("approve 1 of 2 = %d %s, want 200 pending", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/gateway/resume?approval="+id, sec, nil); r.status != http.StatusForbidden || r.body["code"] != "approval_required" {
		t.Errorf("resume with 1 of 2 = %d %s, want 403 approval_required", r.status, r.raw)
	}
	s3 := e.login("sec3")
	if r := e.do("POST", "/v1/approvals/"+id+"/approve", s3, nil, TOTPHeader, e.code("sec3")); r.status != http.StatusOK || r.body["state"] != operator.StateApproved {
		t.Errorf("approve 2 of 2 = %d %s, want 200 approved", r.status, r.raw)
	}
	// Another operator cannot use the requester's approval.
	if r := e.do("POST", "/v1/gateway/resume?approval="+id, s3, nil, TOTPHeader, e.code("sec3")); r.status != http.StatusForbidden {
		t.Errorf("resume with someone else's approval = %d %s, want 403", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/gateway/resume?approval="+id, sec, nil); r.status != http.StatusOK {
		t.Errorf("resume with approval = %d %s, want 200", r.status, r.raw)
	}
	if err := e.srv.Gateway.Healthy(); err != nil {
		t.Errorf("gateway after approved resume: %v", err)
	}
	e.srv.Gateway.Stop()
	if r := e.do("POST", "/v1/gateway/resume?approval="+id, sec, nil); r.status != http.StatusForbidden {
		t.Errorf("resume with a used approval = %d %s, want 403", r.status, r.raw)
	}

	// Expiry.
	r = e.do("POST", "/v1/gateway/resume", sec, nil)
	id2, _ := r.body["id"].(string)
	e.clock.Add(time.Hour)
	s2, aud = e.login("sec2"), e.login("auditor")
	if r := e.do("POST", "/v1/approvals/"+id2+"/approve", s2, nil, TOTPHeader, e.code("sec2")); r.status != http.StatusConflict {
		t.Errorf("approve expired = %d %s, want 409", r.status, r.raw)
	}
	var list []operator.Approval
	if r := e.do("GET", "/v1/approvals", aud, nil); r.status != http.StatusOK || json.Unmarshal(r.raw, &list) != nil {
		t.Fatalf("list approvals = %d %s", r.status, r.raw)
	}
	states := []string{}
	for _, a := range list {
		states = append(states, a.State)
	}
	if want := []string{operator.StateUsed, operator.StateExpired}; !slices.Equal(states, want) {
		t.Errorf("approval states = %v, want %v", states, want)
	}
	// Attempts are recorded before they run: the self-approval, the two
	// approvals and the expired one; the auditor was refused by the guard.
	if got := len(e.events("admin.approval.approve")); got != 4 {
		t.Errorf("approve events = %d, want 4", got)
	}
	if got := len(e.events("admin.denied")); got != 1 {
		t.Errorf("denied events = %d, want 1", got)
	}
}

// TestLoginThrottling: five failures lock the account; the lockout holds
// even for the right password and is audited.
func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5 {
		r := e.do("POST", "/v1/auth/login", "", map[string]string{"name": "security", "password": "wrong password " + string(rune('a'+i)), "code": "123456"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("bad login %d = %d %s, want 401", i, r.status, r.raw)
		}
	}
	r := e.do("POST", "/v1/auth/login", "", map[string]string{"name": "security", "password": password, "code": e.code("security")})
	if r.status != http.StatusTooManyRequests {
		t.Errorf("login while locked = %d %s, want 429", r.status, r.raw)
	}
	e.clock.Add(15 * time.Minute)
	e.login("security")
	ev := e.events("admin.login")
	results := []string{}
	for _, x := range ev {
		results = append(results, x.Actor+":"+x.Detail["result"])
	}
	want := []string{"security:failed", "security:failed", "security:failed", "security:failed", "security:failed", "security:locked", "security:ok"}
	if !slices.Equal(results, want) {
		t.Errorf("login events = %v, want %v", results, want)
	}
	// No password or code in the audit log.
	for _, x := range ev {
		b, _ := json.Marshal(x)
		if strings.Contains(string(b), "wrong password") || strings.Contains(string(b), password) {
			t.Errorf("audit event %s holds a password", b)
		}
	}
}

// TestKeyScope: a trader-ops operator scoped to binance/main sees and
// manages only that key's credentials.
func TestKeyScope(t *testing.T) {
	e := newEnv(t, nil)
	other, err := e.srv.Clients.Issue(t.Context(), clientIssue("binance", "other"))
	if err != nil {
		t.Fatal(err)
	}
	tok := e.login("scoped")
	var keys []map[string]any
	r := e.do("GET", "/v1/keys", tok, nil)
	_ = json.Unmarshal(r.raw, &keys)
	if len(keys) != 1 || keys[0]["name"] != "main" {
		t.Errorf("GET /v1/keys = %s, want binance/main only", r.raw)
	}
	tests := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/v1/keys/binance/other", nil, http.StatusNotFound},
		{"POST", "/v1/clients", map[string]any{"venue": "binance", "key": "other", "policy": "read", "ttl": "1h"}, http.StatusForbidden},
		{"POST", "/v1/clients", map[string]any{"venue": "binance", "key": "main", "policy": "read", "ttl": "1h"}, http.StatusCreated},
		{"POST", "/v1/clients/binance/" + other.ID + "/rotate", nil, http.StatusForbidden},
		{"DELETE", "/v1/clients/binance/" + other.ID, nil, http.StatusForbidden},
		{"DELETE", "/v1/clients/binance/" + e.client, nil, http.StatusNoContent},
	}
	for _, tt := range tests {
		if r := e.do(tt.method, tt.path, tok, tt.body); r.status != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.raw, tt.want)
		}
	}
	var list []map[string]any
	r = e.do("GET", "/v1/clients", tok, nil)
	_ = json.Unmarshal(r.raw, &list)
	for _, c := range list {
		if c["key"] != "main" {
			t.Errorf("GET /v1/clients shows %v, out of scope", c)
		}
	}
	if got := len(e.events("admin.client.revoke")); got != 1 {
		t.Errorf("revoke events = %d, want 1", got)
	}
}

// TestOpenAPIMatchesRoutes keeps openapi.json true: every registered route
// is documented with its permission and step-up flag, and nothing else is.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Permission string `json:"x-keywarden-permission"`
			StepUp     bool   `json:"x-keywarden-step-up"`
			Security   *[]any `json:"security"`
		} `json:"paths"`
	}
	e := newEnv(t, nil)
	r := e.do("GET", "/v1/openapi.json", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json = %d", r.status)
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, rt := range (&api{}).routes() {
		op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("openapi.json lacks %s %s", rt.method, rt.path)
			continue
		}
		seen++
		wantPerm := string(rt.perm)
		if rt.perm == authenticated {
			wantPerm = "authenticated"
		}
		if rt.perm == public {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("openapi.json %s %s: want security [] for a public route", rt.method, rt.path)
			}
		} else if op.Permission != wantPerm {
			t.Errorf("openapi.json %s %s permission = %q, want %q", rt.method, rt.path, op.Permission, wantPerm)
		}
		if op.StepUp != rt.stepUp {
			t.Errorf("openapi.json %s %s step-up = %v, want %v", rt.method, rt.path, op.StepUp, rt.stepUp)
		}
	}
	total := 0
	for _, ops := range doc.Paths {
		total += len(ops)
	}
	if total != seen {
		t.Errorf("openapi.json documents %d operations, routes.go has %d", total, seen)
	}
}

// TestNoSecretsInResponses: listing keys and clients never shows an
// exchange secret or a client secret.
func TestNoSecretsInResponses(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login("admin")
	for _, p := range []string{"/v1/keys", "/v1/keys/binance/main", "/v1/clients", "/v1/operators"} {
		r := e.do("GET", p, tok, nil)
		for _, s := range []string{`"s1"`, `"s2"`, `"k1"`, "password_hash", "recovery"} {
			if strings.Contains(string(r.raw), s) {
				t.Errorf("GET %s = %s, holds %s", p, r.raw, s)
			}
		}
	}
}

// TestLoginThrottlingPerAddress: one address guessing across many
// accounts is refused after 20 failures in 15 minutes, before any
// password is checked, and the accounts themselves are not locked.
func TestLoginThrottlingPerAddress(t *testing.T) {
	e := newEnv(t, nil)
	names := []string{"admin", "security", "trader-ops", "auditor", "sec2", "sec3", "scoped"}
	for i := range 20 {
		r := e.do("POST", "/v1/auth/login", "", map[string]string{"name": names[i%len(names)], "password": "guess", "code": "000000"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d %s, want 401", i, r.status, r.raw)
		}
	}
	r := e.do("POST", "/v1/auth/login", "", map[string]string{"name": "victim", "password": password, "code": e.code("victim")})
	if r.status != http.StatusTooManyRequests || r.body["code"] != "throttled" {
		t.Errorf("login after 20 failures = %d %s, want 429 throttled", r.status, r.raw)
	}
	e.clock.Add(15 * time.Minute)
	e.login("victim")
	if got := len(e.events("admin.login")); got != 22 {
		t.Errorf("login events = %d, want 22", got)
	}
}
