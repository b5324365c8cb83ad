package admin

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
)

func clientIssue(venue, key string) client.IssueOptions {
	return client.IssueOptions{Venue: venue, Key: key, Policy: "read", TTL: time.Hour}
}

// request is how the matrix calls one route: a concrete path and a valid
// body, so that an allowed call succeeds.
type request struct {
	path string
	body any
}

func matrixRequest(e *env, who, method, pattern string) request {
	switch method + " " + pattern {
	case "POST /v1/auth/login":
		return request{pattern, map[string]string{"name": "victim", "password": password, "code": e.code("victim")}}
	case "POST /v1/auth/step-up":
		return request{pattern, map[string]string{"code": e.code(who)}}
	case "POST /v1/auth/tokens":
		return request{pattern, map[string]any{"name": "ci", "scopes": []string{"keys:read"}, "ttl": "1h"}}
	case "DELETE /v1/auth/tokens/{id}":
		return request{"/v1/auth/tokens/0000000000000000", nil}
	case "POST /v1/operators":
		return request{pattern, map[string]any{"name": "new-" + strings.ToLower(time.Now().Format("150405.000000000")), "role": "auditor", "password": password}}
	case "PUT /v1/operators/{name}/role":
		return request{"/v1/operators/victim/role", map[string]any{"role": "auditor"}}
	case "POST /v1/operators/{name}/disable":
		return request{"/v1/operators/victim/disable", nil}
	case "POST /v1/operators/{name}/enable":
		return request{"/v1/operators/victim/enable", nil}
	case "GET /v1/keys/{venue}/{name}":
		return request{"/v1/keys/binance/main", nil}
	case "POST /v1/clients":
		return request{pattern, map[string]any{"venue": "binance", "key": "main", "policy": "read", "ttl": "1h"}}
	case "DELETE /v1/clients/{venue}/{id}":
		return request{"/v1/clients/binance/" + e.client, nil}
	case "POST /v1/clients/{venue}/{id}/rotate":
		return request{"/v1/clients/binance/" + e.client + "/rotate", nil}
	case "POST /v1/clients/{venue}/{id}/read-only":
		return request{"/v1/clients/binance/" + e.client + "/read-only", map[string]string{"reason": "matrix"}}
	case "POST /v1/clients/{venue}/{id}/restore":
		return request{"/v1/clients/binance/" + e.client + "/restore", map[string]string{"reason": "matrix"}}
	case "GET /v1/policies/{name}":
		return request{"/v1/policies/trade", nil}
	case "PUT /v1/policies/{name}":
		return request{"/v1/policies/trade", map[string]string{"toml": "[policy.trade]\nscopes = [\"trade\"]\nmax_order_qty = 0.5\n"}}
	case "DELETE /v1/policies/{name}":
		e.ensurePolicy("scratch")
		return request{"/v1/policies/scratch", nil}
	case "POST /v1/keys/{venue}/{name}/revoke":
		return request{"/v1/keys/binance/other/revoke", map[string]any{"reason": "matrix"}}
	case "POST /v1/keys/{venue}/{name}/rotate":
		return request{"/v1/keys/binance/other/rotate", map[string]any{"permissions": []string{"read"}}}
	case "POST /v1/seal/rekey":
		return request{pattern, map[string]any{"shares": 3, "threshold": 2}}
	case "POST /v1/approvals/{id}/approve", "POST /v1/approvals/{id}/reject":
		return request{strings.Replace(pattern, "{id}", "000000000000000000000000", 1), nil}
	}
	return request{pattern, nil}
}

// allowedStatus is whether a status means the route let the caller in:
// anything but 401 and 403. The two token and approval routes answer 404
// for their dummy ids; operator routes answer as documented.
func allowedStatus(s int) bool { return s != http.StatusUnauthorized && s != http.StatusForbidden }

