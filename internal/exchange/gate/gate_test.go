package gate

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
		label      string
		retryAfter string
	}{
		{exchange.Errorf(exchange.ErrAuth, "Signature mismatch"), 401, "INVALID_SIGNATURE", ""},
		{exchange.Errorf(exchange.ErrAuth, msgMissingHeader), 401, "MISSING_REQUIRED_HEADER", ""},
		{exchange.Errorf(exchange.ErrAuth, "Invalid key provided"), 401, "INVALID_KEY", ""},
		{exchange.Errorf(exchange.ErrTimestamp, "old"), 401, "REQUEST_EXPIRED", ""},
		{exchange.Errorf(exchange.ErrIP, "ip"), 403, "IP_FORBIDDEN", ""},
		{exchange.Errorf(exchange.ErrPermission, "denied by rule no-withdraw"), 403, "FORBIDDEN", ""},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "slow", RetryAfter: 3 * time.Second}, 429, "TOO_MANY_REQUESTS", "3"},
		{exchange.Errorf(exchange.ErrBadRequest, "bad"), 400, "INVALID_PARAM_VALUE", ""},
		{exchange.Errorf(exchange.ErrNotFound, ""), 404, "NOT_FOUND", ""},
		{exchange.Errorf(exchange.ErrUnavailable, "sealed"), 503, "SERVER_ERROR", ""},
		{exchange.Errorf(exchange.ErrUpstream, "down"), 502, "SERVER_ERROR", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err.Kind, tt.err.Message), func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, tt.err)
			var got struct{ Label, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body.String(), err)
			}
			if w.Code != tt.status || got.Label != tt.label || got.Message == "" {
				t.Errorf("WriteError(%v) = %d %+v, want %d %s", tt.err, w.Code, got, tt.status, tt.label)
			}
			if tt.err.Message != "" && got.Message != tt.err.Message {
				t.Errorf("WriteError(%v) message = %q, want %q", tt.err, got.Message, tt.err.Message)
			}
			if ra := w.Header().Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("WriteError(%v) Retry-After = %q, want %q", tt.err, ra, tt.retryAfter)
			}
		})
	}
}

func TestParsePosture(t *testing.T) {
	body := `{"user_id":1667201533,"ip_whitelist":["127.0.0.1","203.0.113.9"],"currency_pairs":["BTC_USDT"],"key":{"mode":1},"tier":2}`
	got, err := (inspector{}).ParsePosture(200, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := exchange.KeyPosture{Permissions: []string{"currency_pair:BTC_USDT"}, IPRestricted: true, IPs: []string{"127.0.0.1", "203.0.113.9"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParsePosture mismatch (-want +got):\n%s", d)
	}
	if _, err := (inspector{}).ParsePosture(401, []byte(`{"label":"INVALID_KEY","message":"x"}`)); err == nil {
		t.Errorf("ParsePosture(401) = nil error")
	}
	if r := (inspector{}).InspectRequest(); r.Method != "GET" || r.Path != "/api/v4/account/detail" {
		t.Errorf("InspectRequest() = %s %s", r.Method, r.Path)
	}
}

func TestRateLimit(t *testing.T) {
	h := http.Header{}
	if _, ok := (limits{}).RateLimit(h); ok {
		t.Errorf("RateLimit(no headers) ok = true")
	}
	h.Set("X-Gate-RateLimit-Limit", "200")
	h.Set("X-Gate-RateLimit-Requests-Remain", "150")
	got, ok := (limits{}).RateLimit(h)
	if want := (exchange.RateLimit{Used: 50, Limit: 200, Window: 10 * time.Second}); !ok || got != want {
		t.Errorf("RateLimit = %+v, %v, want %+v", got, ok, want)
	}
}

func TestKeyManager(t *testing.T) {
	km := keyManager{}
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "bot", SubAccount: "1001", Permissions: []string{"spot", "wallet:read"}, IPs: []string{"203.0.113.5"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/api/v4/sub_accounts/1001/keys" ||
		string(r.Body) != `{"name":"bot","mode":1,"perms":[{"name":"spot","read_only":false},{"name":"wallet","read_only":true}],"ip_whitelist":["203.0.113.5"]}` {
		t.Errorf("CreateKeyRequest = %s %s %s", r.Method, r.Path, r.Body)
	}
	for _, spec := range []exchange.KeySpec{{SubAccount: ""}, {SubAccount: "../x"}, {SubAccount: "1", Permissions: []string{"withdrawal"}}} {
		if _, err := km.CreateKeyRequest(spec); err == nil {
			t.Errorf("CreateKeyRequest(%+v) = nil error, want error", spec)
		}
	}
	cred, err := km.ParseCreatedKey(200, []byte(`{"user_id":"1001","key":"k1","secret":"s1","state":1}`))
	if err != nil || cred.APIKey != "k1" || string(cred.Secret) != "s1" {
		t.Errorf("ParseCreatedKey = %v, %v", cred, err)
	}
	if _, err := km.ParseCreatedKey(400, []byte(`{"label":"INVALID_PARAM_VALUE"}`)); err == nil {
		t.Errorf("ParseCreatedKey(400) = nil error")
	}
	d, err := km.DeleteKeyRequest("k1", exchange.KeySpec{SubAccount: "1001"})
	if err != nil || d.Method != "DELETE" || d.Path != "/api/v4/sub_accounts/1001/keys/k1" {
		t.Errorf("DeleteKeyRequest = %+v, %v", d, err)
	}
	if _, err := km.DeleteKeyRequest("../../withdrawals", exchange.KeySpec{SubAccount: "1001"}); err == nil {
		t.Errorf("DeleteKeyRequest(path in key) = nil error")
	}
}

func TestNew(t *testing.T) {
	v := New(nil)
	if v.Name != "gate" || v.NeedsPassphrase || v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil || v.Inspector == nil || v.Limits == nil || v.Keys == nil {
		t.Errorf("New() = %+v, want a complete venue", v)
	}
}

func TestErrorsHideSecrets(t *testing.T) {
	r := signedVector(vectors[0].req, "00", "1541993715")
	_, err := (verifier{}).Verify(r, vecKey, vecTime)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Verify(wrong) = %v, want an error without the secret", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", vecKey, vecKey, vecKey); strings.Contains(s, "secret") {
		t.Errorf("credential output %q contains the secret", s)
	}
}
