package admin

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/server"
)

func policyText(name, body string) map[string]string {
	return map[string]string{"toml": "[policy." + name + "]\n" + body}
}

// TestPolicyEdits: narrowing a policy needs no step-up, widening does and
// cannot be done with an API token; every change is audited with its diff
// and reaches the gateway at once.
func TestPolicyEdits(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	sec := e.login("security")
	r := e.do("POST", "/v1/auth/tokens", sec, map[string]any{"name": "ci", "scopes": []string{"policies:write"}, "ttl": "1h"})
	if r.status != http.StatusCreated {
		t.Fatalf("create token = %d %s", r.status, r.raw)
	}
	token := r.body["token"].(string)

	// Narrowing: allowed without step-up, audited with the diff, applied.
	r = e.do("PUT", "/v1/policies/trade", sec, policyText("trade", "scopes = [\"trade\"]\nmax_order_qty = 0.5\n"))
	if r.status != http.StatusOK || r.body["applied"] != true {
		t.Fatalf("narrow = %d %s, want 200 applied", r.status, r.raw)
	}
	defs, _ := e.overlay.Definitions(ctx)
	if defs["trade"].MaxOrderQty != 0.5 || e.setPolicies != 1 {
		t.Errorf("after narrowing: max_order_qty %v, SetPolicies calls %d, want 0.5, 1", defs["trade"].MaxOrderQty, e.setPolicies)
	}
	if e.srv.PolicyEngine() == e.srv.Engine || e.srv.PolicyEngine().Policy("trade") == nil {
		t.Errorf("the gateway's engine was not replaced")
	}
	evs := e.events("admin.policy.update")
	if len(evs) != 1 || !strings.Contains(evs[0].Detail["diff"], "-max_order_qty = 1.0") || !strings.Contains(evs[0].Detail["diff"], "+max_order_qty = 0.5") || evs[0].Actor != "security" {
		t.Errorf("policy.update events = %+v, want one with the diff by security", evs)
	}

	// Widening: a dry run says step-up is needed and changes nothing.
	raise := policyText("trade", "scopes = [\"trade\"]\nmax_order_qty = 5\n")
	r = e.do("PUT", "/v1/policies/trade?dry_run=true", sec, raise)
	if r.status != http.StatusOK || r.body["step_up"] != true || r.body["applied"] != false {
		t.Errorf("dry run = %d %s, want 200 step_up true, not applied", r.status, r.raw)
	}
	for _, tt := range []struct {
		name, token string
		hdr         []string
	}{
		{"session", sec, nil},
		{"session wrong code", sec, []string{TOTPHeader, "000000"}},
		{"token", token, nil},
		{"token with code", token, []string{TOTPHeader, e.code("security")}},
	} {
		if r := e.do("PUT", "/v1/policies/trade", tt.token, raise, tt.hdr...); r.status != http.StatusForbidden || r.body["code"] != "step_up_required" {
			t.Errorf("raise by %s = %d %s, want 403 step_up_required", tt.name, r.status, r.raw)
		}
	}
	if defs, _ := e.overlay.Definitions(ctx); defs["trade"].MaxOrderQty != 0.5 {
		t.Fatalf("max_order_qty = %v after refused raises, want 0.5", defs["trade"].MaxOrderQty)
	}
	r = e.do("PUT", "/v1/policies/trade", sec, raise, TOTPHeader, e.code("security"))
	if r.status != http.StatusOK {
		t.Fatalf("raise with a fresh code = %d %s, want 200", r.status, r.raw)
	}
	evs = e.events("admin.policy.update")
	if len(evs) != 2 || evs[1].Detail["raised"] != "max_order_qty: 0.5 -> 5" {
		t.Errorf("second policy.update = %+v, want raised max_order_qty", evs[len(evs)-1])
	}

	// Creating needs step-up; a token cannot.
	created := policyText("spot", "scopes = [\"trade\"]\nsymbols = [\"BTCUSDT\"]\n")
	if r := e.do("PUT", "/v1/policies/spot", token, created); r.status != http.StatusForbidden {
		t.Errorf("create by token = %d %s, want 403", r.status, r.raw)
	}
	if r := e.do("PUT", "/v1/policies/spot", sec, created, TOTPHeader, e.code("security")); r.status != http.StatusOK {
		t.Errorf("create = %d %s, want 200", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/policies/spot?format=toml", sec, nil); r.status != http.StatusOK || !strings.Contains(string(r.raw), "[policy.spot]") {
		t.Errorf("GET spot as TOML = %d %s", r.status, r.raw)
	}
	if len(e.events("admin.policy.create")) != 1 {
		t.Errorf("policy.create events = %d, want 1", len(e.events("admin.policy.create")))
	}

	// Invalid text is refused with the loader's message.
	r = e.do("PUT", "/v1/policies/spot", sec, policyText("spot", "scopes = [\"trade\"]\nmax_order_qtty = 1\n"), TOTPHeader, e.code("security"))
	if r.status != http.StatusBadRequest || !strings.Contains(r.body["error"].(string), "line 3: unknown key policy.spot.max_order_qtty") {
		t.Errorf("unknown key = %d %s, want 400 naming the key and line", r.status, r.raw)
	}
	if r := e.do("PUT", "/v1/policies/spot", sec, policyText("other", "")); r.status != http.StatusBadRequest {
		t.Errorf("table of another name = %d %s, want 400", r.status, r.raw)
	}

	// Deleting narrows: no step-up; then the policy is gone for the API
	// and for client issuance.
	if r := e.do("DELETE", "/v1/policies/read", token, nil); r.status != http.StatusOK {
		t.Fatalf("delete by token = %d %s, want 200", r.status, r.raw)
	}
	if r := e.do("GET", "/v1/policies/read", sec, nil); r.status != http.StatusNotFound {
		t.Errorf("GET deleted policy = %d, want 404", r.status)
	}
	if r := e.do("DELETE", "/v1/policies/read", sec, nil); r.status != http.StatusNotFound {
		t.Errorf("delete twice = %d, want 404", r.status)
	}
	ops := e.login("trader-ops")
	if r := e.do("POST", "/v1/clients", ops, map[string]any{"venue": "binance", "key": "main", "policy": "read", "ttl": "1h"}); r.status != http.StatusBadRequest {
		t.Errorf("issue with a deleted policy = %d %s, want 400", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/clients", ops, map[string]any{"venue": "binance", "key": "main", "policy": "spot", "ttl": "1h"}); r.status != http.StatusCreated {
		t.Errorf("issue with a created policy = %d %s, want 201", r.status, r.raw)
	}
}

// TestPolicyWithdrawApprovals: enabling withdraw needs step-up and two
// security approvals of exactly that change; a new address is dated by the
// server, so the cool-down starts at the change.
func TestPolicyWithdrawApprovals(t *testing.T) {
	rule := operator.Rule{Role: operator.RoleSecurity, Required: 2, TTL: time.Hour}
	e := newEnv(t, map[string]operator.Rule{ActionPolicyWithdraw: rule, ActionPolicyAddress: rule})
	ctx := t.Context()
	sec := e.login("security")
	e.stepUp("security", sec)
	body := policyText("trade", `scopes = ["trade", "withdraw"]
[policy.trade.withdraw]
cooldown = "24h"
[[policy.trade.withdraw.addresses]]
asset = "BTC"
network = "BTC"
address = "bc1qexample"
added_at = 2020-01-01T00:00:00Z
`)
	r := e.do("PUT", "/v1/policies/trade", sec, body)
	if r.status != http.StatusAccepted || r.body["action"] != ActionPolicyWithdraw {
		t.Fatalf("enable withdraw = %d %s, want 202 for %s", r.status, r.raw, ActionPolicyWithdraw)
	}
	wid := r.body["id"].(string)
	// Approvers see what they approve.
	if d, _ := r.body["detail"].(string); !strings.Contains(d, "+address = \"bc1qexample\"") || !strings.Contains(d, "widens: scopes: +withdraw") {
		t.Errorf("approval detail = %q, want the diff and what it widens", d)
	}
	for _, who := range []string{"sec2", "sec3"} {
		tok := e.login(who)
		if r := e.do("POST", "/v1/approvals/"+wid+"/approve", tok, nil, TOTPHeader, e.code(who)); r.status != http.StatusOK {
			t.Fatalf("approve by %s = %d %s", who, r.status, r.raw)
		}
	}
	// An approval is for one exact change: a different text is refused.
	other := map[string]string{"toml": strings.Replace(body["toml"], "bc1qexample", "bc1qattacker", 1)}
	if r := e.do("PUT", "/v1/policies/trade?approval="+wid, sec, other); r.status != http.StatusForbidden || r.body["code"] != "approval_required" {
		t.Errorf("other change with the approval = %d %s, want 403 approval_required", r.status, r.raw)
	}
	// The change also adds an address: that needs its own approval, and
	// the withdraw approval is not used up meanwhile.
	r = e.do("PUT", "/v1/policies/trade?approval="+wid, sec, body)
	if r.status != http.StatusAccepted || r.body["action"] != ActionPolicyAddress {
		t.Fatalf("with the withdraw approval only = %d %s, want 202 for %s", r.status, r.raw, ActionPolicyAddress)
	}
	aid := r.body["id"].(string)
	if defs, _ := e.overlay.Definitions(ctx); len(defs["trade"].Withdraw.Addresses) != 0 {
		t.Fatalf("policy changed before every approval")
	}
	for _, who := range []string{"sec2", "sec3"} {
		tok := e.login(who)
		if r := e.do("POST", "/v1/approvals/"+aid+"/approve", tok, nil, TOTPHeader, e.code(who)); r.status != http.StatusOK {
			t.Fatalf("approve by %s = %d %s", who, r.status, r.raw)
		}
	}
	if len(e.events("admin.policy.update")) != 0 {
		t.Errorf("policy.update recorded before the change was approved")
	}
	before := e.clock.Now().UTC().Truncate(time.Second)
	if r := e.do("PUT", "/v1/policies/trade?approval="+wid+"&approval="+aid, sec, body, TOTPHeader, e.code("security")); r.status != http.StatusOK {
		t.Fatalf("approved change = %d %s, want 200", r.status, r.raw)
	}
	defs, _ := e.overlay.Definitions(ctx)
	addrs := defs["trade"].Withdraw.Addresses
	if len(addrs) != 1 || addrs[0].AddedAt.Before(before) {
		t.Fatalf("addresses = %+v, want one dated at the change (not 2020)", addrs)
	}
	evs := e.events("admin.policy.update")
	if len(evs) != 1 || evs[0].Detail["enables_withdraw"] != "true" || !strings.Contains(evs[0].Detail["added_addresses"], "bc1qexample") {
		t.Errorf("policy.update events = %+v", evs)
	}
	// Used approvals cannot authorize another change.
	third := map[string]string{"toml": strings.Replace(body["toml"], "bc1qexample", "bc1qthird", 1)}
	if r := e.do("PUT", "/v1/policies/trade?approval="+wid+"&approval="+aid, sec, third, TOTPHeader, e.code("security")); r.status != http.StatusForbidden {
		t.Errorf("reuse of approvals = %d %s, want 403", r.status, r.raw)
	}
}

func TestAuditExportAndSeal(t *testing.T) {
	e := newEnv(t, nil)
	adm := e.login("admin")
	r := e.do("POST", "/v1/auth/tokens", adm, map[string]any{"name": "ci", "scopes": []string{"audit:export", "seal:rotate"}, "ttl": "1h"})
	token := r.body["token"].(string)
	for _, path := range []string{"/v1/audit/export", "/v1/seal/rotate", "/v1/seal/rekey"} {
		if r := e.do("POST", path, adm, map[string]any{"shares": 3, "threshold": 2}); r.status != http.StatusForbidden {
			t.Errorf("%s without step-up = %d, want 403", path, r.status)
		}
		if r := e.do("POST", path, token, map[string]any{"shares": 3, "threshold": 2}, TOTPHeader, e.code("admin")); r.status != http.StatusForbidden {
			t.Errorf("%s with a token = %d, want 403", path, r.status)
		}
	}
	e.stepUp("admin", adm)
	r = e.do("POST", "/v1/audit/export", adm, nil)
	pub, _ := server.AuditPublicKey(t.Context(), e.vault)
	if r.status != http.StatusOK || r.body["public_key"] != base64.StdEncoding.EncodeToString(pub) {
		t.Errorf("audit export = %d %s, want the checkpoint public key", r.status, r.raw)
	}
	if _, ok := r.body["checkpoints"].([]any); !ok {
		t.Errorf("audit export checkpoints = %v, want a list", r.body["checkpoints"])
	}
	if r := e.do("POST", "/v1/seal/rotate", adm, nil); r.status != http.StatusOK {
		t.Errorf("seal rotate = %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/v1/seal/rekey", adm, map[string]any{"shares": 3, "threshold": 2})
	if shares, _ := r.body["shares"].([]any); r.status != http.StatusOK || len(shares) != 3 {
		t.Errorf("rekey to shares = %d %s, want 3 shares", r.status, r.raw)
	}
	const secretPass = "a brand new vault passphrase"
	if r := e.do("POST", "/v1/seal/rekey", adm, map[string]any{"passphrase": secretPass}); r.status != http.StatusOK {
		t.Errorf("rekey to passphrase = %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/seal/rekey", adm, map[string]any{"passphrase": secretPass, "shares": 3, "threshold": 2}); r.status != http.StatusBadRequest {
		t.Errorf("rekey to both = %d, want 400", r.status)
	}
	for _, ev := range e.events("admin.seal.rekey") {
		for _, v := range ev.Detail {
			if strings.Contains(v, secretPass) {
				t.Errorf("the new passphrase reached the audit log: %+v", ev)
			}
		}
	}
	if got := len(e.events("admin.seal.rekey")); got != 2 {
		t.Errorf("seal.rekey events = %d, want 2", got)
	}
	if got := len(e.events("admin.audit.export")); got != 1 {
		t.Errorf("audit.export events = %d, want 1", got)
	}
}

func TestKeyRevokeRotateAndPosture(t *testing.T) {
	e := newEnv(t, nil)
	sec := e.login("security")
	if r := e.do("POST", "/v1/keys/binance/main/revoke", sec, map[string]any{"reason": " "}); r.status != http.StatusBadRequest {
		t.Errorf("revoke without a reason = %d, want 400", r.status)
	}
	if r := e.do("POST", "/v1/keys/binance/nope/revoke", sec, map[string]any{"reason": "leak"}); r.status != http.StatusNotFound {
		t.Errorf("revoke unknown key = %d, want 404", r.status)
	}
	if r := e.do("POST", "/v1/keys/binance/main/revoke", sec, map[string]any{"reason": "leaked in a log"}); r.status != http.StatusOK {
		t.Errorf("revoke = %d %s, want 200", r.status, r.raw)
	}
	if evs := e.events("admin.key.revoke"); len(evs) != 1 || evs[0].Detail["reason"] != "leaked in a log" {
		t.Errorf("key.revoke events = %+v", evs)
	}
	if r := e.do("POST", "/v1/keys/binance/main/rotate", sec, map[string]any{"permissions": []string{"read"}}); r.status != http.StatusForbidden {
		t.Errorf("rotate without step-up = %d, want 403", r.status)
	}
	if r := e.do("POST", "/v1/keys/binance/main/rotate", sec, map[string]any{"permissions": []string{"read"}}, TOTPHeader, e.code("security")); r.status != http.StatusOK {
		t.Errorf("rotate = %d %s, want 200", r.status, r.raw)
	}

	aud := e.login("auditor")
	r := e.do("GET", "/v1/posture?limit=5", aud, nil)
	runs, _ := r.body["runs"].([]any)
	if r.status != http.StatusOK || len(runs) != 2 {
		t.Fatalf("posture = %d %s, want 2 runs", r.status, r.raw)
	}
	changes := runs[0].(map[string]any)["changes"].([]any)
	var got []string
	for _, c := range changes {
		m := c.(map[string]any)
		f := m["finding"].(map[string]any)
		got = append(got, m["kind"].(string)+" "+f["key"].(string)+" "+f["code"].(string))
	}
	want := "new binance/main withdraw-undeclared,resolved binance/other no-ip-restriction"
	if strings.Join(got, ",") != want {
		t.Errorf("posture changes = %v, want %s", got, want)
	}
	// A scoped operator sees only its keys' findings: scope an auditor.
	if _, err := e.ops.SetRole(t.Context(), "victim", operator.RoleAuditor, []string{"binance/other"}); err != nil {
		t.Fatal(err)
	}
	vic := e.login("victim")
	r = e.do("GET", "/v1/posture", vic, nil)
	if strings.Contains(string(r.raw), "binance/main") {
		t.Errorf("scoped posture shows binance/main: %s", r.raw)
	}
}

func TestRecoveryCodes(t *testing.T) {
	e := newEnv(t, nil)
	aud := e.login("auditor")
	if r := e.do("POST", "/v1/auth/recovery-codes", aud, nil); r.status != http.StatusForbidden {
		t.Errorf("without step-up = %d, want 403", r.status)
	}
	r := e.do("POST", "/v1/auth/recovery-codes", aud, nil, TOTPHeader, e.code("auditor"))
	codes, _ := r.body["recovery_codes"].([]any)
	if r.status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("new recovery codes = %d %s, want 10", r.status, r.raw)
	}
	// A new code logs in once.
	login := map[string]string{"name": "auditor", "password": password, "code": codes[0].(string)}
	if r := e.do("POST", "/v1/auth/login", "", login); r.status != http.StatusOK {
		t.Errorf("login with a new recovery code = %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/auth/login", "", login); r.status != http.StatusUnauthorized {
		t.Errorf("login with a used recovery code = %d, want 401", r.status)
	}
	if n, _ := e.ops.RecoveryCodesLeft(t.Context(), "auditor"); n != 9 {
		t.Errorf("recovery codes left = %d, want 9", n)
	}
}
