// Package bitmex is keywarden's BitMEX REST API v1 venue: requests are
// authenticated with the api-key, api-expires and api-signature headers,
// hex(HMAC-SHA256(secret, VERB + path?query + expires + body))
// (spec/exchanges.md §12).
//
// The signer sets a short expiry itself; the verifier checks a bot's
// headers against its keywarden client credential, accepts only expiries
// in the near future (and the legacy increasing api-nonce), and strips every
// auth header; the describer classifies each (method, path) into a scope,
// with case-insensitive paths because BitMEX routes them that way.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package bitmex

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Upstream hosts. Request paths start with /api/v1, as BitMEX signs them.
const (
	DefaultUpstream = "https://www.bitmex.com"
	TestnetUpstream = "https://testnet.bitmex.com"
)

// Name is the venue name used in Calls and routes.
const Name = "bitmex"

// Expiry is how far in the future the signer sets api-expires, as BitMEX's
// official clients do.
const Expiry = 5 * time.Second

// MaxExpiresAhead is the furthest in the future keywarden accepts a bot's
// api-expires. BitMEX itself only requires a future time; keywarden bounds
// it so a captured request cannot be replayed for hours.
const MaxExpiresAhead = 60 * time.Second

// Header names (BitMEX matches them case-insensitively, as HTTP does).
const (
	hdrKey       = "Api-Key"
	hdrExpires   = "Api-Expires"
	hdrNonce     = "Api-Nonce"
	hdrSignature = "Api-Signature"
)

// New returns the BitMEX venue forwarding to upstream (DefaultUpstream when
// nil).
func New(upstream *url.URL) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(DefaultUpstream)
	}
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    Signer{},
		Verifier:  NewVerifier(),
		Describer: Describer{},
		Errors:    ErrorWriter{},
		Inspector: Inspector{},
		Limits:    RateLimits{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC},
	}
}

var (
	_ exchange.Signer          = Signer{}
	_ exchange.Verifier        = (*Verifier)(nil)
	_ exchange.Describer       = Describer{}
	_ exchange.ErrorWriter     = ErrorWriter{}
	_ exchange.Inspector       = Inspector{}
	_ exchange.RateLimitReader = RateLimits{}
)

// Signer signs outbound requests. Its zero value is ready and safe for
// concurrent use; it keeps nothing of the key.
//
// It is no signing oracle: the gateway calls it only for requests it built
// after the policy allowed them.
type Signer struct{}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Sign sets api-key, api-expires (now + Expiry, in seconds) and
// api-signature on r, and removes any api-nonce.
func (Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || len(key.Secret) == 0 || !validKey(key.APIKey) {
		return exchange.Errorf(exchange.ErrAuth, "bitmex sign: credential needs an api key and secret")
	}
	expires := now.Add(Expiry).Unix()
	// One string holds expires and signature, in the request's scratch
	// when it has one.
	buf := strconv.AppendInt(r.SignBuf(20+2*sha256.Size), expires, 10)
	n := len(buf)
	buf = buf[:n+2*sha256.Size]
	signature(buf[n:], key.Secret, r, buf[:n])
	both := r.SignString(buf)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Del(hdrNonce)
	r.SetSignedHeader(hdrKey, key.APIKey)
	r.SetSignedHeader(hdrExpires, both[:n])
	r.SetSignedHeader(hdrSignature, both[n:])
	return nil
}

// signature writes hex(HMAC-SHA256(secret, VERB + path(?query) + expires +
// body)) into dst, which must be 64 bytes.
func signature(dst, secret []byte, r *exchange.Request, expires []byte) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	for i := 0; i < len(r.Method); i++ {
		c := r.Method[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, r.Path...)
	if r.RawQuery != "" {
		b = append(b, '?')
		b = append(b, r.RawQuery...)
	}
	b = append(b, expires...)
	b = append(b, r.Body...)
	m := exchange.NewHMACSHA256()
	m.Write(b)
	hex.Encode(dst, m.Sum(secret))
	m.Release()
	clear(b)
	*bp = b[:0]
	bufPool.Put(bp)
}

func validKey(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// auth is a request's parsed auth headers.
type auth struct {
	key, sig string
	expires  int64 // or the legacy nonce
	legacy   bool
	raw      string // expires or nonce as sent
}

// one returns the single value of header h, or "" and false when absent;
// repeated headers are an error.
func one(h http.Header, name string) (string, bool, error) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, exchange.Errorf(exchange.ErrAuth, "repeated %s header", strings.ToLower(name))
}

