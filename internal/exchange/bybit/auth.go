package bybit

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canonical header names (http.CanonicalHeaderKey of X-BAPI-*).
const (
	hdrKey        = "X-Bapi-Api-Key"
	hdrSign       = "X-Bapi-Sign"
	hdrTimestamp  = "X-Bapi-Timestamp"
	hdrRecvWindow = "X-Bapi-Recv-Window"
	hdrSignType   = "X-Bapi-Sign-Type"
)

// authHeaders are every header carrying a bot's Bybit auth material.
var authHeaders = [...]string{hdrKey, hdrSign, hdrTimestamp, hdrRecvWindow, hdrSignType}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 64 << 10

// payload returns what Bybit signs after the timestamp, key and window: the
// raw query for GET, the body bytes otherwise.
func payload(r *exchange.Request) []byte {
	if r.Method == http.MethodGet {
		return []byte(r.RawQuery)
	}
	return r.Body
}

// appendPrehash appends Bybit's string to sign to dst: timestamp + apiKey +
// recvWindow + payload.
func appendPrehash(dst []byte, ts, key, recv string, payload []byte) []byte {
	dst = append(dst, ts...)
	dst = append(dst, key...)
	dst = append(dst, recv...)
	return append(dst, payload...)
}

// hmacSignature returns hex(HMAC-SHA256(secret, prehash)) appended to dst.
// It computes HMAC (RFC 2104) over a pooled buffer holding the inner pad and
// the prehash, so signing does not allocate in the steady state; the buffer
// is cleared before it goes back to the pool.
func hmacSignature(dst, secret []byte, ts, key, recv string, payload []byte) []byte {
	var k [sha256.BlockSize]byte
	if len(secret) > sha256.BlockSize {
		sum := sha256.Sum256(secret)
		copy(k[:], sum[:])
	} else {
		copy(k[:], secret)
	}
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, c := range k {
		buf = append(buf, c^0x36)
	}
	buf = appendPrehash(buf, ts, key, recv, payload)
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], inner[:])
	sum := sha256.Sum256(outer[:])
	clear(buf)
	clear(k[:])
	clear(outer[:])
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return hex.AppendEncode(dst, sum[:])
}

// digest returns SHA-256 of the prehash, which RSA keys sign.
func digest(ts, key, recv string, payload []byte) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	buf := appendPrehash((*bp)[:0], ts, key, recv, payload)
	sum := sha256.Sum256(buf)
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return sum
}

// signer signs outbound requests with a Bybit key. It keeps nothing of the
// key and is safe for concurrent use.
type signer struct{}

// Sign sets the X-BAPI-* headers on r for key at time now, signing the raw
// query (GET) or body (POST) exactly as sent.
func (signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.APIKey == "" {
		return exchange.Errorf(exchange.ErrAuth, "bybit sign: no key")
	}
	switch key.Kind {
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return exchange.Errorf(exchange.ErrAuth, "bybit sign: hmac key without a secret")
		}
	case exchange.KeyRSA:
		if key.PrivateKey == nil {
			return exchange.Errorf(exchange.ErrAuth, "bybit sign: rsa key without a private key")
		}
		if _, ok := key.PrivateKey.Public().(*rsa.PublicKey); !ok {
			return exchange.Errorf(exchange.ErrAuth, "bybit sign: rsa key is not rsa")
		}
	default:
		return exchange.Errorf(exchange.ErrAuth, "bybit sign: unsupported key kind %q", key.Kind)
	}
	const recv = "5000" // RecvWindow
	// What is signed: the raw query (GET) or body, the query copied into
	// the request's scratch rather than converted.
	p := r.Body
	if r.Method == http.MethodGet {
		p = append(r.SignBuf(len(r.RawQuery)), r.RawQuery...)
	}
	// One string holds timestamp and signature, in the request's scratch
	// when it has one.
	tsb := strconv.AppendInt(r.SignBuf(20+512), now.UnixMilli(), 10)
	n := len(tsb)
	ts := string(tsb)
	var sig []byte
	if key.Kind == exchange.KeyHMAC {
		sig = hmacSignature(tsb, key.Secret, ts, key.APIKey, recv, p)
	} else {
		d := digest(ts, key.APIKey, recv, p)
		raw, err := key.PrivateKey.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return exchange.Errorf(exchange.ErrAuth, "bybit sign: rsa signature failed")
		}
		sig = base64.StdEncoding.AppendEncode(tsb, raw)
	}
	both := r.SignString(sig)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	delete(r.Header, hdrSignType)
	r.SetSignedHeader(hdrKey, key.APIKey)
	r.SetSignedHeader(hdrSign, both[n:])
	r.SetSignedHeader(hdrTimestamp, both[:n])
	r.SetSignedHeader(hdrRecvWindow, recv)
	if len(r.Body) > 0 {
		r.SetSignedHeader("Content-Type", "application/json")
	}
	return nil
}

