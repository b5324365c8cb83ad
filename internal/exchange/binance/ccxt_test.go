package binance

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// ccxtKey is one exchange key in both forms: ours and ccxt's secret string.
type ccxtKey struct {
	cred   *exchange.Credential
	secret string
}

func randomString(rng *mrand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomKey(t *testing.T, rng *mrand.Rand, kind exchange.KeyKind, rsaKeys []ccxtKey) ccxtKey {
	t.Helper()
	apiKey := randomString(rng, 64, alnum)
	switch kind {
	case exchange.KeyEd25519:
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(rng.IntN(256))
		}
		priv := ed25519.NewKeyFromSeed(seed)
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		p := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		return ccxtKey{&exchange.Credential{Kind: kind, APIKey: apiKey, PrivateKey: priv, PublicKey: priv.Public()}, p}
	case exchange.KeyRSA:
		k := rsaKeys[rng.IntN(len(rsaKeys))]
		c := *k.cred
		c.APIKey = apiKey
		return ccxtKey{&c, k.secret}
	default:
		secret := randomString(rng, 64, alnum)
		return ccxtKey{hmacCred(apiKey, secret), secret}
	}
}

// ccxtCase is one implicit-API call: ccxt's exchange id, api, path, method
// and params, and the venue-relative path it must reach.
type ccxtCase struct {
	exchange, api, path, method string
	params                      map[string]any
	venue                       exchange.Venue
	wantPath                    string
	wantScope                   exchange.Scope
}

func randomDecimal(rng *mrand.Rand) string {
	return fmt.Sprintf("%d.%03d", rng.IntN(1000), rng.IntN(1000))
}

func randomCases(rng *mrand.Rand, spot, usdm exchange.Venue) []ccxtCase {
	syms := []string{"BTCUSDT", "ETHUSDT", "LTCBTC", "BNBUSDT"}
	sides := []string{"BUY", "SELL"}
	sym := syms[rng.IntN(len(syms))]
	side := sides[rng.IntN(2)]
	return []ccxtCase{
		{"binance", "private", "order", "POST", map[string]any{"symbol": sym, "side": side, "type": "LIMIT",
			"timeInForce": "GTC", "quantity": randomDecimal(rng), "price": randomDecimal(rng)}, spot, "/api/v3/order", exchange.ScopeTrade},
		{"binance", "private", "order", "POST", map[string]any{"symbol": sym, "side": side, "type": "MARKET",
			"quoteOrderQty": randomDecimal(rng), "newClientOrderId": "my order " + randomString(rng, 6, alnum)}, spot, "/api/v3/order", exchange.ScopeTrade},
		{"binance", "private", "account", "GET", nil, spot, "/api/v3/account", exchange.ScopeRead},
		{"binance", "private", "openOrders", "GET", map[string]any{"symbol": sym}, spot, "/api/v3/openOrders", exchange.ScopeRead},
		{"binance", "private", "order", "DELETE", map[string]any{"symbol": sym, "orderId": rng.IntN(1 << 30)}, spot, "/api/v3/order", exchange.ScopeTrade},
		{"binance", "sapi", "capital/withdraw/apply", "POST", map[string]any{"coin": "USDT", "network": "TRX",
			"address": "T" + randomString(rng, 33, alnum), "amount": randomDecimal(rng)}, spot, "/sapi/v1/capital/withdraw/apply", exchange.ScopeWithdraw},
		{"binance", "sapi", "asset/transfer", "POST", map[string]any{"type": "MAIN_UMFUTURE", "asset": "USDT",
			"amount": randomDecimal(rng)}, spot, "/sapi/v1/asset/transfer", exchange.ScopeTransfer},
		{"binance", "sapi", "account/apiRestrictions", "GET", nil, spot, "/sapi/v1/account/apiRestrictions", exchange.ScopeRead},
		{"binanceusdm", "fapiPrivate", "order", "POST", map[string]any{"symbol": sym, "side": side, "type": "LIMIT",
			"timeInForce": "GTC", "quantity": randomDecimal(rng), "price": randomDecimal(rng), "reduceOnly": "true"}, usdm, "/fapi/v1/order", exchange.ScopeTrade},
		{"binanceusdm", "fapiPrivate", "batchOrders", "POST", map[string]any{"batchOrders": []any{
			map[string]any{"symbol": sym, "side": side, "type": "LIMIT", "quantity": randomDecimal(rng), "price": randomDecimal(rng), "timeInForce": "GTC"},
			map[string]any{"symbol": sym, "side": "SELL", "type": "MARKET", "quantity": randomDecimal(rng)},
		}}, usdm, "/fapi/v1/batchOrders", exchange.ScopeTrade},
		{"binanceusdm", "fapiPrivateV2", "account", "GET", nil, usdm, "/fapi/v2/account", exchange.ScopeRead},
		{"binanceusdm", "fapiPrivate", "order", "DELETE", map[string]any{"symbol": sym, "origClientOrderId": randomString(rng, 10, alnum)}, usdm, "/fapi/v1/order", exchange.ScopeTrade},
		{"binanceusdm", "fapiPrivate", "leverage", "POST", map[string]any{"symbol": sym, "leverage": 1 + rng.IntN(20)}, usdm, "/fapi/v1/leverage", exchange.ScopeTrade},
	}
}

