package bitmex

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// ErrorWriter answers in BitMEX's shape: an HTTP status and
// {"error":{"message":...,"name":...}}. The message is BitMEX's own text,
// unchanged, because clients match on it exactly (ccxt raises
// PermissionDenied only for the exact message "Access Denied"); keywarden's
// explanation goes in an extra "detail" member, which such clients ignore
// but show as part of the body. A policy denial is 403 "Access Denied" with
// the rule in detail.
type ErrorWriter struct{}

// WriteError writes e as BitMEX would.
func (ErrorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, name, msg := errorShape(e.Kind)
	if e.Kind == exchange.ErrRateLimit {
		secs := max(1, int((e.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg = "Rate limit exceeded, retry in " + strconv.Itoa(secs) + " seconds."
	}
	writeErrorDetail(w, status, name, msg, e.Message)
}

func errorShape(k exchange.ErrorKind) (status int, name, msg string) {
	switch k {
	case exchange.ErrAuth, exchange.ErrPassphrase:
		return http.StatusUnauthorized, "HTTPError", "Signature not valid."
	case exchange.ErrTimestamp:
		return http.StatusUnauthorized, "HTTPError", "This request has expired - `expires` is in the past."
	case exchange.ErrIP, exchange.ErrPermission:
		return http.StatusForbidden, "HTTPError", "Access Denied"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, "RateLimitError", ""
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, "HTTPError", "The system is currently overloaded. Please try again later."
	case exchange.ErrNotFound:
		return http.StatusNotFound, "HTTPError", "Not Found"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, "HTTPError", "Bad Gateway"
	}
	return http.StatusBadRequest, "ValidationError", "Invalid request."
}

type apiError struct {
	Error struct {
		Message string `json:"message"`
		Name    string `json:"name"`
		Detail  string `json:"detail,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, name, msg string) {
	writeErrorDetail(w, status, name, msg, "")
}

func writeErrorDetail(w http.ResponseWriter, status int, name, msg, detail string) {
	var e apiError
	e.Error.Message, e.Error.Name, e.Error.Detail = msg, name, detail
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"Server Error","name":"HTTPError"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// RateLimits reads BitMEX's x-ratelimit-limit, x-ratelimit-remaining and
// x-ratelimit-reset headers (a per-minute budget).
type RateLimits struct{}

// RateLimit returns the budget the headers describe.
func (RateLimits) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	limit, err1 := strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
	if err1 != nil || err2 != nil || limit <= 0 || remaining < 0 || remaining > limit {
		return exchange.RateLimit{}, false
	}
	return exchange.RateLimit{Used: limit - remaining, Limit: limit, Window: time.Minute}, true
}
