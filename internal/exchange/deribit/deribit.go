// Package deribit is keywarden's Deribit API v2 venue: JSON-RPC over HTTP,
// authenticated with the "deri-hmac-sha256" Authorization header
// (spec/exchanges.md §11).
//
// The signer builds a fresh header with a random single-use nonce; the
// verifier checks a bot's header against its keywarden client credential
// with Deribit's 60 s window and remembers nonces so a captured request
// cannot be replayed; the describer classifies every JSON-RPC method, from
// the URL path or from a JSON-RPC body, into a scope.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package deribit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Upstream hosts. Request paths start with /api/v2, as Deribit signs them.
const (
	DefaultUpstream = "https://www.deribit.com"
	TestnetUpstream = "https://test.deribit.com"
)

// Name is the venue name used in Calls and routes.
const Name = "deribit"

// Window is how far a request timestamp may be from the server clock.
const Window = 60 * time.Second

// authScheme is the Authorization scheme of signed REST requests.
const authScheme = "deri-hmac-sha256"

// authPath is the token endpoint; the signer authenticates it with the
// client_signature grant instead of the header (key self-inspection).
const authPath = "/api/v2/public/auth"

// New returns the Deribit venue forwarding to upstream (DefaultUpstream when
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
		Keys:      KeyManager{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC},
	}
}

var (
	_ exchange.Signer      = Signer{}
	_ exchange.Verifier    = (*Verifier)(nil)
	_ exchange.Describer   = Describer{}
	_ exchange.ErrorWriter = ErrorWriter{}
	_ exchange.Inspector   = Inspector{}
	_ exchange.KeyManager  = KeyManager{}
)

// Signer signs outbound requests with the deri-hmac-sha256 header. Its zero
// value is ready and safe for concurrent use; it keeps nothing of the key.
//
// It is no signing oracle: the gateway calls it only for requests it built
// after the policy allowed them.
type Signer struct {
	// rand is the nonces' source; nil is crypto/rand (tests fix it).
	rand io.Reader
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Sign sets r's Authorization header: HMAC-SHA256 over
// ts\nnonce\nMETHOD\nURI\nbody\n with a fresh 16-hex-digit random nonce
// (Deribit nonces are single-use). A GET of public/auth with
// grant_type=client_signature is instead completed with the client_id,
// timestamp, nonce, data and signature parameters of that grant.
func (s Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || len(key.Secret) == 0 || !validID(key.APIKey) {
		return exchange.Errorf(exchange.ErrAuth, "deribit sign: credential needs a client id and secret")
	}
	src := s.rand
	if src == nil {
		src = rand.Reader
	}
	// The random bytes and their hex go into the request's scratch when it
	// has one (a reader keeps what it is given to read into on the heap).
	nb := r.SignBuf(8)[:8]
	if _, err := io.ReadFull(src, nb); err != nil {
		return exchange.Errorf(exchange.ErrUnavailable, "deribit sign: nonce: %v", err)
	}
	nonce := hex.AppendEncode(r.SignBuf(16), nb)
	clear(nb)
	return signWith(r, key, now.UnixMilli(), nonce)
}

// signWith signs r with the given timestamp and nonce.
func signWith(r *exchange.Request, key *exchange.Credential, ts int64, nonce []byte) error {
	if r.Path == authPath {
		return signAuthGrant(r, key, ts, nonce)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := stringToSign((*bp)[:0], ts, string(nonce), r)
	mac := exchange.NewHMACSHA256()
	mac.Write(b)
	var sum [sha256.Size]byte
	copy(sum[:], mac.Sum(key.Secret))
	mac.Release()
	clear(b)
	*bp = b[:0]

	// The header value goes into the request's scratch when it has one.
	b = r.SignBuf(len(authScheme) + len(key.APIKey) + 128)
	b = append(b, authScheme+" id="...)
	b = append(b, key.APIKey...)
	b = append(b, ",ts="...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, ",sig="...)
	b = hex.AppendEncode(b, sum[:])
	b = append(b, ",nonce="...)
	b = append(b, nonce...)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.SetSignedHeader("Authorization", r.SignString(b))
	return nil
}

// stringToSign appends Deribit's string to sign for r to b.
func stringToSign(b []byte, ts int64, nonce string, r *exchange.Request) []byte {
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = appendUpper(b, r.Method)
	b = append(b, '\n')
	b = append(b, r.Path...)
	if r.RawQuery != "" {
		b = append(b, '?')
		b = append(b, r.RawQuery...)
	}
	b = append(b, '\n')
	b = append(b, r.Body...)
	b = append(b, '\n')
	return b
}

func appendUpper(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// clientSignature is hex(HMAC-SHA256(secret, ts\nnonce\ndata)), the
// client_signature grant of public/auth (spec §11 vector D1).
func clientSignature(secret []byte, ts int64, nonce, data string) string {
	m := hmac.New(sha256.New, secret)
	var b []byte
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '\n')
	b = append(b, nonce...)
	b = append(b, '\n')
	b = append(b, data...)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// signAuthGrant completes a public/auth client_signature request.
func signAuthGrant(r *exchange.Request, key *exchange.Credential, ts int64, nonce []byte) error {
	ps, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return err
	}
	if ps.Get("grant_type") != "client_signature" {
		return exchange.Errorf(exchange.ErrBadRequest, "deribit sign: public/auth is signed only with grant_type=client_signature")
	}
	data := ps.Get("data")
	q := exchange.RemoveParams(r.RawQuery, "client_id", "client_secret", "timestamp", "nonce", "signature", "refresh_token")
	sig := clientSignature(key.Secret, ts, string(nonce), data)
	var b strings.Builder
	b.WriteString(q)
	if q != "" {
		b.WriteByte('&')
	}
	b.WriteString("client_id=" + url.QueryEscape(key.APIKey))
	b.WriteString("&timestamp=" + strconv.FormatInt(ts, 10))
	b.WriteString("&nonce=" + string(nonce))
	b.WriteString("&signature=" + sig)
	r.RawQuery = b.String()
	if r.Header != nil {
		r.Header.Del("Authorization")
	}
	return nil
}

// validID says whether s can be put into the Authorization header as is.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == '=' || c == '"' {
			return false
		}
	}
	return true
}

