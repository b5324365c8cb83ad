package krakenfutures

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

// wsSecret is the secret of Kraken's Futures WebSocket docs example; spec §5b
// builds the REST vectors KF1 and KF2 with it [XCHECK].
const (
	wsSecret  = "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"
	kfPost    = "orderType=lmt&symbol=pi_xbtusd&side=buy&size=10000&limitPrice=9400"
	kf1       = "GWdGooxalnOIJzYhmDCw5bzUGTnSRThWFyJ3XMYR8krDB0kd0LkZHcnuhV8NLpqwfQcNmiHJLYjgBwRZokdNVw=="
	kf2Nonce  = 1415957147987
	kf2       = "FhKsIytr8rwjO91sQ0PqHSK0mgme5gkl3rfxmiQqR5HJAcpChSGBHNdbDo7dsV+p43dH1yQGHRrQ2iA7YftsUQ=="
	sendOrder = "/derivatives/api/v3/sendorder"
)

func testKey() *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kf-key", Secret: exchange.Secret(wsSecret)}
}

func postRequest(path, body string) *exchange.Request {
	return &exchange.Request{Method: http.MethodPost, Path: path, Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte(body)}
}

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name      string
		noNonce   bool
		query     string
		body      string
		wantNonce string
		want      string
	}{
		// spec §5b KF1: no Nonce header (as ccxt), parameters in the body.
		{"KF1 body", true, "", kfPost, "", kf1},
		// KF1 again with the parameters in the query string, as ccxt sends them.
		{"KF1 query", true, kfPost, "", "", kf1},
		// spec §5b KF2: Nonce 1415957147987.
		{"KF2", false, "", kfPost, "1415957147987", kf2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postRequest(sendOrder, tt.body)
			r.RawQuery = tt.query
			s := NewSigner()
			s.noNonce = tt.noNonce
			if err := s.Sign(r, testKey(), time.UnixMilli(kf2Nonce)); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Authent"); got != tt.want {
				t.Errorf("Sign(%s) = %q, want %q", tt.name, got, tt.want)
			}
			if got := r.Header.Get("Nonce"); got != tt.wantNonce {
				t.Errorf("Nonce = %q, want %q", got, tt.wantNonce)
			}
		})
	}
}

// TestChallengeVector checks the hash chain against Kraken's only official
// vector, the WebSocket challenge (spec §5b [DOC-VERIFIED]), which is Authent
// with the challenge as postData and no nonce or path.
func TestChallengeVector(t *testing.T) {
	secret, _ := base64.StdEncoding.DecodeString(wsSecret)
	got := base64.StdEncoding.EncodeToString(authent(secret, "c100b894-1729-464d-ace1-52dbce11db42", nil, ""))
	want := "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A=="
	if got != want {
		t.Errorf("signed challenge = %q, want %q", got, want)
	}
}

