package krakenfutures

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// keyCheckPath is Kraken Futures' API key check ("Check v3 API key" in
// Kraken's API reference). Spec §5c found no self-inspection endpoint; this
// one is documented since. It is signed like every other request, with the
// path itself as endpointPath.
const keyCheckPath = "/api/auth/v1/api-keys/v3/check"

var _ exchange.Inspector = inspector{}

// inspector reads the key check. Kraken documents createdAt and the CIDR
// allowlist; the permissions object's fields are not documented, so
// ParsePosture reads them by the access levels of Kraken Futures keys
// (General API: no access / read only / full access; Withdrawal API: no
// access / full access) and reports each as "name=level".
type inspector struct{}

func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: keyCheckPath, Header: http.Header{}}
}

// keyCheck is the key check response.
type keyCheck struct {
	APIKey            string         `json:"apiKey"`
	AccountUID        string         `json:"accountUid"`
	CreatedAt         time.Time      `json:"createdAt"`
	Permissions       map[string]any `json:"permissions"`
	AllowedCidrBlock  *string        `json:"allowedCidrBlock"`
	AllowedCidrBlocks []string       `json:"allowedCidrBlocks"`
}

func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	if status != http.StatusOK {
		return exchange.KeyPosture{}, fmt.Errorf("kraken-futures: key check: status %d", status)
	}
	var kc keyCheck
	if err := json.Unmarshal(body, &kc); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("kraken-futures: key check: %w", err)
	}
	p := exchange.KeyPosture{Created: kc.CreatedAt, IPs: kc.AllowedCidrBlocks, CanFutures: true}
	if len(p.IPs) == 0 && kc.AllowedCidrBlock != nil && *kc.AllowedCidrBlock != "" {
		p.IPs = []string{*kc.AllowedCidrBlock}
	}
	p.IPRestricted = len(p.IPs) > 0
	names := make([]string, 0, len(kc.Permissions))
	for k := range kc.Permissions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		level := accessLevel(kc.Permissions[name])
		p.Permissions = append(p.Permissions, name+"="+level)
		if level == "none" {
			continue
		}
		switch {
		case strings.Contains(strings.ToLower(name), "withdraw"):
			p.CanWithdraw = true
		case level == "read":
			p.CanRead = true
		default:
			p.CanRead, p.CanTrade, p.CanTransfer = true, true, true
		}
	}
	return p, nil
}

// accessLevel reads one permission value as "none", "read" or "full";
// anything unrecognised counts as full, so posture checks err towards
// flagging a key as too powerful.
func accessLevel(v any) string {
	switch t := v.(type) {
	case bool:
		if t {
			return "full"
		}
		return "none"
	case nil:
		return "none"
	case string:
		s := strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(t))
		switch s {
		case "", "none", "noaccess", "false":
			return "none"
		case "read", "readonly":
			return "read"
		}
	}
	return "full"
}
