package bitget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// errorWriter answers in Bitget's error shape: {"code":"40009","msg":"...",
// "requestTime":1700000000000,"data":null}.
type errorWriter struct{}

// errorCode returns the HTTP status and Bitget code for e (spec §16.7).
func errorCode(e *exchange.Error) (int, string) {
	switch e.Kind {
	case exchange.ErrAuth:
		switch {
		case strings.Contains(e.Message, "ACCESS_KEY cannot be empty"):
			return http.StatusUnauthorized, "40001"
		case strings.Contains(e.Message, "Signature cannot be empty"):
			return http.StatusUnauthorized, "40003"
		case strings.Contains(e.Message, "ACCESS_KEY"):
			return http.StatusUnauthorized, "40006"
		}
		return http.StatusUnauthorized, "40009"
	case exchange.ErrTimestamp:
		if strings.Contains(e.Message, "Invalid") {
			return http.StatusUnauthorized, "40005"
		}
		return http.StatusUnauthorized, "40008"
	case exchange.ErrPassphrase:
		if strings.Contains(e.Message, "empty") {
			return http.StatusUnauthorized, "40011"
		}
		return http.StatusUnauthorized, "40012"
	case exchange.ErrIP:
		return http.StatusForbidden, "40018"
	case exchange.ErrPermission:
		return http.StatusForbidden, "40014"
	case exchange.ErrRateLimit:
		return http.StatusTooManyRequests, "429"
	case exchange.ErrUnavailable:
		return http.StatusServiceUnavailable, "40015"
	case exchange.ErrNotFound:
		return http.StatusNotFound, "40404"
	case exchange.ErrUpstream:
		return http.StatusBadGateway, "40015"
	}
	return http.StatusBadRequest, "40017"
}

// WriteError writes e in Bitget's shape. ErrRateLimit carries Retry-After.
func (errorWriter) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status, code := errorCode(e)
	if e.Kind == exchange.ErrRateLimit {
		secs := int(math.Ceil(e.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, reply{Code: code, Msg: e.Message, RequestTime: time.Now().UnixMilli()})
}

// reply is Bitget's response envelope.
type reply struct {
	Code        string `json:"code"`
	Msg         string `json:"msg"`
	RequestTime int64  `json:"requestTime"`
	Data        any    `json:"data"`
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"code":"40015","msg":"System is abnormal, please try again later","data":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// inspector reads a key's posture from GET /api/v2/spot/account/info.
type inspector struct{}

// InspectRequest returns the account-info request; sign it with the key
// being inspected.
func (inspector) InspectRequest() *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/api/v2/spot/account/info", Header: http.Header{}}
}

type accountInfo struct {
	UserID      string   `json:"userId"`
	IPs         string   `json:"ips"`
	Authorities []string `json:"authorities"`
}

// ParsePosture reads authorities and ips. Bitget's account-info page
// documents two forms of authorities: the words of its example ("readonly",
// "trade") and four-letter codes, read-only ones ending in "r" (stor, coor,
// wtor, ...) and read-write ones in "w" (stow spot, smow margin, coow and
// cpow futures orders and holdings, ttow copy trading, wtow wallet transfer,
// wwow wallet withdrawal, chow sub-account management, p2pw P2P). Both are
// read. Unknown tokens are kept in Permissions and grant nothing.
func (inspector) ParsePosture(status int, body []byte) (exchange.KeyPosture, error) {
	var rep struct {
		Code string      `json:"code"`
		Msg  string      `json:"msg"`
		Data accountInfo `json:"data"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return exchange.KeyPosture{}, fmt.Errorf("bitget account info: status %d: malformed reply", status)
	}
	if status != http.StatusOK || rep.Code != "00000" {
		return exchange.KeyPosture{}, fmt.Errorf("bitget account info: status %d: bitget code %s: %s",
			status, exchange.SafeName(rep.Code), exchange.SafeName(rep.Msg))
	}
	var p exchange.KeyPosture
	for _, a := range rep.Data.Authorities {
		p.Permissions = append(p.Permissions, a)
		switch strings.ToLower(a) {
		case "readonly", "read_only", "read",
			"stor", "smor", "coor", "cpor", "ttor", "wtor", "taxr", "chor", "p2pr", "pllr", "taxw":
			p.CanRead = true
		case "trade", "spot_trade", "stow", "smow", "margin_trade", "ttow", "pllw":
			p.CanRead, p.CanTrade = true, true
		case "contract_trade", "coow", "cpow":
			p.CanRead, p.CanTrade, p.CanFutures = true, true, true
		case "transfer", "trse", "wtow", "p2pw", "p2p":
			p.CanTransfer = true
		case "withdraw", "wiwr", "wwow":
			p.CanWithdraw = true
		}
	}
	for ip := range strings.SplitSeq(rep.Data.IPs, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			p.IPs = append(p.IPs, ip)
		}
	}
	p.IPRestricted = len(p.IPs) > 0
	return p, nil
}

// unixMilli formats t as Bitget does its ms timestamps.
func unixMilli(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
