package coinbase

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// Official SDK test credentials (coinbase-advanced-py tests/constants.py),
// spec §3.1b.
const (
	sdkKeyName = "organizations/test-organization/apiKeys/test-api-key"
	sdkECKey   = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n"
	sdkEdKey   = "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA=="
	sdkEdPKCS8 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJNAVJ4tKdL2RtQXaVY0uqIASe5MZut9ACdnTfrbqbrQ\n-----END PRIVATE KEY-----\n"
	sdkEdSeed  = "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputA="
	vectorTime = 1700000000
	accounts   = "/api/v3/brokerage/accounts"
)

// C1, C2, C3 are spec §3.1b's JWT vectors [XCHECK]: C1 our EdDSA JWT in the
// SDK claim shape; C2 ccxt's EdDSA JWT for GET accounts?limit=5; C3 ccxt's
// ES256 JWT (randomized, verify only).
const (
	jwtC1 = "eyJhbGciOiJFZERTQSIsImtpZCI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJub25jZSI6IjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcmdhbml6YXRpb25zL3Rlc3Qtb3JnYW5pemF0aW9uL2FwaUtleXMvdGVzdC1hcGkta2V5IiwiaXNzIjoiY2RwIiwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxMjAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ.VKxvz0b5LzwhWX-Fz9sB1un4A3tuMxE5h_BbeY_tyyiZjwfoH7TDfKQYpucjbLrQcAjvRpEL1hXPGIS0SB3YAA"
	jwtC2 = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJub25jZSI6IjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmIn0.eyJhdWQiOlsiY2RwX3NlcnZpY2UiXSwiaXNzIjoiY2RwIiwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxMjAsInN1YiI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJpYXQiOjE3MDAwMDAwMDAsInVyaXMiOlsiR0VUIGFwaS5jb2luYmFzZS5jb20vYXBpL3YzL2Jyb2tlcmFnZS9hY2NvdW50cyJdfQ.A9QcOmKml8qg7jnNw6HdF5xX-NIU8NBVRy8ds9FFv3MR0g2QjRimPVuFiBbWQcK50N9gQtrSVjvYIfcrfLiKBA"
	jwtC3 = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJub25jZSI6IjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmIn0.eyJhdWQiOlsicmV0YWlsX3Jlc3RfYXBpX3Byb3h5Il0sImlzcyI6ImNvaW5iYXNlLWNsb3VkIiwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxMjAsInN1YiI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJpYXQiOjE3MDAwMDAwMDAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ.kDoTpGkSNAmVc1802gD_vEG93TypH91TPMNeY9EKCQJOnqjhs9boHlCJrd8A96-L5yhlIK78hk6EemUwL0efBQ"
)

// fixedNonce is the nonce of C1–C3 as the signer's random source.
var fixedNonce, _ = hex.DecodeString("00112233445566778899aabbccddeeff")

func mustKey(t testing.TB, secret string) (exchange.Credential, exchange.Credential) {
	t.Helper()
	priv, kind, err := ParsePrivateKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	signing := exchange.Credential{Kind: kind, APIKey: sdkKeyName, PrivateKey: priv}
	client := exchange.Credential{Kind: kind, APIKey: sdkKeyName, PublicKey: priv.Public()}
	return signing, client
}

func upstream(t testing.TB, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func getRequest(path, query string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: path, RawQuery: query, Header: http.Header{}}
}

func TestParsePrivateKey(t *testing.T) {
	edSigning, _ := mustKey(t, sdkEdKey)
	tests := []struct {
		name, secret string
		kind         exchange.KeyKind
	}{
		{"ec sec1", sdkECKey, exchange.KeyECDSA},
		{"ed25519 64 bytes", sdkEdKey, exchange.KeyEd25519},
		{"ed25519 seed", sdkEdSeed, exchange.KeyEd25519},
		{"ed25519 pkcs8", sdkEdPKCS8, exchange.KeyEd25519},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, kind, err := ParsePrivateKey(tt.secret)
			if err != nil || kind != tt.kind {
				t.Fatalf("ParsePrivateKey(%s) = %v, %v, want %s", tt.name, kind, err, tt.kind)
			}
			// spec §3.1b: the three Ed25519 encodings are one key.
			if tt.kind == exchange.KeyEd25519 && !edSigning.PrivateKey.Public().(ed25519.PublicKey).Equal(k.Public()) {
				t.Errorf("ParsePrivateKey(%s) gave another Ed25519 key", tt.name)
			}
		})
	}
	bad := base64.StdEncoding.EncodeToString(append(make([]byte, 32), make([]byte, 32)...)) // public half wrong
	if _, _, err := ParsePrivateKey(bad); err == nil {
		t.Errorf("ParsePrivateKey(mismatched halves) = nil error")
	}
	if _, _, err := ParsePrivateKey("hunter2-secret"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParsePrivateKey(garbage) = %v, want an error not quoting it", err)
	}
}

