package binance

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Wire names of the auth material.
const (
	headerAPIKey     = "X-Mbx-Apikey" // canonical form of X-MBX-APIKEY
	paramSignature   = "signature"
	paramTimestamp   = "timestamp"
	paramRecvWindow  = "recvWindow"
	contentTypeForm  = "application/x-www-form-urlencoded"
	headerContentTyp = "Content-Type"

	// defaultSignRecvWindow is the recvWindow (ms) the signer sends: Binance's
	// own default, stated explicitly so the window never depends on a
	// server-side default.
	defaultSignRecvWindow = 5000
)

type macScratch struct {
	h     hash.Hash
	pad   [sha256.BlockSize]byte
	inner [sha256.Size]byte
	out   [sha256.Size]byte
	hk    [sha256.Size]byte
	buf   []byte
}

func newMACPool() *macPool {
	p := &macPool{}
	p.p.New = func() any { return &macScratch{h: sha256.New()} }
	return p
}

// sum returns HMAC-SHA256(key, a+b) where a is a string and b bytes, without
// allocating in the steady state. The pads are rebuilt from key on each call
// and wiped before the scratch space goes back to the pool.
func (p *macPool) sum(key []byte, a string, b []byte) [sha256.Size]byte {
	m := p.p.Get().(*macScratch)
	k := key
	if len(k) > sha256.BlockSize {
		m.h.Reset()
		m.h.Write(k)
		k = m.h.Sum(m.hk[:0])
	}
	for i := range m.pad {
		m.pad[i] = 0x36
	}
	for i, c := range k {
		m.pad[i] ^= c
	}
	m.h.Reset()
	m.h.Write(m.pad[:])
	if a != "" {
		m.buf = append(m.buf[:0], a...)
		m.h.Write(m.buf)
		clear(m.buf)
	}
	m.h.Write(b)
	m.h.Sum(m.inner[:0])
	for i := range m.pad {
		m.pad[i] ^= 0x36 ^ 0x5c
	}
	m.h.Reset()
	m.h.Write(m.pad[:])
	m.h.Write(m.inner[:])
	m.h.Sum(m.out[:0])
	out := m.out
	clear(m.pad[:])
	clear(m.inner[:])
	clear(m.out[:])
	clear(m.hk[:])
	m.h.Reset()
	p.p.Put(m)
	return out
}

// signer signs outbound Binance REST requests. It puts timestamp first and
// recvWindow and signature last, the layout ccxt uses, in the body for
// requests that carry a form body (or POST/PUT with no query) and in the
// query otherwise. A signer is safe for concurrent use and keeps nothing of
// the keys it is given.
//
// A signer is no signing oracle: the gateway calls it only with a request it
// built from checked fields after the policy allowed the call.
type signer struct {
	recvWindow int64 // ms; 0 omits the parameter
	macs       *macPool
}

