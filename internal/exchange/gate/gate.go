// Package gate is keywarden's Gate APIv4 venue (spec/exchanges.md §10): it
// signs outbound requests with HMAC-SHA512 over method, path, unencoded
// query, body hash and timestamp, verifies bots' requests signed the same
// way with a keywarden client credential, describes calls for the policy,
// answers errors in Gate's {"label","message"} shape, inspects keys,
// manages sub-account keys and simulates the exchange for tests.
//
// Request paths include the /api/v4 prefix, which is part of the signed
// string; the upstream is the bare host.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package gate

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue name used in routes, policies and audit records.
const Name = "gate"

// DefaultUpstream is Gate's REST host; paths start with /api/v4.
const DefaultUpstream = "https://api.gateio.ws"

// TestnetUpstream is Gate's TestNet host (separate keys).
const TestnetUpstream = "https://api-testnet.gateapi.io"

// New returns the Gate venue forwarding to upstream.
func New(upstream *url.URL) exchange.Venue {
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    signer{},
		Verifier:  verifier{},
		Describer: describer{},
		Errors:    errorWriter{},
		Inspector: inspector{},
		Limits:    limits{},
		Keys:      keyManager{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC},
	}
}

// errorWriter answers in Gate's {"label":"...","message":"..."} shape.
type errorWriter struct{}

var _ exchange.ErrorWriter = errorWriter{}

// errorLabel maps an error to Gate's HTTP status and label (spec §16.7).
func errorLabel(e *exchange.Error) (int, string) {
	switch e.Kind {
	case exchange.ErrAuth:
		switch e.Message {
		case msgMissingHeader:
			return http.StatusUnauthorized, "MISSING_REQUIRED_HEADER"
		case "Invalid key provided":
			return http.StatusUnauthorized, "INVALID_KEY"
		}
		return http.StatusUnauthorized, "INVALID_SIGNATURE"
	case exchange.ErrTimestamp:
		return http.StatusUnauthorized, "REQUEST_EXPIRED"
	case exchange.ErrPassphrase:
		return http.StatusUnauthorized, "INVALID_CREDENTIALS"
	case exchange.ErrIP:
		return http.StatusForbidden, "IP_FORBIDDEN"
	case exchange.ErrPermission:
		return http.StatusForbidden, "FORBIDDEN"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, "TOO_MANY_REQUESTS"
	case exchange.ErrNotFound:
		return http.StatusNotFound, "NOT_FOUND"
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, "SERVER_ERROR"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, "SERVER_ERROR"
	}
	return http.StatusBadRequest, "INVALID_PARAM_VALUE"
}

// WriteError writes e as Gate does; a rate-limit answer carries
// Retry-After in whole seconds.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, label := errorLabel(e)
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if e.Kind == exchange.ErrRateLimit && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, status, map[string]string{"label": label, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"label":"SERVER_ERROR","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// inspector reads GET /api/v4/account/detail (spec §10c, §14.1): the key's
// IP whitelist and trading-pair whitelist. Gate reports permissions only
// per key in /account/main_keys, which cannot tell which key is asking, so
// the posture's permission fields stay false.
type inspector struct{}

var _ exchange.Inspector = inspector{}

// InspectRequest returns the unsigned self-inspection request.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: "GET", Path: "/api/v4/account/detail", Header: http.Header{}}
}

