// Package krakenfutures is keywarden's Kraken Futures venue
// (spec/exchanges.md §5): Authent HMAC-SHA512 signing over the URL-encoded
// parameters, an optional Nonce and the endpoint path; client verification of
// the same scheme against a keywarden client credential; call description
// for every /derivatives/api/v3 and history endpoint; Kraken Futures' error
// shape; the API key check for posture; and a simulator that verifies
// requests exactly as Kraken Futures does. Kraken Futures has no
// key-management API.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package krakenfutures

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue's name in keywarden.
const Name = "kraken-futures"

// DefaultUpstream is Kraken Futures' REST host; request paths start with
// /derivatives/api/v3 (or /api/history, /api/charts) as on the real host.
const DefaultUpstream = "https://futures.kraken.com"

// TestnetUpstream is Kraken Futures' demo environment, with its own keys.
const TestnetUpstream = "https://demo-futures.kraken.com"

// New returns the Kraken Futures venue forwarding to upstream.
func New(upstream *url.URL) exchange.Venue {
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    NewSigner(),
		Verifier:  NewVerifier(),
		Describer: describer{},
		Errors:    errorWriter{},
		Inspector: inspector{},
		Prices:    prices{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC},
	}
}

var (
	_ exchange.Signer      = (*Signer)(nil)
	_ exchange.Verifier    = (*Verifier)(nil)
	_ exchange.Describer   = describer{}
	_ exchange.ErrorWriter = errorWriter{}
)

// Kraken Futures error strings (ccxt's exception table for krakenfutures).
const (
	errAuthentication  = "authenticationError"
	errNonceBelow      = "nonceBelowThreshold"
	errInvalidArgument = "invalidArgument"
	errRequiredArg     = "requiredArgumentMissing"
	errAPILimit        = "apiLimitExceeded"
	errUnavailable     = "unavailable"
	errNotFound        = "notFound"
	errPermission      = "permissionDenied"
	errInsufficient    = "insufficientAvailableFunds"
)

// errorWriter answers in Kraken Futures' {"result":"error","error":...}
// shape; keywarden's explanation goes in an extra "message" field.
type errorWriter struct{}

func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := http.StatusInternalServerError, errUnavailable
	switch e.Kind {
	case exchange.ErrBadRequest:
		status, code = http.StatusBadRequest, errInvalidArgument
	case exchange.ErrAuth, exchange.ErrPassphrase:
		status, code = http.StatusUnauthorized, errAuthentication
	case exchange.ErrTimestamp:
		status, code = http.StatusUnauthorized, errNonceBelow
	case exchange.ErrIP, exchange.ErrPermission:
		status, code = http.StatusForbidden, errPermission
	case exchange.ErrRateLimit:
		status, code = http.StatusTooManyRequests, errAPILimit
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	case exchange.ErrNotFound:
		status, code = http.StatusNotFound, errNotFound
	case exchange.ErrUnavailable:
		status = http.StatusServiceUnavailable
	case exchange.ErrUpstream:
		status = http.StatusBadGateway
	}
	writeFuturesError(w, status, code, e.Message, time.Now())
}

func writeFuturesError(w http.ResponseWriter, status int, code, detail string, now time.Time) {
	b, _ := json.Marshal(struct {
		Result     string `json:"result"`
		ServerTime string `json:"serverTime"`
		Error      string `json:"error"`
		Message    string `json:"message,omitempty"`
	}{"error", serverTime(now), code, errorDetail(detail)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func serverTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// errorDetail readies keywarden's explanation of an error for the reply:
// control characters replaced, and cut at 512 bytes, long enough for a
// policy denial's whole reason (exchange.SafeName's 64 would cut it short).
// The messages are safe to show by the exchange.Error contract.
func errorDetail(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