// fromCCXT turns ccxt's sign() output into a Request as the gateway would
// receive it.
func fromCCXT(t *testing.T, res exchangetest.CCXTResult) *exchange.Request {
	t.Helper()
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatalf("ccxt url %q: %v", res.URL, err)
	}
	r := &exchange.Request{Method: res.Method, Path: u.Path, RawQuery: u.RawQuery, Header: http.Header{}}
	for k, v := range res.Headers {
		r.Header.Set(k, v)
	}
	if res.Body != nil {
		r.Body = []byte(*res.Body)
	}
	return r
}

// TestCCXTCrossCheck has ccxt 4.5.84 (an independent implementation) sign
// random requests with random HMAC, Ed25519 and RSA keys at a frozen clock.
// Our Verifier must accept each one, describe it the same before and after
// verification, and our Signer, given the verified request and the same
// time, must produce ccxt's exact bytes (timestamp first, recvWindow=10000
// last, then signature: spec §2.1 a, §15.7).
func TestCCXTCrossCheck(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	spot, usdm := Spot(nil), USDM(nil)
	var rsaKeys []ccxtKey
	for i := range 2 {
		c, p := newRSACred(t, fmt.Sprint("rsa", i))
		rsaKeys = append(rsaKeys, ccxtKey{c, p})
	}
	kinds := []exchange.KeyKind{exchange.KeyHMAC, exchange.KeyEd25519, exchange.KeyRSA}
	type job struct {
		c   ccxtCase
		key ccxtKey
		now time.Time
	}
	var jobs []job
	var ccxtJobs []exchangetest.CCXTJob
	for round := range 4 {
		for i, c := range randomCases(rng, spot, usdm) {
			key := randomKey(t, rng, kinds[(round+i)%3], rsaKeys)
			now := time.UnixMilli(1_600_000_000_000 + rng.Int64N(200_000_000_000))
			jobs = append(jobs, job{c, key, now})
			ccxtJobs = append(ccxtJobs, exchangetest.CCXTJob{
				Exchange:    c.exchange,
				Credentials: map[string]string{"apiKey": key.cred.APIKey, "secret": key.secret},
				NowMs:       now.UnixMilli(),
				Path:        c.path,
				API:         c.api,
				Method:      c.method,
				Params:      c.params,
			})
		}
	}
	results := exchangetest.CCXT(t, ccxtJobs)
	for i, res := range results {
		j := jobs[i]
		name := fmt.Sprintf("%d/%s/%s %s/%s", i, j.c.exchange, j.c.method, j.c.path, j.key.cred.Kind)
		t.Run(name, func(t *testing.T) {
			if res.Error != "" {
				t.Fatalf("ccxt: %s", res.Error)
			}
			in := fromCCXT(t, res)
			if in.Path != j.c.wantPath {
				t.Fatalf("ccxt path = %q, want %q", in.Path, j.c.wantPath)
			}
			v := j.c.venue
			if k, err := v.Verifier.ClientKey(in); err != nil || k != j.key.cred.APIKey {
				t.Fatalf("ClientKey() = %q, %v, want %q", k, err, j.key.cred.APIKey)
			}
			before, err := v.Describer.Describe(in)
			if err != nil {
				t.Fatalf("Describe(ccxt request) = %v", err)
			}
			if before.Scope != j.c.wantScope {
				t.Errorf("Describe(ccxt request).Scope = %q, want %q", before.Scope, j.c.wantScope)
			}
			verified, err := v.Verifier.Verify(in, publicOnly(j.key.cred), j.now)
			if err != nil {
				t.Fatalf("Verify(ccxt request %s?%s body %q) = %v", in.Path, in.RawQuery, in.Body, err)
			}
			after, err := v.Describer.Describe(verified)
			if err != nil {
				t.Fatalf("Describe(verified) = %v", err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Describe changed after Verify (-before +after):\n%s", diff)
			}
			// Tampering with one byte of the payload must fail.
			tampered := in.Clone()
			if len(tampered.Body) > 0 {
				tampered.Body[0] ^= 1
			} else {
				tampered.RawQuery = "x" + tampered.RawQuery
			}
			if _, err := v.Verifier.Verify(tampered, publicOnly(j.key.cred), j.now); err == nil {
				t.Errorf("Verify(tampered ccxt request) = nil, want an error")
			}
			out := verified.Clone()
			s := &signer{recvWindow: 10000, macs: newMACPool()}
			if err := s.Sign(out, j.key.cred, j.now); err != nil {
				t.Fatal(err)
			}
			if out.RawQuery != in.RawQuery || string(out.Body) != string(in.Body) {
				t.Errorf("Sign() = query %q body %q, want ccxt's %q %q", out.RawQuery, out.Body, in.RawQuery, in.Body)
			}
			if got, want := out.Header.Get("X-MBX-APIKEY"), in.Header.Get("X-MBX-APIKEY"); got != want {
				t.Errorf("Sign() X-MBX-APIKEY = %q, want %q", got, want)
			}
			if strings.Contains(res.URL, "newClientOrderId") && j.c.method != "POST" {
				t.Errorf("unexpected newClientOrderId in %q", res.URL)
			}
		})
	}
}