// ParsePosture reads ip_whitelist; the currency_pairs whitelist is
// reported as "currency_pair:<pair>" permissions.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	if status != http.StatusOK {
		var e struct{ Label string }
		_ = json.Unmarshal(body, &e)
		return exchange.KeyPosture{}, fmt.Errorf("gate: account detail: status %d %s", status, exchange.SafeName(e.Label))
	}
	var d struct {
		UserID        int64    `json:"user_id"`
		IPWhitelist   []string `json:"ip_whitelist"`
		CurrencyPairs []string `json:"currency_pairs"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("gate: parse account detail: %w", err)
	}
	var p exchange.KeyPosture
	for _, ip := range d.IPWhitelist {
		if ip = strings.TrimSpace(ip); ip != "" {
			p.IPs = append(p.IPs, ip)
		}
	}
	p.IPRestricted = len(p.IPs) > 0
	for _, cp := range d.CurrencyPairs {
		p.Permissions = append(p.Permissions, "currency_pair:"+cp)
	}
	return p, nil
}

// limits reads Gate's X-Gate-RateLimit-* headers; Gate's limits are per
// 10 seconds.
type limits struct{}

var _ exchange.RateLimitReader = limits{}

// RateLimit reads X-Gate-RateLimit-Limit and X-Gate-RateLimit-Requests-Remain.
func (limits) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	limit, err1 := strconv.Atoi(h.Get("X-Gate-Ratelimit-Limit"))
	remain, err2 := strconv.Atoi(h.Get("X-Gate-Ratelimit-Requests-Remain"))
	if err1 != nil || err2 != nil || limit <= 0 || remain < 0 {
		return exchange.RateLimit{}, false
	}
	return exchange.RateLimit{Used: max(limit-remain, 0), Limit: limit, Window: 10 * time.Second}, true
}

// keyManager builds sub-account key requests (spec §10d). Gate creates
// keys by API only for sub-accounts; KeySpec.SubAccount is the sub-account
// user id. Permissions are Gate group names ("spot", "futures", "wallet",
// ...), with ":read" appended for read-only access.
type keyManager struct{}

var _ exchange.KeyManager = keyManager{}

type gatePerm struct {
	Name     string `json:"name"`
	ReadOnly bool   `json:"read_only"`
}

// CreateKeyRequest builds POST /api/v4/sub_accounts/{user_id}/keys.
func (keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if !allDigits(spec.SubAccount) {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "gate: create key: sub-account user id required")
	}
	body := struct {
		Name        string     `json:"name,omitempty"`
		Mode        int        `json:"mode"`
		Perms       []gatePerm `json:"perms"`
		IPWhitelist []string   `json:"ip_whitelist,omitempty"`
	}{Name: spec.Label, Mode: 1, IPWhitelist: spec.IPs}
	for _, p := range spec.Permissions {
		name, ro := strings.CutSuffix(p, ":read")
		if name == "withdrawal" {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "gate: create key: sub-account keys cannot withdraw")
		}
		body.Perms = append(body.Perms, gatePerm{Name: name, ReadOnly: ro})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gate: create key: %w", err)
	}
	return &exchange.Request{Method: "POST", Path: "/api/v4/sub_accounts/" + spec.SubAccount + "/keys",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// ParseCreatedKey reads key and secret from the answer.
func (keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	if status != http.StatusOK && status != http.StatusCreated {
		var e struct{ Label string }
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("gate: create key: status %d %s", status, exchange.SafeName(e.Label))
	}
	var d struct {
		Key    string `json:"key"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("gate: parse created key: %w", err)
	}
	if d.Key == "" || d.Secret == "" {
		return nil, fmt.Errorf("gate: parse created key: incomplete answer")
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: d.Key, Secret: exchange.Secret(d.Secret)}, nil
}

// DeleteKeyRequest builds DELETE /api/v4/sub_accounts/{user_id}/keys/{key}.
func (keyManager) DeleteKeyRequest(apiKey string, spec exchange.KeySpec) (*exchange.Request, error) {
	if !allDigits(spec.SubAccount) || apiKey == "" || !printable(apiKey) || strings.ContainsAny(apiKey, "/?#%") {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "gate: delete key: sub-account user id and key required")
	}
	return &exchange.Request{Method: "DELETE", Path: "/api/v4/sub_accounts/" + spec.SubAccount + "/keys/" + apiKey, Header: http.Header{}}, nil
}

func allDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
