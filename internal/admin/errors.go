package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/store"
)

// httpError is an error with a status and a message safe for clients.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var (
	errNotFound         = &httpError{http.StatusNotFound, "not_found", "not found"}
	errForbidden        = &httpError{http.StatusForbidden, "forbidden", "permission denied"}
	errThrottled        = &httpError{http.StatusTooManyRequests, "throttled", "too many failed logins from this address, try later"}
	errAuditUnavailable = &httpError{http.StatusServiceUnavailable, "audit_unavailable", "audit log unavailable; action refused"}
)

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, a...)}
}

// writeError is the one place errors become responses. Clients get a safe
// message; the log gets the detail of unexpected errors.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, operator.ErrUnauthorized), errors.Is(err, operator.ErrBadCredentials):
		he = &httpError{http.StatusUnauthorized, "unauthorized", err.Error()}
	case errors.Is(err, operator.ErrLocked):
		he = &httpError{http.StatusTooManyRequests, "locked", err.Error()}
	case errors.Is(err, operator.ErrStepUp):
		he = &httpError{http.StatusForbidden, "step_up_required", err.Error()}
	case errors.Is(err, operator.ErrSelfApproval):
		he = &httpError{http.StatusForbidden, "self_approval", err.Error()}
	case errors.Is(err, operator.ErrNotApproved):
		he = &httpError{http.StatusForbidden, "approval_required", err.Error()}
	case errors.Is(err, operator.ErrNotPending):
		he = &httpError{http.StatusConflict, "not_pending", err.Error()}
	case errors.Is(err, operator.ErrExists), errors.Is(err, store.ErrExists):
		he = &httpError{http.StatusConflict, "exists", "already exists"}
	case errors.Is(err, operator.ErrNotFound), errors.Is(err, store.ErrNotFound):
		he = errNotFound
	case errors.Is(err, operator.ErrInvalid):
		he = &httpError{http.StatusBadRequest, "bad_request", err.Error()}
	default:
		log.Error("admin request", "err", err)
		he = &httpError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keywarden"`)
	}
	writeJSON(w, he.status, map[string]string{"error": he.msg, "code": he.code})
}

// writeJSON and readJSON are the JSON helper pair.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

const maxBody = 64 << 10

func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid JSON body: trailing data")
	}
	return nil
}
