package hyperliquid

import (
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

// Bot nonces must be this close to keywarden's clock. keywarden re-signs
// with its own nonce, so it remembers every accepted bot signature for
// longer than this window to refuse replays (Hyperliquid itself allows two
// days, which keywarden's own nonce would defeat).
const (
	maxNonceAge    = 30 * time.Second
	maxNonceAhead  = 5 * time.Second
	replayMemory   = maxNonceAge + maxNonceAhead + 5*time.Second
	maxReplayItems = 1 << 18
)

type verifier struct {
	net Network

	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

func newVerifier(net Network) *verifier {
	return &verifier{net: net, seen: map[[32]byte]time.Time{}}
}

// Paths a bot uses. Hyperliquid clients (ccxt, the SDKs) send /info and
// /exchange to one base URL, and a Hyperliquid request carries no key id,
// so the client id goes into the base: /c/<client id>/info and
// /c/<client id>/exchange. The older /<client id>/exchange and the bare
// /info keep working. The id in the path is not a credential: the
// signature is.

// splitClient splits "/<client id>/exchange" or "/c/<client id>/exchange"
// into the id and "/exchange".
func splitClient(path string) (id, rest string, ok bool) {
	p := strings.TrimPrefix(path, "/")
	if q, found := strings.CutPrefix(p, "c/"); found && strings.Count(q, "/") == 1 {
		p = q
	}
	id, rest, found := strings.Cut(p, "/")
	if !found || rest != "exchange" || id == "" {
		return "", "", false
	}
	return id, "/exchange", true
}

// clientInfo reports whether path is "/c/<client id>/info", the public
// info endpoint under a ccxt-style base URL, and whether its id is well
// formed.
func clientInfo(path string) (isInfo, valid bool) {
	q, found := strings.CutPrefix(path, "/c/")
	if !found {
		return false, false
	}
	id, rest, found := strings.Cut(q, "/")
	if !found || rest != "info" {
		return false, false
	}
	return true, exchange.ValidKeyID(id)
}

// PublicPath is the venue path of a public call: /c/<client id>/info goes
// to /info; other paths are unchanged.
func (v *verifier) PublicPath(path string) string {
	if isInfo, valid := clientInfo(path); isInfo && valid {
		return "/info"
	}
	return path
}

// ClientKey returns the client credential id from the path: signed calls go
// to /c/<client id>/exchange (or /<client id>/exchange), since a
// Hyperliquid request carries no key id. /info and /c/<client id>/info are
// public.
func (v *verifier) ClientKey(r *exchange.Request) (string, error) {
	if id, _, ok := splitClient(r.Path); ok {
		if !exchange.ValidKeyID(id) {
			return "", exchange.Errorf(exchange.ErrAuth, "malformed client credential id in the path")
		}
		return id, nil
	}
	if isInfo, valid := clientInfo(r.Path); isInfo && !valid {
		return "", exchange.Errorf(exchange.ErrBadRequest, "malformed client credential id in the path")
	}
	if r.Path == "/exchange" {
		return "", exchange.Errorf(exchange.ErrAuth, "signed calls go to /hyperliquid/c/<client credential id>/exchange")
	}
	return "", nil
}

// Verify recovers the bot's signer and checks it is the client credential's
// wallet, that the nonce is fresh and the signature unseen, and returns the
// request for /exchange without the signature.
func (v *verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	_, rest, ok := splitClient(r.Path)
	if !ok || r.Method != "POST" {
		return nil, exchange.Errorf(exchange.ErrNotFound, "signed calls are POST /<client credential id>/exchange")
	}
	body, err := v.verifyBody(r.Body, client, now)
	if err != nil {
		return nil, err
	}
	out := r.Clone()
	out.Path = rest
	out.Body = body
	return out, nil
}

// verifyBody checks a signed /exchange body (REST or a WebSocket post):
// the signer is the client credential's wallet, the nonce is fresh, and
// the signature was not seen before on either transport. It returns the
// body without the signature. Errors are *Error.
func (v *verifier) verifyBody(b []byte, client *exchange.Credential, now time.Time) ([]byte, error) {
	env, err := parseEnvelope(b)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	if env.Sig == nil {
		return nil, exchange.Errorf(exchange.ErrAuth, "signature missing")
	}
	d, err := env.digest(v.net)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	signer, err := eip712.Recover(d, *env.Sig)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrAuth, "signature: %s", err.Error())
	}
	want, err := ClientPrivateKey(client.Secret)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrAuth, "client credential is not usable for hyperliquid")
	}
	wantAddr := want.Address()
	want.Zero()
	if !eip712.SameAddress(signer, wantAddr) {
		return nil, exchange.Errorf(exchange.ErrAuth, "signature is not by the client credential's wallet")
	}
	nonce := time.UnixMilli(int64(env.Nonce))
	if env.Nonce > 1<<62 || nonce.Before(now.Add(-maxNonceAge)) || nonce.After(now.Add(maxNonceAhead)) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "nonce must be the current time in ms (within %s)", maxNonceAge)
	}
	if env.Expires != nil && !time.UnixMilli(int64(*env.Expires)).After(now) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "expiresAfter has passed")
	}
	if !v.remember(d, now) {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "replayed request: this signed action was already received")
	}
	env.Sig = nil
	body, err := env.encode()
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	return body, nil
}

// remember records digest d and reports false when it was already seen
// within the replay memory. When the memory is full of live entries it
// refuses (fail closed) rather than forget one.
func (v *verifier) remember(d []byte, now time.Time) bool {
	var k [32]byte
	copy(k[:], d)
	v.mu.Lock()
	defer v.mu.Unlock()
	if t, ok := v.seen[k]; ok && now.Sub(t) < replayMemory {
		return false
	}
	if len(v.seen) >= maxReplayItems {
		for kk, t := range v.seen {
			if now.Sub(t) >= replayMemory {
				delete(v.seen, kk)
			}
		}
		if len(v.seen) >= maxReplayItems {
			return false
		}
	}
	v.seen[k] = now
	return true
}
