package deribit

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Deribit error codes (spec §16.7 and Deribit's error table as listed in
// ccxt's deribit exception map).
const (
	codeAuthorizationRequired = 10000
	codeTooManyRequests       = 10028
	codeRetry                 = 10040
	codeNotEnoughFunds        = 10009
	codeOrderNotFound         = 10004
	codeBadRequest            = 11050
	codeInvalidCredentials    = 13004
	codeUnauthorized          = 13009
	codeForbidden             = 13021
	codeScopeExceeded         = 13403
	codeMethodNotFound        = -32601
	codeInvalidParams         = -32602
)

// ErrorWriter answers in Deribit's JSON-RPC error shape:
// {"jsonrpc":"2.0","error":{"message":...,"code":...,"data":{"reason":...}},"testnet":false}.
// A policy denial is 13021 "forbidden" with the rule in data.reason.
type ErrorWriter struct{}

// WriteError writes e as Deribit would.
func (ErrorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code, msg := errorShape(e.Kind)
	if e.Kind == exchange.ErrRateLimit && e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeRPCError(w, status, code, msg, e.Message, nil)
}

// errorShape maps a kind to Deribit's HTTP status, code and message.
func errorShape(k exchange.ErrorKind) (status, code int, msg string) {
	switch k {
	case exchange.ErrAuth:
		return http.StatusUnauthorized, codeUnauthorized, "unauthorized"
	case exchange.ErrTimestamp:
		return http.StatusUnauthorized, codeUnauthorized, "unauthorized"
	case exchange.ErrPassphrase:
		return http.StatusUnauthorized, codeInvalidCredentials, "invalid_credentials"
	case exchange.ErrIP:
		return http.StatusForbidden, codeForbidden, "forbidden"
	case exchange.ErrPermission:
		return http.StatusForbidden, codeForbidden, "forbidden"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, codeTooManyRequests, "too_many_requests"
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, codeRetry, "retry"
	case exchange.ErrNotFound:
		return http.StatusBadRequest, codeMethodNotFound, "Method not found"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, codeRetry, "retry"
	}
	return http.StatusBadRequest, codeBadRequest, "bad_request"
}

type rpcError struct {
	Message string         `json:"message"`
	Code    int            `json:"code"`
	Data    map[string]any `json:"data,omitempty"`
}

type rpcResponse struct {
	JSONRPC string    `json:"jsonrpc"`
	ID      any       `json:"id,omitempty"`
	Result  any       `json:"result,omitempty"`
	Error   *rpcError `json:"error,omitempty"`
	Testnet bool      `json:"testnet"`
	UsIn    int64     `json:"usIn,omitempty"`
	UsOut   int64     `json:"usOut,omitempty"`
	UsDiff  int64     `json:"usDiff,omitempty"`
}

func writeRPCError(w http.ResponseWriter, status, code int, msg, reason string, id any) {
	e := &rpcError{Message: msg, Code: code}
	if reason != "" {
		e.Data = map[string]any{"reason": reason}
	}
	writeJSON(w, status, rpcResponse{JSONRPC: "2.0", ID: id, Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"jsonrpc":"2.0","error":{"message":"internal_server_error","code":11094},"testnet":false}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
