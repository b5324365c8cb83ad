package coinbase

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Signer authenticates outbound Coinbase requests. CDP keys (Ed25519 or EC
// P-256) get a fresh JWT per request, bound to "<METHOD> <host><path>" and
// valid for 120 s (spec §3.1); legacy HMAC keys get CB-ACCESS-* headers
// (spec §3.2). The Signer keeps no key material and is safe for concurrent
// use.
type Signer struct {
	host  string    // upstream host and path prefix, as it goes in the uri claim
	rand  io.Reader // JWT nonces; crypto/rand unless a test fixes it
	style claimStyle
}

// NewSigner returns a Signer for requests sent to upstream.
func NewSigner(upstream *url.URL) *Signer {
	return &Signer{host: upstream.Host + strings.TrimSuffix(upstream.EscapedPath(), "/"), rand: rand.Reader}
}

// Sign replaces any auth headers on r with ones made from key at now.
func (s *Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.APIKey == "" {
		return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: need a key")
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	for _, h := range authHeaders {
		delete(r.Header, h)
	}
	r.SetSignedHeader("Content-Type", "application/json")
	switch key.Kind {
	case exchange.KeyEd25519, exchange.KeyECDSA:
		if key.PrivateKey == nil {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: need a private key")
		}
		// Nonce, uri claim, header, claims and token go into the request's
		// scratch when it has one.
		nb := r.SignBuf(16)[:16]
		if _, err := io.ReadFull(s.rand, nb); err != nil {
			return exchange.Errorf(exchange.ErrUnavailable, "coinbase: sign: nonce: %v", err)
		}
		nonce := r.SignString(hex.AppendEncode(r.SignBuf(32), nb))
		clear(nb)
		uri := r.SignBuf(len(r.Method) + 1 + len(s.host) + len(r.Path))
		uri = append(append(append(append(uri, r.Method...), ' '), s.host...), r.Path...)
		alg := algFor(key.Kind)
		// Room for header and claims without escapes (a longer one moves
		// to the heap), and for the token with its 64-byte signature.
		claims := 2*len(key.APIKey) + len(uri) + 320
		tmp := r.SignBuf(claims)
		enc := base64.RawURLEncoding
		out := r.SignBuf(len("Bearer ") + enc.EncodedLen(claims) + 2 + enc.EncodedLen(64))
		out = append(out, "Bearer "...)
		out = appendJWT(out, tmp, s.style, alg, key.APIKey, nonce, r.SignString(uri), now.Unix())
		tok, err := appendJWTSignature(out, out[len("Bearer "):], alg, key.PrivateKey)
		if err != nil {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: %v", err)
		}
		r.SetSignedHeader("Authorization", r.SignString(tok))
		return nil
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: need a secret")
		}
		// Timestamp and signature go into the request's scratch.
		buf := strconv.AppendInt(r.SignBuf(20+2*sha256.Size), now.Unix(), 10)
		n := len(buf)
		m := exchange.NewHMACSHA256()
		writeLegacy(m, buf, r)
		buf = hex.AppendEncode(buf, m.Sum(key.Secret))
		m.Release()
		both := r.SignString(buf)
		r.SetSignedHeader("Cb-Access-Key", key.APIKey)
		r.SetSignedHeader("Cb-Access-Timestamp", both[:n])
		r.SetSignedHeader("Cb-Access-Sign", both[n:])
		return nil
	}
	return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: unsupported key kind")
}

// authHeaders are every header that carries Coinbase auth material.
// In canonical form, so deleting them builds no string.
var authHeaders = []string{"Authorization", "Cb-Access-Key", "Cb-Access-Sign", "Cb-Access-Timestamp", "Cb-Access-Passphrase"}

// legacyMAC is HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)
// (spec §3.2). requestPath carries the query for v2 paths only, as ccxt and
// the v2 docs sign it.
func legacyMAC(secret []byte, ts string, r *exchange.Request) []byte {
	m := exchange.NewHMACSHA256()
	defer m.Release()
	writeLegacy(m, []byte(ts), r)
	return append([]byte(nil), m.Sum(secret)...)
}

// writeLegacy writes legacyMAC's message into m.
func writeLegacy(m *exchange.MAC, ts []byte, r *exchange.Request) {
	m.Write(ts)
	m.WriteString(r.Method)
	m.WriteString(r.Path)
	if r.RawQuery != "" && strings.HasPrefix(r.Path, "/v2/") {
		m.WriteByte('?')
		m.WriteString(r.RawQuery)
	}
	m.Write(r.Body)
}
