package binance

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Binance's own error texts (spec §16.7); errorWriter maps them to codes.
const (
	msgBadSignature  = "Signature for this request is not valid."
	msgKeyFormat     = "API-key format invalid."
	msgInvalidKey    = "Invalid API-key, IP, or permissions for action."
	msgOutsideWindow = "Timestamp for this request is outside of the recvWindow."
	msgAhead         = "Timestamp for this request was 1000ms ahead of the server's time."
	msgRecvWindowMax = "recvWindow must be less than 60000"
	msgMandatory     = "Mandatory parameter '%s' was not sent, was empty/null, or malformed."
	msgIllegal       = "Illegal characters found in parameter '%s'; legal range is '%s'."
	msgDuplicate     = "Duplicate values for parameter '%s'."
	msgContentType   = "Unsupported Content-Type; send parameters as application/x-www-form-urlencoded."
	msgTooMany       = "Too many parameters sent for this endpoint."
)

// maxParams bounds the parameters of one request (query and body together)
// before anything parses them; no Binance endpoint takes nearly as many.
const maxParams = 128

// parseParams parses the raw query and form body strictly, after checking
// the parameter count so that hostile input cannot make parsing quadratic.
// The parameters are appended to qbuf and bbuf (nil: new slices).
func parseParams(r *exchange.Request, qbuf, bbuf exchange.Params) (qp, bp exchange.Params, e *exchange.Error) {
	if strings.Count(r.RawQuery, "&")+bytes.Count(r.Body, []byte("&")) >= maxParams {
		return nil, nil, exchange.Errorf(exchange.ErrBadRequest, msgTooMany)
	}
	qp, err := exchange.AppendQuery(qbuf, r.RawQuery)
	if err != nil {
		return nil, nil, exchange.AsError(err)
	}
	bp, err = exchange.AppendQuery(bbuf, string(r.Body))
	if err != nil {
		return nil, nil, exchange.AsError(err)
	}
	return qp, bp, nil
}

// Time rules (spec §2.1 a): accept iff timestamp < now+1s and
// now-timestamp <= recvWindow; recvWindow defaults to 5 s, at most 60 s.
const (
	defaultRecvWindow = 5000 * time.Millisecond
	maxRecvWindow     = 60000 * time.Millisecond
	maxAhead          = time.Second
)

// signedRequest is the auth material found in a request's raw bytes.
type signedRequest struct {
	apiKey string
	// payloadQuery and payloadBody are the raw query and body without the
	// trailing signature parameter: what the signature covers, concatenated.
	payloadQuery string
	payloadBody  []byte
	signature    string // decoded value
	timestamp    time.Time
	recvWindow   time.Duration
}

// apiKeyOf returns the request's X-MBX-APIKEY, "" when absent.
func apiKeyOf(h http.Header) (string, *exchange.Error) {
	key, n := "", 0
	for k, v := range h {
		if strings.EqualFold(k, headerAPIKey) {
			n += len(v)
			if len(v) > 0 {
				key = v[0]
			}
		}
	}
	switch {
	case n == 0:
		return "", nil
	case n > 1 || !validAPIKey(key):
		return "", exchange.Errorf(exchange.ErrAuth, msgKeyFormat)
	}
	return key, nil
}

// formBody says whether a body may be read as a form, judging by its
// Content-Type: absent or application/x-www-form-urlencoded.
func formBody(h http.Header, body []byte) *exchange.Error {
	if len(body) == 0 {
		return nil
	}
	ct := h.Get(headerContentTyp)
	if ct == "" {
		return nil
	}
	if ct == contentTypeForm {
		return nil // the common spelling, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != contentTypeForm {
		return exchange.Errorf(exchange.ErrBadRequest, msgContentType)
	}
	return nil
}