// authHeader is a parsed Authorization header.
type authHeader struct {
	basic  bool
	id     string
	secret string // Basic only
	ts     int64
	sig    string
	nonce  string
}

// parseAuth parses the Authorization header. ok is false when there is none.
func parseAuth(h http.Header) (a authHeader, ok bool, err error) {
	vs := h.Values("Authorization")
	if len(vs) == 0 {
		return a, false, nil
	}
	if len(vs) > 1 {
		return a, true, exchange.Errorf(exchange.ErrAuth, "more than one Authorization header")
	}
	v := vs[0]
	scheme, rest, _ := strings.Cut(v, " ")
	switch {
	case strings.EqualFold(scheme, authScheme):
		return parseHMACAuth(strings.TrimSpace(rest))
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return a, true, exchange.Errorf(exchange.ErrAuth, "malformed Basic authorization")
		}
		id, secret, found := strings.Cut(string(raw), ":")
		clear(raw)
		if !found || !validID(id) || secret == "" {
			return a, true, exchange.Errorf(exchange.ErrAuth, "malformed Basic authorization")
		}
		return authHeader{basic: true, id: id, secret: secret}, true, nil
	case strings.EqualFold(scheme, "Bearer"):
		return a, true, exchange.Errorf(exchange.ErrAuth, "access tokens are not accepted here; sign requests with deri-hmac-sha256")
	}
	return a, true, exchange.Errorf(exchange.ErrAuth, "unsupported Authorization scheme")
}

func parseHMACAuth(s string) (a authHeader, ok bool, err error) {
	bad := func(msg string) (authHeader, bool, error) {
		return authHeader{}, true, exchange.Errorf(exchange.ErrAuth, "deri-hmac-sha256 header: %s", msg)
	}
	var seen [4]bool
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		n++
		if n > 4 {
			return bad("unexpected field")
		}
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || v == "" {
			return bad("malformed field")
		}
		var idx int
		switch k {
		case "id":
			idx, a.id = 0, v
		case "ts":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts <= 0 || v[0] == '+' {
				return bad("malformed ts")
			}
			idx, a.ts = 1, ts
		case "sig":
			idx, a.sig = 2, v
		case "nonce":
			idx, a.nonce = 3, v
		default:
			return bad("unexpected field")
		}
		if seen[idx] {
			return bad("repeated field")
		}
		seen[idx] = true
	}
	if !seen[0] || !seen[1] || !seen[2] || !seen[3] {
		return bad("missing field (want id, ts, sig and nonce)")
	}
	if !validID(a.id) || !validID(a.nonce) || len(a.nonce) > 64 {
		return bad("malformed id or nonce")
	}
	return a, true, nil
}

