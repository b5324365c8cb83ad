package kraken

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// docSecret, docNonce, docBody and docSign are Kraken's own example from
// "Spot REST Authentication" (docs.kraken.com/api/docs/guides/spot-rest-auth),
// spec §4b [DOC-VERIFIED].
const (
	docSecret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
	docNonce  = 1616492376594
	docBody   = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
	docSign   = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
	// docJSONBody and docJSONSign are spec §4b's computed JSON variant (same
	// key, nonce and path; the literal JSON bytes are signed).
	docJSONBody = `{"nonce": "1616492376594", "ordertype": "limit", "pair": "XBTUSD", "price": 37500, "type": "buy", "volume": 1.25}`
	docJSONSign = "xojekerxRL59CSvi3027oZ1+nMQF0TgqD5QE569qR8tgSJ4tAhoVYVGhSEciXkufsn6foHHVi0N3Utiarvg74w=="
)

func docKey() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "doc-key", Secret: exchange.Secret(docSecret)}
}

func formRequest(path, body string) *exchange.Request {
	return &exchange.Request{
		Method: http.MethodPost, Path: path,
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		Body:   []byte(body),
	}
}

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		json     bool
		wantBody string
		wantSign string
	}{
		// spec §4b: the signer puts its nonce first, exactly as in the docs.
		{"doc form", "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25", false, docBody, docSign},
		// A stale nonce from the bot is replaced, not kept beside the new one.
		{"doc form replaces nonce", "nonce=1&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25", false, docBody, docSign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := formRequest("/0/private/AddOrder", tt.body)
			if err := NewSigner().Sign(r, docKey(), time.UnixMilli(docNonce)); err != nil {
				t.Fatal(err)
			}
			if string(r.Body) != tt.wantBody {
				t.Errorf("Sign body = %q, want %q", r.Body, tt.wantBody)
			}
			if got := r.Header.Get("API-Sign"); got != tt.wantSign {
				t.Errorf("Sign(%s) = %q, want %q", tt.name, got, tt.wantSign)
			}
			if got := r.Header.Get("API-Key"); got != "doc-key" {
				t.Errorf("API-Key = %q, want doc-key", got)
			}
		})
	}
}