func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name, query, body, nonce, sign string
	}{
		{"KF1 body", "", kfPost, "", kf1},
		{"KF1 query", kfPost, "", "", kf1},
		{"KF2", "", kfPost, "1415957147987", kf2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postRequest(sendOrder, tt.body)
			r.RawQuery = tt.query
			r.Header.Set("APIKey", "kf-key")
			r.Header.Set("Authent", tt.sign)
			if tt.nonce != "" {
				r.Header.Set("Nonce", tt.nonce)
			}
			v := NewVerifier()
			out, err := v.Verify(r, testKey(), time.Now())
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			for _, h := range []string{"APIKey", "Authent", "Nonce"} {
				if out.Header.Get(h) != "" {
					t.Errorf("Verify kept header %s", h)
				}
			}
			if string(out.Body) != tt.body || out.RawQuery != tt.query {
				t.Errorf("Verify changed parameters: %q %q", out.RawQuery, out.Body)
			}
			_, err = v.Verify(r, testKey(), time.Now())
			if tt.nonce != "" {
				if e := exchange.AsError(err); err == nil || e.Kind != exchange.ErrTimestamp {
					t.Errorf("Verify(replayed nonce) = %v, want ErrTimestamp", err)
				}
			} else if err != nil {
				t.Errorf("Verify(no nonce, again) = %v, want nil (Kraken Futures allows it)", err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	signed := func() *exchange.Request {
		r := postRequest(sendOrder, kfPost)
		r.Header.Set("APIKey", "kf-key")
		r.Header.Set("Authent", kf2)
		r.Header.Set("Nonce", "1415957147987")
		return r
	}
	tests := []struct {
		name string
		mod  func(r *exchange.Request)
		want exchange.ErrorKind
	}{
		{"tampered body", func(r *exchange.Request) { r.Body = []byte(strings.Replace(kfPost, "10000", "90000", 1)) }, exchange.ErrAuth},
		{"tampered path", func(r *exchange.Request) { r.Path = "/derivatives/api/v3/withdrawal" }, exchange.ErrAuth},
		{"tampered nonce", func(r *exchange.Request) { r.Header.Set("Nonce", "1415957147988") }, exchange.ErrAuth},
		{"bad nonce", func(r *exchange.Request) { r.Header.Set("Nonce", "x") }, exchange.ErrTimestamp},
		{"missing signature", func(r *exchange.Request) { r.Header.Del("Authent") }, exchange.ErrAuth},
		{"other key", func(r *exchange.Request) { r.Header.Set("APIKey", "nobody") }, exchange.ErrAuth},
		{"query and body", func(r *exchange.Request) { r.RawQuery = "size=1" }, exchange.ErrBadRequest},
		{"dot segment", func(r *exchange.Request) { r.Path = "/derivatives/api/v3/x/../sendorder" }, exchange.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signed()
			tt.mod(r)
			_, err := NewVerifier().Verify(r, testKey(), time.Now())
			if e := exchange.AsError(err); err == nil || e.Kind != tt.want {
				t.Errorf("Verify(%s) = %v, want kind %d", tt.name, err, tt.want)
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

// TestCCXTCrossCheck has ccxt 4.5.84 sign random requests (clock frozen, no
// Nonce, POST parameters in the query per spec §15.9); the Verifier must
// accept each and the Signer must reproduce ccxt's Authent.
func TestCCXTCrossCheck(t *testing.T) {
	var jobs []exchangetest.CCXTJob
	var keys []*exchange.Credential
	for i := range 30 {
		secret, apiKey := randBase64(t, 64), randBase64(t, 42)
		job := exchangetest.CCXTJob{
			Exchange:    "krakenfutures",
			Credentials: map[string]string{"apiKey": apiKey, "secret": secret},
			NowMs:       1_600_000_000_000 + randInt(t, 200_000_000_000),
			API:         "private",
		}
		switch i % 6 {
		case 0:
			job.Path, job.Method = "accounts", "GET"
		case 1:
			job.Path, job.Method = "sendorder", "POST"
			job.Params = map[string]any{"orderType": "lmt", "symbol": "PF_XBTUSD", "side": "buy", "size": fmt.Sprint(randInt(t, 100) + 1), "limitPrice": fmt.Sprint(randInt(t, 90000) + 1), "cliOrdId": fmt.Sprintf("id %d/x", i)}
		case 2:
			job.Path, job.Method = "batchorder", "POST"
			job.Params = map[string]any{"batchOrder": []any{
				map[string]any{"order": "send", "order_tag": "1", "orderType": "lmt", "symbol": "PF_ETHUSD", "side": "sell", "size": 2, "limitPrice": 3000},
				map[string]any{"order": "cancel", "order_id": "e35d61dd-8a30-4d5f-a574-b5593ef0c050"},
			}}
		case 3:
			job.Path, job.Method = "cancelorder", "POST"
			job.Params = map[string]any{"order_id": "e35d61dd-8a30-4d5f-a574-b5593ef0c050"}
		case 4:
			job.Path, job.Method = "withdrawal", "POST"
			job.Params = map[string]any{"currency": "USDT", "amount": "12.5"}
		case 5:
			job.Path, job.Method, job.API = "orders", "GET", "history"
			job.Params = map[string]any{"since": fmt.Sprint(job.NowMs - 1000)}
		}
		jobs = append(jobs, job)
		keys = append(keys, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)})
	}
	results := exchangetest.CCXT(t, jobs)
	for i, res := range results {
		t.Run(fmt.Sprintf("%d-%s", i, jobs[i].Path), func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			u, err := url.Parse(res.URL)
			if err != nil {
				t.Fatal(err)
			}
			in := &exchange.Request{Method: res.Method, Path: u.EscapedPath(), RawQuery: u.RawQuery, Header: http.Header{}}
			for k, v := range res.Headers {
				in.Header.Set(k, v)
			}
			if res.Body != nil {
				in.Body = []byte(*res.Body)
			}
			now := time.UnixMilli(jobs[i].NowMs)
			out, err := NewVerifier().Verify(in, keys[i], now)
			if err != nil {
				t.Fatalf("Verify(ccxt %s?%s %s) = %v, want nil", in.Path, in.RawQuery, in.Body, err)
			}
			before, err1 := describer{}.Describe(in)
			after, err2 := describer{}.Describe(out)
			if err1 != nil || err2 != nil {
				t.Fatalf("Describe = %v, %v", err1, err2)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Describe before/after Verify differ:\n%s", diff)
			}
			s := NewSigner()
			s.noNonce = true
			if err := s.Sign(out, keys[i], now); err != nil {
				t.Fatal(err)
			}
			if got, want := out.Header.Get("Authent"), in.Header.Get("Authent"); got != want {
				t.Errorf("Sign = %q, want ccxt's %q", got, want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	get := func(path, query string) *exchange.Request {
		return &exchange.Request{Method: "GET", Path: path, RawQuery: query, Header: http.Header{}}
	}
	batch := `json={"batchOrder":[{"order":"send","order_tag":"1","orderType":"lmt","symbol":"PF_XBTUSD","side":"buy","size":2,"limitPrice":100,"cliOrdId":"a"},{"order":"edit","order_id":"x","size":3,"limitPrice":50},{"order":"cancel","order_id":"y"}]}`
	tests := []struct {
		name    string
		req     *exchange.Request
		want    exchange.Call
		wantErr exchange.ErrorKind
	}{
		{name: "ticker", req: get("/derivatives/api/v3/tickers/PF_XBTUSD", ""),
			want: exchange.Call{Method: "GET", Path: "/derivatives/api/v3/tickers/PF_XBTUSD", Endpoint: "GET /derivatives/api/v3/tickers/pf_xbtusd", Scope: exchange.ScopePublic}},
		{name: "accounts", req: get("/derivatives/api/v3/accounts", ""),
			want: exchange.Call{Method: "GET", Path: "/derivatives/api/v3/accounts", Endpoint: "GET /derivatives/api/v3/accounts", Scope: exchange.ScopeRead}},
		{name: "history", req: get("/api/history/v2/orders", "since=1"),
			want: exchange.Call{Method: "GET", Path: "/api/history/v2/orders", Endpoint: "GET /api/history/v2/orders", Scope: exchange.ScopeRead}},
		{name: "linear order", req: postRequest(sendOrder, "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=2&limitPrice=100&cliOrdId=c1&reduceOnly=true"),
			want: exchange.Call{Method: "POST", Path: sendOrder, Endpoint: "POST " + sendOrder, Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "PF_XBTUSD", Side: exchange.Buy, Type: "lmt", Quantity: 2, Price: 100, Notional: 200, ClientOrderID: "c1", ReduceOnly: true}}}},
		{name: "inverse order in query", req: func() *exchange.Request { r := postRequest(sendOrder, ""); r.RawQuery = kfPost; return r }(),
			want: exchange.Call{Method: "POST", Path: sendOrder, Endpoint: "POST " + sendOrder, Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "pi_xbtusd", Side: exchange.Buy, Type: "lmt", QuoteQuantity: 10000, Price: 9400, Notional: 10000}}}},
		{name: "batch", req: postRequest("/derivatives/api/v3/batchorder", batch),
			want: exchange.Call{Method: "POST", Path: "/derivatives/api/v3/batchorder", Endpoint: "POST /derivatives/api/v3/batchorder", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{
					{Action: exchange.ActionNew, Symbol: "PF_XBTUSD", Side: exchange.Buy, Type: "lmt", Quantity: 2, Price: 100, Notional: 200, ClientOrderID: "a"},
					{Action: exchange.ActionAmend, Quantity: 3, Price: 50, Notional: 150},
					{Action: exchange.ActionCancel},
				}}},
		{name: "withdrawal", req: postRequest("/derivatives/api/v3/withdrawal", "currency=USDT&amount=12.5"),
			want: exchange.Call{Method: "POST", Path: "/derivatives/api/v3/withdrawal", Endpoint: "POST /derivatives/api/v3/withdrawal", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 12.5, Destination: "spot"}}},
		{name: "withdrawal in upper case", req: postRequest("/derivatives/api/v3/WITHDRAWAL", "currency=USDT&amount=1"),
			want: exchange.Call{Method: "POST", Path: "/derivatives/api/v3/WITHDRAWAL", Endpoint: "POST /derivatives/api/v3/withdrawal", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 1, Destination: "spot"}}},
		{name: "subaccount transfer", req: postRequest("/derivatives/api/v3/transfer/subaccount", "fromUser=a&toUser=b&fromAccount=flex&toAccount=flex&unit=BTC&amount=1"),
			want: exchange.Call{Method: "POST", Path: "/derivatives/api/v3/transfer/subaccount", Endpoint: "POST /derivatives/api/v3/transfer/subaccount", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Destination: "b/flex"}}},
		{name: "unknown private", req: postRequest("/derivatives/api/v3/apikeys", ""),
			want: exchange.Call{Method: "POST", Path: "/derivatives/api/v3/apikeys", Endpoint: "POST /derivatives/api/v3/apikeys", Scope: exchange.ScopeAccountAdmin}},
		{name: "GET on a POST endpoint is not trade", req: get("/derivatives/api/v3/withdrawal", ""),
			want: exchange.Call{Method: "GET", Path: "/derivatives/api/v3/withdrawal", Endpoint: "GET /derivatives/api/v3/withdrawal", Scope: exchange.ScopeAccountAdmin}},
		{name: "key check", req: get(keyCheckPath, ""),
			want: exchange.Call{Method: "GET", Path: keyCheckPath, Endpoint: "GET " + keyCheckPath, Scope: exchange.ScopeRead}},
		{name: "other auth api", req: postRequest("/api/auth/v1/api-keys/v3", ""),
			want: exchange.Call{Method: "POST", Path: "/api/auth/v1/api-keys/v3", Endpoint: "POST /api/auth/v1/api-keys/v3", Scope: exchange.ScopeAccountAdmin}},
		{name: "traversal", req: postRequest("/derivatives/api/v3/sendorder/../withdrawal", ""), wantErr: exchange.ErrBadRequest},
		{name: "encoded slash", req: postRequest("/derivatives/api/v3/transfer%2Fsubaccount", ""), wantErr: exchange.ErrBadRequest},
		{name: "trailing slash", req: postRequest("/derivatives/api/v3/withdrawal/", ""), wantErr: exchange.ErrBadRequest},
		{name: "duplicate size", req: postRequest(sendOrder, kfPost+"&size=1"), wantErr: exchange.ErrBadRequest},
		{name: "query and body", req: func() *exchange.Request { r := postRequest(sendOrder, kfPost); r.RawQuery = "size=1"; return r }(), wantErr: exchange.ErrBadRequest},
		{name: "batch duplicate key", req: postRequest("/derivatives/api/v3/batchorder", `json={"batchOrder":[],"batchOrder":[]}`), wantErr: exchange.ErrBadRequest},
		{name: "batch bad json", req: postRequest("/derivatives/api/v3/batchorder", `json={"batchOrder":[`), wantErr: exchange.ErrBadRequest},
		{name: "non-utf8", req: get("/derivatives/api/v3/accounts", "x=%fe"), wantErr: exchange.ErrBadRequest},
		{name: "unknown root", req: get("/derivatives/api/v4/accounts", ""), wantErr: exchange.ErrNotFound},
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
		wantCode   string
	}{
		{exchange.Errorf(exchange.ErrAuth, "bad"), 401, `"error":"authenticationError"`},
		{exchange.Errorf(exchange.ErrTimestamp, "old"), 401, `"error":"nonceBelowThreshold"`},
		{exchange.Errorf(exchange.ErrPermission, "rule no-withdraw denies"), 403, `"message":"rule no-withdraw denies"`},
		{exchange.Errorf(exchange.ErrBadRequest, "dup"), 400, `"error":"invalidArgument"`},
		{&exchange.Error{Kind: exchange.ErrRateLimit, RetryAfter: 3 * time.Second}, 429, `"error":"apiLimitExceeded"`},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		errorWriter{}.WriteError(w, tt.err)
		if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantCode) || !strings.Contains(w.Body.String(), `"result":"error"`) {
			t.Errorf("WriteError(%v) = %d %s, want %d with %s", tt.err, w.Code, w.Body, tt.wantStatus, tt.wantCode)
		}
	}
	w := httptest.NewRecorder()
	errorWriter{}.WriteError(w, &exchange.Error{Kind: exchange.ErrRateLimit, RetryAfter: 3 * time.Second})
	if got := w.Header().Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After = %q, want 3", got)
	}
}

