// Package kucoin is keywarden's KuCoin venue (spec/exchanges.md §8): it
// signs outbound requests with key version 2 (HMAC-SHA256 signature and an
// HMAC-encoded passphrase), verifies bots' requests signed the same way with
// a keywarden client credential, describes calls for the policy, answers
// errors in KuCoin's shape, inspects keys, and simulates the exchange for
// tests.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package kucoin

import (
	"crypto/rand"
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
const Name = "kucoin"

// DefaultUpstream is KuCoin's spot and account REST host.
const DefaultUpstream = "https://api.kucoin.com"

// FuturesUpstream is KuCoin's futures REST host. It signs and describes like
// the spot host; build a separate venue with New for it.
const FuturesUpstream = "https://api-futures.kucoin.com"

// New returns the KuCoin venue forwarding to upstream.
func New(upstream *url.URL) exchange.Venue {
	return exchange.Venue{
		Name:            Name,
		Upstream:        upstream,
		Signer:          signer{},
		Verifier:        verifier{},
		Describer:       describer{},
		Errors:          errorWriter{},
		Inspector:       inspector{},
		Limits:          limits{},
		Keys:            keyManager{},
		KeyKinds:        []exchange.KeyKind{exchange.KeyHMAC},
		NeedsPassphrase: true,
	}
}

// errorWriter answers in KuCoin's {"code":"...","msg":"..."} shape.
type errorWriter struct{}

var _ exchange.ErrorWriter = errorWriter{}

// errorCode maps an error to KuCoin's HTTP status and code (spec §16.7).
func errorCode(e *exchange.Error) (status int, code string) {
	switch e.Kind {
	case exchange.ErrAuth:
		switch e.Message {
		case msgMissingHeader:
			return http.StatusUnauthorized, "400001"
		case "Invalid KC-API-KEY":
			return http.StatusUnauthorized, "400003"
		}
		return http.StatusUnauthorized, "400005"
	case exchange.ErrTimestamp:
		return http.StatusUnauthorized, "400002"
	case exchange.ErrPassphrase:
		return http.StatusUnauthorized, "400004"
	case exchange.ErrIP:
		return http.StatusForbidden, "400006"
	case exchange.ErrPermission:
		return http.StatusForbidden, "400007"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, "429000"
	case exchange.ErrNotFound:
		return http.StatusNotFound, "404000"
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, "503000"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, "500000"
	}
	return http.StatusBadRequest, "400100"
}

// WriteError writes e as KuCoin does; a rate-limit answer carries
// Retry-After in whole seconds.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := errorCode(e)
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if e.Kind == exchange.ErrRateLimit && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, status, map[string]string{"code": code, "msg": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"500000","msg":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// inspector reads the key's own permissions with GET /api/v1/user/api-key
// (spec §8c, §14.1).
type inspector struct{}

var _ exchange.Inspector = inspector{}

// InspectRequest returns the unsigned self-inspection request.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: "GET", Path: "/api/v1/user/api-key", Header: http.Header{}}
}

// apiKeyInfo is the data of GET /api/v1/user/api-key.
type apiKeyInfo struct {
	Remark      string `json:"remark"`
	APIKey      string `json:"apiKey"`
	Permission  string `json:"permission"`
	IPWhitelist string `json:"ipWhitelist"`
	CreatedAt   int64  `json:"createdAt"`
	ExpiredAt   int64  `json:"expiredAt"`
}

type envelope struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// ParsePosture maps KuCoin's permission list (General, Spot, Margin,
// Futures, InnerTransfer, Transfer, Withdrawal, ...) onto a KeyPosture.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("kucoin: parse api-key info: %w", err)
	}
	if status != http.StatusOK || env.Code != "200000" {
		return exchange.KeyPosture{}, fmt.Errorf("kucoin: api-key info: status %d code %s", status, exchange.SafeName(env.Code))
	}
	var info apiKeyInfo
	if err := json.Unmarshal(env.Data, &info); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("kucoin: parse api-key info: %w", err)
	}
	var p exchange.KeyPosture
	for _, perm := range strings.Split(info.Permission, ",") {
		perm = strings.TrimSpace(perm)
		if perm == "" {
			continue
		}
		p.Permissions = append(p.Permissions, perm)
		switch strings.ToLower(perm) {
		case "general":
			p.CanRead = true
		case "spot", "margin", "leveragedtoken":
			p.CanTrade = true
		case "futures":
			p.CanTrade, p.CanFutures = true, true
		case "innertransfer", "transfer", "flextransfers":
			p.CanTransfer = true
		case "withdrawal", "withdraw":
			p.CanWithdraw = true
		}
	}
	p.IPs = append(p.IPs, strings.FieldsFunc(info.IPWhitelist, func(r rune) bool { return r == ',' || r == ';' || r == ' ' })...)
	p.IPRestricted = len(p.IPs) > 0
	if info.CreatedAt > 0 {
		p.Created = time.UnixMilli(info.CreatedAt).UTC()
	}
	if info.ExpiredAt > 0 {
		p.Expires = time.UnixMilli(info.ExpiredAt).UTC()
	}
	return p, nil
}

