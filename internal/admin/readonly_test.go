package admin

import (
	"net/http"
	"strings"
	"testing"
)

// TestClientReadOnlyAndRestore: an operator with clients:write downgrades a
// credential without step-up; lifting the downgrade needs step-up (a
// session that did not prove a fresh code is refused, a fresh code in the
// header or a stepped-up session passes); both are audited with the actor
// and the reason; an auditor can do neither; a reason is required.
func TestClientReadOnlyAndRestore(t *testing.T) {
	e := newEnv(t, nil)
	path := "/v1/clients/binance/" + e.client
	ops := e.login("trader-ops")
	aud := e.login("auditor")
	reason := map[string]string{"reason": "withdraw attempt seen"}

	if r := e.do("POST", path+"/read-only", aud, reason); r.status != http.StatusForbidden {
		t.Errorf("read-only as auditor = %d %s, want 403", r.status, r.raw)
	}
	if r := e.do("POST", path+"/read-only", ops, map[string]string{"reason": " "}); r.status != http.StatusBadRequest {
		t.Errorf("read-only without a reason = %d %s, want 400", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/clients/binance/kwnosuchclient/read-only", ops, reason); r.status != http.StatusNotFound {
		t.Errorf("read-only of an unknown client = %d %s, want 404", r.status, r.raw)
	}
	r := e.do("POST", path+"/read-only", ops, reason)
	if r.status != http.StatusOK || r.body["changed"] != true {
		t.Fatalf("read-only = %d %s, want 200 changed", r.status, r.raw)
	}
	c, err := e.srv.Clients.Get(t.Context(), "binance", e.client)
	if err != nil || c.ReadOnly == nil || c.ReadOnly.By != "trader-ops" || c.ReadOnly.Reason != reason["reason"] {
		t.Fatalf("stored credential after read-only = %+v, %v", c.ReadOnly, err)
	}
	if e, err := e.srv.Clients.Lookup("binance", e.client); err != nil || e.ReadOnly == nil {
		t.Errorf("the gateway's entry is not read-only (%v)", err)
	}
	// The client list shows it.
	r = e.do("GET", "/v1/clients", ops, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), `"read_only":{`) {
		t.Errorf("GET /v1/clients = %d %s, want the read_only record", r.status, r.raw)
	}

	// Lifting it: not without step-up, not by an auditor.
	if r := e.do("POST", path+"/restore", ops, reason); r.status != http.StatusForbidden || r.body["code"] != "step_up_required" {
		t.Errorf("restore without step-up = %d %s, want 403 step_up_required", r.status, r.raw)
	}
	if r := e.do("POST", path+"/restore", ops, reason, TOTPHeader, "000000"); r.status != http.StatusForbidden {
		t.Errorf("restore with a wrong code = %d %s, want 403", r.status, r.raw)
	}
	e.stepUp("auditor", aud)
	if r := e.do("POST", path+"/restore", aud, reason); r.status != http.StatusForbidden {
		t.Errorf("restore as a stepped-up auditor = %d %s, want 403", r.status, r.raw)
	}
	if c, _ := e.srv.Clients.Get(t.Context(), "binance", e.client); c.ReadOnly == nil {
		t.Fatal("downgrade lifted by a refused request")
	}
	if r := e.do("POST", path+"/restore", ops, map[string]string{"reason": "bot host reimaged"}, TOTPHeader, e.code("trader-ops")); r.status != http.StatusOK {
		t.Fatalf("restore with a fresh code = %d %s, want 200", r.status, r.raw)
	}
	if c, _ := e.srv.Clients.Get(t.Context(), "binance", e.client); c.ReadOnly != nil {
		t.Error("still read-only after restore")
	}
	// A stepped-up session passes too; restoring a credential that is not
	// read-only is a conflict.
	e.stepUp("trader-ops", ops)
	if r := e.do("POST", path+"/restore", ops, reason); r.status != http.StatusConflict {
		t.Errorf("restore of a credential that is not read-only = %d %s, want 409", r.status, r.raw)
	}
	evs := e.events("admin.client.read_only")
	if len(evs) != 1 || evs[0].Actor != "trader-ops" || evs[0].Detail["reason"] != reason["reason"] || evs[0].Detail["id"] != e.client {
		t.Errorf("read-only audit events = %+v, want one by trader-ops with the reason", evs)
	}
	if evs := e.events("admin.client.restore_trading"); len(evs) < 1 || evs[0].Actor != "trader-ops" || evs[0].Detail["reason"] != "bot host reimaged" {
		t.Errorf("restore audit events = %+v, want one by trader-ops with the reason", evs)
	}
}
