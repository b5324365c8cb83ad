package binance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Request-weight budgets per minute (spot: 6000, USDⓈ-M: 2400).
const (
	spotWeightLimit = 6000
	usdmWeightLimit = 2400
)

const pathAPIRestrictions = "/sapi/v1/account/apiRestrictions"

// inspector reads a key's posture from GET /sapi/v1/account/apiRestrictions
// (spec §2.1 c).
type inspector struct{}

// InspectRequest returns the unsigned self-inspection request.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: pathAPIRestrictions, Header: http.Header{}}
}

// apiRestrictions is the answer of GET /sapi/v1/account/apiRestrictions.
type apiRestrictions struct {
	IPRestrict                     bool  `json:"ipRestrict"`
	CreateTime                     int64 `json:"createTime"`
	EnableReading                  bool  `json:"enableReading"`
	EnableWithdrawals              bool  `json:"enableWithdrawals"`
	EnableInternalTransfer         bool  `json:"enableInternalTransfer"`
	EnableMargin                   bool  `json:"enableMargin"`
	EnableFutures                  bool  `json:"enableFutures"`
	PermitsUniversalTransfer       bool  `json:"permitsUniversalTransfer"`
	EnableVanillaOptions           bool  `json:"enableVanillaOptions"`
	EnableFixAPITrade              bool  `json:"enableFixApiTrade"`
	EnableFixReadOnly              bool  `json:"enableFixReadOnly"`
	EnableSpotAndMarginTrading     bool  `json:"enableSpotAndMarginTrading"`
	EnablePortfolioMarginTrading   bool  `json:"enablePortfolioMarginTrading"`
	TradingAuthorityExpirationTime int64 `json:"tradingAuthorityExpirationTime"`
}

// ParsePosture reads the apiRestrictions answer. A non-200 status is an
// error carrying Binance's code and message.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	if status != http.StatusOK {
		return exchange.KeyPosture{}, apiErrorOf("binance: inspect", status, body)
	}
	var a apiRestrictions
	if err := json.Unmarshal(body, &a); err != nil {
		return exchange.KeyPosture{}, errors.New("binance: inspect: malformed apiRestrictions answer")
	}
	p := exchange.KeyPosture{
		CanRead:      a.EnableReading,
		CanTrade:     a.EnableSpotAndMarginTrading || a.EnablePortfolioMarginTrading || a.EnableFixAPITrade,
		CanTransfer:  a.EnableInternalTransfer || a.PermitsUniversalTransfer || a.EnableMargin,
		CanWithdraw:  a.EnableWithdrawals,
		CanFutures:   a.EnableFutures,
		IPRestricted: a.IPRestrict,
	}
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"enableReading", a.EnableReading},
		{"enableSpotAndMarginTrading", a.EnableSpotAndMarginTrading},
		{"enableMargin", a.EnableMargin},
		{"enableFutures", a.EnableFutures},
		{"enableVanillaOptions", a.EnableVanillaOptions},
		{"enablePortfolioMarginTrading", a.EnablePortfolioMarginTrading},
		{"enableInternalTransfer", a.EnableInternalTransfer},
		{"permitsUniversalTransfer", a.PermitsUniversalTransfer},
		{"enableWithdrawals", a.EnableWithdrawals},
		{"enableFixApiTrade", a.EnableFixAPITrade},
		{"enableFixReadOnly", a.EnableFixReadOnly},
	} {
		if f.on {
			p.Permissions = append(p.Permissions, f.name)
		}
	}
	if a.CreateTime > 0 {
		p.Created = time.UnixMilli(a.CreateTime).UTC()
	}
	if a.TradingAuthorityExpirationTime > 0 {
		p.Expires = time.UnixMilli(a.TradingAuthorityExpirationTime).UTC()
	}
	return p, nil
}

// apiErrorOf turns a Binance error answer into an error that quotes only
// Binance's code and a bounded message.
func apiErrorOf(op string, status int, body []byte) error {
	var e apiError
	if json.Unmarshal(body, &e) == nil && e.Code != 0 {
		return fmt.Errorf("%s: status %d: code %d: %s", op, status, e.Code, exchange.SafeName(e.Msg))
	}
	return fmt.Errorf("%s: status %d", op, status)
}

// rateLimits reads X-MBX-USED-WEIGHT-<n><unit> headers (spec §2.1).
type rateLimits struct {
	limit int
}

// RateLimit returns the used request weight and its window from the
// X-MBX-USED-WEIGHT-* header with the longest window.
func (l rateLimits) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	var best exchange.RateLimit
	ok := false
	for k, vs := range h {
		const prefix = "X-MBX-USED-WEIGHT-"
		if len(k) <= len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) || len(vs) == 0 {
			continue
		}
		w, good := interval(k[len(prefix):])
		if !good {
			continue
		}
		used, err := strconv.Atoi(strings.TrimSpace(vs[0]))
		if err != nil || used < 0 {
			continue
		}
		if !ok || w > best.Window {
			best = exchange.RateLimit{Used: used, Window: w}
			if w == time.Minute {
				best.Limit = l.limit
			}
			ok = true
		}
	}
	return best, ok
}