func TestSimulatorEndToEnd(t *testing.T) {
	kit := sim.NewKit()
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "sim-key", Secret: exchange.Secret(randBase64(t, 64))}
	kit.AddAccount(sim.Account{Key: *key, Permissions: map[string]bool{"read": true, "trade": true}})
	kit.SetPrice("PF_XBTUSD", 50000)
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	signer := NewSigner()
	send := func(r *exchange.Request) (int, string) {
		u := srv.URL + r.Path
		if r.RawQuery != "" {
			u += "?" + r.RawQuery
		}
		req, err := http.NewRequest(r.Method, u, strings.NewReader(string(r.Body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = r.Header.Clone()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	signed := func(method, path, query, body string) *exchange.Request {
		r := postRequest(path, body)
		r.Method, r.RawQuery = method, query
		if err := signer.Sign(r, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name       string
		req        func() *exchange.Request
		wantStatus int
		wantBody   string
	}{
		{"accounts", func() *exchange.Request { return signed("GET", "/derivatives/api/v3/accounts", "", "") }, 200, `"USDT":{`},
		{"order", func() *exchange.Request {
			return signed("POST", sendOrder, "", "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=49000&cliOrdId=e2e")
		}, 200, `"status":"placed"`},
		{"order in query", func() *exchange.Request {
			return signed("POST", sendOrder, "orderType=lmt&symbol=PF_XBTUSD&side=sell&size=1&limitPrice=60000", "")
		}, 200, `"status":"placed"`},
		{"open orders", func() *exchange.Request { return signed("GET", "/derivatives/api/v3/openorders", "", "") }, 200, `"cliOrdId":"e2e"`},
		{"cancel", func() *exchange.Request { return signed("POST", "/derivatives/api/v3/cancelorder", "", "cliOrdId=e2e") }, 200, `"status":"cancelled"`},
		{"withdraw without permission", func() *exchange.Request {
			return signed("POST", "/derivatives/api/v3/withdrawal", "", "currency=USDT&amount=1")
		}, 403, `"error":"permissionDenied"`},
		{"ticker", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/derivatives/api/v3/tickers/PF_XBTUSD", Header: http.Header{}}
		}, 200, `"last":50000`},
		{"tampered body", func() *exchange.Request {
			r := signed("POST", sendOrder, "", "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&limitPrice=1")
			r.Body = []byte("orderType=lmt&symbol=PF_XBTUSD&side=buy&size=9&limitPrice=1")
			return r
		}, 401, `"error":"authenticationError"`},
		{"tampered query", func() *exchange.Request {
			r := signed("GET", "/derivatives/api/v3/openorders", "a=1", "")
			r.RawQuery = "a=2"
			return r
		}, 401, `"error":"authenticationError"`},
		{"tampered signature", func() *exchange.Request {
			r := signed("GET", "/derivatives/api/v3/accounts", "", "")
			r.Header.Set("Authent", kf1)
			return r
		}, 401, `"error":"authenticationError"`},
		{"stale nonce", func() *exchange.Request {
			r := postRequest("/derivatives/api/v3/accounts", "")
			r.Method = "GET"
			if err := NewSigner().Sign(r, key, time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			return r
		}, 401, `"error":"nonceBelowThreshold"`},
		{"missing key header", func() *exchange.Request {
			r := signed("GET", "/derivatives/api/v3/accounts", "", "")
			r.Header.Del("APIKey")
			return r
		}, 401, `"error":"authenticationError"`},
		{"duplicated parameter", func() *exchange.Request {
			return signed("POST", sendOrder, "", "orderType=lmt&symbol=PF_XBTUSD&side=buy&size=1&size=5&limitPrice=1")
		}, 400, `"error":"invalidArgument"`},
		{"non-utf8 query", func() *exchange.Request { return signed("GET", "/derivatives/api/v3/accounts", "x=%ff", "") }, 400, `"error":"invalidArgument"`},
		{"oversized body", func() *exchange.Request {
			return signed("POST", sendOrder, "", "x="+strings.Repeat("a", maxSimBody))
		}, 413, `"error":"invalidArgument"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(tt.req())
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("simulator answered %d %s, want %d with %s", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	log := kit.Log()
	if len(log) == 0 || !log[0].Verified || log[0].APIKey != "sim-key" {
		t.Errorf("first logged request = %+v, want verified for sim-key", log[0])
	}
}

// TestSignScratch: with a scratch the signer writes the same request and
// allocates nothing, with and without the Nonce header.
func TestSignScratch(t *testing.T) {
	now := time.UnixMilli(kf2Nonce)
	reqs := map[string]*exchange.Request{
		"post":         postRequest(sendOrder, kfPost),
		"post no type": {Method: http.MethodPost, Path: sendOrder, Header: http.Header{}, Body: []byte(kfPost)},
		"get":          {Method: http.MethodGet, Path: "/derivatives/api/v3/openorders", RawQuery: "symbol=pi_xbtusd", Header: http.Header{}},
		"history":      {Method: http.MethodGet, Path: "/api/history/v2/orders", RawQuery: "since=1", Header: http.Header{}},
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			exchangetest.CheckSignScratchFresh(t, func() exchange.Signer { return NewSigner() }, testKey(), now, r, 0)
		})
		t.Run(name+" without nonce", func(t *testing.T) {
			exchangetest.CheckSignScratch(t, &Signer{noNonce: true}, testKey(), now, r, 0)
		})
	}
}