// parseSigned reads the auth material from the raw query and body. Binance
// REST requires signature to be the last parameter of the part that holds
// it; timestamp, recvWindow and signature may each appear once in all.
func parseSigned(r *exchange.Request) (signedRequest, *exchange.Error) {
	key, e := apiKeyOf(r.Header)
	if e != nil {
		return signedRequest{}, e
	}
	if key == "" {
		return signedRequest{}, exchange.Errorf(exchange.ErrAuth, msgKeyFormat)
	}
	if e := formBody(r.Header, r.Body); e != nil {
		return signedRequest{}, e
	}
	// The parameters are needed only here: parsed into arrays on this
	// frame, not new slices, when they are few.
	var qa, ba [16]exchange.Param
	qp, bp, e := parseParams(r, qa[:0], ba[:0])
	if e != nil {
		return signedRequest{}, e
	}
	s := signedRequest{apiKey: key, payloadQuery: r.RawQuery, payloadBody: r.Body}
	var ts, rw string
	seen := 0
	for _, ps := range []exchange.Params{qp, bp} {
		for _, p := range ps {
			switch p.Name {
			case paramSignature, paramTimestamp, paramRecvWindow:
				seen++
			default:
				// Another spelling of an auth parameter ("signAtUre") is
				// refused as the describer refuses it: a duplicate to a
				// reader that folds case, and never forwarded.
				for _, auth := range []string{paramSignature, paramTimestamp, paramRecvWindow} {
					if strings.EqualFold(p.Name, auth) {
						return signedRequest{}, exchange.Errorf(exchange.ErrBadRequest, msgDuplicate, auth)
					}
				}
				continue
			}
			if qp.Has(p.Name) && bp.Has(p.Name) {
				return signedRequest{}, exchange.Errorf(exchange.ErrBadRequest, msgDuplicate, p.Name)
			}
			switch p.Name {
			case paramSignature:
				s.signature = p.Value
			case paramTimestamp:
				ts = p.Value
			case paramRecvWindow:
				rw = p.Value
			}
		}
	}
	if s.signature == "" {
		return signedRequest{}, exchange.Errorf(exchange.ErrAuth, msgMandatory, paramSignature)
	}
	switch {
	case qp.Has(paramSignature):
		q, ok := cutLastParam(r.RawQuery, paramSignature)
		if !ok {
			return signedRequest{}, exchange.Errorf(exchange.ErrAuth, msgBadSignature)
		}
		s.payloadQuery = q
	default:
		n, ok := cutLastParamBytes(r.Body, paramSignature)
		if !ok {
			return signedRequest{}, exchange.Errorf(exchange.ErrAuth, msgBadSignature)
		}
		s.payloadBody = r.Body[:n]
	}
	if ts == "" {
		return signedRequest{}, exchange.Errorf(exchange.ErrAuth, msgMandatory, paramTimestamp)
	}
	t, ok := parseTimestamp(ts)
	if !ok {
		return signedRequest{}, exchange.Errorf(exchange.ErrBadRequest, msgIllegal, paramTimestamp, "^[0-9]{1,16}$")
	}
	s.timestamp = t
	s.recvWindow = defaultRecvWindow
	if rw != "" {
		d, ok := parseRecvWindow(rw)
		if !ok {
			return signedRequest{}, exchange.Errorf(exchange.ErrBadRequest, msgIllegal, paramRecvWindow, "^[0-9]{1,5}(\\.[0-9]{1,3})?$")
		}
		if d > maxRecvWindow {
			return signedRequest{}, exchange.Errorf(exchange.ErrBadRequest, msgRecvWindowMax)
		}
		s.recvWindow = d
	}
	return s, nil
}

// cutLastParam returns raw without its last parameter, which must be called
// name; ok is false otherwise.
func cutLastParam(raw, name string) (string, bool) {
	i := strings.LastIndexByte(raw, '&')
	last := raw[i+1:]
	n, _, _ := strings.Cut(last, "=")
	if dn, err := url.QueryUnescape(n); err != nil || dn != name {
		return "", false
	}
	if i < 0 {
		return "", true
	}
	return raw[:i], true
}

// cutLastParamBytes is cutLastParam for a body: it returns the length of
// the body without its last parameter, without converting the body to a
// string.
func cutLastParamBytes(raw []byte, name string) (int, bool) {
	i := bytes.LastIndexByte(raw, '&')
	n := raw[i+1:]
	if eq := bytes.IndexByte(n, '='); eq >= 0 {
		n = n[:eq]
	}
	if !nameIs(n, name) {
		return 0, false
	}
	return max(i, 0), true
}

// nameIs says whether the raw parameter name n, decoded as url.QueryUnescape
// decodes it, is name. A name without escapes is compared without a copy.
func nameIs(n []byte, name string) bool {
	if bytes.ContainsAny(n, "%+") {
		dn, err := url.QueryUnescape(string(n))
		return err == nil && dn == name
	}
	return string(n) == name
}

