package binance

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// Example keys from the venue docs (spec/exchanges.md §2.1 b and §2.2 b).
const (
	docSpotKey    = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
	docSpotSecret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
	docFutKey     = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
	docFutSecret  = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
	// docEd25519PEM is the spec's Ed25519 test key: seed 01 02 ... 20 (§2.1 b).
	docEd25519PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n-----END PRIVATE KEY-----\n"
)

func hmacCred(key, secret string) *exchange.Credential {
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key, Secret: exchange.Secret(secret)}
}

func edCred(t testing.TB, apiKey, pemText string) *exchange.Credential {
	t.Helper()
	blk, _ := pem.Decode([]byte(pemText))
	if blk == nil {
		t.Fatal("bad pem")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv := k.(ed25519.PrivateKey)
	return &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: apiKey, PrivateKey: priv, PublicKey: priv.Public()}
}

func newRSACred(t testing.TB, apiKey string) (*exchange.Credential, string) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return &exchange.Credential{Kind: exchange.KeyRSA, APIKey: apiKey, PrivateKey: priv, PublicKey: &priv.PublicKey}, p
}

// publicOnly returns the client-credential form of c: asymmetric client
// credentials hold only the public key.
func publicOnly(c *exchange.Credential) *exchange.Credential {
	if c.Kind == exchange.KeyHMAC {
		return c
	}
	return &exchange.Credential{Kind: c.Kind, APIKey: c.APIKey, PublicKey: c.PublicKey}
}

// payloadSignature signs a raw payload exactly as the REST signer does.
func payloadSignature(t *testing.T, key *exchange.Credential, payload string) string {
	t.Helper()
	s := &signer{macs: newMACPool()}
	out, err := s.appendSignature(nil, key, "", []byte(payload), nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestSignatureVectors(t *testing.T) {
	ed := edCred(t, "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO", docEd25519PEM)
	tests := []struct {
		name    string
		key     *exchange.Credential
		payload string
		want    string
	}{
		// B1: spot REST HMAC, DOC-VERIFIED (spec §2.1 b; binance-spot-api-docs rest-api.md).
		{"B1", hmacCred(docSpotKey, docSpotSecret),
			"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
			"c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"},
		// B2: non-ASCII symbol, signed percent-encoded, DOC-VERIFIED (spec §2.1 b).
		{"B2", hmacCred(docSpotKey, docSpotSecret),
			"symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
			"e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"},
		// B3: Ed25519 with the spec's test key, computed (spec §2.1 b).
		{"B3", ed,
			"symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&timestamp=1668481559918&recvWindow=5000",
			"PuNDxW%2BxDpUvU%2BLBiEyYC2ysuBnXT4JlnETcMjA7ZgQMQDXD%2FU7YW2PNBR76Fvot3l6Et3PTlTZ4KWQJ%2BDi2Bg%3D%3D"},
		// B4: Ed25519 in ccxt's parameter order, XCHECK (spec §2.1 b).
		{"B4", ed,
			"timestamp=1668481559918&symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&recvWindow=5000",
			url.QueryEscape("7rRjmhzPV7yoBU5WzVBw0kbJ4yhtrg4VqIj2y8WdHc04G4sMhcNfsr28aK0F2ac/WfdeQi56mPiAua32l5cDDQ==")},
		// F1: USD-M futures HMAC, DOC-VERIFIED (spec §2.2 b, Examples 1 and 2).
		{"F1", hmacCred(docFutKey, docFutSecret),
			"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943",
			"3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"},
		// F2: mixed query and body, concatenated without '&'; the docs print a
		// value computed with a stray space (spec §2.2 b, §15.1).
		{"F2", hmacCred(docFutKey, docFutSecret),
			"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=9000&recvWindow=5000&timestamp=1591702613943",
			"30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := payloadSignature(t, tt.key, tt.payload); got != tt.want {
				t.Errorf("Sign(%q) = %q, want %q", tt.payload, got, tt.want)
			}
		})
	}
}