// matrix is who may call each route, written out independently of the role
// table in package operator: a admin, s security, t trader-ops, u auditor.
var matrix = map[string]string{
	"GET /v1/openapi.json":                    "astu",
	"POST /v1/auth/login":                     "astu",
	"POST /v1/auth/logout":                    "astu",
	"GET /v1/auth/whoami":                     "astu",
	"POST /v1/auth/step-up":                   "astu",
	"POST /v1/auth/recovery-codes":            "astu",
	"GET /v1/auth/tokens":                     "astu",
	"POST /v1/auth/tokens":                    "astu",
	"DELETE /v1/auth/tokens/{id}":             "astu",
	"GET /v1/operators":                       "a",
	"POST /v1/operators":                      "a",
	"PUT /v1/operators/{name}/role":           "a",
	"POST /v1/operators/{name}/disable":       "a",
	"POST /v1/operators/{name}/enable":        "a",
	"GET /v1/keys":                            "astu",
	"GET /v1/keys/{venue}/{name}":             "astu",
	"GET /v1/clients":                         "astu",
	"POST /v1/clients":                        "at",
	"DELETE /v1/clients/{venue}/{id}":         "at",
	"POST /v1/clients/{venue}/{id}/rotate":    "at",
	"POST /v1/clients/{venue}/{id}/read-only": "at",
	"POST /v1/clients/{venue}/{id}/restore":   "at",
	"GET /v1/policies":                        "astu",
	"GET /v1/policies/{name}":                 "astu",
	"PUT /v1/policies/{name}":                 "as",
	"DELETE /v1/policies/{name}":              "as",
	"POST /v1/keys/{venue}/{name}/revoke":     "as",
	"POST /v1/keys/{venue}/{name}/rotate":     "as",
	"GET /v1/posture":                         "asu",
	"GET /v1/reports/compliance":              "asu",
	"POST /v1/audit/export":                   "asu",
	"POST /v1/seal/rotate":                    "a",
	"POST /v1/seal/rekey":                     "a",
	"GET /v1/audit":                           "asu",
	"GET /v1/gateway":                         "asu",
	"POST /v1/gateway/stop":                   "as",
	"POST /v1/gateway/resume":                 "as",
	"GET /v1/approvals":                       "asu",
	"POST /v1/approvals/{id}/approve":         "as",
	"POST /v1/approvals/{id}/reject":          "as",
}

var roleLetter = map[operator.Role]string{operator.RoleAdmin: "a", operator.RoleSecurity: "s", operator.RoleTraderOps: "t", operator.RoleAuditor: "u"}

// TestPermissionMatrix calls every route as every role, with a stepped-up
// session, and checks that exactly the permissions of the role get in.
func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t, nil)
	routes := (&api{}).routes()
	if len(routes) != len(matrix) {
		t.Errorf("routes.go has %d routes, the matrix %d", len(routes), len(matrix))
	}
	roles := []operator.Role{operator.RoleAdmin, operator.RoleSecurity, operator.RoleTraderOps, operator.RoleAuditor}
	for _, role := range roles {
		for _, rt := range routes {
			t.Run(string(role)+" "+rt.method+" "+rt.path, func(t *testing.T) {
				tok := e.login(string(role))
				e.stepUp(string(role), tok)
				req := matrixRequest(e, string(role), rt.method, rt.path)
				r := e.do(rt.method, req.path, tok, req.body)
				who, ok := matrix[rt.method+" "+rt.path]
				if !ok {
					t.Fatalf("route %s %s is missing from the matrix", rt.method, rt.path)
				}
				want := strings.Contains(who, roleLetter[role])
				if got := allowedStatus(r.status); got != want {
					t.Errorf("%s %s as %s = %d %s, want allowed %v", rt.method, req.path, role, r.status, r.raw, want)
				}
				if want && r.status >= 500 {
					t.Errorf("%s %s as %s = %d %s, want success", rt.method, req.path, role, r.status, r.raw)
				}
				// Without a token, only public routes answer.
				if r := e.do(rt.method, req.path, "", req.body); rt.perm != public && r.status != http.StatusUnauthorized {
					t.Errorf("%s %s without a token = %d, want 401", rt.method, req.path, r.status)
				}
				// Keep the fixture: re-issue a client the revoke case used up.
				if rt.path == "/v1/clients/{venue}/{id}" && r.status == http.StatusNoContent {
					c, err := e.srv.Clients.Issue(t.Context(), clientIssue("binance", "main"))
					if err != nil {
						t.Fatal(err)
					}
					e.client = c.ID
				}
				e.srv.Gateway.Resume()
			})
		}
	}
}

// ensurePolicy makes sure the policy name exists, for a delete to remove.
func (e *env) ensurePolicy(name string) {
	e.t.Helper()
	ctx := e.t.Context()
	defs, err := e.overlay.Definitions(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, ok := defs[name]; ok {
		return
	}
	c, err := e.overlay.Prepare(ctx, name, &policy.Definition{})
	if err == nil {
		_, err = e.overlay.Apply(ctx, c, "test")
	}
	if err != nil {
		e.t.Fatal(err)
	}
}
