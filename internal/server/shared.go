package server

import "github.com/keywarden/keywarden/internal/policy"

// ShareWindows makes the policies' rolling windows count the calls of
// every replica that shares w (several gateways on one PostgreSQL
// database), instead of this gateway's calls only. Call it before serving.
func (s *Server) ShareWindows(w policy.SharedWindows) { s.policies.shared = w }