// verifier checks a bot's Bybit-signed request against a keywarden client
// credential: an HMAC secret, or the public half of an RSA key. It is safe
// for concurrent use.
type verifier struct{}

// ClientKey returns the X-BAPI-API-KEY of r, or "" when r carries no auth.
func (verifier) ClientKey(r *exchange.Request) (string, error) {
	key, ok, err := exchange.SingleHeader(r.Header, hdrKey)
	if err != nil {
		return "", err
	}
	if !ok {
		for _, name := range authHeaders[1:] {
			if _, present := r.Header[name]; present {
				return "", exchange.Errorf(exchange.ErrAuth, "api_key not found in your request parameters")
			}
		}
		// Bybit's legacy scheme signs in the query (api_key, sign); it is
		// not supported, and such a request is not a public call either.
		if ps, err := exchange.ParseQuery(r.RawQuery); err == nil && (ps.Has("api_key") || ps.Has("sign")) {
			return "", exchange.Errorf(exchange.ErrAuth, "query-string signing (api_key, sign) is not supported; use X-BAPI headers")
		}
		return "", nil
	}
	if !exchange.ValidKeyID(key) {
		return "", exchange.Errorf(exchange.ErrAuth, "API key is invalid.")
	}
	return key, nil
}

// Verify checks r's Bybit signature and receive window against client and
// returns a copy of r without the X-BAPI-* auth headers.
func (v verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, "api_key not found in your request parameters")
	}
	if client == nil || subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "API key is invalid.")
	}
	// Bybit signs the query of a GET and the body of anything else; the
	// other part would travel unsigned, so it must be empty.
	if r.Method == http.MethodGet && len(r.Body) > 0 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "GET request with a body")
	}
	if r.Method != http.MethodGet && r.RawQuery != "" {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "query parameters on a %s request are not signed", exchange.SafeName(r.Method))
	}
	if err := check(r, client, now); err != nil {
		return nil, err
	}
	out := r.Clone()
	for _, name := range authHeaders {
		delete(out.Header, name)
	}
	return out, nil
}

// check verifies r's signature with cred and its timestamp against now, as
// Bybit does: now - recvWindow <= timestamp < now + 1 s. The simulator
// shares it with the verifier.
func check(r *exchange.Request, cred *exchange.Credential, now time.Time) error {
	sig, ok, err := exchange.SingleHeader(r.Header, hdrSign)
	if err != nil {
		return err
	}
	if !ok || sig == "" {
		return exchange.Errorf(exchange.ErrAuth, "error sign! missing X-BAPI-SIGN")
	}
	ts, ok, err := exchange.SingleHeader(r.Header, hdrTimestamp)
	if err != nil {
		return err
	}
	if !ok {
		return exchange.Errorf(exchange.ErrTimestamp, "invalid request, please check your timestamp")
	}
	recv, present, err := exchange.SingleHeader(r.Header, hdrRecvWindow)
	if err != nil {
		return err
	}
	window := int64(RecvWindow)
	if present {
		w, err := digits(recv)
		if err != nil || w <= 0 || w > MaxRecvWindow {
			return exchange.Errorf(exchange.ErrTimestamp, "invalid recv_window")
		}
		window = w
	}
	ms, err := digits(ts)
	if err != nil {
		return exchange.Errorf(exchange.ErrTimestamp, "invalid request, please check your timestamp")
	}
	nowMs := now.UnixMilli()
	if ms < nowMs-window || ms >= nowMs+Future.Milliseconds() {
		return exchange.Errorf(exchange.ErrTimestamp,
			"invalid request, please check your server timestamp or recv_window param")
	}
	if !verifySignature(cred, sig, ts, cred.APIKey, recv, payload(r)) {
		return exchange.Errorf(exchange.ErrAuth, "error sign! origin_string mismatch")
	}
	return nil
}

func verifySignature(cred *exchange.Credential, sig, ts, key, recv string, payload []byte) bool {
	switch cred.Kind {
	case exchange.KeyHMAC:
		if len(cred.Secret) == 0 {
			return false
		}
		var b [64]byte
		want := hmacSignature(b[:0], cred.Secret, ts, key, recv, payload)
		return hmac.Equal([]byte(sig), want)
	case exchange.KeyRSA:
		pub, ok := cred.PublicKey.(*rsa.PublicKey)
		if !ok || len(sig) > 2048 {
			return false
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			return false
		}
		d := digest(ts, key, recv, payload)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], raw) == nil
	}
	return false
}

// digits parses a non-negative integer of plain ASCII digits.
func digits(s string) (int64, error) {
	if len(s) == 0 || len(s) > 16 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