// Verifier checks a bot's deri-hmac-sha256 (or Basic) authorization against
// its keywarden client credential. It remembers every accepted nonce for
// the length of the window, so a request cannot be accepted twice. A
// Verifier is safe for concurrent use.
type Verifier struct {
	replay *replayCache
}

// NewVerifier returns a Verifier with an empty nonce memory.
func NewVerifier() *Verifier {
	return &Verifier{replay: newReplayCache(1 << 18)}
}

// ClientKey returns the client id in r's Authorization header.
func (v *Verifier) ClientKey(r *exchange.Request) (string, error) {
	a, ok, err := parseAuth(r.Header)
	if !ok || err != nil {
		return "", err
	}
	return a.id, nil
}

// Verify checks r's authorization against client at now and returns a copy
// of r without the Authorization header.
func (v *Verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	a, ok, err := parseAuth(r.Header)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, exchange.Errorf(exchange.ErrAuth, "authorization_required")
	}
	if client == nil || len(client.Secret) == 0 || a.id != client.APIKey {
		return nil, exchange.Errorf(exchange.ErrAuth, "invalid_credentials")
	}
	if a.basic {
		if !hmac.Equal([]byte(a.secret), client.Secret) {
			return nil, exchange.Errorf(exchange.ErrAuth, "invalid_credentials")
		}
	} else {
		if err := checkSignature(r, a, client.Secret, now); err != nil {
			return nil, err
		}
		if !v.replay.add(a.id, a.nonce, a.ts, now.UnixMilli()) {
			return nil, exchange.Errorf(exchange.ErrTimestamp, "nonce already used or nonce memory full")
		}
	}
	out := r.Clone()
	out.Header.Del("Authorization")
	return out, nil
}

// checkSignature checks the window and the MAC of a deri-hmac-sha256 header.
func checkSignature(r *exchange.Request, a authHeader, secret []byte, now time.Time) error {
	d := now.UnixMilli() - a.ts
	if d > Window.Milliseconds() || d < -Window.Milliseconds() {
		return exchange.Errorf(exchange.ErrTimestamp, "timestamp is outside the %d s window", int(Window.Seconds()))
	}
	if len(a.sig) != 2*sha256.Size {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := stringToSign((*bp)[:0], a.ts, a.nonce, r)
	var sum [sha256.Size]byte
	var want [2 * sha256.Size]byte
	mac := hmac.New(sha256.New, secret)
	mac.Write(b)
	mac.Sum(sum[:0])
	hex.Encode(want[:], sum[:])
	*bp = b[:0]
	if !hmac.Equal(want[:], []byte(a.sig)) {
		return exchange.Errorf(exchange.ErrAuth, "invalid signature")
	}
	return nil
}

// replayCache remembers (key, nonce) pairs until their timestamp leaves the
// window. It holds at most max entries and refuses new ones when full
// (failing closed rather than forgetting).
type replayCache struct {
	mu        sync.Mutex
	max       int
	seen      map[string]int64 // key "\x00" nonce -> expiry, unix ms
	lastSweep int64
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: map[string]int64{}}
}

// add records (key, nonce) signed at ts and says whether it was new.
func (c *replayCache) add(key, nonce string, ts, now int64) bool {
	id := key + "\x00" + nonce
	exp := max(ts, now) + 2*Window.Milliseconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[id]; ok && e > now {
		return false
	}
	if now-c.lastSweep > Window.Milliseconds() || len(c.seen) >= c.max {
		for k, e := range c.seen {
			if e <= now {
				delete(c.seen, k)
			}
		}
		c.lastSweep = now
	}
	if len(c.seen) >= c.max {
		return false
	}
	c.seen[id] = exp
	return true
}
