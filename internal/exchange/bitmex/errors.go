package bitmex

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// ErrorWriter answers in BitMEX's shape: an HTTP status and
// {"error":{"message":...,"name":...}}. Messages start with BitMEX's own
// text (which clients such as ccxt match on) followed by keywarden's detail;
// a policy denial is 403 "Access Denied" naming the rule.
type ErrorWriter struct{}

// WriteError writes e as BitMEX would.
func (ErrorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, name, msg := errorShape(e.Kind)
	if e.Kind == exchange.ErrRateLimit {
		secs := max(1, int((e.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg = "Rate limit exceeded, retry in " + strconv.Itoa(secs) + " seconds."
	}
	if e.Message != "" {
		msg += " " + e.Message
	}
	writeError(w, status, name, msg)
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
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, name, msg string) {
	var e apiError
	e.Error.Message, e.Error.Name = msg, name
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
