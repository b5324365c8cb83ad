package binance

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

// TestVerifyVectors feeds the spec's vectors, as full requests, to the
// Verifier with the documented key (public key only for Ed25519).
func TestVerifyVectors(t *testing.T) {
	spotKey := hmacCred(docSpotKey, docSpotSecret)
	futKey := hmacCred(docFutKey, docFutSecret)
	ed := publicOnly(edCred(t, "ed-key", docEd25519PEM))
	hdr := func(k string) http.Header { return http.Header{"X-Mbx-Apikey": {k}} }
	tests := []struct {
		name      string
		key       *exchange.Credential
		req       exchange.Request
		now       int64
		wantQuery string
		wantBody  string
	}{
		// B1 (spec §2.1 b), all in the query.
		{"B1 query", spotKey, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: hdr(docSpotKey),
			RawQuery: "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"},
			1499827319559, "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1", ""},
		// B1 with upper-case hex: Binance's HMAC hex is case-insensitive (§16.3).
		{"B1 upper-case hex", spotKey, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: hdr(docSpotKey),
			Body: []byte("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=C8DB56825AE71D6D79447849E617115F4A920FA2ACDCAB2B053C4B2838BD6B71")},
			1499827319559 + 4000, "", "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"},
		// B2 (spec §2.1 b): non-ASCII symbol, percent-encoded.
		{"B2", spotKey, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: hdr(docSpotKey),
			RawQuery: "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"},
			1499827319559, "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1", ""},
		// B3 (spec §2.1 b): Ed25519, signature percent-encoded base64.
		{"B3", ed, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: hdr("ed-key"),
			Body: []byte("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&timestamp=1668481559918&recvWindow=5000&signature=PuNDxW%2BxDpUvU%2BLBiEyYC2ysuBnXT4JlnETcMjA7ZgQMQDXD%2FU7YW2PNBR76Fvot3l6Et3PTlTZ4KWQJ%2BDi2Bg%3D%3D")},
			1668481559918, "", "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"},
		// B4 (spec §2.1 b): ccxt's order, timestamp first.
		{"B4", ed, exchange.Request{Method: "POST", Path: "/api/v3/order", Header: hdr("ed-key"),
			Body: []byte("timestamp=1668481559918&symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&recvWindow=5000&signature=7rRjmhzPV7yoBU5WzVBw0kbJ4yhtrg4VqIj2y8WdHc04G4sMhcNfsr28aK0F2ac%2FWfdeQi56mPiAua32l5cDDQ%3D%3D")},
			1668481559918, "", "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"},
		// F1 (spec §2.2 b) Example 1: all in the query.
		{"F1 query", futKey, exchange.Request{Method: "POST", Path: "/fapi/v1/order", Header: hdr(docFutKey),
			RawQuery: "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"},
			1591702613943, "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC", ""},
		// F1 Example 2: all in the body.
		{"F1 body", futKey, exchange.Request{Method: "POST", Path: "/fapi/v1/order", Header: hdr(docFutKey),
			Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943&signature=3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9")},
			1591702613943, "", "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"},
		// F2 Example 3: mixed, query+body concatenated without '&' (§15.1).
		{"F2 mixed", futKey, exchange.Request{Method: "POST", Path: "/fapi/v1/order", Header: hdr(docFutKey),
			RawQuery: "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC",
			Body:     []byte("quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943&signature=30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4")},
			1591702613943, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC", "quantity=1&price=9000"},
	}
	v := Spot(nil).Verifier
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := v.ClientKey(&tt.req); err != nil || k != tt.key.APIKey {
				t.Fatalf("ClientKey() = %q, %v, want %q", k, err, tt.key.APIKey)
			}
			got, err := v.Verify(&tt.req, tt.key, time.UnixMilli(tt.now))
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if got.RawQuery != tt.wantQuery || string(got.Body) != tt.wantBody {
				t.Errorf("Verify() = query %q body %q, want %q %q", got.RawQuery, got.Body, tt.wantQuery, tt.wantBody)
			}
			if len(got.Header) != 0 {
				t.Errorf("Verify() header = %v, want the api key removed", got.Header)
			}
			// The docs' misprinted F2 value (§15.1) must not verify.
			if tt.name == "F2 mixed" {
				bad := tt.req.Clone()
				bad.Body = []byte(strings.Replace(string(bad.Body), "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4",
					"f9d0ae5e813ef6ccf15c2b5a434047a0181cb5a342b903b367ca6d27a66e36f2", 1))
				if _, err := v.Verify(bad, tt.key, time.UnixMilli(tt.now)); err == nil {
					t.Errorf("Verify(docs' misprinted F2 signature) = nil, want an error")
				}
			}
		})
	}
}

