package okx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
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
		{exchange.Errorf(exchange.ErrAuth, "invalid signature"), 401, "50113"},
		{exchange.Errorf(exchange.ErrAuth, "invalid OK-ACCESS-KEY"), 401, "50111"},
		{exchange.Errorf(exchange.ErrTimestamp, "timestamp request expired"), 401, "50102"},
		{exchange.Errorf(exchange.ErrPassphrase, "request header OK-ACCESS-PASSPHRASE incorrect"), 401, "50105"},
		{exchange.Errorf(exchange.ErrIP, "ip"), 401, "50110"},
		{exchange.Errorf(exchange.ErrPermission, "denied by rule max-notional"), 401, "50120"},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "slow down", RetryAfter: 1500 * time.Millisecond}, 429, "50011"},
		{exchange.Errorf(exchange.ErrBadRequest, "duplicate parameter"), 400, "51000"},
		{exchange.Errorf(exchange.ErrUnavailable, "sealed"), 503, "50001"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Message, func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, tt.err)
			var got errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body, err)
			}
			want := errorBody{Code: tt.code, Msg: tt.err.Message, Data: []any{}}
			if w.Code != tt.status || !cmp.Equal(got, want) {
				t.Errorf("WriteError(%v) = %d %+v, want %d %+v", tt.err, w.Code, got, tt.status, want)
			}
			if tt.err.Kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "2" {
				t.Errorf("WriteError(rate limit) Retry-After = %q, want 2", w.Header().Get("Retry-After"))
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
			`{"code":"0","msg":"","data":[{"uid":"1","perm":"read_only,withdraw,trade","ip":"1.2.3.4,5.6.7.8","label":"bot"}]}`,
			exchange.KeyPosture{Permissions: []string{"read_only", "withdraw", "trade"}, CanRead: true, CanTrade: true,
				CanTransfer: true, CanWithdraw: true, CanFutures: true, IPRestricted: true, IPs: []string{"1.2.3.4", "5.6.7.8"}}, false},
		{"read only, no ip", 200, `{"code":"0","msg":"","data":[{"perm":"read_only","ip":""}]}`,
			exchange.KeyPosture{Permissions: []string{"read_only"}, CanRead: true}, false},
		{"auth error", 401, `{"code":"50113","msg":"Invalid Sign","data":[]}`, exchange.KeyPosture{}, true},
		{"garbage", 200, `<html>`, exchange.KeyPosture{}, true},
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
	r := inspector{}.InspectRequest()
	if r.Method != "GET" || r.Path != "/api/v5/account/config" {
		t.Errorf("InspectRequest() = %s %s, want GET /api/v5/account/config", r.Method, r.Path)
	}
}

func TestKeyManager(t *testing.T) {
	km := keyManager{}
	spec := exchange.KeySpec{Label: "kw-rotated", Permissions: []string{"read_only", "trade"}, IPs: []string{"203.0.113.7"}, SubAccount: "bot1"}
	r, err := km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/api/v5/users/subaccount/apikey" || body["subAcct"] != "bot1" ||
		body["perm"] != "read_only,trade" || body["ip"] != "203.0.113.7" || body["label"] != "kw-rotated" {
		t.Errorf("CreateKeyRequest() = %s %s %s", r.Method, r.Path, r.Body)
	}
	p := body["passphrase"]
	if len(p) < 8 || len(p) > 32 || !strings.ContainsAny(p, "abcdefghijklmnopqrstuvwxyz") ||
		!strings.ContainsAny(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.ContainsAny(p, "0123456789") || !strings.ContainsAny(p, "!@#$%^*-_") {
		t.Errorf("CreateKeyRequest() passphrase does not meet OKX's rules (length %d)", len(p))
	}
	r2, _ := km.CreateKeyRequest(spec)
	if strings.Contains(string(r2.Body), p) {
		t.Errorf("CreateKeyRequest() reused a passphrase")
	}
	if _, err := km.CreateKeyRequest(exchange.KeySpec{Label: "x", Permissions: []string{"withdraw"}, SubAccount: "bot1"}); err == nil {
		t.Errorf("CreateKeyRequest(withdraw) = nil error, want error")
	}
	if _, err := km.CreateKeyRequest(exchange.KeySpec{Label: "x", Permissions: []string{"trade"}}); err == nil {
		t.Errorf("CreateKeyRequest(no sub-account) = nil error, want error")
	}
	cred, err := km.ParseCreatedKey(200, []byte(`{"code":"0","msg":"","data":[{"subAcct":"bot1","label":"kw","apiKey":"ak","secretKey":"sk","passphrase":"pp","perm":"trade","ip":"","ts":"1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cred.APIKey != "ak" || string(cred.Secret) != "sk" || string(cred.Passphrase) != "pp" || cred.Account != "bot1" || cred.Kind != exchange.KeyHMAC {
		t.Errorf("ParseCreatedKey() = %v", cred)
	}
	if _, err := km.ParseCreatedKey(200, []byte(`{"code":"0","msg":"","data":[{"apiKey":"ak"}]}`)); err == nil {
		t.Errorf("ParseCreatedKey(no secret) = nil error, want error")
	}
	d, err := km.DeleteKeyRequest("ak", spec)
	if err != nil || d.Path != "/api/v5/users/subaccount/delete-apikey" || string(d.Body) != `{"subAcct":"bot1","apiKey":"ak"}` {
		t.Errorf("DeleteKeyRequest() = %v, %v", d, err)
	}
}

func TestVenue(t *testing.T) {
	v := New(nil)
	if v.Name != "okx" || v.Upstream.String() != DefaultUpstream || !v.NeedsPassphrase || v.Signer == nil ||
		v.Verifier == nil || v.Prices == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil || v.Keys == nil {
		t.Errorf("New(nil) = %+v", v)
	}
	r := &exchange.Request{Method: "GET", Path: "/api/v5/account/balance", Header: http.Header{}}
	if err := NewDemo(nil).Signer.Sign(r, testKey(), time.Now()); err != nil || r.Header.Get(DemoHeader) != "1" {
		t.Errorf("NewDemo().Sign() demo header = %q, %v; want 1", r.Header.Get(DemoHeader), err)
	}
}
