package bitget

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Canonical header names (http.CanonicalHeaderKey of ACCESS-*).
const (
	hdrKey        = "Access-Key"
	hdrSign       = "Access-Sign"
	hdrTimestamp  = "Access-Timestamp"
	hdrPassphrase = "Access-Passphrase"
)

// authHeaders are every header carrying a bot's Bitget auth material.
var authHeaders = [...]string{hdrKey, hdrSign, hdrTimestamp, hdrPassphrase}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 64 << 10

// appendPrehash appends Bitget's string to sign to dst: timestamp + METHOD +
// requestPath, + "?" + query when there is one, + the body bytes.
func appendPrehash(dst []byte, ts, method, path, query string, body []byte) []byte {
	dst = append(dst, ts...)
	dst = append(dst, method...)
	dst = append(dst, path...)
	if query != "" {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return append(dst, body...)
}

// hmacSignature returns base64(HMAC-SHA256(secret, prehash)) appended to
// dst. It computes HMAC (RFC 2104) over a pooled buffer holding the inner
// pad and the prehash, so signing does not allocate in the steady state; the
// buffer is cleared before it goes back to the pool.
func hmacSignature(dst, secret []byte, ts, method, path, query string, body []byte) []byte {
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
	buf = appendPrehash(buf, ts, method, path, query, body)
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

// digest returns SHA-256 of the prehash, which RSA keys sign.
func digest(ts, method, path, query string, body []byte) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	buf := appendPrehash((*bp)[:0], ts, method, path, query, body)
	sum := sha256.Sum256(buf)
	if cap(buf) <= maxPooled {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return sum
}

// sortQuery returns raw with its parameters in ascending order of decoded
// name, each kept byte for byte. Bitget's Chinese docs require sorted
// queries and its English docs accept them (spec §18).
func sortQuery(raw string) string {
	if raw == "" || !strings.Contains(raw, "&") || sortedPlain(raw) {
		return raw
	}
	parts := strings.Split(raw, "&")
	name := func(p string) string {
		n, _, _ := strings.Cut(p, "=")
		if d, err := url.QueryUnescape(n); err == nil {
			return d
		}
		return n
	}
	slices.SortStableFunc(parts, func(a, b string) int { return strings.Compare(name(a), name(b)) })
	return strings.Join(parts, "&")
}

// sortedPlain says raw has no escapes (its names are their own decoded
// form) and its names are already in ascending order, so sortQuery would
// return it unchanged.
func sortedPlain(raw string) bool {
	if strings.ContainsAny(raw, "%+") {
		return false
	}
	prev, rest := "", raw
	for i := 0; ; i++ {
		part, more, found := strings.Cut(rest, "&")
		n, _, _ := strings.Cut(part, "=")
		if i > 0 && n < prev {
			return false
		}
		if !found {
			return true
		}
		prev, rest = n, more
	}
}

// appendDecodedQuery appends decodeQuery's form of raw to dst, without
// allocating when raw holds no escapes and at most 32 parameters.
func appendDecodedQuery(dst []byte, raw string) ([]byte, error) {
	var arr [32]exchange.Param
	ps, err := exchange.AppendQuery(arr[:0], raw)
	if err != nil {
		return dst, err
	}
	for i, p := range ps {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.Name...)
		dst = append(dst, '=')
		dst = append(dst, p.Value...)
	}
	return dst, nil
}

// decodeQuery returns raw with every name and value percent-decoded, which
// is what Bitget and ccxt sign, and whether that form is unambiguous: no
// decoded name holds '&' or '=' and no decoded value holds '&', so it reads
// back as the same parameters.
func decodeQuery(raw string) (string, bool, error) {
	ps, err := exchange.ParseQuery(raw)
	if err != nil {
		return "", false, err
	}
	var b strings.Builder
	b.Grow(len(raw))
	clean := true
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		if strings.ContainsAny(p.Name, "&=") || strings.Contains(p.Value, "&") {
			clean = false
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		b.WriteString(p.Value)
	}
	return b.String(), clean, nil
}

// signer signs outbound requests with a Bitget key. It keeps nothing of the
// key and is safe for concurrent use.
type signer struct {
	demo bool
}

// Sign sorts r's query, then sets the ACCESS-* headers for key at time now,
// signing the decoded query and the body exactly as sent.
func (s signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.APIKey == "" {
		return exchange.Errorf(exchange.ErrAuth, "bitget sign: no key")
	}
	switch key.Kind {
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return exchange.Errorf(exchange.ErrAuth, "bitget sign: hmac key without a secret")
		}
	case exchange.KeyRSA:
		if key.PrivateKey == nil {
			return exchange.Errorf(exchange.ErrAuth, "bitget sign: rsa key without a private key")
		}
		if _, ok := key.PrivateKey.Public().(*rsa.PublicKey); !ok {
			return exchange.Errorf(exchange.ErrAuth, "bitget sign: rsa key is not rsa")
		}
	default:
		return exchange.Errorf(exchange.ErrAuth, "bitget sign: unsupported key kind %q", key.Kind)
	}
	if len(key.Passphrase) == 0 {
		return exchange.Errorf(exchange.ErrPassphrase, "bitget sign: key has no passphrase")
	}
	query := ""
	if r.RawQuery != "" {
		r.RawQuery = sortQuery(r.RawQuery)
		q, err := appendDecodedQuery(r.SignBuf(len(r.RawQuery)+8), r.RawQuery)
		if err != nil {
			return err
		}
		query = r.SignString(q)
	}
	// One string holds timestamp, signature and passphrase, in the
	// request's scratch when it has one.
	buf := r.SignBuf(20 + 512 + len(key.Passphrase))
	tsb := strconv.AppendInt(buf, now.UnixMilli(), 10)
	n := len(tsb)
	ts := string(tsb)
	var sig []byte
	if key.Kind == exchange.KeyHMAC {
		sig = hmacSignature(tsb, key.Secret, ts, r.Method, r.Path, query, r.Body)
	} else {
		d := digest(ts, r.Method, r.Path, query, r.Body)
		raw, err := key.PrivateKey.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return exchange.Errorf(exchange.ErrAuth, "bitget sign: rsa signature failed")
		}
		sig = base64.StdEncoding.AppendEncode(tsb, raw)
	}
	m := len(sig)
	sig = append(sig, key.Passphrase...)
	all := r.SignString(sig)
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

