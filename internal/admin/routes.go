package admin

import (
	"net/http"

	"github.com/keywarden/keywarden/internal/operator"
)

// Access levels of a route besides a permission.
const (
	public        operator.Permission = ""     // no authentication
	authenticated operator.Permission = "self" // any operator, own account only
)

// route is one endpoint. stepUp marks actions that always need a fresh
// TOTP code; handlers ask for step-up themselves when it depends on the
// request (creating an admin).
type route struct {
	method, path string
	perm         operator.Permission
	stepUp       bool
	h            http.Handler
}

// routes is the admin API's whole surface.
func (s *api) routes() []route {
	return []route{
		{"GET", "/v1/openapi.json", public, false, handleOpenAPI()},
		{"POST", "/v1/auth/login", public, false, handleLogin(s)},
		{"POST", "/v1/auth/logout", authenticated, false, handleLogout(s)},
		{"GET", "/v1/auth/whoami", authenticated, false, handleWhoami(s)},
		{"POST", "/v1/auth/step-up", authenticated, false, handleStepUp(s)},
		{"POST", "/v1/auth/recovery-codes", authenticated, true, handleRecoveryCodes(s)},
		{"GET", "/v1/auth/tokens", authenticated, false, handleTokenList(s)},
		{"POST", "/v1/auth/tokens", authenticated, false, handleTokenCreate(s)},
		{"DELETE", "/v1/auth/tokens/{id}", authenticated, false, handleTokenRevoke(s)},

		{"GET", "/v1/operators", operator.PermOperatorsRead, false, handleOperatorList(s)},
		{"POST", "/v1/operators", operator.PermOperatorsWrite, false, handleOperatorCreate(s)},
		{"PUT", "/v1/operators/{name}/role", operator.PermOperatorsWrite, false, handleOperatorRole(s)},
		{"POST", "/v1/operators/{name}/disable", operator.PermOperatorsWrite, false, handleOperatorDisable(s, true)},
		{"POST", "/v1/operators/{name}/enable", operator.PermOperatorsWrite, true, handleOperatorDisable(s, false)},

		{"GET", "/v1/keys", operator.PermKeysRead, false, handleKeyList(s)},
		{"GET", "/v1/keys/{venue}/{name}", operator.PermKeysRead, false, handleKeyShow(s)},

		{"GET", "/v1/clients", operator.PermClientsRead, false, handleClientList(s)},
		{"POST", "/v1/clients", operator.PermClientsWrite, false, handleClientIssue(s)},
		{"DELETE", "/v1/clients/{venue}/{id}", operator.PermClientsWrite, false, handleClientRevoke(s)},
		{"POST", "/v1/clients/{venue}/{id}/rotate", operator.PermClientsWrite, false, handleClientRotate(s)},
		{"POST", "/v1/clients/{venue}/{id}/read-only", operator.PermClientsWrite, false, handleClientReadOnly(s)},
		{"POST", "/v1/clients/{venue}/{id}/restore", operator.PermClientsWrite, true, handleClientRestore(s)},

		{"GET", "/v1/policies", operator.PermPoliciesRead, false, handlePolicyList(s)},
		{"GET", "/v1/policies/{name}", operator.PermPoliciesRead, false, handlePolicyShow(s)},
		{"PUT", "/v1/policies/{name}", operator.PermPoliciesWrite, false, handlePolicyPut(s)},
		{"DELETE", "/v1/policies/{name}", operator.PermPoliciesWrite, false, handlePolicyDelete(s)},

		{"POST", "/v1/keys/{venue}/{name}/revoke", operator.PermKeysWrite, false, handleKeyRevoke(s)},
		{"POST", "/v1/keys/{venue}/{name}/rotate", operator.PermKeysWrite, true, handleKeyRotate(s)},
		{"GET", "/v1/reports/compliance", operator.PermPostureRead, false, handleComplianceReport(s)},
		{"GET", "/v1/posture", operator.PermPostureRead, false, handlePosture(s)},

		{"GET", "/v1/audit", operator.PermAuditRead, false, handleAuditSearch(s)},
		{"POST", "/v1/audit/export", operator.PermAuditExport, true, handleAuditExport(s)},

		{"POST", "/v1/seal/rotate", operator.PermSealRotate, true, handleSealRotate(s)},
		{"POST", "/v1/seal/rekey", operator.PermSealRotate, true, handleSealRekey(s)},

		{"GET", "/v1/gateway", operator.PermGatewayRead, false, handleGatewayStatus(s)},
		{"POST", "/v1/gateway/stop", operator.PermGatewayControl, false, handleGatewayStop(s)},
		{"POST", "/v1/gateway/resume", operator.PermGatewayControl, true, handleGatewayResume(s)},

		{"GET", "/v1/approvals", operator.PermApprovalsRead, false, handleApprovalList(s)},
		{"POST", "/v1/approvals/{id}/approve", operator.PermApprovalsDecide, true, handleApprovalDecide(s, true)},
		{"POST", "/v1/approvals/{id}/reject", operator.PermApprovalsDecide, true, handleApprovalDecide(s, false)},
	}
}