// TestSignC1 reproduces spec §3.1b C1 byte for byte.
func TestSignC1(t *testing.T) {
	signing, _ := mustKey(t, sdkEdKey)
	s := NewSigner(upstream(t, DefaultUpstream))
	s.rand = bytes.NewReader(fixedNonce)
	r := getRequest(accounts, "")
	if err := s.Sign(r, &signing, time.Unix(vectorTime, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Header.Get("Authorization"), "Bearer "+jwtC1; got != want {
		t.Errorf("Sign(C1) = %q, want %q", got, want)
	}
}

func TestSignES256Verifies(t *testing.T) {
	signing, client := mustKey(t, sdkECKey)
	s := NewSigner(upstream(t, DefaultUpstream))
	r := getRequest(accounts, "limit=5")
	if err := s.Sign(r, &signing, time.Unix(vectorTime, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier().Verify(r, &client, time.Unix(vectorTime+1, 0)); err != nil {
		t.Errorf("Verify(our ES256 JWT) = %v, want nil", err)
	}
}

// TestLegacyVectors checks spec §3.2b C4 and C5 [XCHECK].
func TestLegacyVectors(t *testing.T) {
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "legacy", Secret: exchange.Secret("cb-test-secret")}
	c5body := `{"client_order_id":"0000-1","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.001","limit_price":"10000"}}}`
	tests := []struct {
		name, method, path, query, body, want string
	}{
		{"C4", "GET", accounts, "", "", "56cccdb1a79b8930f93f00d0ae36774b8cd2f812c90311d06d5d5e9135891ccf"},
		// v3 signs the path without the query (ccxt), so C4 holds with one.
		{"C4 with query", "GET", accounts, "limit=5", "", "56cccdb1a79b8930f93f00d0ae36774b8cd2f812c90311d06d5d5e9135891ccf"},
		{"C5", "POST", "/api/v3/brokerage/orders", "", c5body, "80214b8b04bf8affe4d66009f4fa1c7fc4f98b608e9eab6508b93b6744c81644"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: tt.method, Path: tt.path, RawQuery: tt.query, Header: http.Header{}, Body: []byte(tt.body)}
			if err := NewSigner(upstream(t, DefaultUpstream)).Sign(r, key, time.Unix(vectorTime, 0)); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("CB-ACCESS-SIGN"); got != tt.want {
				t.Errorf("Sign(%s) = %q, want %q", tt.name, got, tt.want)
			}
			if got := r.Header.Get("CB-ACCESS-TIMESTAMP"); got != "1700000000" {
				t.Errorf("CB-ACCESS-TIMESTAMP = %q, want 1700000000", got)
			}
			out, err := NewVerifier().Verify(r, key, time.Unix(vectorTime+29, 0))
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			for _, h := range authHeaders {
				if out.Header.Get(h) != "" {
					t.Errorf("Verify kept %s", h)
				}
			}
			if _, err := NewVerifier().Verify(r, key, time.Unix(vectorTime+31, 0)); exchange.AsError(err).Kind != exchange.ErrTimestamp {
				t.Errorf("Verify(31 s late) = %v, want ErrTimestamp", err)
			}
		})
	}
}

func bearerRequest(tok, method, path, query string) *exchange.Request {
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestVerifyVectors accepts C1–C3 with only the public key, as keywarden
// holds client credentials.
func TestVerifyVectors(t *testing.T) {
	_, ed := mustKey(t, sdkEdKey)
	_, ec := mustKey(t, sdkECKey)
	tests := []struct {
		name   string
		tok    string
		query  string
		client exchange.Credential
	}{
		{"C1 sdk claims", jwtC1, "", ed},
		{"C2 ccxt eddsa claims", jwtC2, "limit=5", ed},
		{"C3 ccxt es256 claims", jwtC3, "", ec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bearerRequest(tt.tok, "GET", accounts, tt.query)
			v := NewVerifier()
			out, err := v.Verify(r, &tt.client, time.Unix(vectorTime+60, 0))
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.name, err)
			}
			if out.Header.Get("Authorization") != "" || out.RawQuery != tt.query {
				t.Errorf("Verify = %+v, want auth removed and query kept", out)
			}
			if got, _ := v.ClientKey(r); got != sdkKeyName {
				t.Errorf("ClientKey = %q, want %q", got, sdkKeyName)
			}
			// A JWT does not cover the body: keywarden takes each one once.
			if _, err := v.Verify(r, &tt.client, time.Unix(vectorTime+61, 0)); exchange.AsError(err).Kind != exchange.ErrTimestamp {
				t.Errorf("Verify(reused JWT) = %v, want ErrTimestamp", err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	_, ed := mustKey(t, sdkEdKey)
	_, ec := mustKey(t, sdkECKey)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other := exchange.Credential{Kind: exchange.KeyEd25519, APIKey: sdkKeyName, PublicKey: otherPub}
	flip := func(tok string) string {
		b := []byte(tok)
		b[len(b)-3] ^= 1
		return string(b)
	}
	tests := []struct {
		name   string
		req    *exchange.Request
		client exchange.Credential
		at     int64
		want   exchange.ErrorKind
	}{
		{"expired", bearerRequest(jwtC1, "GET", accounts, ""), ed, vectorTime + 120, exchange.ErrTimestamp},
		{"not yet valid", bearerRequest(jwtC1, "GET", accounts, ""), ed, vectorTime - 11, exchange.ErrTimestamp},
		{"other method", bearerRequest(jwtC1, "POST", accounts, ""), ed, vectorTime, exchange.ErrAuth},
		{"other path", bearerRequest(jwtC1, "GET", "/api/v3/brokerage/key_permissions", ""), ed, vectorTime, exchange.ErrAuth},
		{"suffix of the bound path", bearerRequest(jwtC1, "GET", "/accounts", ""), ed, vectorTime, exchange.ErrAuth},
		{"other public key", bearerRequest(jwtC1, "GET", accounts, ""), other, vectorTime, exchange.ErrAuth},
		{"alg does not match the credential", bearerRequest(jwtC3, "GET", accounts, ""), ed, vectorTime, exchange.ErrAuth},
		{"tampered signature", bearerRequest(flip(jwtC1), "GET", accounts, ""), ed, vectorTime, exchange.ErrAuth},
		{"tampered es256", bearerRequest(flip(jwtC3), "GET", accounts, ""), ec, vectorTime, exchange.ErrAuth},
		{"not a JWT", bearerRequest("abc", "GET", accounts, ""), ed, vectorTime, exchange.ErrAuth},
		{"other kid", bearerRequest(jwtC1, "GET", accounts, ""), exchange.Credential{Kind: exchange.KeyEd25519, APIKey: "x", PublicKey: ed.PublicKey}, vectorTime, exchange.ErrAuth},
		{"hmac credential", bearerRequest(jwtC1, "GET", accounts, ""), exchange.Credential{Kind: exchange.KeyHMAC, APIKey: sdkKeyName, Secret: exchange.Secret("s")}, vectorTime, exchange.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier().Verify(tt.req, &tt.client, time.Unix(tt.at, 0))
			if e := exchange.AsError(err); err == nil || e.Kind != tt.want {
				t.Errorf("Verify(%s) = %v, want kind %d", tt.name, err, tt.want)
			}
		})
	}
}

// TestVerifyMalleatedES256 replays C3 with its twin signature (r, n-s),
// which verifies too; it must still count as the same token.
func TestVerifyMalleatedES256(t *testing.T) {
	_, ec := mustKey(t, sdkECKey)
	head, sig, _ := strings.Cut(jwtC3[strings.Index(jwtC3, ".")+1:], ".")
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	s := new(big.Int).SetBytes(raw[32:])
	s.Sub(elliptic.P256().Params().N, s)
	twin := make([]byte, 64)
	copy(twin, raw[:32])
	s.FillBytes(twin[32:])
	malleated := jwtC3[:strings.Index(jwtC3, ".")+1] + head + "." + base64.RawURLEncoding.EncodeToString(twin)
	v := NewVerifier()
	if _, err := v.Verify(bearerRequest(jwtC3, "GET", accounts, ""), &ec, time.Unix(vectorTime, 0)); err != nil {
		t.Fatalf("Verify(C3) = %v, want nil", err)
	}
	_, err = v.Verify(bearerRequest(malleated, "GET", accounts, ""), &ec, time.Unix(vectorTime, 0))
	if exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("Verify(C3 with twin signature) = %v, want ErrTimestamp (replay)", err)
	}
	if _, err := NewVerifier().Verify(bearerRequest(malleated, "GET", accounts, ""), &ec, time.Unix(vectorTime, 0)); err != nil {
		t.Errorf("Verify(twin alone) = %v, want nil (it is a valid signature)", err)
	}
}

func TestVerifyLongLivedJWT(t *testing.T) {
	signing, client := mustKey(t, sdkEdKey)
	input := []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"`+sdkKeyName+`","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+sdkKeyName+`","iss":"cdp","nbf":1700000000,"exp":1700086400,"uri":"GET api.coinbase.com`+accounts+`"}`)))
	tok, err := signJWT(input, algEdDSA, signing.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewVerifier().Verify(bearerRequest(tok, "GET", accounts, ""), &client, time.Unix(vectorTime+10, 0))
	if exchange.AsError(err).Kind != exchange.ErrTimestamp {
		t.Errorf("Verify(day-long JWT) = %v, want ErrTimestamp", err)
	}
}

func TestURIMatches(t *testing.T) {
	tests := []struct {
		uri, method, path string
		want              bool
	}{
		{"GET api.coinbase.com/api/v3/brokerage/accounts", "GET", accounts, true},
		{"GET keywarden.local:8443/coinbase/api/v3/brokerage/accounts", "GET", accounts, true},
		{"GET keywarden.local/api/coinbase/api/v3/brokerage/accounts", "GET", accounts, true},
		{"POST keywarden.local/v2/accounts/a/transactions", "POST", "/v2/accounts/a/transactions", true},
		{"GET keywarden.local/api/v3/brokerage/accounts", "POST", accounts, false},
		{"GET keywarden.local/x/api/v3/brokerage/accounts", "GET", "/v3/brokerage/accounts", false},
		{"GET keywarden.local/xapi/v3/brokerage/accounts", "GET", accounts, false},
		{"GET keywarden.local/x//api/v3/brokerage/accounts", "GET", accounts, false},
		{"GET keywarden.local/api/v3/brokerage/accounts", "GET", "/brokerage/accounts", false},
		{"GET keywarden.local/x/api/v3/brokerage/orders", "GET", "/orders", false},
		{"GET keywarden.local/api/v3/brokerage/accounts?x=1", "GET", accounts, false},
		{"GET /api/v3/brokerage/accounts", "GET", accounts, false},
	}
	for _, tt := range tests {
		if got := uriMatches([]string{tt.uri}, tt.method, tt.path); got != tt.want {
			t.Errorf("uriMatches(%q, %s %s) = %v, want %v", tt.uri, tt.method, tt.path, got, tt.want)
		}
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
		{"jwt", http.Header{"Authorization": {"Bearer " + jwtC1}}, sdkKeyName, false},
		{"legacy", http.Header{"Cb-Access-Key": {"k"}}, "k", false},
		{"both", http.Header{"Authorization": {"Bearer " + jwtC1}, "Cb-Access-Key": {"k"}}, "", true},
		{"basic auth", http.Header{"Authorization": {"Basic abc"}}, "", true},
		{"garbage jwt", http.Header{"Authorization": {"Bearer x.y.z"}}, "", true},
		{"sign without key", http.Header{"Cb-Access-Sign": {"00"}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewVerifier().ClientKey(&exchange.Request{Header: tt.header})
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ClientKey(%s) = %q, %v, want %q, err %v", tt.name, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// nodeVerify has node's own crypto check JWTs, an implementation
// independent of ours (ES256 in JOSE r||s form, EdDSA).
func nodeVerify(t *testing.T, toks []string, pubs []any) []bool {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatal("node is not installed")
		}
		t.Skip("node is not installed")
	}
	type item struct{ Tok, Pub string }
	var items []item
	for i, tok := range toks {
		der, err := x509.MarshalPKIXPublicKey(pubs[i])
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item{tok, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	}
	in, _ := json.Marshal(items)
	const script = `const c=require('crypto');let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{
const out=JSON.parse(s).map(({Tok,Pub})=>{const [h,p,g]=Tok.split('.');const k=c.createPublicKey(Pub);
const alg=JSON.parse(Buffer.from(h,'base64url')).alg;const data=Buffer.from(h+'.'+p);const sig=Buffer.from(g,'base64url');
return alg==='EdDSA'?c.verify(null,data,k,sig):c.verify('sha256',data,{key:k,dsaEncoding:'ieee-p1363'},sig);});
process.stdout.write(JSON.stringify(out));});`
	cmd := exec.Command("node", "-e", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var res []bool
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(toks) {
		t.Fatalf("node output %s: %v", out, err)
	}
	return res
}

func randInt(t testing.TB, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestCCXTCrossCheck has ccxt 4.5.84 sign random requests with random
// Ed25519, P-256 and legacy HMAC keys (clock frozen). The Verifier (with
// only the public key) and the simulator must accept each; for EdDSA our
// Signer in ccxt's claim shape, given ccxt's nonce, must produce ccxt's JWT
// byte for byte; for ES256 node's crypto must accept our JWT; for HMAC our
// signature must equal ccxt's.
func TestCCXTCrossCheck(t *testing.T) {
	type keyset struct {
		signing, client exchange.Credential
	}
	var jobs []exchangetest.CCXTJob
	var keys []keyset
	for i := range 36 {
		name := fmt.Sprintf("organizations/%s/apiKeys/%s", randHex(t, 8), randHex(t, 8))
		var creds map[string]string
		var ks keyset
		switch i % 3 {
		case 0:
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			creds = map[string]string{"apiKey": name, "secret": base64.StdEncoding.EncodeToString(priv)}
			ks = keyset{exchange.Credential{Kind: exchange.KeyEd25519, APIKey: name, PrivateKey: priv}, exchange.Credential{Kind: exchange.KeyEd25519, APIKey: name, PublicKey: priv.Public()}}
		case 1:
			priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.MarshalECPrivateKey(priv)
			creds = map[string]string{"apiKey": name, "secret": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))}
			ks = keyset{exchange.Credential{Kind: exchange.KeyECDSA, APIKey: name, PrivateKey: priv}, exchange.Credential{Kind: exchange.KeyECDSA, APIKey: name, PublicKey: priv.Public()}}
		case 2:
			// ccxt treats a secret ending in "=" or 88 long as Ed25519: keep
			// legacy secrets hex.
			apiKey, secret := randHex(t, 8), randHex(t, 16)
			creds = map[string]string{"apiKey": apiKey, "secret": secret}
			hk := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)}
			ks = keyset{hk, hk}
		}
		job := exchangetest.CCXTJob{Exchange: "coinbase", Credentials: creds, NowMs: 1_600_000_000_000 + randInt(t, 200_000_000_000)}
		switch (i / 3) % 4 {
		case 0:
			job.Path, job.API, job.Method = "brokerage/accounts", []string{"v3", "private"}, "GET"
			job.Params = map[string]any{"limit": randInt(t, 250) + 1}
		case 1:
			job.Path, job.API, job.Method = "brokerage/orders", []string{"v3", "private"}, "POST"
			job.Params = map[string]any{"client_order_id": randHex(t, 8), "product_id": "BTC-USD", "side": "BUY",
				"order_configuration": map[string]any{"limit_limit_gtc": map[string]any{"base_size": "0.001", "limit_price": fmt.Sprint(randInt(t, 90000) + 1)}}}
		case 2:
			job.Path, job.API, job.Method = "accounts/{account_id}/transactions", []string{"v2", "private"}, "POST"
			job.Params = map[string]any{"account_id": "BTC", "type": "send", "to": "bc1q" + randHex(t, 10), "amount": "0.01", "currency": "BTC"}
		case 3:
			job.Path, job.API, job.Method = "accounts", []string{"v2", "private"}, "GET"
			job.Params = map[string]any{"limit": 100, "order": "desc"}
		}
		jobs = append(jobs, job)
		keys = append(keys, ks)
	}
	results := exchangetest.CCXT(t, jobs)
	var esToks []string
	var esPubs []any
	for i, res := range results {
		t.Run(fmt.Sprintf("%d-%s-%s", i, keys[i].client.Kind, jobs[i].Path), func(t *testing.T) {
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
			out, err := NewVerifier().Verify(in, &keys[i].client, now)
			if err != nil {
				t.Fatalf("Verify(ccxt) = %v, want nil; headers %v", err, in.Header)
			}
			before, err1 := describer{}.Describe(in)
			after, err2 := describer{}.Describe(out)
			if err1 != nil || err2 != nil {
				t.Fatalf("Describe = %v, %v", err1, err2)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("Describe before/after Verify differ:\n%s", diff)
			}
			if status := simAccepts(t, in, keys[i].client, now); status >= 300 {
				t.Errorf("simulator answered %d to ccxt's request", status)
			}
			s := NewSigner(upstream(t, DefaultUpstream))
			s.style = styleCCXT
			switch keys[i].client.Kind {
			case exchange.KeyEd25519:
				hdr, _ := jwtHeader(strings.TrimPrefix(in.Header.Get("Authorization"), "Bearer "))
				nonce, _ := hex.DecodeString(hdr.Nonce)
				s.rand = bytes.NewReader(nonce)
				if err := s.Sign(out, &keys[i].signing, now); err != nil {
					t.Fatal(err)
				}
				if got, want := out.Header.Get("Authorization"), in.Header.Get("Authorization"); got != want {
					t.Errorf("Sign = %q, want ccxt's %q", got, want)
				}
			case exchange.KeyECDSA:
				if err := s.Sign(out, &keys[i].signing, now); err != nil {
					t.Fatal(err)
				}
				esToks = append(esToks, strings.TrimPrefix(out.Header.Get("Authorization"), "Bearer "))
				esPubs = append(esPubs, keys[i].client.PublicKey)
			case exchange.KeyHMAC:
				if err := s.Sign(out, &keys[i].signing, now); err != nil {
					t.Fatal(err)
				}
				if got, want := out.Header.Get("CB-ACCESS-SIGN"), in.Header.Get("CB-ACCESS-SIGN"); got != want {
					t.Errorf("Sign = %q, want ccxt's %q", got, want)
				}
			}
		})
	}
	for i, ok := range nodeVerify(t, esToks, esPubs) {
		if !ok {
			t.Errorf("node rejected our ES256 JWT %s", esToks[i])
		}
	}
}

func jwtHeader(tok string) (struct{ Nonce string }, error) {
	var h struct{ Nonce string }
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

// simAccepts serves r to a fresh simulator as if it reached
// api.coinbase.com, the host ccxt binds into its JWTs.
func simAccepts(t *testing.T, r *exchange.Request, client exchange.Credential, now time.Time) int {
	kit := sim.NewKit()
	kit.Now = func() time.Time { return now }
	client.Secret = append(exchange.Secret(nil), client.Secret...)
	kit.AddAccount(sim.Account{Key: client, Permissions: map[string]bool{"read": true, "trade": true, "withdraw": true}})
	target := "https://api.coinbase.com" + r.Path
	if r.RawQuery != "" {
		target += "?" + r.RawQuery
	}
	req := httptest.NewRequest(r.Method, target, bytes.NewReader(r.Body))
	req.Header = r.Header.Clone()
	w := httptest.NewRecorder()
	NewSimulator(kit).ServeHTTP(w, req)
	if w.Code >= 300 {
		t.Logf("simulator: %d %s", w.Code, w.Body)
	}
	return w.Code
}

func TestSimulatorVectors(t *testing.T) {
	_, ed := mustKey(t, sdkEdKey)
	_, ec := mustKey(t, sdkECKey)
	tests := []struct {
		name   string
		tok    string
		query  string
		client exchange.Credential
		at     int64
		want   int
	}{
		{"C1 sdk claims", jwtC1, "", ed, vectorTime + 1, 200},
		{"C2 ccxt eddsa", jwtC2, "limit=5", ed, vectorTime + 1, 200},
		{"C3 ccxt es256", jwtC3, "", ec, vectorTime + 1, 200},
		{"C1 expired", jwtC1, "", ed, vectorTime + 200, 401},
		{"C3 with the Ed25519 key", jwtC3, "", ed, vectorTime + 1, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := simAccepts(t, bearerRequest(tt.tok, "GET", accounts, tt.query), tt.client, time.Unix(tt.at, 0)); got != tt.want {
				t.Errorf("simulator answered %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	post := func(path, body string) *exchange.Request {
		return &exchange.Request{Method: "POST", Path: path, Header: http.Header{}, Body: []byte(body)}
	}
	limit := `{"client_order_id":"c1","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.5","limit_price":"20000","post_only":false}}}`
	market := `{"client_order_id":"c2","product_id":"ETH-USD","side":"SELL","order_configuration":{"market_market_ioc":{"quote_size":"250"}}}`
	tests := []struct {
		name    string
		req     *exchange.Request
		want    exchange.Call
		wantErr exchange.ErrorKind
	}{
		{name: "server time", req: getRequest("/api/v3/brokerage/time", ""),
			want: exchange.Call{Method: "GET", Path: "/api/v3/brokerage/time", Endpoint: "GET /api/v3/brokerage/time", Scope: exchange.ScopePublic}},
		{name: "public ticker", req: getRequest("/api/v3/brokerage/market/products/BTC-USD/ticker", "limit=1"),
			want: exchange.Call{Method: "GET", Path: "/api/v3/brokerage/market/products/BTC-USD/ticker", Endpoint: "GET /api/v3/brokerage/market/products/{id}/ticker", Scope: exchange.ScopePublic}},
		{name: "accounts", req: getRequest(accounts, "limit=5"),
			want: exchange.Call{Method: "GET", Path: accounts, Endpoint: "GET " + accounts, Scope: exchange.ScopeRead}},
		{name: "limit order", req: post("/api/v3/brokerage/orders", limit),
			want: exchange.Call{Method: "POST", Path: "/api/v3/brokerage/orders", Endpoint: "POST /api/v3/brokerage/orders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTC-USD", Side: exchange.Buy, Type: "limit", Quantity: 0.5, Price: 20000, Notional: 10000, ClientOrderID: "c1"}}}},
		{name: "market order by quote", req: post("/api/v3/brokerage/orders", market),
			want: exchange.Call{Method: "POST", Path: "/api/v3/brokerage/orders", Endpoint: "POST /api/v3/brokerage/orders", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "ETH-USD", Side: exchange.Sell, Type: "market", QuoteQuantity: 250, Notional: 250, ClientOrderID: "c2"}}}},
		{name: "edit", req: post("/api/v3/brokerage/orders/edit", `{"order_id":"x","price":"100","size":"3"}`),
			want: exchange.Call{Method: "POST", Path: "/api/v3/brokerage/orders/edit", Endpoint: "POST /api/v3/brokerage/orders/edit", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionAmend, Quantity: 3, Price: 100, Notional: 300}}}},
		{name: "batch cancel", req: post("/api/v3/brokerage/orders/batch_cancel", `{"order_ids":["a","b"]}`),
			want: exchange.Call{Method: "POST", Path: "/api/v3/brokerage/orders/batch_cancel", Endpoint: "POST /api/v3/brokerage/orders/batch_cancel", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionCancel}, {Action: exchange.ActionCancel}}}},
		{name: "move funds", req: post("/api/v3/brokerage/portfolios/move_funds", `{"funds":{"value":"10","currency":"USD"},"source_portfolio_uuid":"a","target_portfolio_uuid":"b"}`),
			want: exchange.Call{Method: "POST", Path: "/api/v3/brokerage/portfolios/move_funds", Endpoint: "POST /api/v3/brokerage/portfolios/move_funds", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "USD", Amount: 10, Destination: "b"}}},
		{name: "send hidden in transactions", req: post("/v2/accounts/abc/transactions", `{"type":"send","to":"bc1qxyz","amount":"0.1","currency":"BTC","network":"bitcoin","destination_tag":"7"}`),
			want: exchange.Call{Method: "POST", Path: "/v2/accounts/abc/transactions", Endpoint: "POST /v2/accounts/{id}/transactions", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "BTC", Amount: 0.1, Address: "bc1qxyz", Network: "bitcoin", Memo: "7"}}},
		{name: "own-account transfer", req: post("/v2/accounts/abc/transactions", `{"type":"transfer","to":"def","amount":"1","currency":"ETH"}`),
			want: exchange.Call{Method: "POST", Path: "/v2/accounts/abc/transactions", Endpoint: "POST /v2/accounts/{id}/transactions", Scope: exchange.ScopeTransfer,
				Transfer: &exchange.Transfer{Asset: "ETH", Amount: 1, Destination: "def"}}},
		{name: "unknown transaction type", req: post("/v2/accounts/abc/transactions", `{"type":"request","to":"a@b.c","amount":"1","currency":"BTC"}`),
			want: exchange.Call{Method: "POST", Path: "/v2/accounts/abc/transactions", Endpoint: "POST /v2/accounts/{id}/transactions", Scope: exchange.ScopeAccountAdmin}},
		{name: "fiat withdrawal", req: post("/v2/accounts/abc/withdrawals", `{"amount":"100","currency":"USD","payment_method":"pm1"}`),
			want: exchange.Call{Method: "POST", Path: "/v2/accounts/abc/withdrawals", Endpoint: "POST /v2/accounts/{id}/withdrawals", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "USD", Amount: 100, Destination: "pm1"}}},
		{name: "case variant of transactions", req: post("/v2/Accounts/abc/TRANSACTIONS", `{"type":"send","to":"x","amount":"1","currency":"BTC"}`),
			want: exchange.Call{Method: "POST", Path: "/v2/Accounts/abc/TRANSACTIONS", Endpoint: "POST /v2/accounts/{id}/transactions", Scope: exchange.ScopeWithdraw,
				Transfer: &exchange.Transfer{Asset: "BTC", Amount: 1, Address: "x"}}},
		{name: "delete portfolio", req: &exchange.Request{Method: "DELETE", Path: "/api/v3/brokerage/portfolios/p1", Header: http.Header{}},
			want: exchange.Call{Method: "DELETE", Path: "/api/v3/brokerage/portfolios/p1", Endpoint: "DELETE /api/v3/brokerage/portfolios/p1", Scope: exchange.ScopeAccountAdmin}},
		{name: "traversal to transactions", req: post("/api/v3/brokerage/orders/../../../../v2/accounts/a/transactions", "{}"), wantErr: exchange.ErrBadRequest},
		{name: "encoded slash", req: post("/v2/accounts/a%2Ftransactions", "{}"), wantErr: exchange.ErrBadRequest},
		{name: "double slash", req: post("/api/v3/brokerage//orders", limit), wantErr: exchange.ErrBadRequest},
		{name: "trailing slash", req: post("/api/v3/brokerage/orders/", limit), wantErr: exchange.ErrBadRequest},
		{name: "duplicate key", req: post("/api/v3/brokerage/orders", `{"side":"BUY","side":"SELL"}`), wantErr: exchange.ErrBadRequest},
		{name: "nested duplicate key", req: post("/api/v3/brokerage/orders", `{"side":"BUY","product_id":"BTC-USD","order_configuration":{"limit_limit_gtc":{"base_size":"1","base_size":"100"}}}`), wantErr: exchange.ErrBadRequest},
		{name: "two configurations", req: post("/api/v3/brokerage/orders", `{"side":"BUY","product_id":"BTC-USD","order_configuration":{"limit_limit_gtc":{"base_size":"1"},"market_market_ioc":{"base_size":"9"}}}`), wantErr: exchange.ErrBadRequest},
		{name: "form body", req: post("/api/v3/brokerage/orders", "side=BUY"), wantErr: exchange.ErrBadRequest},
		{name: "duplicate query", req: getRequest(accounts, "limit=1&limit=2"), wantErr: exchange.ErrBadRequest},
		{name: "non-utf8 query", req: getRequest(accounts, "cursor=%ff"), wantErr: exchange.ErrBadRequest},
		{name: "bad side", req: post("/api/v3/brokerage/orders", `{"side":"LONG","product_id":"BTC-USD","order_configuration":{"limit_limit_gtc":{}}}`), wantErr: exchange.ErrBadRequest},
		{name: "other root", req: getRequest("/v1/accounts", ""), wantErr: exchange.ErrNotFound},
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
		{exchange.Errorf(exchange.ErrAuth, "invalid JWT signature"), 401, "Unauthorized\n"},
		{exchange.Errorf(exchange.ErrPermission, "rule no-withdraw denies"), 403, `{"error":"PERMISSION_DENIED","code":7,"message":"rule no-withdraw denies","error_details":"rule no-withdraw denies","details":[]}`},
		{exchange.Errorf(exchange.ErrBadRequest, "duplicate key"), 400, `{"error":"INVALID_ARGUMENT","code":3,"message":"duplicate key","error_details":"duplicate key","details":[]}`},
		{&exchange.Error{Kind: exchange.ErrRateLimit, Message: "slow", RetryAfter: 2 * time.Second}, 429, `{"error":"rate_limit_exceeded","code":8,"message":"slow","error_details":"slow","details":[]}`},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		errorWriter{}.WriteError(w, tt.err)
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
			t.Errorf("WriteError(%v) = %d %q, want %d %q", tt.err, w.Code, w.Body, tt.wantStatus, tt.wantBody)
		}
	}
}

func TestSimulatorEndToEnd(t *testing.T) {
	kit := sim.NewKit()
	kit.SetPrice("BTC-USD", 50000)
	edSigning, edClient := mustKey(t, sdkEdKey)
	ecSigning, ecClient := mustKey(t, sdkECKey)
	ecSigning.APIKey, ecClient.APIKey = "organizations/o/apiKeys/ec", "organizations/o/apiKeys/ec"
	legacy := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "legacy-key", Secret: exchange.Secret("legacy-secret")}
	kit.AddAccount(sim.Account{Key: edClient, Permissions: map[string]bool{"read": true, "trade": true}})
	kit.AddAccount(sim.Account{Key: ecClient, Permissions: map[string]bool{"read": true, "withdraw": true}})
	kit.AddAccount(sim.Account{Key: legacy, Permissions: map[string]bool{"read": true}})
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	signer := NewSigner(upstream(t, srv.URL))
	send := func(r *exchange.Request) (int, string) {
		u := srv.URL + r.Path
		if r.RawQuery != "" {
			u += "?" + r.RawQuery
		}
		req, err := http.NewRequest(r.Method, u, bytes.NewReader(r.Body))
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
	signed := func(key *exchange.Credential, method, path, query, body string) *exchange.Request {
		r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}, Body: []byte(body)}
		if err := signer.Sign(r, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	order := `{"client_order_id":"e2e","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.1","limit_price":"49000"}}}`
	tests := []struct {
		name       string
		req        func() *exchange.Request
		wantStatus int
		wantBody   string
	}{
		{"accounts ed25519", func() *exchange.Request { return signed(&edSigning, "GET", accounts, "limit=5", "") }, 200, `"currency":"BTC"`},
		{"accounts es256", func() *exchange.Request { return signed(&ecSigning, "GET", accounts, "", "") }, 200, `"currency":"BTC"`},
		{"accounts legacy", func() *exchange.Request { return signed(&legacy, "GET", accounts, "", "") }, 200, `"currency":"BTC"`},
		{"key permissions", func() *exchange.Request {
			return signed(&edSigning, "GET", "/api/v3/brokerage/key_permissions", "", "")
		}, 200, `"can_trade":true`},
		{"order", func() *exchange.Request { return signed(&edSigning, "POST", "/api/v3/brokerage/orders", "", order) }, 200, `"success":true`},
		{"open orders", func() *exchange.Request {
			return signed(&edSigning, "GET", "/api/v3/brokerage/orders/historical/batch", "order_status=OPEN", "")
		}, 200, `"client_order_id":"e2e"`},
		{"order without trade permission", func() *exchange.Request { return signed(&ecSigning, "POST", "/api/v3/brokerage/orders", "", order) }, 403, `"PERMISSION_DENIED"`},
		{"send without withdraw permission", func() *exchange.Request {
			return signed(&edSigning, "POST", "/v2/accounts/BTC/transactions", "", `{"type":"send","to":"bc1q","amount":"1","currency":"BTC"}`)
		}, 403, `"invalid_scope"`},
		{"send", func() *exchange.Request {
			return signed(&ecSigning, "POST", "/v2/accounts/BTC/transactions", "", `{"type":"send","to":"bc1q","amount":"1","currency":"BTC"}`)
		}, 201, `"status":"pending"`},
		{"public ticker", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/api/v3/brokerage/market/products/BTC-USD/ticker", Header: http.Header{}}
		}, 200, `"price":"50000"`},
		{"server time", func() *exchange.Request {
			return &exchange.Request{Method: "GET", Path: "/api/v3/brokerage/time", Header: http.Header{}}
		}, 200, `"epochSeconds"`},
		{"jwt for another path", func() *exchange.Request {
			r := signed(&edSigning, "GET", accounts, "", "")
			r.Path = "/api/v3/brokerage/key_permissions"
			return r
		}, 401, "Unauthorized"},
		{"tampered signature", func() *exchange.Request {
			r := signed(&edSigning, "GET", accounts, "", "")
			r.Header.Set("Authorization", "Bearer "+jwtC1)
			return r
		}, 401, "Unauthorized"},
		{"tampered legacy body", func() *exchange.Request {
			r := signed(&legacy, "POST", "/api/v3/brokerage/orders", "", order)
			r.Body = []byte(strings.Replace(order, "0.1", "100", 1))
			return r
		}, 401, "Unauthorized"},
		{"tampered legacy query on v2", func() *exchange.Request {
			r := signed(&legacy, "GET", "/v2/accounts", "limit=1", "")
			r.RawQuery = "limit=2"
			return r
		}, 401, "Unauthorized"},
		{"stale legacy timestamp", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: accounts, Header: http.Header{}}
			if err := signer.Sign(r, &legacy, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			return r
		}, 401, "Unauthorized"},
		{"expired jwt", func() *exchange.Request {
			r := &exchange.Request{Method: "GET", Path: accounts, Header: http.Header{}}
			if err := signer.Sign(r, &edSigning, time.Now().Add(-3*time.Minute)); err != nil {
				t.Fatal(err)
			}
			return r
		}, 401, "Unauthorized"},
		{"missing auth header", func() *exchange.Request {
			r := signed(&edSigning, "GET", accounts, "", "")
			r.Header.Del("Authorization")
			return r
		}, 401, "Unauthorized"},
		{"duplicated query parameter", func() *exchange.Request { return signed(&edSigning, "GET", accounts, "limit=1&limit=2", "") }, 400, `"INVALID_ARGUMENT"`},
		{"duplicated body key", func() *exchange.Request {
			return signed(&edSigning, "POST", "/api/v3/brokerage/orders", "", `{"side":"BUY","side":"SELL"}`)
		}, 400, `"INVALID_ARGUMENT"`},
		{"non-utf8 query", func() *exchange.Request { return signed(&edSigning, "GET", accounts, "cursor=%ff", "") }, 400, `"INVALID_ARGUMENT"`},
		{"oversized body", func() *exchange.Request {
			return signed(&edSigning, "POST", "/api/v3/brokerage/orders", "", `{"x":"`+strings.Repeat("a", maxSimBody)+`"}`)
		}, 413, `"INVALID_ARGUMENT"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(tt.req())
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("simulator answered %d %s, want %d with %s", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	acc, _ := kit.Account(ecClient.APIKey)
	if got := acc.Balances["BTC"]; got != 9 {
		t.Errorf("BTC after sending 1 = %v, want 9", got)
	}
	log := kit.Log()
	if len(log) == 0 || !log[0].Verified || log[0].APIKey != sdkKeyName {
		t.Errorf("first logged request = %+v, want verified for %s", log[0], sdkKeyName)
	}
}

