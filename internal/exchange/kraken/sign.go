package kraken

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Signer signs outbound Kraken private requests (spec §4a):
//
//	API-Sign = base64(HMAC-SHA512(base64dec(secret), path + SHA256(nonce + body)))
//
// Kraken rejects a nonce that is not above the last one seen for the key, so
// the Signer is the only owner of nonces per exchange key (spec §0.3.3): it
// keeps a monotonic counter per API key, fast-forwarded to the current Unix
// millisecond. A Signer is safe for concurrent use; it keeps no secret.
type Signer struct {
	mu   sync.Mutex
	last map[string]uint64
}

// NewSigner returns a Signer with no nonce history.
func NewSigner() *Signer { return &Signer{last: map[string]uint64{}} }

// nextNonce returns a nonce for apiKey above every nonce it returned before.
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

// Sign sets nonce as the first body field and adds API-Key and API-Sign. A
// nonce or otp already in the body is replaced. The body is form-encoded
// unless its Content-Type says JSON.
func (s *Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.Kind != exchange.KeyHMAC || key.APIKey == "" || len(key.Secret) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kraken: sign: need an hmac key")
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	var secret [128]byte
	n, err := base64.StdEncoding.Decode(secret[:], key.Secret)
	if len(key.Secret) > 170 || err != nil || n == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kraken: sign: secret is not base64")
	}
	defer clear(secret[:])
	nonce := strconv.AppendUint(make([]byte, 0, 20), s.nextNonce(key.APIKey, now), 10)
	body, err := bodyWithNonce(r, nonce)
	if err != nil {
		return err
	}
	r.Body = body
	r.Header.Set("API-Key", key.APIKey)
	r.Header.Set("API-Sign", apiSign(secret[:n], r.Path, nonce, body))
	return nil
}

// bodyWithNonce returns r's body with its nonce and otp fields removed and
// nonce put first, as ccxt and Kraken's own examples do.
func bodyWithNonce(r *exchange.Request, nonce []byte) ([]byte, error) {
	if isJSON(r.Header) {
		body := r.Body
		if len(body) == 0 {
			body = []byte("{}")
		}
		body, err := exchange.RemoveJSONMembers(body, "nonce", "otp")
		if err != nil {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "kraken: sign: body is not a JSON object")
		}
		return exchange.PrependJSONMember(body, `"nonce":"`+string(nonce)+`"`)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rest := exchange.RemoveParams(string(r.Body), "nonce", "otp")
	out := make([]byte, 0, len("nonce=")+len(nonce)+1+len(rest))
	out = append(out, "nonce="...)
	out = append(out, nonce...)
	if rest != "" {
		out = append(out, '&')
		out = append(out, rest...)
	}
	return out, nil
}

// isJSON says whether h declares a JSON body.
func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// apiSign computes Kraken's API-Sign for path, nonce and the exact body.
func apiSign(secret []byte, path string, nonce, body []byte) string {
	return base64.StdEncoding.EncodeToString(rawSign(secret, path, nonce, body))
}

func rawSign(secret []byte, path string, nonce, body []byte) []byte {
	h := sha256.New()
	h.Write(nonce)
	h.Write(body)
	var digest [sha256.Size]byte
	m := hmac.New(sha512.New, secret)
	m.Write([]byte(path))
	m.Write(h.Sum(digest[:0]))
	return m.Sum(make([]byte, 0, sha512.Size))
}