// Sign adds X-MBX-APIKEY, timestamp, recvWindow and signature to r in place.
// Any timestamp, recvWindow or signature r already carries is removed first.
func (s *signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil {
		return errors.New("binance: sign: no key")
	}
	if !validAPIKey(key.APIKey) {
		return errors.New("binance: sign: malformed api key")
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if keyOnly(r.Path) {
		// USER_STREAM calls carry the API key and nothing else.
		r.RawQuery = stripAuthParams(r.RawQuery)
		if hasAuthParamBytes(r.Body) {
			r.Body = []byte(stripAuthParams(string(r.Body)))
		}
		deleteHeader(r.Header, headerAPIKey)
		r.SetSignedHeader(headerAPIKey, key.APIKey)
		return nil
	}
	query := stripAuthParams(r.RawQuery)
	body := r.Body
	if len(body) > 0 && hasAuthParamBytes(body) {
		body = []byte(stripAuthParams(string(body)))
	}
	inBody := len(body) > 0 || (query == "" && r.Method != http.MethodGet && r.Method != http.MethodDelete && r.Method != http.MethodHead)
	buf := r.SignBuf(len(query) + len(body) + 64 + sigLen(key.Kind))
	buf = append(buf, "timestamp="...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	switch {
	case inBody && len(body) > 0:
		buf = append(buf, '&')
		buf = append(buf, body...)
	case !inBody && query != "":
		buf = append(buf, '&')
		buf = append(buf, query...)
	}
	if s.recvWindow > 0 {
		buf = append(buf, "&recvWindow="...)
		buf = strconv.AppendInt(buf, s.recvWindow, 10)
	}
	prefix := ""
	if inBody {
		prefix = query
	}
	n := len(buf)
	buf = append(buf, "&signature="...)
	var err error
	var tmp []byte
	if prefix != "" && key.Kind != exchange.KeyHMAC {
		tmp = r.SignBuf(len(prefix) + n)
	}
	buf, err = s.appendSignature(buf, key, prefix, buf[:n], tmp)
	if err != nil {
		return err
	}
	if inBody {
		r.RawQuery = query
		r.Body = buf
		if r.Header.Get(headerContentTyp) == "" {
			r.SetSignedHeader(headerContentTyp, contentTypeForm)
		}
	} else {
		r.RawQuery = r.SignString(buf)
		r.Body = body
	}
	deleteHeader(r.Header, headerAPIKey)
	r.SetSignedHeader(headerAPIKey, key.APIKey)
	return nil
}

func sigLen(k exchange.KeyKind) int {
	switch k {
	case exchange.KeyHMAC:
		return 64
	case exchange.KeyEd25519:
		return 88 * 3
	default:
		return 700 * 3
	}
}

// appendSignature appends the signature of prefix+payload to dst, encoded as
// Binance REST expects: hex for HMAC, percent-encoded base64 otherwise.
// tmp, when not nil, is room to join prefix and payload in.
func (s *signer) appendSignature(dst []byte, key *exchange.Credential, prefix string, payload, tmp []byte) ([]byte, error) {
	switch key.Kind {
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return nil, errors.New("binance: sign: empty hmac secret")
		}
		sum := s.macs.sum(key.Secret, prefix, payload)
		return hex.AppendEncode(dst, sum[:]), nil
	case exchange.KeyEd25519, exchange.KeyRSA:
		msg := payload
		if prefix != "" {
			msg = append(append(tmp[:0], prefix...), payload...)
		}
		sig, err := signAsymmetric(key, msg)
		if err != nil {
			return nil, err
		}
		return appendEscapedBase64(dst, sig), nil
	default:
		return nil, fmt.Errorf("binance: sign: unsupported key kind %q", key.Kind)
	}
}

// signAsymmetric signs msg with an Ed25519 or RSA (PKCS#1 v1.5, SHA-256)
// private key. The key may live in an HSM: only crypto.Signer is used.
func signAsymmetric(key *exchange.Credential, msg []byte) ([]byte, error) {
	if key.PrivateKey == nil {
		return nil, errors.New("binance: sign: no private key")
	}
	switch key.Kind {
	case exchange.KeyEd25519:
		if pk, ok := key.PrivateKey.(ed25519.PrivateKey); ok && len(pk) == ed25519.PrivateKeySize {
			// An in-memory key: the same signature, without the copy of
			// the public key that Public makes.
			return ed25519.Sign(pk, msg), nil
		}
		if _, ok := key.PrivateKey.Public().(ed25519.PublicKey); !ok {
			return nil, errors.New("binance: sign: key is not ed25519")
		}
		sig, err := key.PrivateKey.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("binance: sign: %w", err)
		}
		return sig, nil
	case exchange.KeyRSA:
		if _, ok := key.PrivateKey.Public().(*rsa.PublicKey); !ok {
			return nil, errors.New("binance: sign: key is not rsa")
		}
		d := sha256.Sum256(msg)
		sig, err := key.PrivateKey.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("binance: sign: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("binance: sign: unsupported key kind %q", key.Kind)
}

// appendEscapedBase64 appends base64(sig) with '+', '/' and '=' percent-encoded,
// as url.QueryEscape would.
func appendEscapedBase64(dst, sig []byte) []byte {
	var tmp [1024]byte
	var enc []byte
	if n := base64.StdEncoding.EncodedLen(len(sig)); n <= len(tmp) {
		enc = tmp[:n]
	} else {
		enc = make([]byte, n)
	}
	base64.StdEncoding.Encode(enc, sig)
	for _, c := range enc {
		switch c {
		case '+':
			dst = append(dst, "%2B"...)
		case '/':
			dst = append(dst, "%2F"...)
		case '=':
			dst = append(dst, "%3D"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func hasAuthParamBytes(b []byte) bool {
	return bytes.Contains(b, []byte("ignature")) || bytes.Contains(b, []byte("imestamp")) ||
		bytes.Contains(b, []byte("ecvWindow")) || bytes.IndexByte(b, '%') >= 0
}

// hasAuthParam says cheaply whether raw may hold a parameter the signer owns.
func hasAuthParam(raw string) bool {
	return strings.Contains(raw, "ignature") || strings.Contains(raw, "imestamp") ||
		strings.Contains(raw, "ecvWindow") || strings.Contains(raw, "%")
}

func stripAuthParams(raw string) string {
	if raw == "" || !hasAuthParam(raw) {
		return raw
	}
	return exchange.RemoveParams(raw, paramSignature, paramTimestamp, paramRecvWindow)
}

// validAPIKey accepts what can safely travel in a header: 1 to 256 visible
// ASCII characters.
func validAPIKey(k string) bool {
	if len(k) == 0 || len(k) > 256 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return false
		}
	}
	return true
}

func deleteHeader(h http.Header, canonical string) {
	delete(h, canonical)
	for k := range h {
		if strings.EqualFold(k, canonical) {
			delete(h, k)
		}
	}
}

// WSPayload returns the string a Binance WebSocket API request signs: every
// parameter but signature, sorted by name, as name=value joined by '&', with
// values as raw UTF-8 (not percent-encoded). Spec §2.1 f.
func WSPayload(params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != paramSignature {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String()
}

// SignWSParams returns the signature of a Binance WebSocket API request's
// params (which must already hold apiKey and timestamp): hex HMAC-SHA256 for
// HMAC keys, plain base64 for Ed25519 and RSA keys (WS API JSON carries it
// unescaped).
func SignWSParams(params map[string]string, key *exchange.Credential) (string, error) {
	if key == nil {
		return "", errors.New("binance: sign ws: no key")
	}
	payload := []byte(WSPayload(params))
	switch key.Kind {
	case exchange.KeyHMAC:
		if len(key.Secret) == 0 {
			return "", errors.New("binance: sign ws: empty hmac secret")
		}
		return hex.EncodeToString(exchange.HMACSHA256(nil, key.Secret, payload)), nil
	case exchange.KeyEd25519, exchange.KeyRSA:
		sig, err := signAsymmetric(key, payload)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(sig), nil
	}
	return "", fmt.Errorf("binance: sign ws: unsupported key kind %q", key.Kind)
}
