package krakenfutures

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Verifier checks a bot's Kraken Futures request against its keywarden
// client credential the way Kraken Futures does: Authent over the raw
// parameter string, the optional Nonce header and the endpoint path. When a
// Nonce is sent it must be above the last one accepted for the client key.
// Kraken Futures lets clients omit the Nonce (ccxt does); such requests have
// no replay protection in the venue's own scheme, which keywarden accepts
// for compatibility. A Verifier is safe for concurrent use.
type Verifier struct {
	mu   sync.Mutex
	last map[string]uint64
}

// NewVerifier returns a Verifier with no nonce history.
func NewVerifier() *Verifier { return &Verifier{last: map[string]uint64{}} }

// ClientKey returns the APIKey header, or "" when the request carries no
// auth header at all.
func (v *Verifier) ClientKey(r *exchange.Request) (string, error) {
	keys, sigs := r.Header.Values("APIKey"), r.Header.Values("Authent")
	if len(keys) == 0 && len(sigs) == 0 {
		return "", nil
	}
	if len(keys) != 1 || keys[0] == "" {
		return "", exchange.Errorf(exchange.ErrAuth, "missing or repeated APIKey header")
	}
	return keys[0], nil
}

// Verify checks r's Authent and Nonce with client and returns a copy without
// the APIKey, Authent and Nonce headers.
func (v *Verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" || client == nil || client.Kind != exchange.KeyHMAC ||
		subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid key")
	}
	sigs := r.Header.Values("Authent")
	if len(sigs) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "missing or repeated Authent header")
	}
	nonces := r.Header.Values("Nonce")
	var nonce uint64
	switch len(nonces) {
	case 0:
	case 1:
		nonce, err = strconv.ParseUint(nonces[0], 10, 64)
		if err != nil || nonce == 0 || nonces[0][0] == '+' {
			return nil, exchange.Errorf(exchange.ErrTimestamp, "invalid nonce")
		}
	default:
		return nil, exchange.Errorf(exchange.ErrTimestamp, "repeated Nonce header")
	}
	pd, err := postData(r)
	if err != nil {
		return nil, err
	}
	ep, err := endpointPath(r.Path)
	if err != nil {
		return nil, err
	}
	got, err := base64.StdEncoding.DecodeString(sigs[0])
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	var secret [128]byte
	n, err := base64.StdEncoding.Decode(secret[:], client.Secret)
	if len(client.Secret) > 170 || err != nil || n == 0 {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid key")
	}
	var nonceBytes []byte
	if len(nonces) == 1 {
		nonceBytes = []byte(nonces[0])
	}
	want := authent(secret[:n], pd, nonceBytes, ep)
	clear(secret[:])
	if !hmac.Equal(got, want) {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	// Parameters must parse strictly before anything is accepted.
	if _, err := (describer{}).Describe(r); err != nil {
		return nil, err
	}
	if nonce != 0 && !v.advance(client.APIKey, nonce) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "nonce below threshold")
	}
	out := r.Clone()
	out.Header.Del("APIKey")
	out.Header.Del("Authent")
	out.Header.Del("Nonce")
	return out, nil
}

func (v *Verifier) advance(key string, nonce uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if nonce <= v.last[key] {
		return false
	}
	v.last[key] = nonce
	return true
}
