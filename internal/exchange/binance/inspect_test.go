package binance

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

func TestParsePosture(t *testing.T) {
	// Shape from the apiRestrictions docs (spec §2.1 c).
	body := `{"ipRestrict":true,"createTime":1698645219000,"enableReading":true,"enableWithdrawals":false,
		"enableInternalTransfer":false,"enableMargin":false,"enableFutures":true,"permitsUniversalTransfer":false,
		"enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":false,
		"enableSpotAndMarginTrading":true,"enablePortfolioMarginTrading":false,"tradingAuthorityExpirationTime":1720000000000}`
	got, err := inspector{}.ParsePosture(200, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := exchange.KeyPosture{
		Permissions: []string{"enableReading", "enableSpotAndMarginTrading", "enableFutures"},
		CanRead:     true, CanTrade: true, CanFutures: true, IPRestricted: true,
		Created: time.UnixMilli(1698645219000).UTC(), Expires: time.UnixMilli(1720000000000).UTC(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePosture() mismatch (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"binance error", 401, `{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}`, "code -2015"},
		{"html error", 502, `<html>bad gateway</html>`, "status 502"},
		{"malformed", 200, `{"ipRestrict":"yes"}`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inspector{}.ParsePosture(tt.status, []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePosture(%d, %q) = %v, want an error with %q", tt.status, tt.body, err, tt.want)
			}
		})
	}
	r := inspector{}.InspectRequest()
	if r.Method != "GET" || r.Path != "/sapi/v1/account/apiRestrictions" {
		t.Errorf("InspectRequest() = %s %s, want GET /sapi/v1/account/apiRestrictions", r.Method, r.Path)
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		want   exchange.RateLimit
		wantOK bool
	}{
		{"minute weight", http.Header{"X-Mbx-Used-Weight-1m": {"42"}, "X-Mbx-Order-Count-10s": {"3"}},
			exchange.RateLimit{Used: 42, Limit: spotWeightLimit, Window: time.Minute}, true},
		{"upper-case header", http.Header{"X-MBX-USED-WEIGHT-1M": {"7"}}, exchange.RateLimit{Used: 7, Limit: spotWeightLimit, Window: time.Minute}, true},
		{"longest window wins", http.Header{"X-Mbx-Used-Weight-1m": {"5"}, "X-Mbx-Used-Weight-1h": {"900"}},
			exchange.RateLimit{Used: 900, Window: time.Hour}, true},
		{"garbage", http.Header{"X-Mbx-Used-Weight-1m": {"lots"}, "X-Mbx-Used-Weight-": {"1"}}, exchange.RateLimit{}, false},
		{"none", http.Header{"Content-Type": {"application/json"}}, exchange.RateLimit{}, false},
	}
	l := Spot(nil).Limits
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := l.RateLimit(tt.h)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RateLimit(%v) = %+v, %v, want %+v, %v", tt.h, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        *exchange.Error
		status     int
		code       int
		retryAfter string
	}{
		{"bad signature", exchange.Errorf(exchange.ErrAuth, msgBadSignature), 400, -1022, ""},
		{"key format", exchange.Errorf(exchange.ErrAuth, msgKeyFormat), 401, -2014, ""},
		{"unknown key", exchange.Errorf(exchange.ErrAuth, "unknown credential"), 401, -2015, ""},
		{"timestamp", exchange.Errorf(exchange.ErrTimestamp, msgOutsideWindow), 400, -1021, ""},
		{"recv window", exchange.Errorf(exchange.ErrBadRequest, msgRecvWindowMax), 400, -1131, ""},
		{"mandatory", exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "symbol"), 400, -1102, ""},
		{"duplicate", exchange.Errorf(exchange.ErrBadRequest, `duplicate parameter "quantity"`), 400, -1101, ""},
		{"policy denial", exchange.Errorf(exchange.ErrPermission, "denied by rule max-notional"), 401, -1002, ""},
		{"ip", exchange.Errorf(exchange.ErrIP, "source address not allowed"), 401, -2015, ""},
		{"rate limit", &exchange.Error{Kind: exchange.ErrRateLimit, Message: "Too many requests.", RetryAfter: 1500 * time.Millisecond}, 429, -1003, "2"},
		{"unavailable", exchange.Errorf(exchange.ErrUnavailable, "sealed"), 503, -1008, ""},
		{"upstream", exchange.Errorf(exchange.ErrUpstream, "upstream unreachable"), 502, -1006, ""},
		{"not found", exchange.Errorf(exchange.ErrNotFound, "no such endpoint"), 404, -1000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Spot(nil).Errors.WriteError(w, tt.err)
			var got apiError
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body, err)
			}
			if w.Code != tt.status || got.Code != tt.code || got.Msg != tt.err.Message {
				t.Errorf("WriteError(%v) = %d %+v, want %d code %d msg %q", tt.err, w.Code, got, tt.status, tt.code, tt.err.Message)
			}
			if ra := w.Header().Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("WriteError(%v) Retry-After = %q, want %q", tt.err, ra, tt.retryAfter)
			}
		})
	}
}