// signedQuery returns query+"&signature=..." under key.
func signedQuery(t *testing.T, key *exchange.Credential, query string) string {
	t.Helper()
	return query + "&signature=" + payloadSignature(t, key, query)
}

func TestVerifyWindow(t *testing.T) {
	key := hmacCred("k", "s")
	now := time.UnixMilli(1_700_000_000_000)
	ms := now.UnixMilli()
	tests := []struct {
		name  string
		query string
		kind  exchange.ErrorKind // 0: accepted
	}{
		{"now", "timestamp=" + strconv.FormatInt(ms, 10), 0},
		{"default window edge", "timestamp=" + strconv.FormatInt(ms-5000, 10), 0},
		{"past default window", "timestamp=" + strconv.FormatInt(ms-5001, 10), exchange.ErrTimestamp},
		{"999ms ahead", "timestamp=" + strconv.FormatInt(ms+999, 10), 0},
		{"1000ms ahead", "timestamp=" + strconv.FormatInt(ms+1000, 10), exchange.ErrTimestamp},
		{"max window", "timestamp=" + strconv.FormatInt(ms-60000, 10) + "&recvWindow=60000", 0},
		{"window over max", "timestamp=" + strconv.FormatInt(ms, 10) + "&recvWindow=60001", exchange.ErrBadRequest},
		{"fractional window", "timestamp=" + strconv.FormatInt(ms-6000, 10) + "&recvWindow=6000.346", 0},
		{"fractional window too short", "recvWindow=5999.999&timestamp=" + strconv.FormatInt(ms-6000, 10), exchange.ErrTimestamp},
		{"four decimals", "timestamp=" + strconv.FormatInt(ms, 10) + "&recvWindow=6000.3461", exchange.ErrBadRequest},
		{"microseconds", "timestamp=" + strconv.FormatInt(now.UnixMicro()-4_999_999, 10), 0},
		{"microseconds stale", "timestamp=" + strconv.FormatInt(now.UnixMicro()-5_000_001, 10), exchange.ErrTimestamp},
		{"negative", "timestamp=-" + strconv.FormatInt(ms, 10), exchange.ErrBadRequest},
		{"too long", "timestamp=1" + strconv.FormatInt(now.UnixMicro(), 10), exchange.ErrBadRequest},
		{"missing", "symbol=BTCUSDT", exchange.ErrAuth},
		{"twice", "timestamp=" + strconv.FormatInt(ms, 10) + "&timestamp=" + strconv.FormatInt(ms, 10), exchange.ErrBadRequest},
	}
	v := Spot(nil).Verifier
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &exchange.Request{Method: "GET", Path: "/api/v3/account", Header: http.Header{"X-Mbx-Apikey": {"k"}}, RawQuery: signedQuery(t, key, tt.query)}
			_, err := v.Verify(r, key, now)
			switch {
			case tt.kind == 0 && err != nil:
				t.Errorf("Verify(%q) = %v, want nil", tt.query, err)
			case tt.kind != 0 && (err == nil || exchange.AsError(err).Kind != tt.kind):
				t.Errorf("Verify(%q) = %v, want kind %v", tt.query, err, tt.kind)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := hmacCred("k", "s")
	now := time.UnixMilli(1_700_000_000_000)
	good := signedQuery(t, key, "symbol=BTCUSDT&timestamp=1700000000000")
	hdr := http.Header{"X-Mbx-Apikey": {"k"}}
	tests := []struct {
		name string
		req  exchange.Request
		cred *exchange.Credential
		kind exchange.ErrorKind
	}{
		{"wrong client key", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {"other"}}, RawQuery: good}, key, exchange.ErrAuth},
		{"wrong secret", exchange.Request{Method: "GET", Header: hdr, RawQuery: good}, hmacCred("k", "t"), exchange.ErrAuth},
		{"two api key headers", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {"k", "k"}}, RawQuery: good}, key, exchange.ErrAuth},
		{"no api key header", exchange.Request{Method: "GET", Header: http.Header{}, RawQuery: good}, key, exchange.ErrAuth},
		{"signature in query and body", exchange.Request{Method: "POST", Header: hdr, RawQuery: good, Body: []byte("signature=00")}, key, exchange.ErrBadRequest},
		{"short hex", exchange.Request{Method: "GET", Header: hdr, RawQuery: good[:len(good)-2]}, key, exchange.ErrAuth},
		{"ed25519 credential with hmac signature", exchange.Request{Method: "GET", Header: hdr, RawQuery: good},
			&exchange.Credential{Kind: exchange.KeyEd25519, APIKey: "k"}, exchange.ErrAuth},
		{"nil credential", exchange.Request{Method: "GET", Header: hdr, RawQuery: good}, nil, exchange.ErrAuth},
		{"duplicate parameter", exchange.Request{Method: "GET", Header: hdr, RawQuery: signedQuery(t, key, "a=1&a=2&timestamp=1700000000000")}, key, exchange.ErrBadRequest},
		{"non-form body", exchange.Request{Method: "POST", Header: http.Header{"X-Mbx-Apikey": {"k"}, "Content-Type": {"application/json"}},
			Body: []byte(signedQuery(t, key, "timestamp=1700000000000"))}, key, exchange.ErrBadRequest},
	}
	v := Spot(nil).Verifier
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(&tt.req, tt.cred, now)
			if err == nil || exchange.AsError(err).Kind != tt.kind {
				t.Errorf("Verify() = %v, want kind %v", err, tt.kind)
			}
			if err != nil && strings.Contains(err.Error(), "s\"") {
				t.Errorf("Verify() error %q mentions the secret", err)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		name    string
		req     exchange.Request
		want    string
		wantErr bool
	}{
		{"public", exchange.Request{Method: "GET", RawQuery: "symbol=BTCUSDT"}, "", false},
		{"key", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {"abc"}}, RawQuery: "timestamp=1&signature=ab"}, "abc", false},
		{"key, signature in body", exchange.Request{Method: "POST", Header: http.Header{"X-Mbx-Apikey": {"abc"}}, Body: []byte("timestamp=1&signature=ab")}, "abc", false},
		{"non-canonical header name", exchange.Request{Method: "GET", Header: http.Header{"X-MBX-APIKEY": {"abc"}}, RawQuery: "signature=ab"}, "abc", false},
		{"key-only call is public", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {"abc"}}, RawQuery: "symbol=BTCUSDT"}, "", false},
		{"signature without key", exchange.Request{Method: "GET", RawQuery: "timestamp=1&signature=ab"}, "", true},
		{"encoded signature name without key", exchange.Request{Method: "POST", Body: []byte("sig%6Eature=ab")}, "", true},
		{"key with space", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {"a b"}}}, "", true},
		{"empty key", exchange.Request{Method: "GET", Header: http.Header{"X-Mbx-Apikey": {""}}}, "", true},
	}
	v := Spot(nil).Verifier
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.ClientKey(&tt.req)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ClientKey() = %q, %v, want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestVerifyKeepsBytes checks that Verify keeps the rest of the raw bytes
// and their order, including odd encodings, and does not modify its input.
func TestVerifyKeepsBytes(t *testing.T) {
	key := hmacCred("k", "s")
	now := time.UnixMilli(1_700_000_000_000)
	q := "b=%7E1&timestamp=1700000000000&a=x+y&recvWindow=1000&c=%E2%82%AC"
	r := &exchange.Request{Method: "GET", Path: "/api/v3/openOrders", Header: http.Header{"X-Mbx-Apikey": {"k"}, "User-Agent": {"bot"}}, RawQuery: signedQuery(t, key, q)}
	orig := r.Clone()
	got, err := Spot(nil).Verifier.Verify(r, key, now)
	if err != nil {
		t.Fatal(err)
	}
	want := &exchange.Request{Method: "GET", Path: "/api/v3/openOrders", Header: http.Header{"User-Agent": {"bot"}}, RawQuery: "b=%7E1&a=x+y&c=%E2%82%AC"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(orig, r); diff != "" {
		t.Errorf("Verify() modified its input (-before +after):\n%s", diff)
	}
}

func BenchmarkVerify(b *testing.B) {
	key := hmacCred(docSpotKey, docSpotSecret)
	now := time.UnixMilli(1_700_000_000_000)
	r := &exchange.Request{Method: "POST", Path: "/api/v3/order", Header: http.Header{},
		Body: []byte("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100000&price=50000.00&newClientOrderId=6gCrw2kRUAF9CvJDGP16IP")}
	v := Spot(nil)
	if err := v.Signer.Sign(r, key, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verifier.Verify(r, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeyOnlyUserStream: listen-key calls (USER_STREAM) authenticate by the
// API key alone, as at Binance; they are re-sent with the exchange key's id
// only, never signed; any other unsigned call stays public.
func TestKeyOnlyUserStream(t *testing.T) {
	client := hmacCred("client-key-0123456789", "client-secret")
	exch := hmacCred("exchange-key-0123456789", "exchange-secret")
	for _, v := range []exchange.Venue{Spot(nil), USDM(nil)} {
		path := "/api/v3/userDataStream"
		if v.Name == USDMName {
			path = "/fapi/v1/listenKey"
		}
		r := &exchange.Request{Method: "PUT", Path: path, RawQuery: "listenKey=abc", Header: http.Header{"X-Mbx-Apikey": {client.APIKey}}}
		if k, err := v.Verifier.ClientKey(r); err != nil || k != client.APIKey {
			t.Fatalf("%s ClientKey = %q, %v; want the client key", v.Name, k, err)
		}
		if _, err := v.Verifier.Verify(r, hmacCred("another-key-0123456789", "x"), time.Now()); err == nil {
			t.Errorf("%s Verify with another credential = nil error", v.Name)
		}
		out, err := v.Verifier.Verify(r, client, time.Now())
		if err != nil {
			t.Fatalf("%s Verify = %v", v.Name, err)
		}
		if out.Header.Get("X-Mbx-Apikey") != "" || out.RawQuery != "listenKey=abc" {
			t.Errorf("%s Verify = %+v, want the key header removed and the query kept", v.Name, out)
		}
		if err := v.Signer.Sign(out, exch, time.Now()); err != nil {
			t.Fatal(err)
		}
		if out.Header.Get("X-Mbx-Apikey") != exch.APIKey || out.RawQuery != "listenKey=abc" || len(out.Body) != 0 {
			t.Errorf("%s Sign = %+v, want the exchange key id and nothing signed", v.Name, out)
		}
		// A bot that signs the call anyway is verified as a signed call.
		signed := &exchange.Request{Method: "POST", Path: path, RawQuery: "timestamp=1&signature=00",
			Header: http.Header{"X-Mbx-Apikey": {client.APIKey}}}
		if k, ok := v.Verifier.(interface{ KeyOnly(*exchange.Request) bool }); !ok || k.KeyOnly(signed) || !k.KeyOnly(r) {
			t.Errorf("%s: KeyOnly must hold for the unsigned call only", v.Name)
		}
	}
	// Elsewhere an unsigned call with a key header is public.
	r := &exchange.Request{Method: "GET", Path: "/api/v3/account", Header: http.Header{"X-Mbx-Apikey": {client.APIKey}}}
	if k, err := Spot(nil).Verifier.ClientKey(r); err != nil || k != "" {
		t.Errorf("unsigned /api/v3/account ClientKey = %q, %v; want public", k, err)
	}
}
