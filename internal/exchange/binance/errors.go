package binance

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// errorWriter answers in Binance's shape: an HTTP status and
// {"code":<negative int>,"msg":"..."} with Binance's own codes (spec §16.7).
type errorWriter struct{}

// apiError is Binance's error body.
type apiError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// errorCode maps an *exchange.Error to Binance's status and code. Messages
// this package produces with Binance's own texts get Binance's exact code.
func errorCode(e *exchange.Error) (status, code int) {
	switch e.Message {
	case msgBadSignature:
		return http.StatusBadRequest, -1022
	case msgKeyFormat:
		return http.StatusUnauthorized, -2014
	case msgInvalidKey:
		return http.StatusUnauthorized, -2015
	case msgRecvWindowMax:
		return http.StatusBadRequest, -1131
	case msgContentType:
		return http.StatusBadRequest, -1100
	case msgTooMany:
		return http.StatusBadRequest, -1101
	}
	switch {
	case strings.HasPrefix(e.Message, "Mandatory parameter"):
		return http.StatusBadRequest, -1102
	case strings.HasPrefix(e.Message, "Illegal characters"):
		return http.StatusBadRequest, -1100
	case strings.HasPrefix(e.Message, "Duplicate values"), strings.HasPrefix(e.Message, "duplicate "):
		return http.StatusBadRequest, -1101
	}
	switch e.Kind {
	case exchange.ErrAuth, exchange.ErrPassphrase, exchange.ErrIP:
		return http.StatusUnauthorized, -2015
	case exchange.ErrPermission:
		// -1002 "You are not authorized to execute this request": a
		// refusal of this call, not of the key. With -2015 ccxt reads a
		// refusal after a successful call as a ban (DDoSProtection), and
		// bots back off and retry instead of giving up on the call.
		return http.StatusUnauthorized, -1002
	case exchange.ErrTimestamp:
		return http.StatusBadRequest, -1021
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, -1003
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, -1008
	case exchange.ErrNotFound:
		return http.StatusNotFound, -1000
	case exchange.ErrUpstream:
		return http.StatusBadGateway, -1006
	}
	return http.StatusBadRequest, -1102
}

// WriteError writes e as Binance would. Policy denials, IP and permission
// errors use -2015 (Binance's permission error) with e's message, which
// names the rule; rate limits use 429, -1003 and Retry-After in seconds.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	if e == nil {
		e = exchange.Errorf(exchange.ErrUnavailable, "internal error")
	}
	status, code := errorCode(e)
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if e.Kind == exchange.ErrRateLimit {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	}
	writeJSON(w, status, apiError{Code: code, Msg: msg})
}

func retryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return 1
	}
	return int((d + time.Second - 1) / time.Second)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":-1000,"msg":"An unknown error occurred while processing the request."}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
