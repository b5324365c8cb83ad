package coinbase

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/exchange"
)

// JWT algorithms Coinbase CDP keys use (spec §3.1).
const (
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// maxJWT bounds the bearer token keywarden parses.
const maxJWT = 8 << 10

// jwtLifetime is how long a CDP JWT lives: exp = nbf + 120 s (spec §3.1).
const jwtLifetime = 120

// claimStyle is the claim shape a JWT is built in; Coinbase accepts the
// official SDK's and ccxt's (spec §3.1, §15.10).
type claimStyle int

const (
	styleSDK  claimStyle = iota // coinbase-advanced-py: sub, iss cdp, nbf, exp, uri
	styleCCXT                   // ccxt: aud, iss, nbf, exp, sub, iat, uri or uris
)

// appendJWT appends the signing input header.payload of a CDP JWT to out,
// building the header and claims in tmp (the signer passes room in the
// request's scratch; nil works too). nonce is the hex nonce header; uri is
// "<METHOD> <host><path>".
func appendJWT(out, tmp []byte, style claimStyle, alg, kid, nonce, uri string, now int64) []byte {
	h := tmp[:0]
	var c []byte
	switch style {
	case styleCCXT:
		h = append(h, `{"alg":`...)
		h = appendJSONString(h, alg)
		h = append(h, `,"typ":"JWT","kid":`...)
		h = appendJSONString(h, kid)
		h = append(h, `,"nonce":`...)
		h = appendJSONString(h, nonce)
		h = append(h, '}')
		c = h[len(h):]
		if alg == algEdDSA {
			c = append(c, `{"aud":["cdp_service"],"iss":"cdp","nbf":`...)
		} else {
			c = append(c, `{"aud":["retail_rest_api_proxy"],"iss":"coinbase-cloud","nbf":`...)
		}
		c = strconv.AppendInt(c, now, 10)
		c = append(c, `,"exp":`...)
		c = strconv.AppendInt(c, now+jwtLifetime, 10)
		c = append(c, `,"sub":`...)
		c = appendJSONString(c, kid)
		c = append(c, `,"iat":`...)
		c = strconv.AppendInt(c, now, 10)
		if alg == algEdDSA {
			c = append(c, `,"uris":[`...)
			c = appendJSONString(c, uri)
			c = append(c, "]}"...)
		} else {
			c = append(c, `,"uri":`...)
			c = appendJSONString(c, uri)
			c = append(c, '}')
		}
	default:
		h = append(h, `{"alg":`...)
		h = appendJSONString(h, alg)
		h = append(h, `,"kid":`...)
		h = appendJSONString(h, kid)
		h = append(h, `,"nonce":`...)
		h = appendJSONString(h, nonce)
		h = append(h, `,"typ":"JWT"}`...)
		c = h[len(h):]
		c = append(c, `{"sub":`...)
		c = appendJSONString(c, kid)
		c = append(c, `,"iss":"cdp","nbf":`...)
		c = strconv.AppendInt(c, now, 10)
		c = append(c, `,"exp":`...)
		c = strconv.AppendInt(c, now+jwtLifetime, 10)
		c = append(c, `,"uri":`...)
		c = appendJSONString(c, uri)
		c = append(c, '}')
	}
	enc := base64.RawURLEncoding
	if out == nil {
		out = make([]byte, 0, enc.EncodedLen(len(h))+1+enc.EncodedLen(len(c))+1+enc.EncodedLen(64))
	}
	out = enc.AppendEncode(out, h)
	out = append(out, '.')
	return enc.AppendEncode(out, c)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// signJWT signs the signing input with key and returns the whole token.
// ES256 signatures are converted from ASN.1 to JOSE r||s (spec §18).
func signJWT(input []byte, alg string, key crypto.Signer) (string, error) {
	tok, err := appendJWTSignature(input, input, alg, key)
	if err != nil {
		return "", err
	}
	return string(tok), nil
}

// appendJWTSignature appends '.' and the signature of input to out (which
// ends with input).
func appendJWTSignature(out, input []byte, alg string, key crypto.Signer) ([]byte, error) {
	var sig []byte
	switch alg {
	case algEdDSA:
		s, err := key.Sign(nil, input, crypto.Hash(0))
		if err != nil {
			return nil, err
		}
		sig = s
	case algES256:
		digest := sha256.Sum256(input)
		der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		var rs [64]byte
		if !derToJOSE(der, &rs) {
			return nil, errors.New("malformed ecdsa signature")
		}
		sig = rs[:]
	default:
		return nil, errors.New("unsupported algorithm")
	}
	out = append(out, '.')
	return base64.RawURLEncoding.AppendEncode(out, sig), nil
}

// derToJOSE converts a DER ECDSA P-256 signature, SEQUENCE { INTEGER r,
// INTEGER s }, to JOSE's fixed-width r||s in out. It accepts only minimal,
// positive integers of at most 32 bytes and nothing after the sequence.
func derToJOSE(der []byte, out *[64]byte) bool {
	if len(der) < 2 || der[0] != 0x30 {
		return false
	}
	n, rest := int(der[1]), der[2:]
	if der[1] == 0x81 && len(der) >= 3 && der[2] >= 0x80 {
		n, rest = int(der[2]), der[3:]
	} else if der[1] >= 0x80 {
		return false
	}
	if n != len(rest) {
		return false
	}
	clear(out[:])
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 {
			return false
		}
		l := int(rest[1])
		if l == 0 || l > 33 || len(rest) < 2+l {
			return false
		}
		v := rest[2 : 2+l]
		if v[0]&0x80 != 0 || (len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0) {
			return false // negative or not minimal
		}
		if len(v) == 33 {
			v = v[1:]
		}
		copy(out[i*32+32-len(v):(i+1)*32], v)
		rest = rest[2+l:]
	}
	return len(rest) == 0
}

// jwt is a parsed CDP bearer token.
type jwt struct {
	alg, kid, typ string
	sub, iss      string
	nbf, exp      int64
	hasNBF        bool
	uris          []string
	input         string // header.payload, the signed bytes
	sig           []byte
}

var errToken = errors.New("malformed token")

// parseJWT parses a compact JWS strictly: three base64url parts without
// padding, header and claims as JSON objects without duplicate keys.
func parseJWT(tok string) (*jwt, error) {
	if len(tok) > maxJWT || !utf8.ValidString(tok) {
		return nil, errToken
	}
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errToken
	}
	c, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return nil, errToken
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err1 := enc.DecodeString(h)
	cb, err2 := enc.DecodeString(c)
	sig, err3 := enc.DecodeString(s)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errToken
	}
	hv, err := exchange.DecodeJSON(hb, exchange.MaxJSONDepth)
	if err != nil {
		return nil, errToken
	}
	cv, err := exchange.DecodeJSON(cb, exchange.MaxJSONDepth)
	if err != nil {
		return nil, errToken
	}
	hdr, ok1 := hv.(map[string]any)
	claims, ok2 := cv.(map[string]any)
	if !ok1 || !ok2 {
		return nil, errToken
	}
	t := &jwt{input: tok[:len(h)+1+len(c)], sig: sig}
	t.alg, _ = hdr["alg"].(string)
	t.kid, _ = hdr["kid"].(string)
	t.typ, _ = hdr["typ"].(string)
	if _, crit := hdr["crit"]; crit {
		return nil, errToken
	}
	t.sub, _ = claims["sub"].(string)
	t.iss, _ = claims["iss"].(string)
	var okExp bool
	t.exp, okExp = intClaim(claims["exp"])
	if !okExp {
		return nil, errToken
	}
	if v, present := claims["nbf"]; present {
		if t.nbf, t.hasNBF = intClaim(v); !t.hasNBF {
			return nil, errToken
		}
	}
	if u, ok := claims["uri"].(string); ok {
		t.uris = append(t.uris, u)
	} else if _, present := claims["uri"]; present {
		return nil, errToken
	}
	if us, present := claims["uris"]; present {
		list, ok := us.([]any)
		if !ok {
			return nil, errToken
		}
		for _, u := range list {
			s, ok := u.(string)
			if !ok {
				return nil, errToken
			}
			t.uris = append(t.uris, s)
		}
	}
	return t, nil
}

