package bitmex

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Inspector reads the key's permissions and CIDR restriction from
// GET /api/v1/apiKey (spec §12 c). The answer may list several keys of the
// account and BitMEX does not mark the calling one, so the posture is the
// most permissive of them: a capability is reported when any listed key has
// it, and IPRestricted only when every key is restricted. BitMEX keys can
// always read. The answer includes key secrets; nothing but the posture is
// kept.
type Inspector struct{}

// InspectRequest returns the unsigned GET /api/v1/apiKey.
func (Inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: "GET", Path: apiPrefix + "/apiKey", Header: map[string][]string{}}
}

type apiKeyInfo struct {
	Permissions []json.RawMessage `json:"permissions"`
	CIDR        string            `json:"cidr"`
	CIDRs       []string          `json:"cidrs"`
	Enabled     *bool             `json:"enabled"`
	Created     time.Time         `json:"created"`
}

// ParsePosture reads the apiKey listing.
func (Inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	if status != 200 {
		return exchange.KeyPosture{}, fmt.Errorf("bitmex posture: status %d", status)
	}
	var keys []apiKeyInfo
	if err := json.Unmarshal(body, &keys); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("bitmex posture: malformed answer")
	}
	if len(keys) == 0 {
		return exchange.KeyPosture{}, fmt.Errorf("bitmex posture: no key listed")
	}
	p := exchange.KeyPosture{CanRead: true, CanFutures: true, IPRestricted: true}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.Enabled != nil && !*k.Enabled {
			continue
		}
		for _, raw := range k.Permissions {
			// Permissions are strings, or objects in newer answers.
			var name string
			if json.Unmarshal(raw, &name) != nil {
				var obj map[string]any
				if json.Unmarshal(raw, &obj) == nil {
					name, _ = obj["name"].(string)
				}
			}
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			p.Permissions = append(p.Permissions, name)
			switch name {
			case "order", "orderCancel":
				p.CanTrade = true
			case "withdraw":
				p.CanWithdraw = true
				p.CanTransfer = true
			}
		}
		cidrs := k.CIDRs
		if len(cidrs) == 0 && k.CIDR != "" {
			cidrs = []string{k.CIDR}
		}
		restricted := len(cidrs) > 0
		for _, c := range cidrs {
			if c == "0.0.0.0/0" || c == "::/0" {
				restricted = false
			}
		}
		if !restricted {
			p.IPRestricted = false
		} else {
			p.IPs = append(p.IPs, cidrs...)
		}
		if p.Created.IsZero() || (!k.Created.IsZero() && k.Created.Before(p.Created)) {
			p.Created = k.Created
		}
	}
	if !p.IPRestricted {
		p.IPs = nil
	}
	return p, nil
}
