package operator

import "slices"

// Role is an operator's role.
type Role string

// The roles. None of them can read an exchange secret: no endpoint does.
const (
	RoleAdmin     Role = "admin"      // everything
	RoleSecurity  Role = "security"   // keys, policies, panic, approvals
	RoleTraderOps Role = "trader-ops" // client credentials for the keys in scope
	RoleAuditor   Role = "auditor"    // read-only: audit log, keys, clients, posture
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleSecurity, RoleTraderOps, RoleAuditor}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Permission names one kind of admin action. API token scopes are
// permissions too.
type Permission string

// The permissions.
const (
	PermOperatorsRead   Permission = "operators:read"
	PermOperatorsWrite  Permission = "operators:write"
	PermKeysRead        Permission = "keys:read"
	PermClientsRead     Permission = "clients:read"
	PermClientsWrite    Permission = "clients:write"
	PermPoliciesRead    Permission = "policies:read"
	PermPoliciesWrite   Permission = "policies:write"
	PermKeysWrite       Permission = "keys:write"
	PermPostureRead     Permission = "posture:read"
	PermAuditExport     Permission = "audit:export"
	PermSealRotate      Permission = "seal:rotate"
	PermAuditRead       Permission = "audit:read"
	PermGatewayRead     Permission = "gateway:read"
	PermGatewayControl  Permission = "gateway:control"
	PermApprovalsRead   Permission = "approvals:read"
	PermApprovalsDecide Permission = "approvals:decide"
)

// Permissions lists every permission.
var Permissions = []Permission{PermOperatorsRead, PermOperatorsWrite, PermKeysRead, PermClientsRead,
	PermClientsWrite, PermPoliciesRead, PermAuditRead, PermGatewayRead, PermGatewayControl,
	PermApprovalsRead, PermApprovalsDecide, PermPoliciesWrite, PermKeysWrite, PermPostureRead,
	PermAuditExport, PermSealRotate}

var rolePerms = map[Role][]Permission{
	RoleAdmin: Permissions,
	RoleSecurity: {PermKeysRead, PermClientsRead, PermPoliciesRead, PermAuditRead, PermGatewayRead,
		PermGatewayControl, PermApprovalsRead, PermApprovalsDecide, PermPoliciesWrite, PermKeysWrite,
		PermPostureRead, PermAuditExport},
	RoleTraderOps: {PermKeysRead, PermClientsRead, PermClientsWrite, PermPoliciesRead},
	RoleAuditor: {PermKeysRead, PermClientsRead, PermPoliciesRead, PermAuditRead, PermGatewayRead, PermApprovalsRead,
		PermPostureRead, PermAuditExport},
}

// Grants reports whether role r holds permission p.
func (r Role) Grants(p Permission) bool { return slices.Contains(rolePerms[r], p) }