// jwtKid returns the kid header of tok without checking anything else.
func jwtKid(tok string) (string, error) {
	h, _, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > maxJWT {
		return "", errToken
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return "", errToken
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Kid == "" {
		return "", errToken
	}
	return hdr.Kid, nil
}

func intClaim(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}

// verifySignature checks t's signature with pub, which must match t's alg.
func (t *jwt) verifySignature(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return t.alg == algEdDSA && len(k) == ed25519.PublicKeySize && ed25519.Verify(k, []byte(t.input), t.sig)
	case *ecdsa.PublicKey:
		if t.alg != algES256 || k.Curve != elliptic.P256() || len(t.sig) != 64 {
			return false
		}
		digest := sha256.Sum256([]byte(t.input))
		r, s := new(big.Int).SetBytes(t.sig[:32]), new(big.Int).SetBytes(t.sig[32:])
		return ecdsa.Verify(k, digest[:], r, s)
	}
	return false
}

// algFor returns the JWT alg for a key kind.
func algFor(kind exchange.KeyKind) string {
	switch kind {
	case exchange.KeyEd25519:
		return algEdDSA
	case exchange.KeyECDSA:
		return algES256
	}
	return ""
}

// ParsePrivateKey reads a CDP API key secret as Coinbase hands it out (spec
// §3.1): an EC P-256 key in SEC1 or PKCS#8 PEM (ES256), or an Ed25519 key as
// base64 of seed||public (64 bytes), base64 of the 32-byte seed, or PKCS#8
// PEM. Errors never quote the secret.
func ParsePrivateKey(secret string) (crypto.Signer, exchange.KeyKind, error) {
	s := strings.TrimSpace(strings.ReplaceAll(secret, `\n`, "\n"))
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, "", errors.New("coinbase: parse key: malformed PEM")
		}
		switch block.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil || k.Curve != elliptic.P256() {
				return nil, "", errors.New("coinbase: parse key: not a P-256 EC key")
			}
			return k, exchange.KeyECDSA, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, "", errors.New("coinbase: parse key: malformed PKCS#8 key")
			}
			switch k := k.(type) {
			case ed25519.PrivateKey:
				return k, exchange.KeyEd25519, nil
			case *ecdsa.PrivateKey:
				if k.Curve == elliptic.P256() {
					return k, exchange.KeyECDSA, nil
				}
			}
			return nil, "", errors.New("coinbase: parse key: unsupported key type")
		}
		return nil, "", errors.New("coinbase: parse key: unsupported PEM type")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, "", errors.New("coinbase: parse key: not PEM or base64")
	}
	defer clear(raw)
	switch len(raw) {
	case ed25519.SeedSize, ed25519.PrivateKeySize:
		k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if len(raw) == ed25519.PrivateKeySize && !ed25519.PublicKey(raw[32:]).Equal(k.Public()) {
			return nil, "", errors.New("coinbase: parse key: ed25519 public half does not match")
		}
		return k, exchange.KeyEd25519, nil
	}
	return nil, "", errors.New("coinbase: parse key: unsupported key length")
}