// verifier checks a bot's Bitget-signed request against a keywarden client
// credential: an HMAC secret, or the public half of an RSA key. It is safe
// for concurrent use.
type verifier struct{}

// ClientKey returns the ACCESS-KEY of r, or "" when r carries no auth.
func (verifier) ClientKey(r *exchange.Request) (string, error) {
	key, ok, err := exchange.SingleHeader(r.Header, hdrKey)
	if err != nil {
		return "", err
	}
	if !ok {
		for _, name := range authHeaders[1:] {
			if _, present := r.Header[name]; present {
				return "", exchange.Errorf(exchange.ErrAuth, "ACCESS_KEY cannot be empty")
			}
		}
		return "", nil
	}
	if !exchange.ValidKeyID(key) {
		return "", exchange.Errorf(exchange.ErrAuth, "Invalid ACCESS_KEY")
	}
	return key, nil
}

// Verify checks r's Bitget signature, timestamp window and passphrase
// against client and returns a copy of r without the ACCESS-* headers.
func (v verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, "ACCESS_KEY cannot be empty")
	}
	if client == nil || subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid ACCESS_KEY")
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

// check verifies r's signature with cred, its timestamp against now and its
// passphrase, as Bitget does. The simulator shares it with the verifier.
func check(r *exchange.Request, cred *exchange.Credential, now time.Time) error {
	sig, ok, err := exchange.SingleHeader(r.Header, hdrSign)
	if err != nil {
		return err
	}
	if !ok || sig == "" {
		return exchange.Errorf(exchange.ErrAuth, "Signature cannot be empty")
	}
	ts, ok, err := exchange.SingleHeader(r.Header, hdrTimestamp)
	if err != nil {
		return err
	}
	if !ok || ts == "" {
		return exchange.Errorf(exchange.ErrTimestamp, "Invalid ACCESS_TIMESTAMP")
	}
	pass, ok, err := exchange.SingleHeader(r.Header, hdrPassphrase)
	if err != nil {
		return err
	}
	if !ok || pass == "" {
		return exchange.Errorf(exchange.ErrPassphrase, "ACCESS_PASSPHRASE cannot be empty")
	}
	ms, err := parseMillis(ts)
	if err != nil {
		return err
	}
	if d := now.Sub(time.UnixMilli(ms)); d > Window || d < -Window {
		return exchange.Errorf(exchange.ErrTimestamp, "Request timestamp expired")
	}
	// The signature covers the query as sent, or its decoded form (which
	// ccxt and Bitget use) when that reads back as the same parameters.
	forms := [2]string{r.RawQuery}
	if r.RawQuery != "" {
		if d, clean, err := decodeQuery(r.RawQuery); err == nil && clean && d != r.RawQuery {
			forms[1] = d
		}
	}
	valid := false
	for i, q := range forms {
		if i > 0 && q == "" {
			break
		}
		if verifySignature(cred, sig, ts, r.Method, r.Path, q, r.Body) {
			valid = true
			break
		}
	}
	if !valid {
		return exchange.Errorf(exchange.ErrAuth, "sign signature error")
	}
	if len(cred.Passphrase) == 0 || subtle.ConstantTimeCompare([]byte(pass), cred.Passphrase) != 1 {
		return exchange.Errorf(exchange.ErrPassphrase, "apikey/password is incorrect")
	}
	return nil
}

func verifySignature(cred *exchange.Credential, sig, ts, method, path, query string, body []byte) bool {
	switch cred.Kind {
	case exchange.KeyHMAC:
		if len(cred.Secret) == 0 {
			return false
		}
		var b [44]byte
		want := hmacSignature(b[:0], cred.Secret, ts, method, path, query, body)
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
		d := digest(ts, method, path, query, body)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], raw) == nil
	}
	return false
}

// parseMillis parses a millisecond timestamp of plain digits.
func parseMillis(ts string) (int64, error) {
	if len(ts) == 0 || len(ts) > 16 {
		return 0, exchange.Errorf(exchange.ErrTimestamp, "Invalid ACCESS_TIMESTAMP")
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return 0, exchange.Errorf(exchange.ErrTimestamp, "Invalid ACCESS_TIMESTAMP")
		}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, exchange.Errorf(exchange.ErrTimestamp, "Invalid ACCESS_TIMESTAMP")
	}
	return ms, nil
}
