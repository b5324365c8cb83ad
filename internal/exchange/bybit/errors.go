package bybit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// errorWriter answers in Bybit's v5 shape: {"retCode":10004,"retMsg":"...",
// "result":{},"retExtInfo":{},"time":1700000000000}.
type errorWriter struct{}

// errorCode returns the HTTP status and Bybit retCode for e (spec §16.7).
func errorCode(e *exchange.Error) (int, int) {
	switch e.Kind {
	case exchange.ErrAuth:
		if strings.Contains(e.Message, "api_key not found") {
			return http.StatusUnauthorized, 10007
		}
		if strings.Contains(e.Message, "API key") {
			return http.StatusUnauthorized, 10003
		}
		return http.StatusUnauthorized, 10004
	case exchange.ErrTimestamp:
		return http.StatusUnauthorized, 10002
	case exchange.ErrPassphrase:
		return http.StatusUnauthorized, 10003
	case exchange.ErrIP:
		return http.StatusForbidden, 10010
	case exchange.ErrPermission:
		return http.StatusForbidden, 10005
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, 10006
	case exchange.ErrUnavailable, exchange.ErrUpstream:
		return http.StatusServiceUnavailable, 10016
	case exchange.ErrNotFound:
		return http.StatusNotFound, 10017
	}
	return http.StatusBadRequest, 10001
}

// reply is Bybit's v5 response envelope.
type reply struct {
	RetCode    int    `json:"retCode"`
	RetMsg     string `json:"retMsg"`
	Result     any    `json:"result"`
	RetExtInfo any    `json:"retExtInfo"`
	Time       int64  `json:"time"`
}

// WriteError writes e in Bybit's shape. ErrRateLimit carries Retry-After.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := errorCode(e)
	if e.Kind == exchange.ErrRateLimit {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, reply{RetCode: code, RetMsg: e.Message, Result: struct{}{}, RetExtInfo: struct{}{}, Time: time.Now().UnixMilli()})
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"retCode":10016,"retMsg":"System error. Please try again later.","result":{},"retExtInfo":{}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// rateLimits reads X-Bapi-Limit (the per-endpoint budget per second) and
// X-Bapi-Limit-Status (what is left of it).
type rateLimits struct{}

// RateLimit reads Bybit's rate-limit headers.
func (rateLimits) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	limit, err1 := strconv.Atoi(h.Get("X-Bapi-Limit"))
	left, err2 := strconv.Atoi(h.Get("X-Bapi-Limit-Status"))
	if err1 != nil || err2 != nil || limit <= 0 || left < 0 || left > limit {
		return exchange.RateLimit{}, false
	}
	return exchange.RateLimit{Used: limit - left, Limit: limit, Window: time.Second}, true
}

// inspector reads a key's posture from GET /v5/user/query-api.
type inspector struct{}

// InspectRequest returns the query-api request; sign it with the key being
// inspected.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/v5/user/query-api", Header: http.Header{}}
}

type apiInfo struct {
	APIKey      string              `json:"apiKey"`
	Secret      string              `json:"secret"`
	ReadOnly    int                 `json:"readOnly"`
	Permissions map[string][]string `json:"permissions"`
	IPs         []string            `json:"ips"`
	ExpiredAt   string              `json:"expiredAt"`
	CreatedAt   string              `json:"createdAt"`
}

