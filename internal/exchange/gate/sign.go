package gate

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Header names in canonical MIME form.
const (
	hdrKey       = "Key"
	hdrSign      = "Sign"
	hdrTimestamp = "Timestamp"
	hdrContent   = "Content-Type"
)

// authHeaders are the headers that carry a bot's Gate auth material.
var authHeaders = []string{hdrKey, hdrSign, hdrTimestamp}

// window is how far Timestamp may be from the server clock (spec §10a).
const window = 60 * time.Second

// emptyBodyHash is hex(SHA-512("")), the body hash of requests without one
// (spec §10a).
const emptyBodyHash = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

// signer signs Gate APIv4 requests (spec §10a).
type signer struct{}

var _ exchange.Signer = signer{}

// Sign sets KEY, Timestamp (seconds) and SIGN =
// hex(HMAC-SHA512(secret, METHOD\npath\nquery\nhex(SHA512(body))\nts)) on r.
// The path includes /api/v4; the query is signed without URL-encoding.
func (signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.APIKey == "" || len(key.Secret) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "gate: sign: incomplete credential")
	}
	q, err := exchange.UnescapedQuery(r.RawQuery)
	if err != nil {
		return err
	}
	// One string holds timestamp and signature, in the request's scratch
	// when it has one.
	buf := strconv.AppendInt(r.SignBuf(20+2*sha512.Size), now.Unix(), 10)
	n := len(buf)
	m := exchange.NewHMACSHA512()
	writePayload(m, r.Method, r.Path, q, r.Body, buf)
	buf = hex.AppendEncode(buf, m.Sum(key.Secret))
	m.Release()
	both := r.SignString(buf)
	if r.Header == nil {
		r.Header = make(map[string][]string, 4)
	}
	r.SetSignedHeader(hdrKey, key.APIKey)
	r.SetSignedHeader(hdrTimestamp, both[:n])
	r.SetSignedHeader(hdrSign, both[n:])
	if len(r.Body) > 0 {
		r.SetSignedHeader(hdrContent, "application/json")
	}
	return nil
}

// writePayload writes the signature string into m.
func writePayload(m *exchange.MAC, method, path, query string, body, ts []byte) {
	var buf [512]byte
	m.Write(appendPayload(buf[:0], method, path, query, body, ts))
}

// appendPayload appends the signature string to b.
func appendPayload(b []byte, method, path, query string, body, ts []byte) []byte {
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, path...)
	b = append(b, '\n')
	b = append(b, query...)
	b = append(b, '\n')
	if len(body) == 0 {
		b = append(b, emptyBodyHash...)
	} else {
		bh := sha512.Sum512(body)
		b = hex.AppendEncode(b, bh[:])
	}
	b = append(b, '\n')
	return append(b, ts...)
}

// mac returns the hex SIGN for the verifier and the simulator.
func mac(secret []byte, method, path, query string, body []byte, ts string) string {
	m := exchange.NewHMACSHA512()
	defer m.Release()
	writePayload(m, method, path, query, body, []byte(ts))
	return hex.EncodeToString(m.Sum(secret))
}

// verifier checks a bot's Gate-style request against its client credential.
type verifier struct{}

var _ exchange.Verifier = verifier{}

const msgMissingHeader = "Missing required header: KEY, SIGN or Timestamp"

// ClientKey returns the KEY header. A request with none of the Gate auth
// headers is a public call.
func (verifier) ClientKey(r *exchange.Request) (string, error) {
	key, err := single(r, hdrKey)
	if err != nil {
		return "", err
	}
	if key == "" {
		if len(r.Header[hdrSign]) > 0 || len(r.Header[hdrTimestamp]) > 0 {
			return "", exchange.Errorf(exchange.ErrAuth, msgMissingHeader)
		}
		return "", nil
	}
	if len(key) > 128 || !printable(key) {
		return "", exchange.Errorf(exchange.ErrAuth, "Invalid key provided")
	}
	return key, nil
}

// Verify checks KEY, the 60-second Timestamp window and SIGN, and returns a
// copy of r without them.
func (v verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	if client == nil || len(client.Secret) == 0 {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid key provided")
	}
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	sig, err := single(r, hdrSign)
	if err != nil {
		return nil, err
	}
	ts, err := single(r, hdrTimestamp)
	if err != nil {
		return nil, err
	}
	if key == "" || sig == "" || ts == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, msgMissingHeader)
	}
	if !hmac.Equal([]byte(key), []byte(client.APIKey)) {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid key provided")
	}
	if err := checkTimestamp(ts, now); err != nil {
		return nil, err
	}
	if !checkSignature(r, client.Secret, ts, sig, true) {
		return nil, exchange.Errorf(exchange.ErrAuth, "Signature mismatch")
	}
	out := r.Clone()
	for _, h := range authHeaders {
		out.Header.Del(h)
	}
	return out, nil
}

// checkSignature compares sig with the MAC over the decoded query (Gate's
// documented rule); when lenient, one over the query as sent is accepted
// too, for clients that sign the wire bytes.
func checkSignature(r *exchange.Request, secret []byte, ts, sig string, lenient bool) bool {
	q, err := exchange.UnescapedQuery(r.RawQuery)
	if err != nil {
		q = r.RawQuery
	}
	ok := hmac.Equal([]byte(sig), []byte(mac(secret, r.Method, r.Path, q, r.Body, ts)))
	if !ok && lenient && q != r.RawQuery {
		ok = hmac.Equal([]byte(sig), []byte(mac(secret, r.Method, r.Path, r.RawQuery, r.Body, ts)))
	}
	return ok
}

// checkTimestamp accepts Unix seconds, with an optional fraction (Gate's
// own SDKs send time.time()), within the window of now.
func checkTimestamp(ts string, now time.Time) error {
	if !exchange.PlainDecimal(ts, false) || len(ts) > 24 {
		return exchange.Errorf(exchange.ErrTimestamp, "Request timestamp is invalid")
	}
	sec, err := strconv.ParseFloat(ts, 64)
	if err != nil || math.IsInf(sec, 0) {
		return exchange.Errorf(exchange.ErrTimestamp, "Request timestamp is invalid")
	}
	d := float64(now.UnixNano())/1e9 - sec
	if d > window.Seconds() || d < -window.Seconds() {
		return exchange.Errorf(exchange.ErrTimestamp, "Request timestamp far from server time")
	}
	return nil
}

// single returns the only value of header h, "" when absent; a repeated
// header is rejected.
func single(r *exchange.Request, h string) (string, error) {
	vs := r.Header.Values(h)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", exchange.Errorf(exchange.ErrAuth, "header %s given more than once", h)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
