package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/client"
)

// ClientModes downgrades client credentials to read-only and restores
// their trading; *client.Registry implements it. Options.Clients offers it
// when its value implements it too (the routes answer 404 otherwise).
type ClientModes interface {
	SetReadOnly(ctx context.Context, venue, id, by, reason string) (client.Client, bool, error)
	RestoreTrading(ctx context.Context, venue, id string) (client.Client, error)
}

// modeRequest is the body of the read-only and restore routes.
type modeRequest struct {
	Reason string `json:"reason"`
}

// clientMode resolves the route's credential in the caller's scope, the
// ClientModes behind Options.Clients and the request's reason.
func (s *api) clientMode(w http.ResponseWriter, r *http.Request) (client.Client, ClientModes, string, error) {
	m, ok := s.Clients.(ClientModes)
	if !ok {
		return client.Client{}, nil, "", errNotFound
	}
	c, err := s.scopedClient(r)
	if err != nil {
		return c, nil, "", err
	}
	var req modeRequest
	if err := readJSON(w, r, &req); err != nil {
		return c, nil, "", err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" || len(req.Reason) > 500 {
		return c, nil, "", badRequest("a reason of 1 to 500 characters is required")
	}
	return c, m, req.Reason, nil
}

// handleClientReadOnly downgrades a credential to read-only (containment:
// no step-up). It is audited before it runs.
func handleClientReadOnly(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, m, reason, err := s.clientMode(w, r)
		who := from(r).p.Name
		if err == nil {
			err = s.event(r.Context(), "client.read_only", who, map[string]string{"venue": c.Venue, "id": c.ID, "key": c.Key, "reason": reason})
		}
		var changed bool
		if err == nil {
			c, changed, err = m.SetReadOnly(r.Context(), c.Venue, c.ID, who, reason)
			if errors.Is(err, client.ErrRevoked) || errors.Is(err, client.ErrExpired) {
				err = badRequest("%v", err)
			}
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"client": c, "changed": changed})
	})
}

// handleClientRestore lifts a read-only downgrade (step-up, audited before
// it runs).
func handleClientRestore(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, m, reason, err := s.clientMode(w, r)
		if err == nil {
			err = s.event(r.Context(), "client.restore_trading", from(r).p.Name, map[string]string{"venue": c.Venue, "id": c.ID, "key": c.Key, "reason": reason})
		}
		if err == nil {
			c, err = m.RestoreTrading(r.Context(), c.Venue, c.ID)
			if errors.Is(err, client.ErrNotReadOnly) || errors.Is(err, client.ErrRevoked) || errors.Is(err, client.ErrExpired) {
				err = &httpError{http.StatusConflict, "not_read_only", err.Error()}
			}
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"client": c})
	})
}
