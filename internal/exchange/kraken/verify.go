package kraken

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Verifier checks a bot's Kraken-signed request against its keywarden client
// credential exactly as Kraken checks its own keys: API-Sign over the path
// and the raw body, and a nonce strictly above the last nonce accepted for
// the client key (Kraken's rule, and keywarden's replay protection). The
// nonce history lives in memory; a Verifier is safe for concurrent use.
type Verifier struct {
	mu   sync.Mutex
	last map[string]uint64
}

// NewVerifier returns a Verifier with no nonce history.
func NewVerifier() *Verifier { return &Verifier{last: map[string]uint64{}} }

// ClientKey returns the API-Key header, or "" when the request carries no
// Kraken auth header at all.
func (v *Verifier) ClientKey(r *exchange.Request) (string, error) {
	keys, signs := r.Header.Values("API-Key"), r.Header.Values("API-Sign")
	if len(keys) == 0 && len(signs) == 0 {
		return "", nil
	}
	if len(keys) != 1 || keys[0] == "" {
		return "", exchange.Errorf(exchange.ErrAuth, "missing or repeated API-Key header")
	}
	return keys[0], nil
}

// Verify checks r's API-Sign and nonce with client and returns a copy without
// the API-Key and API-Sign headers and without the body's nonce and otp.
func (v *Verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" || client == nil || client.Kind != exchange.KeyHMAC ||
		subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid key")
	}
	signs := r.Header.Values("API-Sign")
	if len(signs) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "missing or repeated API-Sign header")
	}
	if r.Method != http.MethodPost {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "private methods take POST")
	}
	if r.RawQuery != "" {
		// Kraken does not sign the query string: refuse unsigned parameters.
		return nil, exchange.Errorf(exchange.ErrBadRequest, "private methods take no query string")
	}
	nonceStr, err := bodyNonce(r)
	if err != nil {
		return nil, err
	}
	nonce, err := strconv.ParseUint(nonceStr, 10, 64)
	if err != nil || nonce == 0 || len(nonceStr) > 20 || nonceStr[0] == '+' {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "invalid nonce")
	}
	got, err := base64.StdEncoding.DecodeString(signs[0])
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	var secret [128]byte
	n, err := base64.StdEncoding.Decode(secret[:], client.Secret)
	if len(client.Secret) > 170 || err != nil || n == 0 {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid key")
	}
	want := rawSign(secret[:n], r.Path, []byte(nonceStr), r.Body)
	clear(secret[:])
	if !hmac.Equal(got, want) {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	if !v.advance(client.APIKey, nonce) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "invalid nonce")
	}
	out := r.Clone()
	out.Header.Del("API-Key")
	out.Header.Del("API-Sign")
	if isJSON(r.Header) {
		out.Body, err = exchange.RemoveJSONMembers(out.Body, "nonce", "otp")
		if err != nil {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid JSON body")
		}
	} else {
		out.Body = []byte(exchange.RemoveParams(string(out.Body), "nonce", "otp"))
	}
	return out, nil
}

// advance records nonce for key if it is above the last one.
func (v *Verifier) advance(key string, nonce uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if nonce <= v.last[key] {
		return false
	}
	v.last[key] = nonce
	return true
}

// bodyNonce returns the nonce field of r's form or JSON body, checking the
// body strictly (no duplicate fields, valid UTF-8).
func bodyNonce(r *exchange.Request) (string, error) {
	if isJSON(r.Header) {
		v, err := exchange.DecodeJSON(r.Body, exchange.MaxJSONDepth)
		if err != nil {
			return "", exchange.Errorf(exchange.ErrBadRequest, "invalid JSON body")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return "", exchange.Errorf(exchange.ErrBadRequest, "body is not a JSON object")
		}
		s, ok := exchange.JSONString(obj["nonce"])
		if !ok || s == "" {
			return "", exchange.Errorf(exchange.ErrTimestamp, "missing nonce")
		}
		return s, nil
	}
	ps, err := exchange.ParseQuery(string(r.Body))
	if err != nil {
		return "", err
	}
	s := ps.Get("nonce")
	if s == "" {
		return "", exchange.Errorf(exchange.ErrTimestamp, "missing nonce")
	}
	return s, nil
}
