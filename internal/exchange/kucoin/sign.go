package kucoin

import (
	"crypto/hmac"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Header names in canonical MIME form, so setting them never allocates a
// canonicalized copy.
const (
	hdrKey        = "Kc-Api-Key"
	hdrSign       = "Kc-Api-Sign"
	hdrTimestamp  = "Kc-Api-Timestamp"
	hdrPassphrase = "Kc-Api-Passphrase"
	hdrKeyVersion = "Kc-Api-Key-Version"
	hdrContent    = "Content-Type"
)

// authHeaders are every header that carries a bot's auth material, including
// the broker attribution headers ccxt adds (spec §15.8), which are bound to
// the bot's own key and timestamp.
var authHeaders = []string{
	hdrKey, hdrSign, hdrTimestamp, hdrPassphrase, hdrKeyVersion,
	"Kc-Api-Partner", "Kc-Api-Partner-Sign", "Kc-Api-Partner-Verify", "Kc-Broker-Name",
}

// window is how far KC-API-TIMESTAMP may be from the server clock (spec §8a).
const window = 5 * time.Second

// keyVersion is the key version keywarden signs with: the passphrase is sent
// HMAC-encoded, never in clear.
const keyVersion = "2"

// signer signs with key version 2 (spec §8a).
type signer struct{}

var _ exchange.Signer = signer{}

// Sign sets KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE and
// KC-API-KEY-VERSION on r. The signature covers the timestamp, the method,
// the path with the decoded query and the exact body bytes.
func (signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if key == nil || key.APIKey == "" || len(key.Secret) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kucoin: sign: incomplete credential")
	}
	if len(key.Passphrase) == 0 {
		return exchange.Errorf(exchange.ErrAuth, "kucoin: sign: credential has no passphrase")
	}
	q, err := exchange.UnescapedQuery(r.RawQuery)
	if err != nil {
		return err
	}
	// One string holds timestamp, signature and encoded passphrase, in the
	// request's scratch when it has one.
	buf := strconv.AppendInt(r.SignBuf(20+2*44), now.UnixMilli(), 10)
	n := len(buf)
	m := exchange.NewHMACSHA256()
	writePrehash(m, buf, r.Method, r.Path, q, r.Body)
	buf = base64.StdEncoding.AppendEncode(buf, m.Sum(key.Secret))
	m.Release()
	m = exchange.NewHMACSHA256()
	m.Write(key.Passphrase)
	buf = base64.StdEncoding.AppendEncode(buf, m.Sum(key.Secret))
	m.Release()
	all := r.SignString(buf)

	if r.Header == nil {
		r.Header = make(map[string][]string, 6)
	}
	r.SetSignedHeader(hdrKey, key.APIKey)
	r.SetSignedHeader(hdrSign, all[n:n+44])
	r.SetSignedHeader(hdrTimestamp, all[:n])
	r.SetSignedHeader(hdrPassphrase, all[n+44:])
	r.SetSignedHeader(hdrKeyVersion, keyVersion)
	if len(r.Body) > 0 {
		r.SetSignedHeader(hdrContent, "application/json")
	}
	return nil
}

// writePrehash writes timestamp + METHOD + path (+ "?" + query) + body.
func writePrehash(m *exchange.MAC, ts []byte, method, path, query string, body []byte) {
	m.Write(ts)
	m.WriteString(method)
	m.WriteString(path)
	if query != "" {
		m.WriteByte('?')
		m.WriteString(query)
	}
	m.Write(body)
}

// mac returns base64(HMAC-SHA256(secret, msg parts)) for the verifier and
// the simulator.
func mac(secret []byte, ts, method, path, query string, body []byte) string {
	m := exchange.NewHMACSHA256()
	defer m.Release()
	writePrehash(m, []byte(ts), method, path, query, body)
	return base64.StdEncoding.EncodeToString(m.Sum(secret))
}

// encodePassphrase returns the key version 2/3 form of a passphrase:
// base64(HMAC-SHA256(secret, passphrase)).
func encodePassphrase(secret, passphrase []byte) string {
	return base64.StdEncoding.EncodeToString(exchange.HMACSHA256(nil, secret, passphrase))
}

// verifier checks a bot's KuCoin-style request against its client
// credential.
type verifier struct{}

var _ exchange.Verifier = verifier{}

