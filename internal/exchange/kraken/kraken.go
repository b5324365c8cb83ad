// Package kraken is keywarden's Kraken spot venue (spec/exchanges.md §4):
// API-Sign HMAC-SHA512 signing with a nonce the signer owns per key, client
// verification of the same scheme against a keywarden client credential,
// call description for every /0/public and /0/private method, Kraken's own
// error shape, GetApiKeyInfo inspection, and a simulator that checks
// signatures and strictly increasing nonces exactly as Kraken does.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package kraken

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
const Name = "kraken"

// DefaultUpstream is Kraken's spot REST host. Kraken has no spot testnet.
const DefaultUpstream = "https://api.kraken.com"

// New returns the Kraken spot venue forwarding to upstream.
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
	_ exchange.Inspector   = inspector{}
)

// Kraken error strings (spec §16.7; ccxt's exception table).
const (
	errInvalidKey       = "EAPI:Invalid key"
	errInvalidSignature = "EAPI:Invalid signature"
	errInvalidNonce     = "EAPI:Invalid nonce"
	errPermission       = "EGeneral:Permission denied"
	errInvalidArguments = "EGeneral:Invalid arguments"
	errRateLimit        = "EAPI:Rate limit exceeded"
	errUnknownMethod    = "EGeneral:Unknown method"
	errUnavailable      = "EService:Unavailable"
	errInternal         = "EGeneral:Internal error"
)

// errorWriter answers in Kraken's {"error":[...],"result":{}} shape. Kraken
// puts the condition in the first string (which clients such as ccxt match
// exactly) and keywarden adds its own explanation as a second string.
type errorWriter struct{}

func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := http.StatusOK, errInternal
	switch e.Kind {
	case exchange.ErrBadRequest:
		code = errInvalidArguments
	case exchange.ErrAuth, exchange.ErrPassphrase:
		code = errInvalidKey
		if strings.Contains(e.Message, "signature") {
			code = errInvalidSignature
		}
	case exchange.ErrTimestamp:
		code = errInvalidNonce
	case exchange.ErrIP, exchange.ErrPermission:
		code = errPermission
	case exchange.ErrRateLimit:
		status, code = http.StatusTooManyRequests, errRateLimit
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	case exchange.ErrNotFound:
		status, code = http.StatusNotFound, errUnknownMethod
	case exchange.ErrUnavailable:
		status, code = http.StatusServiceUnavailable, errUnavailable
	case exchange.ErrUpstream:
		status, code = http.StatusBadGateway, errUnavailable
	}
	writeKrakenError(w, status, code, e.Message)
}

func writeKrakenError(w http.ResponseWriter, status int, code, detail string) {
	errs := []string{code}
	if detail != "" {
		errs = append(errs, "EGeneral:keywarden: "+errorDetail(detail))
	}
	b, _ := json.Marshal(struct {
		Error  []string `json:"error"`
		Result struct{} `json:"result"`
	}{Error: errs})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// inspector asks Kraken about the key with GetApiKeyInfo (spec §4c; the
// response shape is the one in Kraken's API reference for Get API Key Info).
type inspector struct{}

func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{
		Method: http.MethodPost,
		Path:   "/0/private/GetApiKeyInfo",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
	}
}

// apiKeyInfo is the result of GetApiKeyInfo. Kraken sends timestamps as
// decimal strings ("0" for none).
type apiKeyInfo struct {
	APIKeyName   string   `json:"apiKeyName"`
	APIKey       string   `json:"apiKey"`
	Nonce        flexInt  `json:"nonce"`
	NonceWindow  flexInt  `json:"nonceWindow"`
	Permissions  []string `json:"permissions"`
	ValidUntil   flexInt  `json:"validUntil"`
	QueryFrom    flexInt  `json:"queryFrom"`
	QueryTo      flexInt  `json:"queryTo"`
	CreatedTime  flexInt  `json:"createdTime"`
	ModifiedTime flexInt  `json:"modifiedTime"`
	IPAllowlist  []string `json:"ipAllowlist"`
	LastUsed     flexInt  `json:"lastUsed"`
}

// flexInt is an integer Kraken may send as a JSON number or a string.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %w", err)
	}
	*f = flexInt(n)
	return nil
}

func (f flexInt) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(f), 10) + `"`), nil
}

func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	var resp struct {
		Error  []string    `json:"error"`
		Result *apiKeyInfo `json:"result"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("kraken: parse key info: %w", err)
	}
	if status != http.StatusOK || len(resp.Error) > 0 || resp.Result == nil {
		return exchange.KeyPosture{}, fmt.Errorf("kraken: key info: status %d: %s", status, exchange.SafeName(strings.Join(resp.Error, ",")))
	}
	info := resp.Result
	p := exchange.KeyPosture{Permissions: info.Permissions, IPs: info.IPAllowlist, IPRestricted: len(info.IPAllowlist) > 0}
	for _, perm := range info.Permissions {
		switch perm {
		case PermQueryFunds, PermQueryOpenTrades, PermQueryClosedTrades, PermQueryLedger:
			p.CanRead = true
		case PermModifyTrades, PermCloseTrades:
			p.CanTrade = true
		case PermWithdrawFunds:
			p.CanWithdraw = true
			p.CanTransfer = true
		case PermEarnFunds:
			p.CanTransfer = true
		}
	}
	if info.CreatedTime > 0 {
		p.Created = time.Unix(int64(info.CreatedTime), 0).UTC()
	}
	if info.ValidUntil > 0 {
		p.Expires = time.Unix(int64(info.ValidUntil), 0).UTC()
	}
	return p, nil
}

// Kraken's permission names in GetApiKeyInfo. query-funds, withdraw-funds,
// query-open-trades and modify-trades appear in Kraken's reference example;
// the others follow the same spelling and are unverified.
const (
	PermQueryFunds        = "query-funds"
	PermDepositFunds      = "deposit-funds"
	PermWithdrawFunds     = "withdraw-funds"
	PermEarnFunds         = "earn-funds"
	PermQueryOpenTrades   = "query-open-trades"
	PermQueryClosedTrades = "query-closed-trades"
	PermModifyTrades      = "modify-trades"
	PermCloseTrades       = "close-trades"
	PermQueryLedger       = "query-ledger"
	PermExportData        = "export-data"
)

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
