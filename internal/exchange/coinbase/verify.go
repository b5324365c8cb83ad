package coinbase

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Windows a bot's request must fall in.
const (
	legacyWindow = 30 * time.Second // CB-ACCESS-TIMESTAMP, spec §3.2
	jwtSkew      = 10 * time.Second // bot clock ahead of keywarden's
	maxSeenJWTs  = 1 << 16
)

// Verifier checks a bot's Coinbase request against its keywarden client
// credential. For CDP-style credentials keywarden holds only the bot's public
// key (Ed25519 or P-256) and key name: the bearer JWT must be signed by it,
// carry kid and sub equal to the key name, be inside nbf..exp with a lifetime
// of at most 120 s, and bind the request's method and path in uri or uris.
// The host in that claim is wherever the bot sent the request, so only its
// path is compared; a mount prefix in front of the venue path is allowed
// (see uriMatches).
//
// A JWT does not cover the body, so each token is accepted once (until it
// expires): a captured token cannot carry a second, different order. Legacy
// HMAC credentials are checked as Coinbase does (30 s window). A Verifier is
// safe for concurrent use.
type Verifier struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]int64 // SHA-256 of the JWT's signed part -> exp
}

// NewVerifier returns a Verifier with no token history.
func NewVerifier() *Verifier { return &Verifier{seen: map[[sha256.Size]byte]int64{}} }

// ClientKey returns the JWT's kid or the CB-ACCESS-KEY header, "" when the
// request has neither.
func (v *Verifier) ClientKey(r *exchange.Request) (string, error) {
	auth, keys := r.Header.Values("Authorization"), r.Header.Values("CB-ACCESS-KEY")
	switch {
	case len(auth) == 0 && len(keys) == 0:
		if r.Header.Get("CB-ACCESS-SIGN") != "" {
			return "", exchange.Errorf(exchange.ErrAuth, "missing CB-ACCESS-KEY header")
		}
		return "", nil
	case len(auth) > 0 && len(keys) > 0, len(auth) > 1, len(keys) > 1:
		return "", exchange.Errorf(exchange.ErrAuth, "conflicting auth headers")
	case len(keys) == 1:
		if keys[0] == "" {
			return "", exchange.Errorf(exchange.ErrAuth, "empty CB-ACCESS-KEY header")
		}
		return keys[0], nil
	}
	tok, ok := bearer(auth[0])
	if !ok {
		return "", exchange.Errorf(exchange.ErrAuth, "authorization is not a bearer token")
	}
	kid, err := jwtKid(tok)
	if err != nil {
		return "", exchange.Errorf(exchange.ErrAuth, "malformed JWT")
	}
	return kid, nil
}

func bearer(h string) (string, bool) {
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

// Verify checks r against client and returns a copy without any Coinbase
// auth header.
func (v *Verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	if key == "" || client == nil || subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, "unknown key")
	}
	if r.Header.Get("Authorization") != "" {
		err = v.verifyJWT(r, client, now)
	} else {
		err = verifyLegacy(r, client, now)
	}
	if err != nil {
		return nil, err
	}
	out := r.Clone()
	for _, h := range authHeaders {
		out.Header.Del(h)
	}
	return out, nil
}