// Messages whose KuCoin error code differs from the default of their kind.
const (
	msgMissingHeader = "Any of KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE is missing in your request header."
	msgBadKeyVersion = "KC-API-KEY-VERSION must be 2 or 3."
)

// ClientKey returns KC-API-KEY. A request with none of the KuCoin auth
// headers is a public call.
func (verifier) ClientKey(r *exchange.Request) (string, error) {
	key, err := single(r, hdrKey)
	if err != nil {
		return "", err
	}
	if key == "" {
		for _, h := range authHeaders[1:4] {
			if len(r.Header[h]) > 0 {
				return "", exchange.Errorf(exchange.ErrAuth, msgMissingHeader)
			}
		}
		return "", nil
	}
	if len(key) > 128 || !printable(key) {
		return "", exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-KEY")
	}
	return key, nil
}

// Verify checks KC-API-KEY, the 5-second timestamp window, the HMAC-encoded
// passphrase and the signature, in that order, and returns a copy of r with
// every KuCoin auth header removed.
func (v verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	if client == nil || len(client.Secret) == 0 || len(client.Passphrase) == 0 {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-KEY")
	}
	key, err := v.ClientKey(r)
	if err != nil {
		return nil, err
	}
	var vals [4]string
	for i, h := range []string{hdrSign, hdrTimestamp, hdrPassphrase, hdrKeyVersion} {
		s, err := single(r, h)
		if err != nil {
			return nil, err
		}
		vals[i] = s
	}
	sig, ts, pass, ver := vals[0], vals[1], vals[2], vals[3]
	if key == "" || sig == "" || ts == "" || pass == "" {
		return nil, exchange.Errorf(exchange.ErrAuth, msgMissingHeader)
	}
	if !hmac.Equal([]byte(key), []byte(client.APIKey)) {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-KEY")
	}
	if err := checkTimestamp(ts, now); err != nil {
		return nil, err
	}
	if ver != "2" && ver != "3" {
		return nil, exchange.Errorf(exchange.ErrAuth, msgBadKeyVersion)
	}
	if !hmac.Equal([]byte(pass), []byte(encodePassphrase(client.Secret, client.Passphrase))) {
		return nil, exchange.Errorf(exchange.ErrPassphrase, "Invalid KC-API-PASSPHRASE")
	}
	if !checkSignature(r, client.Secret, ts, sig, true) {
		return nil, exchange.Errorf(exchange.ErrAuth, "Invalid KC-API-SIGN")
	}
	out := r.Clone()
	for _, h := range authHeaders {
		out.Header.Del(h)
	}
	return out, nil
}

// checkSignature compares sig with the MAC over the decoded query (KuCoin's
// documented rule). When lenient, a signature over the query exactly as
// sent is accepted too, for clients that sign the wire bytes.
func checkSignature(r *exchange.Request, secret []byte, ts, sig string, lenient bool) bool {
	q, err := exchange.UnescapedQuery(r.RawQuery)
	if err != nil {
		q = r.RawQuery
	}
	ok := hmac.Equal([]byte(sig), []byte(mac(secret, ts, r.Method, r.Path, q, r.Body)))
	if !ok && lenient && q != r.RawQuery {
		ok = hmac.Equal([]byte(sig), []byte(mac(secret, ts, r.Method, r.Path, r.RawQuery, r.Body)))
	}
	return ok
}

// checkTimestamp accepts a millisecond timestamp within the window of now.
func checkTimestamp(ts string, now time.Time) error {
	if len(ts) > 16 || !allDigits(ts) {
		return exchange.Errorf(exchange.ErrTimestamp, "Invalid KC-API-TIMESTAMP")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return exchange.Errorf(exchange.ErrTimestamp, "Invalid KC-API-TIMESTAMP")
	}
	d := time.Duration(now.UnixMilli()-ms) * time.Millisecond
	if d > window || d < -window {
		return exchange.Errorf(exchange.ErrTimestamp, "Invalid KC-API-TIMESTAMP")
	}
	return nil
}

// single returns the only value of header h, "" when absent; a repeated
// header is rejected so no two parsers can read different values.
func single(r *exchange.Request, h string) (string, error) {
	vs := r.Header.Values(h)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", exchange.Errorf(exchange.ErrAuth, "header %s given more than once", h)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
