package kucoin

import (
	"encoding/json"
	"fmt"
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
		err        *exchange.Error
		status     int
		code       string
		retryAfter string
	}{
		{exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-SIGN"), 401, "400005", ""},
		{exchange.Errorf(exchange.ErrAuth, msgMissingHeader), 401, "400001", ""},
		{exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-KEY"), 401, "400003", ""},
		{exchange.Errorf(exchange.ErrTimestamp, "Invalid KC-API-TIMESTAMP"), 401, "400002", ""},
		{exchange.Errorf(exchange.ErrPassphrase, "Invalid KC-API-PASSPHRASE"), 401, "400004", ""},
		{exchange.Errorf(exchange.ErrIP, "ip"), 403, "400006", ""},
		{exchange.Errorf(exchange.ErrPermission, "denied by rule max-notional"), 403, "400007", ""},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "slow down", RetryAfter: 1500 * time.Millisecond}, 429, "429000", "2"},
		{exchange.Errorf(exchange.ErrBadRequest, "duplicate parameter"), 400, "400100", ""},
		{exchange.Errorf(exchange.ErrNotFound, ""), 404, "404000", ""},
		{exchange.Errorf(exchange.ErrUnavailable, "sealed"), 503, "503000", ""},
		{exchange.Errorf(exchange.ErrUpstream, "down"), 502, "500000", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err.Kind, tt.err.Message), func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, tt.err)
			var got struct{ Code, Msg string }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body.String(), err)
			}
			if w.Code != tt.status || got.Code != tt.code || got.Msg == "" {
				t.Errorf("WriteError(%v) = %d %+v, want %d code %s", tt.err, w.Code, got, tt.status, tt.code)
			}
			if tt.err.Message != "" && got.Msg != tt.err.Message {
				t.Errorf("WriteError(%v) msg = %q, want %q", tt.err, got.Msg, tt.err.Message)
			}
			if ra := w.Header().Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("WriteError(%v) Retry-After = %q, want %q", tt.err, ra, tt.retryAfter)
			}
		})
	}
}

func TestParsePosture(t *testing.T) {
	body := `{"code":"200000","data":{"remark":"bot","apiKey":"670c","apiVersion":3,"permission":"General,Spot,Futures,Withdrawal","ipWhitelist":"203.0.113.5,203.0.113.6","createdAt":1728000000000,"uid":1,"isMaster":true}}`
	got, err := (inspector{}).ParsePosture(200, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := exchange.KeyPosture{
		Permissions: []string{"General", "Spot", "Futures", "Withdrawal"},
		CanRead:     true, CanTrade: true, CanFutures: true, CanWithdraw: true,
		IPRestricted: true, IPs: []string{"203.0.113.5", "203.0.113.6"},
		Created: time.UnixMilli(1728000000000).UTC(),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParsePosture mismatch (-want +got):\n%s", d)
	}
	if _, err := (inspector{}).ParsePosture(401, []byte(`{"code":"400005","msg":"Invalid KC-API-SIGN"}`)); err == nil {
		t.Errorf("ParsePosture(401) = nil error, want error")
	}
	if r := (inspector{}).InspectRequest(); r.Method != "GET" || r.Path != "/api/v1/user/api-key" {
		t.Errorf("InspectRequest() = %s %s, want GET /api/v1/user/api-key", r.Method, r.Path)
	}
}

func TestRateLimit(t *testing.T) {
	h := http.Header{}
	if _, ok := (limits{}).RateLimit(h); ok {
		t.Errorf("RateLimit(no headers) ok = true, want false")
	}
	h.Set("gw-ratelimit-limit", "4000")
	h.Set("gw-ratelimit-remaining", "3990")
	h.Set("gw-ratelimit-reset", "12000")
	got, ok := (limits{}).RateLimit(h)
	if want := (exchange.RateLimit{Used: 10, Limit: 4000, Window: 30 * time.Second}); !ok || got != want {
		t.Errorf("RateLimit = %+v, %v, want %+v", got, ok, want)
	}
}

func TestKeyManager(t *testing.T) {
	km := keyManager{}
	if _, err := km.CreateKeyRequest(exchange.KeySpec{Label: "x"}); err == nil {
		t.Errorf("CreateKeyRequest(no sub-account) = nil error, want error")
	}
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "bot", SubAccount: "sub1", Permissions: []string{"General", "Spot"}, IPs: []string{"203.0.113.5"}})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/api/v1/sub/api-key" || body["subName"] != "sub1" || body["permission"] != "General,Spot" ||
		body["ipWhitelist"] != "203.0.113.5" || len(body["passphrase"]) < 7 || len(body["passphrase"]) > 32 {
		t.Errorf("CreateKeyRequest = %s %s %v", r.Method, r.Path, body)
	}
	r2, _ := km.CreateKeyRequest(exchange.KeySpec{SubAccount: "sub1"})
	if strings.Contains(string(r2.Body), body["passphrase"]) {
		t.Errorf("two key requests share a passphrase")
	}
	cred, err := km.ParseCreatedKey(200, []byte(`{"code":"200000","data":{"subName":"sub1","apiKey":"k1","apiSecret":"s1","passphrase":"p1","permission":"General"}}`))
	if err != nil || cred.APIKey != "k1" || string(cred.Secret) != "s1" || string(cred.Passphrase) != "p1" {
		t.Errorf("ParseCreatedKey = %v, %v", cred, err)
	}
	if _, err := km.ParseCreatedKey(200, []byte(`{"code":"400100","msg":"x"}`)); err == nil {
		t.Errorf("ParseCreatedKey(error answer) = nil error")
	}
}

func TestNew(t *testing.T) {
	v := New(nil)
	if v.Name != "kucoin" || !v.NeedsPassphrase || v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil || v.Limits == nil {
		t.Errorf("New() = %+v, want a complete venue", v)
	}
}

// TestErrorsHideSecrets checks that no error message quotes a secret, even
// when the request carries it.
func TestErrorsHideSecrets(t *testing.T) {
	r := signedVector(vectors[0].req, "wrong")
	_, err := (verifier{}).Verify(r, vecKey, vecTime)
	if err == nil {
		t.Fatal("Verify(wrong) = nil")
	}
	for _, s := range []string{"kc-test-secret", "kc-test-pass", vecPassphrase} {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%v %+v %#v", vecKey, vecKey, vecKey), s) {
			t.Errorf("error or credential output contains secret %q", s)
		}
	}
}
