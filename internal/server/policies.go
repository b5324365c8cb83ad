package server

import "github.com/keywarden/keywarden/internal/policy"

// SetPolicies replaces the gateway's policies while it runs (policy edits
// through the admin API). Windows and open-order counts carry over by
// policy name; a check already under way finishes with the old policies.
func (s *Server) SetPolicies(ps map[string]*policy.Policy) {
	s.policies.engine.Store(s.policies.engine.Load().WithPolicies(ps))
}

// PolicyEngine returns the engine the gateway checks calls with now.
// Server.Engine is the one it started with.
func (s *Server) PolicyEngine() *policy.Engine { return s.policies.engine.Load() }
