package krakenfutures

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Signer signs outbound Kraken Futures requests (spec §5a):
//
//	Authent = base64(HMAC-SHA512(base64dec(secret), SHA256(postData + Nonce + endpointPath)))
//
// postData is the exact URL-encoded query or body (the 2024 encoded form).
// The Signer sends a Nonce header from a per-key monotonic counter
// fast-forwarded to the current millisecond, so Kraken can refuse replays. A
// Signer is safe for concurrent use; it keeps no secret.
type Signer struct {
	mu   sync.Mutex
	last map[string]uint64
	// noNonce omits the Nonce header, as ccxt does; used to compare with it.
	noNonce bool
}

// NewSigner returns a Signer that sends a Nonce header.
func NewSigner() *Signer { return &Signer{last: map[string]uint64{}} }

func (s *Signer) nextNonce(apiKey string, now time.Time) uint64 {
	n := uint64(max(now.UnixMilli(), 1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if last := s.last[apiKey]; n <= last {
		n = last + 1
	}
	s.last[apiKey] = n
	return n
}

// Sign adds APIKey, Authent and Nonce headers to r.
func (s *Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.Kind != exchange.KeyHMAC || key.APIKey == "" || len(key.Secret) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kraken-futures: sign: need an hmac key")
	}
	if len(r.Body) > 0 && r.RawQuery != "" {
		return exchange.Errorf(exchange.ErrBadRequest, "parameters in both query and body")
	}
	ep, err := endpointPath(r.Path)
	if err != nil {
		return err
	}
	var secret [128]byte
	n, err := base64.StdEncoding.Decode(secret[:], key.Secret)
	if len(key.Secret) > 170 || err != nil || n == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kraken-futures: sign: secret is not base64")
	}
	defer clear(secret[:])
	if r.Header == nil {
		r.Header = http.Header{}
	}
	// Nonce, the digest's input (postData + nonce + endpointPath) and the
	// signature go into the request's scratch when it has one.
	var nonce []byte
	if !s.noNonce {
		nonce = strconv.AppendUint(r.SignBuf(20), s.nextNonce(key.APIKey, now), 10)
		r.SetSignedHeader("Nonce", r.SignString(nonce))
	} else {
		delete(r.Header, "Nonce")
	}
	if len(r.Body) > 0 && r.Header.Get("Content-Type") == "" {
		r.SetSignedHeader("Content-Type", "application/x-www-form-urlencoded")
	}
	in := r.SignBuf(len(r.Body) + len(r.RawQuery) + len(nonce) + len(ep))
	in = append(append(append(append(in, r.Body...), r.RawQuery...), nonce...), ep...)
	digest := sha256.Sum256(in)
	m := exchange.NewHMACSHA512()
	m.Write(digest[:])
	sig := base64.StdEncoding.AppendEncode(r.SignBuf(base64.StdEncoding.EncodedLen(sha512.Size)), m.Sum(secret[:n]))
	m.Release()
	r.SetSignedHeader("Apikey", key.APIKey)
	r.SetSignedHeader("Authent", r.SignString(sig))
	return nil
}

// postData is the signed parameter string: the body when there is one,
// otherwise the raw query. Parameters in both places are refused, since
// Kraken would read some of them unsigned.
func postData(r *exchange.Request) (string, error) {
	switch {
	case len(r.Body) > 0 && r.RawQuery != "":
		return "", exchange.Errorf(exchange.ErrBadRequest, "parameters in both query and body")
	case len(r.Body) > 0:
		return string(r.Body), nil
	}
	return r.RawQuery, nil
}

// endpointPath is the signed path: the request path without the
// /derivatives prefix (spec §5a).
func endpointPath(path string) (string, error) {
	if err := exchange.CheckPath(path, maxPathLen); err != nil {
		return "", err
	}
	if strings.HasPrefix(path, "/derivatives/") {
		return path[len("/derivatives"):], nil // "/" and the rest
	}
	return path, nil
}

func authent(secret []byte, postData string, nonce []byte, endpointPath string) []byte {
	h := sha256.New()
	h.Write([]byte(postData))
	h.Write(nonce)
	h.Write([]byte(endpointPath))
	var digest [sha256.Size]byte
	m := hmac.New(sha512.New, secret)
	m.Write(h.Sum(digest[:0]))
	return m.Sum(make([]byte, 0, sha512.Size))
}