func TestInspector(t *testing.T) {
	tests := []struct {
		body string
		want exchange.KeyPosture
	}{
		{`{"can_view":true,"can_trade":true,"can_transfer":false,"portfolio_uuid":"p","portfolio_type":"DEFAULT"}`,
			exchange.KeyPosture{Permissions: []string{"view", "trade"}, CanRead: true, CanTrade: true}},
		{`{"can_view":true,"can_trade":false,"can_transfer":true}`,
			exchange.KeyPosture{Permissions: []string{"view", "transfer"}, CanRead: true, CanTransfer: true, CanWithdraw: true}},
	}
	for _, tt := range tests {
		got, err := inspector{}.ParsePosture(200, []byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParsePosture(%s) mismatch (-want +got):\n%s", tt.body, diff)
		}
	}
	if _, err := (inspector{}).ParsePosture(401, []byte("Unauthorized")); err == nil {
		t.Errorf("ParsePosture(401) = nil error, want error")
	}
	if r := (inspector{}).InspectRequest(); r.Method != "GET" || r.Path != "/api/v3/brokerage/key_permissions" {
		t.Errorf("InspectRequest = %s %s", r.Method, r.Path)
	}
}

// zeroReader reads zeros: a fixed JWT nonce, so two signings compare equal.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestSignScratch: with a scratch the signer writes the same request. A
// legacy HMAC key allocates nothing; an Ed25519 JWT allocates only inside
// crypto/ed25519 (the signature).
func TestSignScratch(t *testing.T) {
	ed, _ := mustKey(t, sdkEdKey)
	hm := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k", Secret: exchange.Secret("cb-test-secret")}
	reqs := map[string]*exchange.Request{
		"get":  getRequest(accounts, "limit=5"),
		"v2":   getRequest("/v2/accounts", "limit=5"),
		"post": {Method: "POST", Path: "/api/v3/brokerage/orders", Header: http.Header{}, Body: []byte(`{"client_order_id":"a","product_id":"BTC-USD","side":"BUY"}`)},
	}
	for _, style := range []claimStyle{styleSDK, styleCCXT} {
		s := NewSigner(upstream(t, DefaultUpstream))
		s.rand, s.style = zeroReader{}, style
		for name, r := range reqs {
			t.Run(name+"/hmac", func(t *testing.T) { exchangetest.CheckSignScratch(t, s, hm, time.Unix(vectorTime, 0), r, 0) })
			t.Run(name+"/ed25519", func(t *testing.T) { exchangetest.CheckSignScratch(t, s, &ed, time.Unix(vectorTime, 0), r, 1) })
		}
	}
}

// TestDERToJOSE holds the DER to r||s conversion to encoding/asn1 and
// math/big on real signatures, and refuses malformed ones.
func TestDERToJOSE(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		d := sha256.Sum256([]byte{byte(i)})
		der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 64)
		rs.R.FillBytes(want[:32])
		rs.S.FillBytes(want[32:])
		var got [64]byte
		if !derToJOSE(der, &got) || !bytes.Equal(got[:], want) {
			t.Fatalf("derToJOSE(%x) = %x, want %x", der, got, want)
		}
		if derToJOSE(append(der, 0), &got) || derToJOSE(der[:len(der)-1], &got) {
			t.Fatalf("derToJOSE accepted a signature with a byte added or cut: %x", der)
		}
	}
	for _, bad := range [][]byte{
		nil, {0x30, 0x00}, {0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01}, // negative r
		{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, // r not minimal
		{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},       // not a sequence
	} {
		var got [64]byte
		if derToJOSE(bad, &got) {
			t.Errorf("derToJOSE(%x) accepted a malformed signature", bad)
		}
	}
}