// parseTimestamp reads milliseconds, or microseconds when the value has more
// than 14 digits (spec §2.1 a).
func parseTimestamp(s string) (time.Time, bool) {
	if len(s) == 0 || len(s) > 16 || !allDigits(s) {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if n >= 1e14 {
		return time.UnixMicro(n), true
	}
	return time.UnixMilli(n), true
}

// parseRecvWindow reads milliseconds with at most three decimals.
func parseRecvWindow(s string) (time.Duration, bool) {
	ip, fp, dot := strings.Cut(s, ".")
	if ip == "" || len(ip) > 9 || !allDigits(ip) || (dot && (fp == "" || len(fp) > 3 || !allDigits(fp))) {
		return 0, false
	}
	ms, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return 0, false
	}
	d := time.Duration(ms) * time.Millisecond
	if dot {
		frac, _ := strconv.ParseInt((fp + "00")[:3], 10, 64)
		d += time.Duration(frac) * time.Microsecond
	}
	return d, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkWindow applies Binance's timing rule at now.
func (s *signedRequest) checkWindow(now time.Time) *exchange.Error {
	if !s.timestamp.Before(now.Add(maxAhead)) {
		return exchange.Errorf(exchange.ErrTimestamp, msgAhead)
	}
	if now.Sub(s.timestamp) > s.recvWindow {
		return exchange.Errorf(exchange.ErrTimestamp, msgOutsideWindow)
	}
	return nil
}

// checkSignature verifies the signature with cred in constant time: HMAC
// hex (case-insensitive), Ed25519 or RSA PKCS#1 v1.5 base64.
func (s *signedRequest) checkSignature(cred *exchange.Credential, macs *macPool) *exchange.Error {
	if !s.signatureMatches(cred, macs) {
		return exchange.Errorf(exchange.ErrAuth, msgBadSignature)
	}
	return nil
}

// signatureMatches reports whether s carries a valid signature by cred.
func (s *signedRequest) signatureMatches(cred *exchange.Credential, macs *macPool) bool {
	if cred == nil {
		return false
	}
	switch cred.Kind {
	case exchange.KeyHMAC:
		if len(cred.Secret) == 0 || len(s.signature) != 2*sha256.Size {
			return false
		}
		var got [sha256.Size]byte
		if _, err := hex.Decode(got[:], []byte(s.signature)); err != nil {
			return false
		}
		want := macs.sum(cred.Secret, s.payloadQuery, s.payloadBody)
		if !hmac.Equal(got[:], want[:]) {
			return false
		}
		return true
	case exchange.KeyEd25519:
		pub, ok := cred.PublicKey.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return false
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(s.signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return false
		}
		if !ed25519.Verify(pub, s.payload(), sig) {
			return false
		}
		return true
	case exchange.KeyRSA:
		pub, ok := cred.PublicKey.(*rsa.PublicKey)
		if !ok {
			return false
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(s.signature)
		if err != nil {
			return false
		}
		h := sha256.New()
		h.Write([]byte(s.payloadQuery))
		h.Write(s.payloadBody)
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h.Sum(nil), sig) != nil {
			return false
		}
		return true
	}
	return false
}

func (s *signedRequest) payload() []byte {
	b := make([]byte, 0, len(s.payloadQuery)+len(s.payloadBody))
	return append(append(b, s.payloadQuery...), s.payloadBody...)
}

// verifier checks bots' requests with Binance's own scheme against a
// keywarden client credential. It is safe for concurrent use.
type verifier struct {
	macs *macPool
}

// ClientKey returns the X-MBX-APIKEY of a signed request. A request with
// no signature parameter is a public call ("" and nil) even when it carries
// the header: python-binance and Binance's own connectors send their key on
// every request, public ones included, and keywarden cannot authenticate a
// key-only (USER_STREAM) call, so such calls get only public scope. A
// signature without a key, or a malformed key, is an auth error.
func (v *verifier) ClientKey(r *exchange.Request) (string, error) {
	key, e := apiKeyOf(r.Header)
	if e != nil {
		return "", e
	}
	signed := mentionsParam(r.RawQuery, paramSignature) || mentionsParamBytes(r.Body, paramSignature)
	switch {
	case !signed && key != "" && keyOnly(r.Path):
		return key, nil // USER_STREAM: the API key alone authenticates
	case !signed:
		return "", nil
	case key == "":
		return "", exchange.Errorf(exchange.ErrAuth, msgKeyFormat)
	}
	return key, nil
}

// mentionsParam says whether raw has a parameter whose decoded name is name.
func mentionsParam(raw, name string) bool {
	for part := range strings.SplitSeq(raw, "&") {
		n, _, _ := strings.Cut(part, "=")
		if dn, err := url.QueryUnescape(n); err == nil && dn == name {
			return true
		}
	}
	return false
}

// mentionsParamBytes is mentionsParam for a body, without converting it to
// a string.
func mentionsParamBytes(raw []byte, name string) bool {
	for {
		part := raw
		amp := bytes.IndexByte(raw, '&')
		if amp >= 0 {
			part = raw[:amp]
		}
		if eq := bytes.IndexByte(part, '='); eq >= 0 {
			part = part[:eq]
		}
		if nameIs(part, name) {
			return true
		}
		if amp < 0 {
			return false
		}
		raw = raw[amp+1:]
	}
}

// Verify checks r's key, signature and time window against client and
// returns a copy of r without X-MBX-APIKEY, signature, timestamp and
// recvWindow; the rest of the query and body keep their exact bytes.
func (v *verifier) Verify(r *exchange.Request, client *exchange.Credential, now time.Time) (*exchange.Request, error) {
	if v.KeyOnly(r) {
		return verifyKeyOnly(r, client)
	}
	s, e := parseSigned(r)
	if e != nil {
		return nil, e
	}
	if client == nil || subtle.ConstantTimeCompare([]byte(s.apiKey), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, msgInvalidKey)
	}
	if e := s.checkSignature(client, v.macs); e != nil {
		return nil, e
	}
	if e := s.checkWindow(now); e != nil {
		return nil, e
	}
	// The copy is built directly: the header without the API key, the
	// query and body without the auth parameters, each copied once.
	out := *r
	out.Header = headerWithout(r.Header, headerAPIKey)
	out.RawQuery = exchange.RemoveParams(r.RawQuery, paramSignature, paramTimestamp, paramRecvWindow)
	out.Body = nil
	if len(r.Body) > 0 {
		out.Body = exchange.AppendWithoutParams(make([]byte, 0, len(r.Body)), r.Body, paramSignature, paramTimestamp, paramRecvWindow)
		if len(out.Body) == 0 {
			out.Body = nil
		}
	}
	return &out, nil
}

