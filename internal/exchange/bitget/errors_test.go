package bitget

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		err    *exchange.Error
		status int
		code   string
	}{
		{exchange.Errorf(exchange.ErrAuth, "sign signature error"), 401, "40009"},
		{exchange.Errorf(exchange.ErrAuth, "Invalid ACCESS_KEY"), 401, "40006"},
		{exchange.Errorf(exchange.ErrTimestamp, "Request timestamp expired"), 401, "40008"},
		{exchange.Errorf(exchange.ErrPassphrase, "apikey/password is incorrect"), 401, "40012"},
		{exchange.Errorf(exchange.ErrIP, "Invalid IP"), 403, "40018"},
		{exchange.Errorf(exchange.ErrPermission, "denied by rule no-withdraw"), 403, "40014"},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "Too Many Requests", RetryAfter: 3 * time.Second}, 429, "429"},
		{exchange.Errorf(exchange.ErrBadRequest, "duplicate parameter"), 400, "40017"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Message, func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, tt.err)
			var got reply
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body, err)
			}
			if w.Code != tt.status || got.Code != tt.code || got.Msg != tt.err.Message || got.RequestTime == 0 || got.Data != nil {
				t.Errorf("WriteError(%v) = %d %+v, want %d code %s", tt.err, w.Code, got, tt.status, tt.code)
			}
			if tt.err.Kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "3" {
				t.Errorf("WriteError(rate limit) Retry-After = %q, want 3", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestParsePosture(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    exchange.KeyPosture
		wantErr bool
	}{
		{"trade and withdraw, ip bound", 200,
			`{"code":"00000","msg":"success","requestTime":1,"data":{"userId":"1","ips":"1.2.3.4,5.6.7.8","authorities":["readonly","trade","withdraw"]}}`,
			exchange.KeyPosture{Permissions: []string{"readonly", "trade", "withdraw"}, CanRead: true, CanTrade: true,
				CanWithdraw: true, IPRestricted: true, IPs: []string{"1.2.3.4", "5.6.7.8"}}, false},
		{"documented codes: read-only ones grant reading only", 200,
			`{"code":"00000","data":{"authorities":["stor","coor","cpor","smor","ttor","wtor","taxr","chor","p2pr"],"ips":"1.2.3.4"}}`,
			exchange.KeyPosture{Permissions: []string{"stor", "coor", "cpor", "smor", "ttor", "wtor", "taxr", "chor", "p2pr"}, CanRead: true,
				IPRestricted: true, IPs: []string{"1.2.3.4"}}, false},
		{"documented codes: spot and futures trading", 200, `{"code":"00000","data":{"authorities":["stow","coow"],"ips":""}}`,
			exchange.KeyPosture{Permissions: []string{"stow", "coow"}, CanRead: true, CanTrade: true, CanFutures: true}, false},
		{"documented codes: wallet transfer and withdrawal", 200, `{"code":"00000","data":{"authorities":["stor","wtow","wwow"],"ips":""}}`,
			exchange.KeyPosture{Permissions: []string{"stor", "wtow", "wwow"}, CanRead: true, CanTransfer: true, CanWithdraw: true}, false},
		{"unknown tokens grant nothing", 200, `{"code":"00000","data":{"authorities":["mystery"],"ips":""}}`,
			exchange.KeyPosture{Permissions: []string{"mystery"}}, false},
		{"auth error", 400, `{"code":"40009","msg":"sign signature error","data":null}`, exchange.KeyPosture{}, true},
		{"garbage", 200, `nope`, exchange.KeyPosture{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspector{}.ParsePosture(tt.status, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParsePosture(%s) error = %v, want error %v", tt.body, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePosture(%s) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
	if r := (inspector{}).InspectRequest(); r.Method != "GET" || r.Path != "/api/v2/spot/account/info" {
		t.Errorf("InspectRequest() = %s %s, want GET /api/v2/spot/account/info", r.Method, r.Path)
	}
}

func TestVenue(t *testing.T) {
	v := New(nil)
	if v.Name != "bitget" || v.Upstream.String() != DefaultUpstream || !v.NeedsPassphrase || v.Signer == nil ||
		v.Verifier == nil || v.Prices == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil {
		t.Errorf("New(nil) = %+v", v)
	}
	r := &exchange.Request{Method: "GET", Path: "/api/v2/spot/account/assets", Header: http.Header{}}
	if err := NewDemo(nil).Signer.Sign(r, testKey(), time.Now()); err != nil || r.Header.Get(DemoHeader) != "1" {
		t.Errorf("NewDemo().Sign() demo header = %q, %v; want 1", r.Header.Get(DemoHeader), err)
	}
}
