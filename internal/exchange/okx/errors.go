package okx

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// errorWriter answers in OKX's error shape: {"code":"50113","msg":"...",
// "data":[]} with the HTTP status OKX uses for that class of error.
type errorWriter struct{}

// errorCode returns the HTTP status and OKX code for e (spec §16.7).
func errorCode(e *exchange.Error) (int, string) {
	switch e.Kind {
	case exchange.ErrAuth:
		switch {
		case strings.Contains(e.Message, "can not be empty"):
			if strings.Contains(e.Message, "SIGN") {
				return http.StatusUnauthorized, "50106"
			}
			if strings.Contains(e.Message, "TIMESTAMP") {
				return http.StatusUnauthorized, "50107"
			}
			return http.StatusUnauthorized, "50103"
		case strings.Contains(e.Message, "OK-ACCESS-KEY"):
			return http.StatusUnauthorized, "50111"
		}
		return http.StatusUnauthorized, "50113"
	case exchange.ErrTimestamp:
		if strings.Contains(e.Message, "invalid") {
			return http.StatusUnauthorized, "50112"
		}
		return http.StatusUnauthorized, "50102"
	case exchange.ErrPassphrase:
		if strings.Contains(e.Message, "empty") {
			return http.StatusUnauthorized, "50104"
		}
		return http.StatusUnauthorized, "50105"
	case exchange.ErrIP:
		return http.StatusUnauthorized, "50110"
	case exchange.ErrPermission:
		return http.StatusUnauthorized, "50120"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, "50011"
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, "50001"
	case exchange.ErrNotFound:
		return http.StatusNotFound, "50115"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, "50004"
	}
	return http.StatusBadRequest, "51000"
}

// WriteError writes e in OKX's shape. ErrRateLimit carries Retry-After.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := errorCode(e)
	if e.Kind == exchange.ErrRateLimit {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, errorBody{Code: code, Msg: e.Message, Data: []any{}})
}

type errorBody struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
	Data []any  `json:"data"`
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"code":"50026","msg":"System error","data":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// marshal encodes v without HTML escaping, for request bodies.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// inspector reads a key's posture from GET /api/v5/account/config.
type inspector struct{}

// InspectRequest returns the account-config request; sign it with the key
// being inspected.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/api/v5/account/config", Header: http.Header{}}
}

// okxReply is OKX's response envelope.
type okxReply[T any] struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
	Data []T    `json:"data"`
}

func decodeReply[T any](op string, status int, body []byte) (T, error) {
	var zero T
	var rep okxReply[T]
	if err := json.Unmarshal(body, &rep); err != nil {
		return zero, fmt.Errorf("%s: status %d: malformed reply", op, status)
	}
	if status != http.StatusOK || rep.Code != "0" {
		return zero, fmt.Errorf("%s: status %d: okx code %s: %s", op, status, exchange.SafeName(rep.Code), exchange.SafeName(rep.Msg))
	}
	if len(rep.Data) != 1 {
		return zero, fmt.Errorf("%s: reply has %d entries, want 1", op, len(rep.Data))
	}
	return rep.Data[0], nil
}

type accountConfig struct {
	Perm  string `json:"perm"`
	IP    string `json:"ip"`
	Label string `json:"label"`
	UID   string `json:"uid"`
}

// ParsePosture reads perm ("read_only,trade,withdraw") and ip ("" when the
// key is not IP-bound). OKX's trade permission also covers funding
// transfers.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	cfg, err := decodeReply[accountConfig]("okx account config", status, body)
	if err != nil {
		return exchange.KeyPosture{}, err
	}
	var p exchange.KeyPosture
	for perm := range strings.SplitSeq(cfg.Perm, ",") {
		perm = strings.TrimSpace(perm)
		if perm == "" {
			continue
		}
		p.Permissions = append(p.Permissions, perm)
		switch perm {
		case "read_only":
			p.CanRead = true
		case "trade":
			p.CanRead, p.CanTrade, p.CanTransfer, p.CanFutures = true, true, true, true
		case "withdraw":
			p.CanWithdraw = true
		}
	}
	for ip := range strings.SplitSeq(cfg.IP, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			p.IPs = append(p.IPs, ip)
		}
	}
	p.IPRestricted = len(p.IPs) > 0
	return p, nil
}