// headerWithout returns a copy of h without the header canonical (in any
// spelling). The value slices are shared: neither side changes them in
// place.
func headerWithout(h http.Header, canonical string) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if k == canonical || strings.EqualFold(k, canonical) {
			continue
		}
		out[k] = vs
	}
	return out
}

// keyOnlyPaths are Binance's USER_STREAM endpoints: listen keys for the
// user-data streams, authenticated by the API key alone, as Binance does.
var keyOnlyPaths = []string{
	"/api/v3/userDataStream", "/sapi/v1/userDataStream", "/sapi/v1/userDataStream/isolated", "/fapi/v1/listenKey",
}

func keyOnly(path string) bool { return slices.Contains(keyOnlyPaths, path) }

// KeyOnly reports whether r is a USER_STREAM call carrying an API key and
// no signature. Such a request has no timestamp, so the gateway does not
// treat a repeated one (a keep-alive) as a replay.
func (v *verifier) KeyOnly(r *exchange.Request) bool {
	if !keyOnly(r.Path) || mentionsParam(r.RawQuery, paramSignature) || mentionsParamBytes(r.Body, paramSignature) {
		return false
	}
	key, e := apiKeyOf(r.Header)
	return e == nil && key != ""
}

// verifyKeyOnly checks a USER_STREAM call's API key against client and
// returns a copy without it. The call creates, extends or closes a listen
// key: it reads nothing and moves nothing.
func verifyKeyOnly(r *exchange.Request, client *exchange.Credential) (*exchange.Request, error) {
	key, e := apiKeyOf(r.Header)
	if e != nil {
		return nil, e
	}
	if client == nil || subtle.ConstantTimeCompare([]byte(key), []byte(client.APIKey)) != 1 {
		return nil, exchange.Errorf(exchange.ErrAuth, msgInvalidKey)
	}
	out := r.Clone()
	deleteHeader(out.Header, headerAPIKey)
	return out, nil
}