// limits reads KuCoin's gw-ratelimit-* headers. KuCoin's quotas reset every
// 30 seconds.
type limits struct{}

var _ exchange.RateLimitReader = limits{}

// RateLimit reads gw-ratelimit-limit and gw-ratelimit-remaining.
func (limits) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	limit, err1 := strconv.Atoi(h.Get("Gw-Ratelimit-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("Gw-Ratelimit-Remaining"))
	if err1 != nil || err2 != nil || limit <= 0 || remaining < 0 {
		return exchange.RateLimit{}, false
	}
	return exchange.RateLimit{Used: max(limit-remaining, 0), Limit: limit, Window: 30 * time.Second}, true
}

// keyManager builds sub-account key requests (spec §8d). KuCoin creates
// keys only for sub-accounts, and deleting one needs its passphrase, which
// KeySpec does not carry, so DeleteKeyRequest refuses for now.
type keyManager struct{}

var _ exchange.KeyManager = keyManager{}

// CreateKeyRequest builds POST /api/v1/sub/api-key with a fresh random
// passphrase, which KuCoin echoes in its answer.
func (keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if spec.SubAccount == "" {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "kucoin: create key: only sub-account keys can be created by API")
	}
	pass, err := randomPassphrase()
	if err != nil {
		return nil, fmt.Errorf("kucoin: create key: %w", err)
	}
	perms := spec.Permissions
	if len(perms) == 0 {
		perms = []string{"General"}
	}
	body := map[string]string{
		"subName":    spec.SubAccount,
		"passphrase": pass,
		"remark":     spec.Label,
		"permission": strings.Join(perms, ","),
	}
	if len(spec.IPs) > 0 {
		body["ipWhitelist"] = strings.Join(spec.IPs, ",")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("kucoin: create key: %w", err)
	}
	return &exchange.Request{Method: "POST", Path: "/api/v1/sub/api-key", Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// ParseCreatedKey reads apiKey, apiSecret and passphrase from the answer.
func (keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("kucoin: parse created key: %w", err)
	}
	if status != http.StatusOK || env.Code != "200000" {
		return nil, fmt.Errorf("kucoin: create key: status %d code %s", status, exchange.SafeName(env.Code))
	}
	var d struct {
		APIKey     string `json:"apiKey"`
		APISecret  string `json:"apiSecret"`
		Passphrase string `json:"passphrase"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return nil, fmt.Errorf("kucoin: parse created key: %w", err)
	}
	if d.APIKey == "" || d.APISecret == "" || d.Passphrase == "" {
		return nil, fmt.Errorf("kucoin: parse created key: incomplete answer")
	}
	return &exchange.Credential{
		Kind:       exchange.KeyHMAC,
		APIKey:     d.APIKey,
		Secret:     exchange.Secret(d.APISecret),
		Passphrase: exchange.Secret(d.Passphrase),
	}, nil
}

// DeleteKeyRequest deletes a sub-account key: KuCoin's
// DELETE /api/v1/sub/api-key takes the key, its passphrase and the
// sub-account name as query parameters.
func (keyManager) DeleteKeyRequest(apiKey string, spec exchange.KeySpec) (*exchange.Request, error) {
	if apiKey == "" || spec.SubAccount == "" || len(spec.Passphrase) == 0 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "kucoin: delete key: needs the api key, its passphrase and the sub-account name")
	}
	q := "apiKey=" + url.QueryEscape(apiKey) + "&passphrase=" + url.QueryEscape(string(spec.Passphrase)) +
		"&subName=" + url.QueryEscape(spec.SubAccount)
	return &exchange.Request{Method: "DELETE", Path: "/api/v1/sub/api-key", RawQuery: q, Header: http.Header{}}, nil
}

// randomPassphrase returns 28 characters with lower- and upper-case letters
// and digits (KuCoin accepts 7 to 32 letters and digits).
func randomPassphrase() (string, error) {
	return "k" + rand.Text() + "7", nil
}