func TestWSVectors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		// B5: WS API order.place, DOC-VERIFIED (spec §2.1 f; web-socket-api.md).
		{"B5", map[string]string{"apiKey": docSpotKey, "price": "52000.00", "quantity": "0.01000000", "recvWindow": "100",
			"side": "SELL", "symbol": "BTCUSDT", "timeInForce": "GTC", "timestamp": "1645423376532", "type": "LIMIT"},
			"aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"},
		// B6: raw UTF-8 symbol; the signed payload uses quantity 1.00000000 (spec §2.1 f, §15.3).
		{"B6", map[string]string{"apiKey": docSpotKey, "price": "0.10000000", "quantity": "1.00000000", "recvWindow": "5000",
			"side": "BUY", "symbol": "１２３４５６", "timeInForce": "GTC", "timestamp": "1645423376532", "type": "LIMIT",
			"signature": "ignored"},
			"b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"},
		// B7: session.logon, DOC-VERIFIED (spec §2.1 f).
		{"B7", map[string]string{"apiKey": docSpotKey, "timestamp": "1649729878532"},
			"1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SignWSParams(tt.params, hmacCred(docSpotKey, docSpotSecret))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SignWSParams(%v) = %q, want %q", tt.params, got, tt.want)
			}
		})
	}
	// Ed25519 WS signatures are plain base64 and verify over the sorted payload.
	ed := edCred(t, "k", docEd25519PEM)
	params := map[string]string{"apiKey": "k", "timestamp": "1649729878532"}
	sig, err := SignWSParams(params, ed)
	if err != nil {
		t.Fatal(err)
	}
	s := &signedRequest{payloadQuery: WSPayload(params), signature: sig}
	if e := s.checkSignature(publicOnly(ed), newMACPool()); e != nil {
		t.Errorf("SignWSParams(ed25519) = %q, does not verify: %v", sig, e)
	}
}

func TestSignLayout(t *testing.T) {
	now := time.UnixMilli(1591702613943)
	tests := []struct {
		name               string
		req                exchange.Request
		wantQuery, wantBod string
	}{
		{"get in query",
			exchange.Request{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=BTCUSDT"},
			"timestamp=1591702613943&symbol=BTCUSDT&recvWindow=5000&signature=", ""},
		{"empty get",
			exchange.Request{Method: "GET", Path: "/api/v3/account"},
			"timestamp=1591702613943&recvWindow=5000&signature=", ""},
		{"post form in body",
			exchange.Request{Method: "POST", Path: "/api/v3/order", Body: []byte("symbol=BTCUSDT&side=BUY")},
			"", "timestamp=1591702613943&symbol=BTCUSDT&side=BUY&recvWindow=5000&signature="},
		{"post mixed keeps query",
			exchange.Request{Method: "POST", Path: "/fapi/v1/order", RawQuery: "symbol=BTCUSDT", Body: []byte("side=BUY")},
			"symbol=BTCUSDT", "timestamp=1591702613943&side=BUY&recvWindow=5000&signature="},
		{"post query only",
			exchange.Request{Method: "POST", Path: "/fapi/v1/order", RawQuery: "symbol=BTCUSDT"},
			"timestamp=1591702613943&symbol=BTCUSDT&recvWindow=5000&signature=", ""},
		{"empty post goes to body",
			exchange.Request{Method: "POST", Path: "/sapi/v1/account/enableFastWithdrawSwitch"},
			"", "timestamp=1591702613943&recvWindow=5000&signature="},
		{"stale auth removed",
			exchange.Request{Method: "GET", Path: "/api/v3/account", RawQuery: "timestamp=1&a=b&recvWindow=60000&signature=00"},
			"timestamp=1591702613943&a=b&recvWindow=5000&signature=", ""},
	}
	s := Spot(nil).Signer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			if err := s.Sign(&r, hmacCred(docFutKey, docFutSecret), now); err != nil {
				t.Fatal(err)
			}
			q, b := r.RawQuery, string(r.Body)
			if tt.wantBod == "" {
				q = q[:strings.LastIndex(q, "=")+1]
			} else {
				b = b[:strings.LastIndex(b, "=")+1]
			}
			if q != tt.wantQuery || b != tt.wantBod {
				t.Errorf("Sign(%+v) = query %q body %q, want %q %q", tt.req, q, b, tt.wantQuery, tt.wantBod)
			}
			if got := r.Header.Get("X-MBX-APIKEY"); got != docFutKey {
				t.Errorf("Sign() X-MBX-APIKEY = %q, want %q", got, docFutKey)
			}
			if tt.wantBod != "" && r.Header.Get("Content-Type") != contentTypeForm {
				t.Errorf("Sign() Content-Type = %q, want %q", r.Header.Get("Content-Type"), contentTypeForm)
			}
		})
	}
}