// parseAuth reads the auth headers. ok is false when r carries none.
func parseAuth(h http.Header) (a auth, ok bool, err error) {
	key, hasKey, err := one(h, hdrKey)
	if err != nil {
		return a, true, err
	}
	exp, hasExp, err := one(h, hdrExpires)
	if err != nil {
		return a, true, err
	}
	nonce, hasNonce, err := one(h, hdrNonce)
	if err != nil {
		return a, true, err
	}
	sig, hasSig, err := one(h, hdrSignature)
	if err != nil {
		return a, true, err
	}
	if !hasKey && !hasExp && !hasNonce && !hasSig {
		return a, false, nil
	}
	if !hasKey || !validKey(key) {
		return a, true, exchange.Errorf(exchange.ErrAuth, "missing or malformed api-key")
	}
	if !hasSig {
		return a, true, exchange.Errorf(exchange.ErrAuth, "missing api-signature")
	}
	a.key, a.sig = key, sig
	switch {
	case hasExp && hasNonce:
		return a, true, exchange.Errorf(exchange.ErrAuth, "send api-expires or api-nonce, not both")
	case hasExp:
		a.raw = exp
	case hasNonce:
		a.raw, a.legacy = nonce, true
	default:
		return a, true, exchange.Errorf(exchange.ErrAuth, "missing api-expires")
	}
	n, err := strconv.ParseInt(a.raw, 10, 64)
	if err != nil || n <= 0 || a.raw[0] == '+' || a.raw[0] == '0' {
		return a, true, exchange.Errorf(exchange.ErrAuth, "malformed api-expires")
	}
	a.expires = n
	return a, true, nil
}

// checkMAC compares a's signature with the one computed over r, in
// constant time (exact lower-case hex).
func checkMAC(r *exchange.Request, a auth, secret []byte) bool {
	if len(a.sig) != 2*sha256.Size {
		return false
	}
	var want [2 * sha256.Size]byte
	signature(want[:], secret, r, []byte(a.raw))
	return hmac.Equal(want[:], []byte(a.sig))
}

// Verifier checks a bot's BitMEX auth headers against its keywarden client
// credential. It remembers the last legacy api-nonce per key. A Verifier is
// safe for concurrent use.
type Verifier struct {
	mu     sync.Mutex
	nonces map[string]int64
}

// NewVerifier returns a Verifier.
func NewVerifier() *Verifier { return &Verifier{nonces: map[string]int64{}} }

// ClientKey returns the api-key header, "" when r carries no auth headers.
func (v *Verifier) ClientKey(r *exchange.Request) (string, error) {
	a, ok, err := parseAuth(r.Header)
	if !ok || err != nil {
		return "", err
	}
	return a.key, nil
}

// Verify checks r's signature and expiry (or legacy nonce) against client
// at now and returns a copy of r without api-key, api-expires, api-nonce
// and api-signature.
func (v *Verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	a, ok, err := parseAuth(r.Header)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, exchange.Errorf(exchange.ErrAuth, "missing api-key")
	}
	if client == nil || len(client.Secret) == 0 || a.key != client.APIKey {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid API Key.")
	}
	if !a.legacy {
		if a.expires <= now.Unix() {
			return nil, exchange.Errorf(exchange.ErrTimestamp, "api-expires is in the past")
		}
		if a.expires > now.Add(MaxExpiresAhead).Unix() {
			return nil, exchange.Errorf(exchange.ErrTimestamp, "api-expires is more than %d s ahead", int(MaxExpiresAhead.Seconds()))
		}
	}
	if !checkMAC(r, a, client.Secret) {
		return nil, exchange.Errorf(exchange.ErrAuth, "Signature not valid.")
	}
	if a.legacy {
		v.mu.Lock()
		last := v.nonces[a.key]
		if a.expires <= last {
			v.mu.Unlock()
			return nil, exchange.Errorf(exchange.ErrTimestamp, "api-nonce is not increasing")
		}
		v.nonces[a.key] = a.expires
		v.mu.Unlock()
	}
	out := r.Clone()
	for _, h := range []string{hdrKey, hdrExpires, hdrNonce, hdrSignature} {
		out.Header.Del(h)
	}
	return out, nil
}