func TestSignJSONBody(t *testing.T) {
	r := &exchange.Request{
		Method: http.MethodPost, Path: "/0/private/AddOrderBatch",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"orders":[{"ordertype":"limit"}],"pair":"XBTUSD"}`),
	}
	if err := NewSigner().Sign(r, docKey(), time.UnixMilli(docNonce)); err != nil {
		t.Fatal(err)
	}
	want := `{"nonce":"1616492376594","orders":[{"ordertype":"limit"}],"pair":"XBTUSD"}`
	if string(r.Body) != want {
		t.Errorf("Sign body = %s, want %s", r.Body, want)
	}
	secret, _ := base64.StdEncoding.DecodeString(docSecret)
	if got, want := r.Header.Get("API-Sign"), apiSign(secret, r.Path, []byte("1616492376594"), r.Body); got != want {
		t.Errorf("API-Sign = %q, want %q", got, want)
	}
}

func TestSignerNonceMonotonic(t *testing.T) {
	s := NewSigner()
	now := time.UnixMilli(docNonce)
	var last uint64
	for i := range 50 {
		at := now
		if i%3 == 0 {
			at = now.Add(-time.Duration(i) * time.Second) // clock stepped back
		}
		n := s.nextNonce("k", at)
		if n <= last {
			t.Fatalf("nextNonce #%d = %d, want > %d", i, n, last)
		}
		last = n
	}
	if n := s.nextNonce("other", now); n != docNonce {
		t.Errorf("nextNonce(other key) = %d, want %d (counters are per key)", n, uint64(docNonce))
	}
}

func TestSignRejectsBadKey(t *testing.T) {
	tests := []struct {
		name string
		key  *exchange.Credential
	}{
		{"nil", nil},
		{"not base64", &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k", Secret: exchange.Secret("not base64!")}},
		{"wrong kind", &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewSigner().Sign(formRequest("/0/private/Balance", ""), tt.key, time.Now())
			if err == nil {
				t.Fatalf("Sign(%s) = nil, want error", tt.name)
			}
			if strings.Contains(err.Error(), "not base64!") {
				t.Errorf("Sign error %q shows the secret", err)
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name, body, ctype, sign string
		wantBody                string
	}{
		{"doc form", docBody, "application/x-www-form-urlencoded", docSign, "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"},
		{"doc json", docJSONBody, "application/json", docJSONSign, `{"ordertype": "limit", "pair": "XBTUSD", "price": 37500, "type": "buy", "volume": 1.25}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := formRequest("/0/private/AddOrder", tt.body)
			r.Header.Set("Content-Type", tt.ctype)
			r.Header.Set("API-Key", "doc-key")
			r.Header.Set("API-Sign", tt.sign)
			v := NewVerifier()
			out, err := v.Verify(r, docKey(), time.Now())
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			if string(out.Body) != tt.wantBody {
				t.Errorf("Verify body = %q, want %q", out.Body, tt.wantBody)
			}
			if out.Header.Get("API-Key") != "" || out.Header.Get("API-Sign") != "" {
				t.Errorf("Verify kept auth headers: %v", out.Header)
			}
			if string(r.Body) != tt.body {
				t.Errorf("Verify changed its input body")
			}
			// Kraken's rule: the same nonce again is refused (replay).
			_, err = v.Verify(r, docKey(), time.Now())
			if e := exchange.AsError(err); err == nil || e.Kind != exchange.ErrTimestamp {
				t.Errorf("Verify(replay) = %v, want ErrTimestamp", err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	sign := func(body string) *exchange.Request {
		r := formRequest("/0/private/AddOrder", body)
		r.Header.Set("API-Key", "doc-key")
		secret, _ := base64.StdEncoding.DecodeString(docSecret)
		ps, _ := exchange.ParseQuery(body)
		r.Header.Set("API-Sign", apiSign(secret, r.Path, []byte(ps.Get("nonce")), r.Body))
		return r
	}
	tests := []struct {
		name   string
		req    func() *exchange.Request
		client *exchange.Credential
		want   exchange.ErrorKind
	}{
		{"tampered body", func() *exchange.Request {
			r := sign(docBody)
			r.Body = []byte(strings.Replace(docBody, "1.25", "125", 1))
			return r
		}, docKey(), exchange.ErrAuth},
		{"tampered path", func() *exchange.Request { r := sign(docBody); r.Path = "/0/private/Withdraw"; return r }, docKey(), exchange.ErrAuth},
		{"bad signature", func() *exchange.Request { r := sign(docBody); r.Header.Set("API-Sign", docJSONSign); return r }, docKey(), exchange.ErrAuth},
		{"signature not base64", func() *exchange.Request { r := sign(docBody); r.Header.Set("API-Sign", "!!"); return r }, docKey(), exchange.ErrAuth},
		{"missing signature", func() *exchange.Request { r := sign(docBody); r.Header.Del("API-Sign"); return r }, docKey(), exchange.ErrAuth},
		{"other key", func() *exchange.Request { r := sign(docBody); r.Header.Set("API-Key", "x"); return r }, docKey(), exchange.ErrAuth},
		{"missing nonce", func() *exchange.Request { return sign("pair=XBTUSD") }, docKey(), exchange.ErrTimestamp},
		{"non-numeric nonce", func() *exchange.Request { return sign("nonce=abc&pair=XBTUSD") }, docKey(), exchange.ErrTimestamp},
		{"duplicate parameter", func() *exchange.Request { return sign(docBody + "&volume=100") }, docKey(), exchange.ErrBadRequest},
		{"query string", func() *exchange.Request { r := sign(docBody); r.RawQuery = "volume=100"; return r }, docKey(), exchange.ErrBadRequest},
		{"GET", func() *exchange.Request { r := sign(docBody); r.Method = http.MethodGet; return r }, docKey(), exchange.ErrBadRequest},
		{"wrong secret", func() *exchange.Request { return sign(docBody) }, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "doc-key", Secret: exchange.Secret(base64.StdEncoding.EncodeToString([]byte("other")))}, exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier().Verify(tt.req(), tt.client, time.Now())
			if e := exchange.AsError(err); err == nil || e.Kind != tt.want {
				t.Errorf("Verify(%s) = %v, want kind %d", tt.name, err, tt.want)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		want    string
		wantErr bool
	}{
		{"public", http.Header{}, "", false},
		{"key", http.Header{"Api-Key": {"abc"}, "Api-Sign": {"x"}}, "abc", false},
		{"sign only", http.Header{"Api-Sign": {"x"}}, "", true},
		{"two keys", http.Header{"Api-Key": {"a", "b"}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewVerifier().ClientKey(&exchange.Request{Header: tt.header})
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ClientKey(%v) = %q, %v, want %q, err %v", tt.header, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func randBase64(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func randInt(t testing.TB, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

// ccxtRequest turns what ccxt's sign() produced into a Request.
func ccxtRequest(t *testing.T, res exchangetest.CCXTResult) *exchange.Request {
	t.Helper()
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := &exchange.Request{Method: res.Method, Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: http.Header{}}
	for k, v := range res.Headers {
		r.Header.Set(k, v)
	}
	if res.Body != nil {
		r.Body = []byte(*res.Body)
	}
	return r
}

// TestCCXTCrossCheck has ccxt 4.5.84 sign random private requests with its
// clock frozen; the Verifier must accept each, and the Signer, given the
// verified request and the same time, must produce ccxt's body and
// signature byte for byte.
func TestCCXTCrossCheck(t *testing.T) {
	type job struct {
		path   string
		params map[string]any
	}
	var jobs []exchangetest.CCXTJob
	var keys []*exchange.Credential
	for i := range 30 {
		secret := randBase64(t, 64)
		apiKey := randBase64(t, 42)
		var j job
		switch i % 6 {
		case 0:
			j = job{"Balance", nil}
		case 1:
			j = job{"AddOrder", map[string]any{"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": fmt.Sprint(randInt(t, 1000)), "price": fmt.Sprint(randInt(t, 90000) + 1), "cl_ord_id": "c-" + fmt.Sprint(i)}}
		case 2:
			j = job{"AddOrderBatch", map[string]any{"pair": "XBTUSD", "orders": []any{map[string]any{"ordertype": "limit", "type": "sell", "volume": "1", "price": "50000"}, map[string]any{"ordertype": "market", "type": "buy", "volume": "0.5"}}}}
		case 3:
			j = job{"CancelOrder", map[string]any{"txid": "OUF4EM-FRGI2-MQMWZD"}}
		case 4:
			j = job{"Withdraw", map[string]any{"asset": "XBT", "key": "my cold wallet", "amount": "0.5", "address": "bc1q&x=y"}}
		case 5:
			j = job{"AddOrder", map[string]any{"pair": "ETHUSD", "type": "sell", "ordertype": "stop-loss", "volume": "2", "price": "+5%"}}
		}
		jobs = append(jobs, exchangetest.CCXTJob{
			Exchange:    "kraken",
			Credentials: map[string]string{"apiKey": apiKey, "secret": secret},
			NowMs:       1_600_000_000_000 + randInt(t, 200_000_000_000),
			Path:        j.path, API: "private", Method: "POST", Params: j.params,
		})
		keys = append(keys, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)})
	}
	results := exchangetest.CCXT(t, jobs)
	for i, res := range results {
		t.Run(fmt.Sprintf("%d-%s", i, jobs[i].Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in := ccxtRequest(t, res)
			now := time.UnixMilli(jobs[i].NowMs)
			out, err := NewVerifier().Verify(in, keys[i], now)
			if err != nil {
				t.Fatalf("Verify(ccxt request) = %v, want nil; body %s", err, in.Body)
			}
			before, err := describer{}.Describe(in)
			if err != nil {
				t.Fatalf("Describe(ccxt request) = %v", err)
			}
			after, err := describer{}.Describe(out)
			if err != nil {
				t.Fatalf("Describe(verified) = %v", err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Describe before/after Verify differ (-before +after):\n%s", diff)
			}
			if err := NewSigner().Sign(out, keys[i], now); err != nil {
				t.Fatal(err)
			}
			if string(out.Body) != string(in.Body) {
				t.Errorf("Sign body = %s, want ccxt's %s", out.Body, in.Body)
			}
			if got, want := out.Header.Get("API-Sign"), in.Header.Get("API-Sign"); got != want {
				t.Errorf("Sign = %q, want ccxt's %q", got, want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	form := func(path, body string) *exchange.Request { return formRequest(path, body) }
	js := func(path, body string) *exchange.Request {
		r := formRequest(path, body)
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	tests := []struct {
		name    string
		req     *exchange.Request
		want    exchange.Call
		wantErr exchange.ErrorKind
	}{
		{
			name: "public ticker",
			req:  &exchange.Request{Method: "GET", Path: "/0/public/Ticker", RawQuery: "pair=XBTUSD"},
			want: exchange.Call{Method: "GET", Path: "/0/public/Ticker", Endpoint: "public/Ticker", Scope: exchange.ScopePublic},
		},
		{
			name: "balance",
			req:  form("/0/private/Balance", "nonce=1"),
			want: exchange.Call{Method: "POST", Path: "/0/private/Balance", Endpoint: "private/Balance", Scope: exchange.ScopeRead},
		},
		{
			name: "limit order",
			req:  form("/0/private/AddOrder", docBody),
			want: exchange.Call{Method: "POST", Path: "/0/private/AddOrder", Endpoint: "private/AddOrder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Quantity: 1.25, Price: 37500, Notional: 46875}}},
		},
		{
			name: "market order in quote currency",
			req:  form("/0/private/AddOrder", "nonce=1&ordertype=market&pair=XBTUSD&type=sell&volume=500&oflags=viqc,post&cl_ord_id=abc"),
			want: exchange.Call{Method: "POST", Path: "/0/private/AddOrder", Endpoint: "private/AddOrder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Sell, Type: "market", QuoteQuantity: 500, Notional: 500, ClientOrderID: "abc"}}},
		},
		{
			name: "relative price has no notional",
			req:  form("/0/private/AddOrder", "nonce=1&ordertype=limit&pair=XBTUSD&type=buy&volume=2&price=%2B5"),
			want: exchange.Call{Method: "POST", Path: "/0/private/AddOrder", Endpoint: "private/AddOrder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Quantity: 2}}},
		},
		{
			name: "batch json",
			req:  js("/0/private/AddOrderBatch", `{"nonce":"1","pair":"XBTUSD","orders":[{"ordertype":"limit","type":"buy","volume":"1","price":"100"},{"ordertype":"limit","type":"sell","volume":2,"price":200,"cl_ord_id":"b"}]}`),
			want: exchange.Call{Method: "POST", Path: "/0/private/AddOrderBatch", Endpoint: "private/AddOrderBatch", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{
					{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 100, Notional: 100},
					{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Sell, Type: "limit", Quantity: 2, Price: 200, Notional: 400, ClientOrderID: "b"},
				}},
		},
		{
			name: "batch form",
			req:  form("/0/private/AddOrderBatch", "nonce=1&pair=XBTUSD&orders%5B0%5D%5Bordertype%5D=limit&orders[0][type]=buy&orders[0][volume]=3&orders[0][price]=10"),
			want: exchange.Call{Method: "POST", Path: "/0/private/AddOrderBatch", Endpoint: "private/AddOrderBatch", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "XBTUSD", Side: exchange.Buy, Type: "limit", Quantity: 3, Price: 10, Notional: 30}}},
		},
		{
			name: "amend",
			req:  form("/0/private/AmendOrder", "nonce=1&txid=X&order_qty=4&limit_price=5"),
			want: exchange.Call{Method: "POST", Path: "/0/private/AmendOrder", Endpoint: "private/AmendOrder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionAmend, Quantity: 4, Price: 5, Notional: 20}}},
		},
		{
			name: "cancel",
			req:  form("/0/private/CancelOrder", "nonce=1&cl_ord_id=z"),
			want: exchange.Call{Method: "POST", Path: "/0/private/CancelOrder", Endpoint: "private/CancelOrder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel, ClientOrderID: "z"}}},
		},
		{
			name: "withdraw",
			req:  form("/0/private/Withdraw", "nonce=1&asset=XBT&key=cold&address=bc1qxyz&amount=0.5"),
			want: exchange.Call{Method: "POST", Path: "/0/private/Withdraw", Endpoint: "private/Withdraw", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "XBT", Amount: 0.5, Address: "bc1qxyz", Destination: "cold"}},
		},
		{
			name: "withdraw in lower case is still a withdrawal",
			req:  form("/0/private/withdraw", "nonce=1&asset=XBT&key=cold&amount=1"),
			want: exchange.Call{Method: "POST", Path: "/0/private/withdraw", Endpoint: "private/withdraw", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "XBT", Amount: 1, Destination: "cold"}},
		},
		{
			name: "wallet transfer",
			req:  form("/0/private/WalletTransfer", "nonce=1&asset=XBT&from=Spot+Wallet&to=Futures+Wallet&amount=2"),
			want: exchange.Call{Method: "POST", Path: "/0/private/WalletTransfer", Endpoint: "private/WalletTransfer", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "XBT", Amount: 2, Destination: "Futures Wallet"}},
		},
		{
			name: "websocket token is account-admin",
			req:  form("/0/private/GetWebSocketsToken", "nonce=1"),
			want: exchange.Call{Method: "POST", Path: "/0/private/GetWebSocketsToken", Endpoint: "private/GetWebSocketsToken", Scope: exchange.ScopeAccountAdmin},
		},
		{
			name: "unknown private method",
			req:  form("/0/private/CreateSubaccountKey", "nonce=1"),
			want: exchange.Call{Method: "POST", Path: "/0/private/CreateSubaccountKey", Endpoint: "private/CreateSubaccountKey", Scope: exchange.ScopeAccountAdmin},
		},
		{name: "dot segment", req: form("/0/private/AddOrder/../Withdraw", "nonce=1"), wantErr: exchange.ErrBadRequest},
		{name: "encoded slash", req: form("/0/private/AddOrder%2F..%2FWithdraw", "nonce=1"), wantErr: exchange.ErrBadRequest},
		{name: "double slash", req: form("/0//private/Withdraw", "nonce=1"), wantErr: exchange.ErrBadRequest},
		{name: "trailing slash", req: form("/0/private/Withdraw/", "nonce=1"), wantErr: exchange.ErrBadRequest},
		{name: "other root", req: form("/1/private/Withdraw", "nonce=1"), wantErr: exchange.ErrNotFound},
		{name: "duplicate volume", req: form("/0/private/AddOrder", docBody+"&volume=999"), wantErr: exchange.ErrBadRequest},
		{name: "query and body", req: func() *exchange.Request { r := form("/0/private/AddOrder", docBody); r.RawQuery = "volume=9"; return r }(), wantErr: exchange.ErrBadRequest},
		{name: "json duplicate key", req: js("/0/private/AddOrderBatch", `{"pair":"XBTUSD","pair":"ETHUSD","orders":[]}`), wantErr: exchange.ErrBadRequest},
		{name: "invalid json", req: js("/0/private/AddOrderBatch", `{"pair":`), wantErr: exchange.ErrBadRequest},
		{name: "non-utf8 form", req: form("/0/private/AddOrder", "pair=%ff"), wantErr: exchange.ErrBadRequest},
		{name: "bad side", req: form("/0/private/AddOrder", "ordertype=limit&type=short&pair=X&volume=1"), wantErr: exchange.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := describer{}.Describe(tt.req)
			if tt.wantErr != 0 {
				if e := exchange.AsError(err); err == nil || e.Kind != tt.wantErr {
					t.Fatalf("Describe(%s) = %v, want kind %d", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Describe(%s) = %v", tt.name, err)
			}
			tt.want.Venue = Name
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Describe(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		err        *exchange.Error
		wantStatus int
		wantBody   string
	}{
		{exchange.Errorf(exchange.ErrAuth, "invalid signature"), 200, `{"error":["EAPI:Invalid signature","EGeneral:keywarden: invalid signature"],"result":{}}`},
		{exchange.Errorf(exchange.ErrTimestamp, "invalid nonce"), 200, `{"error":["EAPI:Invalid nonce","EGeneral:keywarden: invalid nonce"],"result":{}}`},
		{exchange.Errorf(exchange.ErrPermission, "rule max-notional denies"), 200, `{"error":["EGeneral:Permission denied","EGeneral:keywarden: rule max-notional denies"],"result":{}}`},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "slow down", RetryAfter: 1500 * time.Millisecond}, 429, `{"error":["EAPI:Rate limit exceeded","EGeneral:keywarden: slow down"],"result":{}}`},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		errorWriter{}.WriteError(w, tt.err)
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
			t.Errorf("WriteError(%v) = %d %s, want %d %s", tt.err, w.Code, w.Body, tt.wantStatus, tt.wantBody)
		}
		if tt.err.Kind == exchange.ErrRateLimit && w.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q, want 2", w.Header().Get("Retry-After"))
		}
	}
}

// simEnv is a simulator on loopback with one account.
type simEnv struct {
	kit *sim.Kit
	srv *httptest.Server
	key *exchange.Credential
}

func newSimEnv(t *testing.T, perms ...string) *simEnv {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "sim-key", Secret: exchange.Secret(randBase64(t, 64))}
	p := map[string]bool{}
	for _, perm := range perms {
		p[perm] = true
	}
	kit.AddAccount(sim.Account{Key: *key, Permissions: p})
	srv := httptest.NewServer(NewSimulator(kit))
	t.Cleanup(srv.Close)
	return &simEnv{kit: kit, srv: srv, key: key}
}

func (e *simEnv) send(t *testing.T, r *exchange.Request) (int, string) {
	t.Helper()
	u := e.srv.URL + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	req, err := http.NewRequest(r.Method, u, strings.NewReader(string(r.Body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header.Clone()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSimulatorEndToEnd(t *testing.T) {
	env := newSimEnv(t, "read", "trade")
	signer := NewSigner()
	signed := func(path, body string) *exchange.Request {
		r := formRequest(path, body)
		if err := signer.Sign(r, env.key, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		req      func() *exchange.Request
		wantBody string
	}{
		{"balance", func() *exchange.Request { return signed("/0/private/Balance", "") }, `"XXBT":"10.0000000000"`},
		{"order", func() *exchange.Request {
			return signed("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25&cl_ord_id=e2e")
		}, `"txid":["`},
		{"open orders", func() *exchange.Request { return signed("/0/private/OpenOrders", "") }, `"cl_ord_id":"e2e"`},
		{"key info", func() *exchange.Request { return signed("/0/private/GetApiKeyInfo", "") }, `"modify-trades"`},
		{"cancel", func() *exchange.Request { return signed("/0/private/CancelOrder", "cl_ord_id=e2e") }, `"count":1`},
		{"withdraw without permission", func() *exchange.Request {
			return signed("/0/private/Withdraw", "asset=BTC&key=cold&amount=1")
		}, `"EGeneral:Permission denied"`},
		{"tampered body", func() *exchange.Request {
			r := signed("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=1&type=buy&volume=1")
			r.Body = []byte(strings.Replace(string(r.Body), "volume=1", "volume=9", 1))
			return r
		}, `"EAPI:Invalid signature"`},
		{"tampered signature", func() *exchange.Request {
			r := signed("/0/private/Balance", "")
			r.Header.Set("API-Sign", docSign)
			return r
		}, `"EAPI:Invalid signature"`},
		{"replayed nonce", func() *exchange.Request {
			r := signed("/0/private/Balance", "")
			env.send(t, r)
			return r
		}, `"EAPI:Invalid nonce"`},
		{"stale nonce", func() *exchange.Request {
			r := formRequest("/0/private/Balance", "")
			if err := NewSigner().Sign(r, env.key, time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			return r
		}, `"EAPI:Invalid nonce"`},
		{"missing key header", func() *exchange.Request {
			r := signed("/0/private/Balance", "")
			r.Header.Del("API-Key")
			return r
		}, `"EAPI:Invalid key"`},
		{"unknown key", func() *exchange.Request {
			r := signed("/0/private/Balance", "")
			r.Header.Set("API-Key", "nobody")
			return r
		}, `"EAPI:Invalid key"`},
		{"duplicated parameter", func() *exchange.Request {
			return signed("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=1&type=buy&volume=1&volume=2")
		}, `"EGeneral:Invalid arguments"`},
		{"non-utf8 query", func() *exchange.Request {
			r := signed("/0/private/Balance", "")
			r.RawQuery = "a=%ff"
			return r
		}, `"EGeneral:Invalid arguments"`},
		{"oversized body", func() *exchange.Request {
			return signed("/0/private/AddOrder", "pair="+strings.Repeat("x", maxSimBody))
		}, `"EGeneral:Invalid arguments"`},
		{"public ticker", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/0/public/Ticker", RawQuery: "pair=XBTUSD", Header: http.Header{}}
		}, `"c":["100","0.10000000"]`},
		{"server time", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/0/public/Time", Header: http.Header{}}
		}, `"unixtime":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := env.send(t, tt.req())
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("simulator answered %s, want it to contain %s", body, tt.wantBody)
			}
		})
	}
	log := env.kit.Log()
	if len(log) == 0 || !log[0].Verified || log[0].APIKey != "sim-key" {
		t.Errorf("first logged request = %+v, want verified for sim-key", log[0])
	}
	for _, l := range log {
		// Verified means the signature held; a refusal after that (no
		// permission) keeps the key and says why.
		if l.Verified != (l.APIKey != "") {
			t.Errorf("logged request has Verified %v with key %q: %+v", l.Verified, l.APIKey, l)
		}
		if strings.Contains(string(l.Body), "key=cold") && (!l.Verified || l.Error != errPermission) {
			t.Errorf("withdrawal without permission logged as %+v, want verified and refused", l)
		}
	}
}

func TestSimulatorWithdraw(t *testing.T) {
	env := newSimEnv(t, "read", "withdraw")
	r := formRequest("/0/private/Withdraw", "asset=BTC&key=cold&amount=2")
	if err := NewSigner().Sign(r, env.key, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, body := env.send(t, r); !strings.Contains(body, `"refid"`) {
		t.Fatalf("Withdraw answered %s, want a refid", body)
	}
	acc, _ := env.kit.Account("sim-key")
	if got := acc.Balances["BTC"]; got != 8 {
		t.Errorf("BTC balance after withdrawing 2 = %v, want 8", got)
	}
}

func TestInspector(t *testing.T) {
	env := newSimEnv(t, "read", "trade")
	r := inspector{}.InspectRequest()
	if err := NewSigner().Sign(r, env.key, time.Now()); err != nil {
		t.Fatal(err)
	}
	status, body := env.send(t, r)
	got, err := inspector{}.ParsePosture(status, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !got.CanRead || !got.CanTrade || got.CanWithdraw || got.IPRestricted {
		t.Errorf("ParsePosture = %+v, want read and trade only", got)
	}
	// Kraken's own example response (API reference, Get API Key Info).
	doc := `{"error":[],"result":{"apiKeyName":"my-api-key","apiKey":"4/SDrDBcOOPnm3nPlNfEMMJDeRcIVqPz+QhRxIodyZbI9po/aVRiHsgX","nonce":"1772627060997","nonceWindow":0,"permissions":["query-funds","withdraw-funds","query-open-trades","modify-trades"],"iban":"AA88 N84G WOAK NMOI","validUntil":"0","queryFrom":"0","queryTo":"0","createdTime":"1772542900","modifiedTime":"1772543095","ipAllowlist":[],"lastUsed":"1772627061"}}`
	want := exchange.KeyPosture{
		Permissions: []string{"query-funds", "withdraw-funds", "query-open-trades", "modify-trades"},
		CanRead:     true, CanTrade: true, CanTransfer: true, CanWithdraw: true,
		IPs: []string{}, Created: time.Unix(1772542900, 0).UTC(),
	}
	got, err = inspector{}.ParsePosture(200, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePosture(Kraken's example) mismatch (-want +got):\n%s", diff)
	}
	if _, err := (inspector{}).ParsePosture(200, []byte(`{"error":["EAPI:Invalid key"]}`)); err == nil {
		t.Errorf("ParsePosture(error body) = nil error, want error")
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing for a form body; a JSON body is still rebuilt on the heap.
func TestSignScratch(t *testing.T) {
	now := time.UnixMilli(1616492376594)
	fresh := func() exchange.Signer { return NewSigner() }
	tests := []struct {
		name   string
		r      *exchange.Request
		allocs float64
	}{
		{"form", formRequest("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"), 0},
		{"form with nonce and otp", formRequest("/0/private/AddOrder", "nonce=1&pair=XBTUSD&otp=123456&type=buy"), 0},
		{"empty", &exchange.Request{Method: http.MethodPost, Path: "/0/private/Balance", Header: http.Header{}}, 0},
		{"json", &exchange.Request{Method: http.MethodPost, Path: "/0/private/AddOrder",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"pair":"XBTUSD","type":"buy"}`)}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { exchangetest.CheckSignScratchFresh(t, fresh, docKey(), now, tt.r, tt.allocs) })
	}
}