func TestKeyManager(t *testing.T) {
	km := Spot(nil).Keys
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "bot 1", SubAccount: "sub@example.com",
		Permissions: []string{"enableReading", "canTrade", "enableFutures"}, IPs: []string{"203.0.113.7", "203.0.113.8"}, PublicKey: "MCowBQYDK2VwAyEA+/x="})
	if err != nil {
		t.Fatal(err)
	}
	want := "email=sub%40example.com&apiName=bot+1&status=2&ipAddress=203.0.113.7%2C203.0.113.8&canTrade=true&canMarginLoanRepay=false&canFuturesTrade=true&canUniversalTransfer=false&canVanillaOptions=false&publicKey=MCowBQYDK2VwAyEA%2B%2Fx%3D"
	if r.Method != "POST" || r.Path != "/sapi/v1/sub-account/subAccountApi" || string(r.Body) != want {
		t.Errorf("CreateKeyRequest() = %s %s %q, want POST /sapi/v1/sub-account/subAccountApi %q", r.Method, r.Path, r.Body, want)
	}
	if c, err := Spot(nil).Describer.Describe(r); err != nil || c.Scope != exchange.ScopeAccountAdmin {
		t.Errorf("Describe(CreateKeyRequest()) = %+v, %v, want account-admin", c, err)
	}
	for _, spec := range []exchange.KeySpec{
		{Label: "x", SubAccount: "s", Permissions: []string{"enableWithdrawals"}},
		{Label: "x", SubAccount: "s", Permissions: []string{"everything"}},
		{Label: "x"},
		{SubAccount: "s"},
	} {
		if _, err := km.CreateKeyRequest(spec); err == nil {
			t.Errorf("CreateKeyRequest(%+v) = nil error, want an error", spec)
		}
	}

	c, err := km.ParseCreatedKey(200, []byte(`{"subAccountId":"1","apiKey":"newkey","secretKey":"newsecret","canTrade":true}`))
	if err != nil || c.APIKey != "newkey" || string(c.Secret) != "newsecret" || c.Kind != exchange.KeyHMAC {
		t.Errorf("ParseCreatedKey() = %v, %v, want newkey with its secret", c, err)
	}
	if c, err := km.ParseCreatedKey(200, []byte(`{"apiKey":"asym"}`)); err != nil || c.APIKey != "asym" || c.Kind != "" || c.Secret != nil {
		t.Errorf("ParseCreatedKey(public-key answer) = %v, %v, want only the api key", c, err)
	}
	if _, err := km.ParseCreatedKey(400, []byte(`{"code":-1102,"msg":"Mandatory parameter"}`)); err == nil || !strings.Contains(err.Error(), "-1102") {
		t.Errorf("ParseCreatedKey(400) = %v, want the Binance code", err)
	}
	if _, err := km.ParseCreatedKey(200, []byte(`{"secretKey":"only"}`)); err == nil || strings.Contains(err.Error(), "only") {
		t.Errorf("ParseCreatedKey(no key) = %v, want an error that does not quote the secret", err)
	}

	d, err := km.DeleteKeyRequest("newkey", exchange.KeySpec{SubAccount: "sub@example.com"})
	if err != nil || d.Method != "DELETE" || d.RawQuery != "email=sub%40example.com&subAccountApiKey=newkey" {
		t.Errorf("DeleteKeyRequest() = %+v, %v", d, err)
	}
}

// TestNoSecretsInOutput checks that credentials and errors never print a
// secret.
func TestNoSecretsInOutput(t *testing.T) {
	const marker = "CANARY-SECRET-1234"
	key := hmacCred("k", marker)
	r := &exchange.Request{Method: "GET", Path: "/api/v3/account", Header: http.Header{"X-Mbx-Apikey": {"k"}}, RawQuery: "timestamp=1&signature=zz"}
	_, err := Spot(nil).Verifier.Verify(r, key, time.UnixMilli(1))
	if err == nil || strings.Contains(err.Error(), marker) {
		t.Errorf("Verify() = %v, want an error without the secret", err)
	}
	bad := &exchange.Credential{Kind: "weird", APIKey: "k", Secret: exchange.Secret(marker)}
	if err := Spot(nil).Signer.Sign(&exchange.Request{Method: "GET"}, bad, time.Now()); err == nil || strings.Contains(err.Error(), marker) {
		t.Errorf("Sign(unsupported kind) = %v, want an error without the secret", err)
	}
}

func TestVenues(t *testing.T) {
	spot, usdm := Spot(nil), USDM(nil)
	if spot.Name != "binance" || spot.Upstream.String() != DefaultUpstream || usdm.Name != "binance-usdm" || usdm.Upstream.String() != USDMUpstream {
		t.Errorf("venues = %s %s, %s %s", spot.Name, spot.Upstream, usdm.Name, usdm.Upstream)
	}
	if spot.NeedsPassphrase || usdm.NeedsPassphrase || spot.Inspector == nil || spot.Keys == nil || usdm.Limits == nil {
		t.Errorf("venue capabilities wrong: %+v %+v", spot, usdm)
	}
}
