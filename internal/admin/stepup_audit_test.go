package admin

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStepUpHeaderAudited: a TOTP code sent with a sensitive request is
// audited as admin.step-up with the route, a wrong one as failed (and the
// request refused, the gateway left stopped), a right one as ok.
func TestStepUpHeaderAudited(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Gateway.Stop()
	session := e.login("admin")

	good := e.code("admin")
	// The same digits but the last: not this step's code.
	bad := good[:5] + string('0'+(good[5]-'0'+1)%10)
	if r := e.do("POST", "/v1/gateway/resume", session, nil, TOTPHeader, bad); r.status != http.StatusForbidden {
		t.Fatalf("resume with a wrong code = %d %s, want 403", r.status, r.raw)
	}
	if e.srv.Gateway.Healthy() == nil {
		t.Fatal("gateway resumed with a wrong code")
	}
	if r := e.do("POST", "/v1/gateway/resume", session, nil, TOTPHeader, good); r.status != http.StatusOK {
		t.Fatalf("resume with a fresh code = %d %s, want 200", r.status, r.raw)
	}

	type seen struct{ Actor, Result, Route string }
	var got []seen
	for _, ev := range e.events("admin.step-up") {
		if ev.Detail["source"] == "" {
			t.Errorf("step-up event without a source: %+v", ev)
		}
		got = append(got, seen{ev.Actor, ev.Detail["result"], ev.Detail["route"]})
	}
	want := []seen{
		{"admin", "failed", "POST /v1/gateway/resume"},
		{"admin", "ok", "POST /v1/gateway/resume"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admin.step-up events (-want +got):\n%s", diff)
	}
}
