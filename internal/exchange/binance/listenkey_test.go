package binance

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestStreamToken(t *testing.T) {
	k := strings.Repeat("Ab9", 20)
	answer := []byte(`{"listenKey":"` + k + `"}`)
	tests := []struct {
		name                   string
		method, path, q, body  string
		answer                 []byte
		op, token, closeMethod string
		closeQuery             string
	}{
		{"spot create", "POST", "/api/v3/userDataStream", "", "", answer, ListenKeyCreate, k, "DELETE", "listenKey=" + k},
		{"spot create, request alone", "POST", "/api/v3/userDataStream", "", "", nil, ListenKeyCreate, "", "", ""},
		{"spot keep-alive in the query", "PUT", "/api/v3/userDataStream", "listenKey=" + k, "", []byte(`{}`), ListenKeyKeepAlive, k, "DELETE", "listenKey=" + k},
		{"spot keep-alive in the body", "PUT", "/api/v3/userDataStream", "", "listenKey=" + k, nil, ListenKeyKeepAlive, k, "DELETE", "listenKey=" + k},
		{"spot close", "DELETE", "/api/v3/userDataStream", "listenKey=" + k, "", nil, ListenKeyClose, k, "DELETE", "listenKey=" + k},
		{"isolated margin", "POST", "/sapi/v1/userDataStream/isolated", "symbol=BTCUSDT", "", answer, ListenKeyCreate, k, "DELETE", "listenKey=" + k + "&symbol=BTCUSDT"},
		{"futures keep-alive names no key", "PUT", "/fapi/v1/listenKey", "", "", answer, ListenKeyKeepAlive, k, "DELETE", ""},
		{"not a USER_STREAM call", "POST", "/api/v3/order", "", "", answer, "", "", "", ""},
		{"malformed key", "PUT", "/api/v3/userDataStream", "listenKey=a%2Fb", "", nil, ListenKeyKeepAlive, "", "", ""},
		{"short key", "PUT", "/api/v3/userDataStream", "listenKey=abc", "", nil, ListenKeyKeepAlive, "", "", ""},
	}
	v := &verifier{}
	for _, tt := range tests {
		r := &exchange.Request{Method: tt.method, Path: tt.path, RawQuery: tt.q, Body: []byte(tt.body), Header: http.Header{}}
		op, token, closer := v.StreamToken(r, tt.answer)
		if op != tt.op || token != tt.token {
			t.Errorf("%s: StreamToken = %q, %q; want %q, %q", tt.name, op, token, tt.op, tt.token)
		}
		if (closer == nil) != (tt.closeMethod == "") {
			t.Errorf("%s: closer %+v, want method %q", tt.name, closer, tt.closeMethod)
			continue
		}
		if closer != nil && (closer.Method != tt.closeMethod || closer.Path != tt.path || closer.RawQuery != tt.closeQuery) {
			t.Errorf("%s: closer %s %s?%s, want %s %s?%s", tt.name, closer.Method, closer.Path, closer.RawQuery, tt.closeMethod, tt.path, tt.closeQuery)
		}
	}
}
