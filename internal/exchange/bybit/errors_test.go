package bybit

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
		code   int
	}{
		{exchange.Errorf(exchange.ErrAuth, "error sign! origin_string mismatch"), 401, 10004},
		{exchange.Errorf(exchange.ErrAuth, "API key is invalid."), 401, 10003},
		{exchange.Errorf(exchange.ErrTimestamp, "invalid request, please check your server timestamp or recv_window param"), 401, 10002},
		{exchange.Errorf(exchange.ErrIP, "Unmatched IP"), 403, 10010},
		{exchange.Errorf(exchange.ErrPermission, "denied by rule max-notional"), 403, 10005},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "Too many visits!", RetryAfter: 200 * time.Millisecond}, 429, 10006},
		{exchange.Errorf(exchange.ErrBadRequest, "duplicate parameter"), 400, 10001},
		{exchange.Errorf(exchange.ErrNotFound, "no route"), 404, 10017},
	}
	for _, tt := range tests {
		t.Run(tt.err.Message, func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, tt.err)
			var got struct {
				RetCode    int             `json:"retCode"`
				RetMsg     string          `json:"retMsg"`
				Result     json.RawMessage `json:"result"`
				RetExtInfo json.RawMessage `json:"retExtInfo"`
				Time       int64           `json:"time"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("WriteError body %q: %v", w.Body, err)
			}
			if w.Code != tt.status || got.RetCode != tt.code || got.RetMsg != tt.err.Message || string(got.Result) != "{}" || got.Time == 0 {
				t.Errorf("WriteError(%v) = %d %s, want %d retCode %d", tt.err, w.Code, w.Body, tt.status, tt.code)
			}
			if tt.err.Kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "1" {
				t.Errorf("WriteError(rate limit) Retry-After = %q, want 1", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		h    http.Header
		want exchange.RateLimit
		ok   bool
	}{
		{http.Header{"X-Bapi-Limit": {"20"}, "X-Bapi-Limit-Status": {"15"}}, exchange.RateLimit{Used: 5, Limit: 20, Window: time.Second}, true},
		{http.Header{"X-Bapi-Limit": {"20"}}, exchange.RateLimit{}, false},
		{http.Header{"X-Bapi-Limit": {"20"}, "X-Bapi-Limit-Status": {"25"}}, exchange.RateLimit{}, false},
		{http.Header{}, exchange.RateLimit{}, false},
	}
	for _, tt := range tests {
		got, ok := rateLimits{}.RateLimit(tt.h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RateLimit(%v) = %+v, %v; want %+v, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParsePosture(t *testing.T) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		status  int
		body    string
		want    exchange.KeyPosture
		wantErr bool
	}{
		{"trading and withdrawing, ip bound", 200,
			`{"retCode":0,"retMsg":"","result":{"apiKey":"k","readOnly":0,"secret":"","permissions":{"ContractTrade":["Order","Position"],"Spot":["SpotTrade"],"Wallet":["AccountTransfer","Withdraw"],"Options":[]},"ips":["1.2.3.4"],"createdAt":"2024-01-02T03:04:05Z","expiredAt":"2024-04-01T03:04:05Z"}}`,
			exchange.KeyPosture{Permissions: []string{"ContractTrade.Order", "ContractTrade.Position", "Spot.SpotTrade", "Wallet.AccountTransfer", "Wallet.Withdraw"},
				CanRead: true, CanTrade: true, CanFutures: true, CanTransfer: true, CanWithdraw: true, IPRestricted: true, IPs: []string{"1.2.3.4"},
				Created: created, Expires: time.Date(2024, 4, 1, 3, 4, 5, 0, time.UTC)}, false},
		{"read only with star ip", 200,
			`{"retCode":0,"result":{"readOnly":1,"permissions":{"Spot":["SpotTrade"]},"ips":["*"],"createdAt":"2024-01-02T03:04:05Z"}}`,
			exchange.KeyPosture{Permissions: []string{"Spot.SpotTrade"}, CanRead: true, Created: created}, false},
		{"error", 200, `{"retCode":10003,"retMsg":"API key is invalid.","result":{}}`, exchange.KeyPosture{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspector{}.ParsePosture(tt.status, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParsePosture() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePosture(%s) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
	if r := (inspector{}).InspectRequest(); r.Method != "GET" || r.Path != "/v5/user/query-api" {
		t.Errorf("InspectRequest() = %s %s", r.Method, r.Path)
	}
}

func TestKeyManager(t *testing.T) {
	km := keyManager{}
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "kw", SubAccount: "592334", IPs: []string{"203.0.113.7"},
		Permissions: []string{"Spot.SpotTrade", "ContractTrade.Order"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"subuid":592334,"note":"kw","readOnly":0,"ips":"203.0.113.7","permissions":{"ContractTrade":["Order"],"Spot":["SpotTrade"]}}`
	if r.Method != "POST" || r.Path != "/v5/user/create-sub-api" || string(r.Body) != want {
		t.Errorf("CreateKeyRequest() = %s %s %s, want body %s", r.Method, r.Path, r.Body, want)
	}
	ro, err := km.CreateKeyRequest(exchange.KeySpec{SubAccount: "1"})
	if err != nil || !json.Valid(ro.Body) || string(ro.Body) != `{"subuid":1,"readOnly":1,"ips":"*","permissions":{}}` {
		t.Errorf("CreateKeyRequest(read-only) = %s, %v", ro.Body, err)
	}
	for _, bad := range []exchange.KeySpec{
		{SubAccount: "bob"},
		{SubAccount: "1", Permissions: []string{"Wallet.Withdraw"}},
		{SubAccount: "1", Permissions: []string{"SpotTrade"}},
	} {
		if _, err := km.CreateKeyRequest(bad); err == nil {
			t.Errorf("CreateKeyRequest(%+v) = nil error, want error", bad)
		}
	}
	cred, err := km.ParseCreatedKey(200, []byte(`{"retCode":0,"retMsg":"","result":{"id":"1","apiKey":"ak","secret":"sk","readOnly":0}}`))
	if err != nil || cred.APIKey != "ak" || string(cred.Secret) != "sk" || cred.Kind != exchange.KeyHMAC {
		t.Errorf("ParseCreatedKey() = %v, %v", cred, err)
	}
	if _, err := km.ParseCreatedKey(200, []byte(`{"retCode":0,"result":{"apiKey":"ak","secret":""}}`)); err == nil {
		t.Errorf("ParseCreatedKey(no secret) = nil error, want error")
	}
	d, err := km.DeleteKeyRequest("ak", exchange.KeySpec{})
	if err != nil || d.Path != "/v5/user/delete-sub-api" || string(d.Body) != `{"apikey":"ak"}` {
		t.Errorf("DeleteKeyRequest() = %v, %v", d, err)
	}
}

func TestVenue(t *testing.T) {
	v := New(nil)
	if v.Name != "bybit" || v.Upstream.String() != DefaultUpstream || v.NeedsPassphrase || v.Signer == nil || v.Verifier == nil || v.Prices == nil ||
		v.Describer == nil || v.Errors == nil || v.Inspector == nil || v.Limits == nil || v.Keys == nil {
		t.Errorf("New(nil) = %+v", v)
	}
}

func TestTickerCategory(t *testing.T) {
	tests := []struct{ symbol, want string }{
		{"BTCUSDT", "spot"},
		{"BTCUSD", "inverse"},
		{"BTCUSDT-27JUN25", "linear"},
		{"BTC-29JUL22-25000-C", "option"},
	}
	for _, tt := range tests {
		r := prices{}.TickerRequest(tt.symbol)
		if want := "category=" + tt.want + "&symbol=" + tt.symbol; r.RawQuery != want {
			t.Errorf("TickerRequest(%s) query = %q, want %q", tt.symbol, r.RawQuery, want)
		}
	}
}