// keyManager creates and deletes sub-account API keys (master account
// only; OKX cannot create master keys or grant withdraw by API).
type keyManager struct{}

type createKey struct {
	SubAcct    string `json:"subAcct"`
	Label      string `json:"label"`
	Passphrase string `json:"passphrase"`
	Perm       string `json:"perm"`
	IP         string `json:"ip,omitempty"`
}

// CreateKeyRequest builds POST /api/v5/users/subaccount/apikey with a fresh
// random passphrase, which OKX echoes back in its reply.
func (keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if spec.SubAccount == "" {
		return nil, fmt.Errorf("okx create key: okx creates keys for sub-accounts only")
	}
	if spec.Label == "" || len(spec.Label) > 50 {
		return nil, fmt.Errorf("okx create key: label must be 1 to 50 characters")
	}
	for _, p := range spec.Permissions {
		if p != "read_only" && p != "trade" {
			return nil, fmt.Errorf("okx create key: permission %q cannot be granted by api", exchange.SafeName(p))
		}
	}
	if len(spec.IPs) > 20 {
		return nil, fmt.Errorf("okx create key: at most 20 ip addresses")
	}
	pass := passphrase()
	body, err := marshal(createKey{
		SubAcct: spec.SubAccount, Label: spec.Label, Passphrase: pass,
		Perm: strings.Join(spec.Permissions, ","), IP: strings.Join(spec.IPs, ","),
	})
	if err != nil {
		return nil, fmt.Errorf("okx create key: %w", err)
	}
	return &exchange.Request{
		Method: http.MethodPost, Path: "/api/v5/users/subaccount/apikey",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body,
	}, nil
}

type createdKey struct {
	SubAcct    string `json:"subAcct"`
	APIKey     string `json:"apiKey"`
	SecretKey  string `json:"secretKey"`
	Passphrase string `json:"passphrase"`
}

// ParseCreatedKey reads the new key, secret and passphrase.
func (keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	k, err := decodeReply[createdKey]("okx create key", status, body)
	if err != nil {
		return nil, err
	}
	if k.APIKey == "" || k.SecretKey == "" || k.Passphrase == "" {
		return nil, fmt.Errorf("okx create key: reply lacks key, secret or passphrase")
	}
	return &exchange.Credential{
		Kind: exchange.KeyHMAC, APIKey: k.APIKey, Secret: exchange.Secret(k.SecretKey),
		Passphrase: exchange.Secret(k.Passphrase), Account: k.SubAcct,
	}, nil
}

// DeleteKeyRequest builds POST /api/v5/users/subaccount/delete-apikey.
func (keyManager) DeleteKeyRequest(apiKey string, spec exchange.KeySpec) (*exchange.Request, error) {
	if spec.SubAccount == "" || apiKey == "" {
		return nil, fmt.Errorf("okx delete key: need sub-account and api key")
	}
	body, err := marshal(struct {
		SubAcct string `json:"subAcct"`
		APIKey  string `json:"apiKey"`
	}{spec.SubAccount, apiKey})
	if err != nil {
		return nil, fmt.Errorf("okx delete key: %w", err)
	}
	return &exchange.Request{
		Method: http.MethodPost, Path: "/api/v5/users/subaccount/delete-apikey",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body,
	}, nil
}

// passphrase returns a random passphrase OKX accepts: 26 base32 characters
// from crypto/rand (130 bits) plus a fixed suffix that supplies the lower
// case, digit and special characters OKX requires.
func passphrase() string {
	return rand.Text() + "a7!"
}

// unixMilli formats t as OKX does its ms timestamps.
func unixMilli(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
