package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stepUpEvent is what the tests compare of an admin.step-up record.
type stepUpEvent struct{ Actor, Result, Cause, Route string }

func (e *env) stepUpEvents() []stepUpEvent {
	e.t.Helper()
	var out []stepUpEvent
	for _, ev := range e.events("admin.step-up") {
		if ev.Detail["source"] == "" {
			e.t.Errorf("step-up event without a source: %+v", ev)
		}
		out = append(out, stepUpEvent{ev.Actor, ev.Detail["result"], ev.Detail["cause"], ev.Detail["route"]})
	}
	return out
}

// TestStepUpRefusalAudited: a step-up action refused before any code is
// checked (no code and the session never stepped up, the step-up window
// over, an API token) is audited as admin.step-up, failed, with its cause
// and route, as a wrong code is; for routes that always need step-up and
// for a handler that asks for it (creating an admin). A fresh session's
// action adds no step-up record, and no record holds a code.
func TestStepUpRefusalAudited(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Gateway.Stop()
	session := e.login("admin")

	refused := func(what, method, path, token string, body any, hdr ...string) {
		t.Helper()
		if r := e.do(method, path, token, body, hdr...); r.status != http.StatusForbidden {
			t.Fatalf("%s = %d %s, want 403", what, r.status, r.raw)
		}
	}
	// No code, never stepped up.
	refused("resume without a code", "POST", "/v1/gateway/resume", session, nil)
	refused("creating an admin without a code", "POST", "/v1/operators", session,
		map[string]any{"name": "root2", "role": "admin", "password": password})
	// Stepped up (audited ok, without a route), then the window passes.
	e.stepUp("admin", session)
	e.clock.Add(5*time.Minute + time.Second)
	refused("resume after the step-up window", "POST", "/v1/gateway/resume", session, nil)
	// An API token, even with a right code.
	r := e.do("POST", "/v1/auth/tokens", session, map[string]any{"name": "ci", "scopes": []string{"gateway:control"}, "ttl": "1h"})
	token, _ := r.body["token"].(string)
	if token == "" {
		t.Fatalf("create token = %d %s", r.status, r.raw)
	}
	tokenCode := e.code("admin")
	refused("resume with a token", "POST", "/v1/gateway/resume", token, nil, TOTPHeader, tokenCode)
	if e.srv.Gateway.Healthy() == nil {
		t.Fatal("gateway resumed by a refused step-up")
	}
	if _, err := e.ops.Get(context.Background(), "root2"); err == nil {
		t.Fatal("an admin was created by a refused step-up")
	}
	// A fresh session passes without a code, and adds no step-up record.
	e.stepUp("admin", session)
	if r := e.do("POST", "/v1/gateway/resume", session, nil); r.status != http.StatusOK {
		t.Fatalf("resume within the step-up window = %d %s, want 200", r.status, r.raw)
	}

	want := []stepUpEvent{
		{"admin", "failed", "no code", "POST /v1/gateway/resume"},
		{"admin", "failed", "no code", "POST /v1/operators"},
		{"admin", "ok", "", ""},
		{"admin", "failed", "step-up expired", "POST /v1/gateway/resume"},
		{"admin", "failed", "api token", "POST /v1/gateway/resume"},
		{"admin", "ok", "", ""},
	}
	if diff := cmp.Diff(want, e.stepUpEvents()); diff != "" {
		t.Errorf("admin.step-up events (-want +got):\n%s", diff)
	}
	for _, ev := range e.events("admin.step-up") {
		for k, v := range ev.Detail {
			if strings.Contains(v, tokenCode) || strings.Contains(v, password) || strings.Contains(v, token) {
				t.Errorf("step-up event detail %s holds a code, password or token: %q", k, v)
			}
		}
	}
}

// TestDashboardStepUpRefusalAudited: the dashboard's own step-up check
// audits its refusals the same way.
func TestDashboardStepUpRefusalAudited(t *testing.T) {
	e := newEnv(t, nil)
	_, d := NewWithDashboard(Options{Operators: e.ops, Audit: e.srv.Audit, Now: e.clock.Now})
	ctx := context.Background()
	session := e.login("security")
	p, err := d.Session(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/dashboard/keys/binance/main/rotate", nil)
	if err := d.StepUp(req, p, session, ""); err == nil {
		t.Fatal("dashboard step-up without a code passed")
	}
	e.stepUp("security", session)
	e.clock.Add(5*time.Minute + time.Second)
	if p, err = d.Session(ctx, session); err != nil {
		t.Fatal(err)
	}
	if err := d.StepUp(req, p, session, ""); err == nil {
		t.Fatal("dashboard step-up after the window passed")
	}
	want := []stepUpEvent{
		{"security", "failed", "no code", "POST /dashboard/keys/binance/main/rotate"},
		{"security", "ok", "", ""},
		{"security", "failed", "step-up expired", "POST /dashboard/keys/binance/main/rotate"},
	}
	if diff := cmp.Diff(want, e.stepUpEvents()); diff != "" {
		t.Errorf("admin.step-up events (-want +got):\n%s", diff)
	}
}

// TestOperatorCreateExists: creating a name that exists through the API
// answers 409 naming the operator, and no enrollment.
func TestOperatorCreateExists(t *testing.T) {
	e := newEnv(t, nil)
	session := e.login("admin")
	r := e.do("POST", "/v1/operators", session, map[string]any{"name": "auditor", "role": "auditor", "password": "another long password"})
	if r.status != http.StatusConflict || r.body["code"] != "exists" || r.body["error"] != "operator auditor already exists" {
		t.Fatalf("create an existing operator = %d %s, want 409 exists %q", r.status, r.raw, "operator auditor already exists")
	}
	if strings.Contains(string(r.raw), "otpauth") || strings.Contains(string(r.raw), "recovery") {
		t.Errorf("refused creation answered an enrollment: %s", r.raw)
	}
}
