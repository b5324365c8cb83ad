package coinbase

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
		r.Header.Del(h)
	}
	r.Header.Set("Content-Type", "application/json")
	switch key.Kind {
	case exchange.KeyEd25519, exchange.KeyECDSA:
		if key.PrivateKey == nil {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: need a private key")
		}
		nonce, err := newNonce(s.rand)
		if err != nil {
			return exchange.Errorf(exchange.ErrUnavailable, "coinbase: sign: nonce: %v", err)
		}
		alg := algFor(key.Kind)
		input := buildJWT(s.style, alg, key.APIKey, nonce, r.Method+" "+s.host+r.Path, now.Unix())
		tok, err := signJWT(input, alg, key.PrivateKey)
		if err != nil {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: %v", err)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: need a secret")
		}
		ts := strconv.FormatInt(now.Unix(), 10)
		r.Header.Set("CB-ACCESS-KEY", key.APIKey)
		r.Header.Set("CB-ACCESS-TIMESTAMP", ts)
		r.Header.Set("CB-ACCESS-SIGN", hex.EncodeToString(legacyMAC(key.Secret, ts, r)))
		return nil
	}
	return exchange.Errorf(exchange.ErrAuth, "coinbase: sign: unsupported key kind")
}

// authHeaders are every header that carries Coinbase auth material.
var authHeaders = []string{"Authorization", "CB-ACCESS-KEY", "CB-ACCESS-SIGN", "CB-ACCESS-TIMESTAMP", "CB-ACCESS-PASSPHRASE"}

// legacyMAC is HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)
// (spec §3.2). requestPath carries the query for v2 paths only, as ccxt and
// the v2 docs sign it.
func legacyMAC(secret []byte, ts string, r *exchange.Request) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte(r.Method))
	m.Write([]byte(r.Path))
	if r.RawQuery != "" && strings.HasPrefix(r.Path, "/v2/") {
		m.Write([]byte{'?'})
		m.Write([]byte(r.RawQuery))
	}
	m.Write(r.Body)
	return m.Sum(make([]byte, 0, sha256.Size))
}