func decodeReply(op string, status int, body []byte) (apiInfo, error) {
	var rep struct {
		RetCode int     `json:"retCode"`
		RetMsg  string  `json:"retMsg"`
		Result  apiInfo `json:"result"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return apiInfo{}, fmt.Errorf("%s: status %d: malformed reply", op, status)
	}
	if status != http.StatusOK || rep.RetCode != 0 {
		return apiInfo{}, fmt.Errorf("%s: status %d: bybit retCode %d: %s", op, status, rep.RetCode, exchange.SafeName(rep.RetMsg))
	}
	return rep.Result, nil
}

// ParsePosture reads readOnly, the permission groups, ips ("*" means not
// bound) and the creation and expiry times.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	info, err := decodeReply("bybit query api", status, body)
	if err != nil {
		return exchange.KeyPosture{}, err
	}
	p := exchange.KeyPosture{CanRead: true}
	groups := make([]string, 0, len(info.Permissions))
	for g := range info.Permissions {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		for _, perm := range info.Permissions[g] {
			p.Permissions = append(p.Permissions, g+"."+perm)
			switch {
			case g == "Wallet" && perm == "Withdraw":
				p.CanWithdraw = true
			case g == "Wallet" && strings.Contains(perm, "Transfer"):
				p.CanTransfer = true
			case g == "Spot":
				p.CanTrade = true
			case g == "ContractTrade" || g == "Derivatives" || g == "Options":
				p.CanTrade, p.CanFutures = true, true
			}
		}
	}
	if info.ReadOnly == 1 {
		// A read-only key can do nothing else whatever its groups say.
		p.CanTrade, p.CanFutures, p.CanTransfer, p.CanWithdraw = false, false, false, false
	}
	for _, ip := range info.IPs {
		if ip = strings.TrimSpace(ip); ip != "" && ip != "*" {
			p.IPs = append(p.IPs, ip)
		}
	}
	p.IPRestricted = len(p.IPs) > 0
	p.Created, _ = time.Parse(time.RFC3339, info.CreatedAt)
	p.Expires, _ = time.Parse(time.RFC3339, info.ExpiredAt)
	return p, nil
}

// keyManager creates and deletes sub-account keys with a master key.
type keyManager struct{}

// permissionGroups turns "Group.Perm" names into Bybit's permissions object.
func permissionGroups(perms []string) (map[string][]string, bool, error) {
	groups := map[string][]string{}
	readOnly := true
	for _, p := range perms {
		if p == "readOnly" {
			continue
		}
		g, name, ok := strings.Cut(p, ".")
		if !ok || g == "" || name == "" {
			return nil, false, fmt.Errorf("permission %q is not Group.Permission", exchange.SafeName(p))
		}
		if g == "Wallet" && name == "Withdraw" {
			return nil, false, fmt.Errorf("sub-account keys cannot withdraw")
		}
		groups[g] = append(groups[g], name)
		readOnly = false
	}
	return groups, readOnly, nil
}

// CreateKeyRequest builds POST /v5/user/create-sub-api for spec.SubAccount
// (a numeric UID). Permissions are "Group.Permission" (Spot.SpotTrade,
// ContractTrade.Order, ...); none means a read-only key.
func (keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	uid, err := strconv.ParseInt(spec.SubAccount, 10, 64)
	if err != nil || uid <= 0 {
		return nil, fmt.Errorf("bybit create key: sub-account must be a numeric uid")
	}
	groups, readOnly, err := permissionGroups(spec.Permissions)
	if err != nil {
		return nil, fmt.Errorf("bybit create key: %w", err)
	}
	ro := 0
	if readOnly {
		ro = 1
	}
	ips := "*"
	if len(spec.IPs) > 0 {
		ips = strings.Join(spec.IPs, ",")
	}
	body, err := marshal(struct {
		SubUID      int64               `json:"subuid"`
		Note        string              `json:"note,omitempty"`
		ReadOnly    int                 `json:"readOnly"`
		IPs         string              `json:"ips"`
		Permissions map[string][]string `json:"permissions"`
	}{uid, spec.Label, ro, ips, groups})
	if err != nil {
		return nil, fmt.Errorf("bybit create key: %w", err)
	}
	return &exchange.Request{Method: http.MethodPost, Path: "/v5/user/create-sub-api",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
}

// ParseCreatedKey reads the new key and its secret (returned only once).
func (keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	info, err := decodeReply("bybit create key", status, body)
	if err != nil {
		return nil, err
	}
	if info.APIKey == "" || info.Secret == "" {
		return nil, fmt.Errorf("bybit create key: reply lacks key or secret")
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: info.APIKey, Secret: exchange.Secret(info.Secret)}, nil
}

// DeleteKeyRequest builds POST /v5/user/delete-sub-api, called by the
// master key with the sub-account key to delete.
func (keyManager) DeleteKeyRequest(apiKey string, _ exchange.KeySpec) (*exchange.Request, error) {
	if apiKey == "" {
		return nil, fmt.Errorf("bybit delete key: no api key")
	}
	body, err := marshal(struct {
		APIKey string `json:"apikey"`
	}{apiKey})
	if err != nil {
		return nil, fmt.Errorf("bybit delete key: %w", err)
	}
	return &exchange.Request{Method: http.MethodPost, Path: "/v5/user/delete-sub-api",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
}
