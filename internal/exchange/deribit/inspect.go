package deribit

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Inspector asks Deribit which scope the key really has: a public/auth
// client_signature grant (completed by the Signer) answers with the granted
// scope (spec §14.1). The answer also carries access and refresh tokens;
// ParsePosture reads only the scope and keeps nothing else.
type Inspector struct{}

// InspectRequest returns the unsigned public/auth request.
func (Inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{
		Method:   "GET",
		Path:     authPath,
		RawQuery: "grant_type=client_signature&data=",
		Header:   map[string][]string{},
	}
}

type authResult struct {
	Result *struct {
		Scope     string `json:"scope"`
		ExpiresIn int64  `json:"expires_in"`
	} `json:"result"`
	Error *rpcError `json:"error"`
}

// ParsePosture reads the granted scope of a public/auth answer.
func (Inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	var res authResult
	if err := json.Unmarshal(body, &res); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("deribit posture: %w", err)
	}
	if res.Error != nil || res.Result == nil || status != 200 {
		code := 0
		if res.Error != nil {
			code = res.Error.Code
		}
		return exchange.KeyPosture{}, fmt.Errorf("deribit posture: status %d, error code %d", status, code)
	}
	return postureFromScope(res.Result.Scope), nil
}

// postureFromScope turns a Deribit scope string ("account:read
// trade:read_write wallet:none ip:10.0.0.1 ...") into a KeyPosture.
func postureFromScope(scope string) exchange.KeyPosture {
	var p exchange.KeyPosture
	for s := range strings.FieldsSeq(scope) {
		name, level, _ := strings.Cut(s, ":")
		switch name {
		case "account", "trade", "wallet", "block_trade", "custody", "block_rfq":
			if level == "none" {
				continue
			}
			p.Permissions = append(p.Permissions, s)
			if level == "read" || level == "read_write" {
				p.CanRead = true
			}
			if level == "read_write" {
				switch name {
				case "trade", "block_trade", "block_rfq":
					p.CanTrade = true
					p.CanFutures = true
				case "wallet":
					p.CanTransfer = true
					p.CanWithdraw = true
				}
			}
		case "ip":
			if level != "" && level != "*" {
				p.IPRestricted = true
				p.IPs = append(p.IPs, level)
			}
		}
	}
	return p
}

// KeyManager builds Deribit's API-key management calls (spec §11 d). They
// need a key with account:read_write and cannot grant more than it has.
type KeyManager struct{}

// knownScopes are the max_scope parts keywarden may request.
var knownScopes = map[string]bool{
	"account:read": true, "account:read_write": true, "account:none": true,
	"trade:read": true, "trade:read_write": true, "trade:none": true,
	"wallet:read": true, "wallet:read_write": true, "wallet:none": true,
	"block_trade:read": true, "block_trade:read_write": true, "block_trade:none": true,
}

// CreateKeyRequest builds private/create_api_key. Permissions are Deribit
// scope parts ("trade:read_write"). Deribit sets IP whitelists with a
// separate call, so a spec with IPs is refused rather than silently
// creating an unrestricted key.
func (KeyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if len(spec.Permissions) == 0 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "deribit create key: no scope given")
	}
	for _, p := range spec.Permissions {
		if !knownScopes[p] {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "deribit create key: unknown scope %q", exchange.SafeName(p))
		}
	}
	if len(spec.IPs) > 0 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "deribit create key: IP whitelists are set with private/edit_api_key after creation")
	}
	q := "max_scope=" + url.QueryEscape(strings.Join(spec.Permissions, " "))
	if spec.Label != "" {
		q += "&name=" + url.QueryEscape(spec.Label)
	}
	if spec.PublicKey != "" {
		q += "&public_key=" + url.QueryEscape(spec.PublicKey)
	}
	return &exchange.Request{Method: "GET", Path: apiPrefix + "/private/create_api_key", RawQuery: q, Header: map[string][]string{}}, nil
}

type createdKey struct {
	Result *struct {
		ID           json.Number `json:"id"`
		ClientID     string      `json:"client_id"`
		ClientSecret string      `json:"client_secret"`
		MaxScope     string      `json:"max_scope"`
	} `json:"result"`
	Error *rpcError `json:"error"`
}

// ParseCreatedKey reads the new key. Account is Deribit's numeric key id,
// which DeleteKeyRequest needs.
func (KeyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	var res createdKey
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("deribit created key: malformed answer")
	}
	if status != 200 || res.Error != nil || res.Result == nil || res.Result.ClientID == "" || res.Result.ClientSecret == "" {
		return nil, fmt.Errorf("deribit created key: status %d without a key", status)
	}
	secret := exchange.Secret(res.Result.ClientSecret)
	return &exchange.Credential{
		Kind:    exchange.KeyHMAC,
		APIKey:  res.Result.ClientID,
		Secret:  secret,
		Account: res.Result.ID.String(),
	}, nil
}

// DeleteKeyRequest builds private/remove_api_key. Deribit removes keys by
// their numeric id (Credential.Account from ParseCreatedKey), passed as
// apiKey.
func (KeyManager) DeleteKeyRequest(apiKey string, _ exchange.KeySpec) (*exchange.Request, error) {
	if _, err := strconv.ParseUint(apiKey, 10, 64); err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "deribit delete key: want the numeric key id")
	}
	return &exchange.Request{Method: "GET", Path: apiPrefix + "/private/remove_api_key", RawQuery: "id=" + apiKey, Header: map[string][]string{}}, nil
}
