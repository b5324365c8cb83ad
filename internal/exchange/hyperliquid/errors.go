package hyperliquid

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/keywarden/keywarden/internal/exchange"
)

type errorWriter struct{}

// WriteError answers in Hyperliquid's shape, {"status":"err","response":msg},
// with an HTTP status for the kind of error.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status := http.StatusBadRequest
	switch e.Kind {
	case exchange.ErrAuth, exchange.ErrTimestamp, exchange.ErrPassphrase:
		status = http.StatusUnauthorized
	case exchange.ErrIP, exchange.ErrPermission:
		status = http.StatusForbidden
	case exchange.ErrRateLimit:
		status = http.StatusTooManyRequests
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
		}
	case exchange.ErrUnavailable:
		status = http.StatusServiceUnavailable
	case exchange.ErrNotFound:
		status = http.StatusNotFound
	case exchange.ErrUpstream:
		status = http.StatusBadGateway
	}
	writeJSON(w, status, map[string]any{"status": "err", "response": e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
