package binance

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Listen-key operations, as StreamToken names them.
const (
	ListenKeyCreate    = "create"
	ListenKeyKeepAlive = "keepalive"
	ListenKeyClose     = "close"
)

// StreamToken reads a USER_STREAM call (r, after Verify) and, when the
// venue accepted it, its answer: op says whether it creates, keeps alive or
// closes a listen key; token is the listen key the call names (listenKey
// parameter) or, when it names none, the one in answer (nil answer: the
// request alone); closer is the unsigned request that closes that listen
// key at Binance, to be signed like any USER_STREAM call. op is "" for
// every other call. The listen key is a bearer token for the account's
// user-data stream: callers must not log or record it.
func (v *verifier) StreamToken(r *exchange.Request, answer []byte) (op, token string, closer *exchange.Request) {
	if !keyOnly(r.Path) {
		return "", "", nil
	}
	switch r.Method {
	case http.MethodPost:
		op = ListenKeyCreate
	case http.MethodPut:
		op = ListenKeyKeepAlive
	case http.MethodDelete:
		op = ListenKeyClose
	default:
		return "", "", nil
	}
	q, _ := url.ParseQuery(r.RawQuery)
	b, _ := url.ParseQuery(string(r.Body))
	token = q.Get("listenKey")
	if token == "" {
		token = b.Get("listenKey")
	}
	if token == "" && len(answer) > 0 {
		var a struct {
			ListenKey string `json:"listenKey"`
		}
		if json.Unmarshal(answer, &a) == nil {
			token = a.ListenKey
		}
	}
	if !validListenKey(token) {
		return op, "", nil
	}
	cq := url.Values{}
	if r.Path != "/fapi/v1/listenKey" {
		// Futures close the account's one key; spot and margin name it.
		cq.Set("listenKey", token)
	}
	if r.Path == "/sapi/v1/userDataStream/isolated" {
		sym := q.Get("symbol")
		if sym == "" {
			sym = b.Get("symbol")
		}
		cq.Set("symbol", sym)
	}
	return op, token, &exchange.Request{Method: http.MethodDelete, Path: r.Path, RawQuery: cq.Encode(), Header: http.Header{}}
}

// validListenKey accepts what Binance issues: 16 to 128 letters and digits.
func validListenKey(k string) bool {
	if len(k) < 16 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
