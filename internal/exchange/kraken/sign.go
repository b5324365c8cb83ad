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
	nonce := strconv.AppendUint(r.SignBuf(20), s.nextNonce(key.APIKey, now), 10)
	body, err := bodyWithNonce(r, nonce)
	if err != nil {
		return err
	}
	r.Body = body
	// SHA256(nonce + body), joined in the request's scratch.
	nb := append(append(r.SignBuf(len(nonce)+len(body)), nonce...), body...)
	digest := sha256.Sum256(nb)
	m := exchange.NewHMACSHA512()
	m.WriteString(r.Path)
	m.Write(digest[:])
	sig := base64.StdEncoding.AppendEncode(r.SignBuf(base64.StdEncoding.EncodedLen(sha512.Size)), m.Sum(secret[:n]))
	m.Release()
	r.SetSignedHeader("Api-Key", key.APIKey)
	r.SetSignedHeader("Api-Sign", r.SignString(sig))
	return nil
}

// bodyWithNonce returns r's body with its nonce and otp fields removed and
// nonce put first, as ccxt and Kraken's own examples do. A form body is
// written into r's scratch when it has one.
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
	r.SetSignedHeader("Content-Type", formType)
	out := r.SignBuf(len("nonce=") + len(nonce) + 1 + len(r.Body))
	out = append(out, "nonce="...)
	out = append(out, nonce...)
	mark := len(out)
	out = exchange.AppendWithoutParams(append(out, '&'), r.Body, "nonce", "otp")
	if len(out) == mark+1 {
		out = out[:mark]
	}
	return out, nil
}

// formType is the Content-Type of a form body.
const formType = "application/x-www-form-urlencoded"

// isJSON says whether h declares a JSON body.
func isJSON(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" || ct == formType {
		return false
	}
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
