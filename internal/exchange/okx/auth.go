package okx

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canonical header names (http.CanonicalHeaderKey of OK-ACCESS-*).
const (
	hdrKey        = "Ok-Access-Key"
	hdrSign       = "Ok-Access-Sign"
	hdrTimestamp  = "Ok-Access-Timestamp"
	hdrPassphrase = "Ok-Access-Passphrase"
)

// authHeaders are every header carrying a bot's OKX auth material.
var authHeaders = [...]string{hdrKey, hdrSign, hdrTimestamp, hdrPassphrase}

// tsLayout is OKX's OK-ACCESS-TIMESTAMP format: ISO-8601, UTC, milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z"

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendPrehash appends OKX's string to sign to dst: timestamp + METHOD +
// requestPath, where requestPath carries "?" + the raw query when there is
// one, + the body bytes exactly as sent.
func appendPrehash(dst []byte, ts, method, path, rawQuery string, body []byte) []byte {
	dst = append(dst, ts...)
	dst = append(dst, method...)
	dst = append(dst, path...)
	if rawQuery != "" {
		dst = append(dst, '?')
		dst = append(dst, rawQuery...)
	}
	return append(dst, body...)
}

// signature returns base64(HMAC-SHA256(secret, prehash)) appended to dst.
// It computes HMAC (RFC 2104) over a pooled buffer holding the inner pad
// and the prehash, so signing does not allocate in the steady state; the
// buffer is cleared before it goes back to the pool.
func signature(dst, secret []byte, ts, method, path, rawQuery string, body []byte) []byte {
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
	buf = appendPrehash(buf, ts, method, path, rawQuery, body)
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
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 64 << 10

// signer signs outbound requests with an OKX key. It keeps nothing of the
// key and is safe for concurrent use.
type signer struct {
	demo bool
}

// Sign sets the OK-ACCESS-* headers on r for key at time now. It signs r's
// path, raw query and body exactly as they will be sent.
func (s signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.Kind != exchange.KeyHMAC || len(key.Secret) == 0 || key.APIKey == "" {
		return exchange.Errorf(exchange.ErrAuth, "okx sign: need an hmac key with a secret")
	}
	if len(key.Passphrase) == 0 {
		return exchange.Errorf(exchange.ErrPassphrase, "okx sign: key has no passphrase")
	}
	// One string holds timestamp, signature and passphrase, in the
	// request's scratch when it has one.
	buf := r.SignBuf(len(tsLayout) + 44 + len(key.Passphrase))
	tsb := now.UTC().AppendFormat(buf, tsLayout)
	n := len(tsb)
	buf = signature(tsb, key.Secret, string(tsb), r.Method, r.Path, r.RawQuery, r.Body)
	m := len(buf)
	buf = append(buf, key.Passphrase...)
	all := r.SignString(buf)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.SetSignedHeader(hdrKey, key.APIKey)
	r.SetSignedHeader(hdrSign, all[n:m])
	r.SetSignedHeader(hdrTimestamp, all[:n])
	r.SetSignedHeader(hdrPassphrase, all[m:])
	if len(r.Body) > 0 {
		r.SetSignedHeader("Content-Type", "application/json")
	}
	if s.demo {
		r.SetSignedHeader(DemoHeader, "1")
	}
	return nil
}

// verifier checks a bot's OKX-signed request against a keywarden client
// credential. It is safe for concurrent use.
type verifier struct{}

// ClientKey returns the OK-ACCESS-KEY of r, or "" when r carries no auth.
func (verifier) ClientKey(r *exchange.Request) (string, error) {
	key, ok, err := exchange.SingleHeader(r.Header, hdrKey)
	if err != nil {
		return "", err
	}
	if !ok {
		for _, name := range authHeaders[1:] {
			if _, present := r.Header[name]; present {
				return "", exchange.Errorf(exchange.ErrAuth, "request header OK-ACCESS-KEY can not be empty")
			}
		}
		return "", nil
	}
	if !exchange.ValidKeyID(key) {
		return "", exchange.Errorf(exchange.ErrAuth, "invalid OK-ACCESS-KEY")
	}
	return key, nil
}

// Verify checks r's OKX signature, timestamp window and passphrase against
// client and returns a copy of r without the OK-ACCESS-* headers.
func (v verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, "request header OK-ACCESS-KEY can not be empty")
	}
	if client == nil || client.Kind != exchange.KeyHMAC || len(client.Secret) == 0 ||
		subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid OK-ACCESS-KEY")
	}
	if err := check(r, client.Secret, client.Passphrase, now); err != nil {
		return nil, err
	}
	out := r.Clone()
	for _, name := range authHeaders {
		delete(out.Header, name)
	}
	return out, nil
}

// check verifies r's signature with secret, its timestamp against now and
// its passphrase, as OKX does. The simulator shares it with the verifier.
func check(r *exchange.Request, secret, passphrase []byte, now time.Time) error {
	sig, ok, err := exchange.SingleHeader(r.Header, hdrSign)
	if err != nil {
		return err
	}
	if !ok || sig == "" {
		return exchange.Errorf(exchange.ErrAuth, "request header OK-ACCESS-SIGN can not be empty")
	}
	ts, ok, err := exchange.SingleHeader(r.Header, hdrTimestamp)
	if err != nil {
		return err
	}
	if !ok || ts == "" {
		return exchange.Errorf(exchange.ErrAuth, "request header OK-ACCESS-TIMESTAMP can not be empty")
	}
	pass, ok, err := exchange.SingleHeader(r.Header, hdrPassphrase)
	if err != nil {
		return err
	}
	if !ok || pass == "" {
		return exchange.Errorf(exchange.ErrPassphrase, "request header OK-ACCESS-PASSPHRASE can not be empty")
	}
	t, err := parseTimestamp(ts)
	if err != nil {
		return err
	}
	if d := now.Sub(t); d > Window || d < -Window {
		return exchange.Errorf(exchange.ErrTimestamp, "timestamp request expired")
	}
	var sigb [44]byte
	want := signature(sigb[:0], secret, ts, r.Method, r.Path, r.RawQuery, r.Body)
	if !hmac.Equal([]byte(sig), want) {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	if len(passphrase) == 0 || subtle.ConstantTimeCompare([]byte(pass), passphrase) != 1 {
		return exchange.Errorf(exchange.ErrPassphrase, "request header OK-ACCESS-PASSPHRASE incorrect")
	}
	return nil
}

// parseTimestamp parses an OK-ACCESS-TIMESTAMP strictly.
func parseTimestamp(ts string) (time.Time, error) {
	if len(ts) != len(tsLayout) {
		return time.Time{}, exchange.Errorf(exchange.ErrTimestamp, "invalid OK-ACCESS-TIMESTAMP")
	}
	t, err := time.Parse(tsLayout, ts)
	if err != nil {
		return time.Time{}, exchange.Errorf(exchange.ErrTimestamp, "invalid OK-ACCESS-TIMESTAMP")
	}
	return t, nil
}