// TestSignVerifyRoundTrip checks that every venue verifies what it signs,
// for every key kind, and that Verify gives back the unsigned bytes.
func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.UnixMilli(1700000000000)
	rsaKey, _ := newRSACred(t, "rsa-key")
	keys := []*exchange.Credential{
		hmacCred(docSpotKey, docSpotSecret),
		edCred(t, "ed-key", docEd25519PEM),
		rsaKey,
	}
	reqs := []exchange.Request{
		{Method: "GET", Path: "/api/v3/account"},
		{Method: "GET", Path: "/api/v3/openOrders", RawQuery: "symbol=%EF%BC%91BTC"},
		{Method: "POST", Path: "/api/v3/order", Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=2")},
		{Method: "POST", Path: "/fapi/v1/order", RawQuery: "symbol=BTCUSDT&side=BUY", Body: []byte("type=MARKET&quantity=1")},
		{Method: "DELETE", Path: "/fapi/v1/order", RawQuery: "symbol=BTCUSDT&orderId=1"},
	}
	for _, venue := range []exchange.Venue{Spot(nil), USDM(nil)} {
		for _, key := range keys {
			for _, req := range reqs {
				r := req.Clone()
				if err := venue.Signer.Sign(r, key, now); err != nil {
					t.Fatal(err)
				}
				got, err := venue.Verifier.Verify(r, publicOnly(key), now)
				if err != nil {
					t.Fatalf("%s %s: Verify(Sign(%+v)) = %v", venue.Name, key.Kind, req, err)
				}
				if got.RawQuery != req.RawQuery || string(got.Body) != string(req.Body) || got.Header.Get("X-MBX-APIKEY") != "" {
					t.Errorf("%s %s: Verify(Sign(%+v)) = query %q body %q header %v, want the original", venue.Name, key.Kind, req, got.RawQuery, got.Body, got.Header)
				}
			}
		}
	}
}

func BenchmarkSign(b *testing.B) {
	now := time.UnixMilli(1700000000000)
	body := []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100000&price=50000.00&newClientOrderId=6gCrw2kRUAF9CvJDGP16IP")
	bench := func(b *testing.B, key *exchange.Credential) {
		s := Spot(nil).Signer
		r := &exchange.Request{Method: "POST", Path: "/api/v3/order", Header: http.Header{}, Scratch: exchange.NewSignScratch()}
		b.ReportAllocs()
		for b.Loop() {
			r.Scratch.Reset()
			r.Body = body
			r.RawQuery = ""
			if err := s.Sign(r, key, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("hmac", func(b *testing.B) { bench(b, hmacCred(docSpotKey, docSpotSecret)) })
	b.Run("ed25519", func(b *testing.B) { bench(b, edCred(b, "k", docEd25519PEM)) })
}

// TestSignScratch: with a scratch the signer writes the same request and,
// for HMAC keys, allocates nothing; an Ed25519 signature allocates inside
// crypto/ed25519 (the signature it returns).
func TestSignScratch(t *testing.T) {
	now := time.UnixMilli(1700000000000)
	form := http.Header{"Content-Type": {contentTypeForm}}
	reqs := []struct {
		name string
		r    *exchange.Request
	}{
		{"post body", &exchange.Request{Method: "POST", Path: "/api/v3/order", Header: form,
			Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000")}},
		{"post no content type", &exchange.Request{Method: "POST", Path: "/api/v3/order", Header: http.Header{},
			Body: []byte("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001")}},
		{"get query", &exchange.Request{Method: "GET", Path: "/api/v3/order", Header: http.Header{},
			RawQuery: "symbol=BTCUSDT&orderId=12345"}},
		{"delete query", &exchange.Request{Method: "DELETE", Path: "/api/v3/order", Header: http.Header{},
			RawQuery: "symbol=BTCUSDT&orderId=12345"}},
		{"key only", &exchange.Request{Method: "PUT", Path: "/api/v3/userDataStream", Header: http.Header{},
			RawQuery: "listenKey=abc"}},
		{"query and body", &exchange.Request{Method: "POST", Path: "/api/v3/order", Header: form,
			RawQuery: "symbol=BTCUSDT", Body: []byte("side=BUY&type=MARKET&quantity=0.001")}},
	}
	keys := []struct {
		key    *exchange.Credential
		allocs float64
	}{
		{hmacCred(docSpotKey, docSpotSecret), 0},
		{edCred(t, "k", docEd25519PEM), 1},
	}
	for _, k := range keys {
		for _, tt := range reqs {
			t.Run(string(k.key.Kind)+"/"+tt.name, func(t *testing.T) {
				exchangetest.CheckSignScratch(t, Spot(nil).Signer, k.key, now, tt.r, k.allocs)
			})
		}
	}
}