// interval parses Binance's interval suffix: 10S, 1M, 1H, 1D.
func interval(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 6 {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's', 'S':
		unit = time.Second
	case 'm', 'M':
		unit = time.Minute
	case 'h', 'H':
		unit = time.Hour
	case 'd', 'D':
		unit = 24 * time.Hour
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// keyManager builds sub-account key requests (spec §2.1 d; the master key
// itself cannot be managed through the API). Requests are unsigned.
type keyManager struct{}

const pathSubAccountAPI = "/sapi/v1/sub-account/subAccountApi"

// createPermissions maps Binance permission names, in either the create
// parameter or the apiRestrictions spelling, to create parameters.
var createPermissions = map[string]string{
	"canTrade":                   "canTrade",
	"enableSpotAndMarginTrading": "canTrade",
	"canMarginLoanRepay":         "canMarginLoanRepay",
	"enableMargin":               "canMarginLoanRepay",
	"canFuturesTrade":            "canFuturesTrade",
	"enableFutures":              "canFuturesTrade",
	"canUniversalTransfer":       "canUniversalTransfer",
	"permitsUniversalTransfer":   "canUniversalTransfer",
	"canVanillaOptions":          "canVanillaOptions",
	"enableVanillaOptions":       "canVanillaOptions",
	"enableReading":              "",
	"read":                       "",
}

// CreateKeyRequest builds POST /sapi/v1/sub-account/subAccountApi. Reading
// is always granted; withdrawal cannot be granted through this endpoint, so
// asking for it (or for any unknown permission) is an error.
func (keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if spec.SubAccount == "" {
		return nil, errors.New("binance: create key: only sub-account keys can be created (SubAccount is empty)")
	}
	if spec.Label == "" {
		return nil, errors.New("binance: create key: label is empty")
	}
	grant := map[string]bool{}
	for _, p := range spec.Permissions {
		name, ok := createPermissions[p]
		if !ok {
			return nil, fmt.Errorf("binance: create key: permission %q cannot be granted", exchange.SafeName(p))
		}
		if name != "" {
			grant[name] = true
		}
	}
	var b bytes.Buffer
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	add("email", spec.SubAccount)
	add("apiName", spec.Label)
	if len(spec.IPs) > 0 {
		add("status", "2")
		add("ipAddress", strings.Join(spec.IPs, ","))
	} else {
		add("status", "1")
	}
	for _, name := range []string{"canTrade", "canMarginLoanRepay", "canFuturesTrade", "canUniversalTransfer", "canVanillaOptions"} {
		add(name, strconv.FormatBool(grant[name]))
	}
	if spec.PublicKey != "" {
		add("publicKey", spec.PublicKey)
	}
	return &exchange.Request{
		Method: http.MethodPost,
		Path:   pathSubAccountAPI,
		Header: http.Header{headerContentTyp: {contentTypeForm}},
		Body:   b.Bytes(),
	}, nil
}

// createdKey is the answer of the create call.
type createdKey struct {
	APIKey    string `json:"apiKey"`
	SecretKey string `json:"secretKey"`
	PublicKey string `json:"publicKey"`
}

// ParseCreatedKey reads the created key. An answer with a secret is an HMAC
// key. An answer without one is for a registered Ed25519 or RSA public key:
// the returned Credential then carries only APIKey and no Kind, and the
// caller, who holds the private half and knows its kind, completes it.
func (keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	if status != http.StatusOK {
		return nil, apiErrorOf("binance: create key", status, body)
	}
	var k createdKey
	if err := json.Unmarshal(body, &k); err != nil || k.APIKey == "" || !validAPIKey(k.APIKey) {
		return nil, errors.New("binance: create key: malformed answer")
	}
	c := &exchange.Credential{APIKey: k.APIKey}
	if k.SecretKey != "" {
		c.Kind = exchange.KeyHMAC
		c.Secret = exchange.Secret(k.SecretKey)
	}
	return c, nil
}

// DeleteKeyRequest builds DELETE /sapi/v1/sub-account/subAccountApi.
func (keyManager) DeleteKeyRequest(apiKey string, spec exchange.KeySpec) (*exchange.Request, error) {
	if spec.SubAccount == "" || apiKey == "" {
		return nil, errors.New("binance: delete key: sub-account and api key are required")
	}
	q := "email=" + url.QueryEscape(spec.SubAccount) + "&subAccountApiKey=" + url.QueryEscape(apiKey)
	return &exchange.Request{Method: http.MethodDelete, Path: pathSubAccountAPI, RawQuery: q, Header: http.Header{}}, nil
}