func (v *Verifier) verifyJWT(r *exchange.Request, client *exchange.Credential, now time.Time) error {
	alg := algFor(client.Kind)
	if alg == "" || client.PublicKey == nil {
		return exchange.Errorf(exchange.ErrAuth, "credential does not take JWTs")
	}
	tok, _ := bearer(r.Header.Get("Authorization"))
	t, err := parseJWT(tok)
	if err != nil {
		return exchange.Errorf(exchange.ErrAuth, "malformed JWT")
	}
	if t.alg != alg || (t.typ != "" && t.typ != "JWT") {
		return exchange.Errorf(exchange.ErrAuth, "unexpected JWT algorithm")
	}
	if !t.verifySignature(client.PublicKey) {
		return exchange.Errorf(exchange.ErrAuth, "invalid JWT signature")
	}
	if subtle.ConstantTimeCompare([]byte(t.kid), []byte(client.APIKey)) != 1 || t.sub != t.kid {
		return exchange.Errorf(exchange.ErrAuth, "JWT sub does not match kid")
	}
	if !t.hasNBF || t.exp-t.nbf > jwtLifetime || t.exp <= t.nbf {
		return exchange.Errorf(exchange.ErrTimestamp, "JWT lifetime must be at most 120 s")
	}
	sec := now.Unix()
	if sec < t.nbf-int64(jwtSkew/time.Second) || sec >= t.exp {
		return exchange.Errorf(exchange.ErrTimestamp, "JWT expired or not yet valid")
	}
	if !uriMatches(t.uris, r.Method, r.Path) {
		return exchange.Errorf(exchange.ErrAuth, "JWT uri does not match the request")
	}
	// Tokens are told apart by what was signed, not by the signature: an
	// ECDSA signature (r, s) has a twin (r, n-s) that verifies too.
	if !v.firstUse(sha256.Sum256([]byte(t.input)), t.exp, sec) {
		return exchange.Errorf(exchange.ErrTimestamp, "JWT already used")
	}
	return nil
}

// firstUse records a token until it expires and says whether it is new.
// When the table is full even after dropping expired tokens, it fails
// closed.
func (v *Verifier) firstUse(id [sha256.Size]byte, exp, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, dup := v.seen[id]; dup {
		return false
	}
	if len(v.seen) >= maxSeenJWTs {
		for k, e := range v.seen {
			if e <= now {
				delete(v.seen, k)
			}
		}
		if len(v.seen) >= maxSeenJWTs {
			return false
		}
	}
	v.seen[id] = exp
	return true
}

// uriMatches says whether one of uris is "<method> <host><prefix><path>".
// The prefix is where the bot mounted keywarden and may be empty. path must
// start at a Coinbase API root (/api/v3/ or /v2/), so a token bound to one
// endpoint cannot pass for a shorter path cut out of it.
func uriMatches(uris []string, method, path string) bool {
	if !strings.HasPrefix(path, "/api/v3/") && !strings.HasPrefix(path, "/v2/") {
		return false
	}
	for _, u := range uris {
		m, rest, ok := strings.Cut(u, " ")
		if !ok || m != method {
			continue
		}
		i := strings.IndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		prefix, ok := strings.CutSuffix(rest[i:], path)
		if ok && (prefix == "" || !strings.HasSuffix(prefix, "/")) {
			return true
		}
	}
	return false
}

func verifyLegacy(r *exchange.Request, client *exchange.Credential, now time.Time) error {
	if client.Kind != exchange.KeyHMAC || len(client.Secret) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "credential does not take HMAC signatures")
	}
	sigs, tss := r.Header.Values("CB-ACCESS-SIGN"), r.Header.Values("CB-ACCESS-TIMESTAMP")
	if len(sigs) != 1 || len(tss) != 1 {
		return exchange.Errorf(exchange.ErrAuth, "missing CB-ACCESS-SIGN or CB-ACCESS-TIMESTAMP")
	}
	ts, err := strconv.ParseInt(tss[0], 10, 64)
	if err != nil || tss[0][0] == '+' || tss[0][0] == '-' {
		return exchange.Errorf(exchange.ErrTimestamp, "malformed CB-ACCESS-TIMESTAMP")
	}
	if d := now.Unix() - ts; d > int64(legacyWindow/time.Second) || d < -int64(legacyWindow/time.Second) {
		return exchange.Errorf(exchange.ErrTimestamp, "CB-ACCESS-TIMESTAMP outside the 30 s window")
	}
	got, err := hex.DecodeString(sigs[0])
	if err != nil || !hmac.Equal(got, legacyMAC(client.Secret, tss[0], r)) {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	return nil
}
