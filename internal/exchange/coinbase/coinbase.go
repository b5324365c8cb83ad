// Package coinbase is keywarden's Coinbase Advanced Trade venue
// (spec/exchanges.md §3): per-request CDP JWTs (ES256 or EdDSA, uri-bound,
// 120 s) and legacy CB-ACCESS HMAC signing; verification of a bot's JWT with
// only the bot's public key; call description for the v3 brokerage and v2
// endpoints, including sends hidden in the v2 transactions endpoint;
// Coinbase's error shapes; key_permissions inspection; and a simulator that
// verifies requests exactly as Coinbase does.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package coinbase

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue's name in keywarden.
const Name = "coinbase"

// DefaultUpstream is Coinbase's REST host for Advanced Trade (/api/v3) and
// the Coinbase App API (/v2).
const DefaultUpstream = "https://api.coinbase.com"

// TestnetUpstream is the Advanced Trade static sandbox.
const TestnetUpstream = "https://api-sandbox.coinbase.com"

// New returns the Coinbase venue forwarding to upstream.
func New(upstream *url.URL) exchange.Venue {
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    NewSigner(upstream),
		Verifier:  NewVerifier(),
		Describer: describer{},
		Errors:    errorWriter{},
		Inspector: inspector{},
		Prices:    prices{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyEd25519, exchange.KeyECDSA, exchange.KeyHMAC},
	}
}

var (
	_ exchange.Signer      = (*Signer)(nil)
	_ exchange.Verifier    = (*Verifier)(nil)
	_ exchange.Describer   = describer{}
	_ exchange.ErrorWriter = errorWriter{}
	_ exchange.Inspector   = inspector{}
)

// errorWriter answers as Coinbase does: authentication failures are a bare
// 401 "Unauthorized" text, everything else the Advanced Trade JSON error
// {"error","code","message","error_details","details"} with gRPC-style codes
// that clients such as ccxt map (PERMISSION_DENIED, INVALID_ARGUMENT, ...).
type errorWriter struct{}

func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	switch e.Kind {
	case exchange.ErrAuth, exchange.ErrTimestamp, exchange.ErrPassphrase:
		writeUnauthorized(w)
		return
	}
	status, code, grpc := http.StatusInternalServerError, "INTERNAL", 13
	switch e.Kind {
	case exchange.ErrBadRequest:
		status, code, grpc = http.StatusBadRequest, "INVALID_ARGUMENT", 3
	case exchange.ErrIP, exchange.ErrPermission:
		status, code, grpc = http.StatusForbidden, "PERMISSION_DENIED", 7
	case exchange.ErrRateLimit:
		status, code, grpc = http.StatusTooManyRequests, "rate_limit_exceeded", 8
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	case exchange.ErrNotFound:
		status, code, grpc = http.StatusNotFound, "NOT_FOUND", 5
	case exchange.ErrUnavailable:
		status, code, grpc = http.StatusServiceUnavailable, "UNAVAILABLE", 14
	case exchange.ErrUpstream:
		status, code, grpc = http.StatusBadGateway, "UNAVAILABLE", 14
	}
	writeJSONError(w, status, code, grpc, e.Message)
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("Unauthorized\n"))
}

func writeJSONError(w http.ResponseWriter, status int, code string, grpc int, msg string) {
	msg = errorDetail(msg)
	b, _ := json.Marshal(struct {
		Error        string `json:"error"`
		Code         int    `json:"code"`
		Message      string `json:"message"`
		ErrorDetails string `json:"error_details"`
		Details      []any  `json:"details"`
	}{code, grpc, msg, msg, []any{}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// inspector reads GET /api/v3/brokerage/key_permissions (spec §3.3c). The
// Transfer permission also allows sends, so it counts as withdraw. The IP
// allowlist is not reported.
type inspector struct{}

func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/api/v3/brokerage/key_permissions", Header: http.Header{}}
}

// keyPermissions is the key_permissions response.
type keyPermissions struct {
	CanView       bool   `json:"can_view"`
	CanTrade      bool   `json:"can_trade"`
	CanTransfer   bool   `json:"can_transfer"`
	PortfolioUUID string `json:"portfolio_uuid"`
	PortfolioType string `json:"portfolio_type"`
}

func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	if status != http.StatusOK {
		return exchange.KeyPosture{}, fmt.Errorf("coinbase: key permissions: status %d", status)
	}
	var kp keyPermissions
	if err := json.Unmarshal(body, &kp); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("coinbase: key permissions: %w", err)
	}
	p := exchange.KeyPosture{CanRead: kp.CanView, CanTrade: kp.CanTrade, CanTransfer: kp.CanTransfer, CanWithdraw: kp.CanTransfer}
	for _, perm := range []struct {
		on   bool
		name string
	}{{kp.CanView, "view"}, {kp.CanTrade, "trade"}, {kp.CanTransfer, "transfer"}} {
		if perm.on {
			p.Permissions = append(p.Permissions, perm.name)
		}
	}
	return p, nil
}

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
