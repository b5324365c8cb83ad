package scan

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
)

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
	pemDash  = []byte("-----")
)

// pems finds PEM blocks. Every block (certificates too) is excluded from
// the token pass; private key blocks that parse are findings. Blocks
// written into strings with "\n" escapes (JSON key files) are found too.
func (p *pass) pems() {
	buf := p.buf
	for off := 0; ; {
		i := bytes.Index(buf[off:], pemBegin)
		if i < 0 {
			return
		}
		start := off + i
		typStart := start + len(pemBegin)
		j := bytes.Index(buf[typStart:min(len(buf), typStart+64)], pemDash)
		if j <= 0 {
			off = typStart
			continue
		}
		typ := buf[typStart : typStart+j]
		bodyStart := typStart + j + len(pemDash)
		footer := append(append(append([]byte{}, pemEnd...), typ...), pemDash...)
		k := bytes.Index(buf[bodyStart:min(len(buf), bodyStart+maxPEM)], footer)
		if k < 0 {
			off = bodyStart
			continue
		}
		bodyEnd := bodyStart + k
		end := bodyEnd + len(footer)
		p.excluded = append(p.excluded, [2]int{start, end})
		if bytes.Contains(typ, []byte("PRIVATE KEY")) {
			p.privateKey(start, string(typ), buf[bodyStart:bodyEnd])
		}
		off = end
	}
}

// pemBody keeps the base64 characters of a PEM body, dropping line breaks,
// white space and "\n" / "\r" escapes. It returns nil for an encrypted
// key (Proc-Type header).
func pemBody(b []byte) []byte {
	if bytes.Contains(b, []byte("Proc-Type:")) {
		return nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) && (b[i+1] == 'n' || b[i+1] == 'r') {
			i++
			continue
		}
		if classOf[c]&cB64 != 0 || c == '=' {
			out = append(out, c)
		}
	}
	return out
}

// privateKey reports a parsed private key found at start.
func (p *pass) privateKey(start int, typ string, raw []byte) {
	body := pemBody(raw)
	if len(body) < 64 {
		return // an elided example ("...")
	}
	der, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil {
		return
	}
	defer clear(der)
	var key any
	switch typ {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "OPENSSH PRIVATE KEY":
		// Parsing would need x/crypto/ssh; the armour and a body of
		// key size are evidence enough.
		if len(der) < 100 || !bytes.HasPrefix(der, []byte("openssh-key-v1\x00")) {
			return
		}
		key = nil
	case "ENCRYPTED PRIVATE KEY":
		return // useless without its passphrase
	default:
		return
	}
	if err != nil {
		return
	}
	r := p.pemRule(start, typ, key)
	var live *Live
	if s, ok := key.(crypto.Signer); ok {
		if pub, err := x509.MarshalPKIXPublicKey(s.Public()); err == nil {
			live = p.match(PublicKeyDER, pub)
		}
	}
	zeroKey(key)
	if live == nil && p.suppressed(start, body) {
		return
	}
	p.report(r, start, body, live)
}

// pemRule names the key by its algorithm and, from context, its venue.
func (p *pass) pemRule(start int, typ string, key any) *rule {
	alg := "openssh"
	switch key.(type) {
	case *ecdsa.PrivateKey:
		alg = "ec"
	case ed25519.PrivateKey:
		alg = "ed25519"
	case *rsa.PrivateKey:
		alg = "rsa"
	}
	low := p.lowerOf(p.buf[p.contextStart(start):p.lineEnd(start)])
	venue := ""
	switch {
	case bytes.Contains(low, []byte("organizations/")) || hasAny(low, coinbaseKW):
		venue = "coinbase"
	case hasAny(low, usdmKW):
		venue = "binance-usdm"
	case hasAny(low, binanceKW):
		venue = "binance"
	case hasAny(low, bybitKW):
		venue = "bybit"
	case hasAny(low, bitgetKW):
		venue = "bitget"
	case hasAny(low, deribitKW):
		venue = "deribit"
	}
	r := &rule{id: "private-key-" + alg, what: alg + " private key (" + typ + ")", severity: High, venue: venue}
	if venue != "" {
		r.id = venue + "-private-key-" + alg
		if venue == "coinbase" {
			r.id = "coinbase-cdp-private-key-" + alg
		}
	}
	return r
}

func hasAny(text []byte, kws []string) bool {
	for _, kw := range kws {
		if hasWord(text, kw) {
			return true
		}
	}
	return false
}

func zeroKey(k any) {
	if e, ok := k.(ed25519.PrivateKey); ok {
		clear(e)
	}
}

// passphrases reports passphrases assigned near a credential of a venue
// whose keys have one (OKX, KuCoin, Bitget): within contextLines lines.
func (p *pass) passphrases() {
	near := func(line int) string {
		for _, h := range p.venues {
			if (h.venue == "okx" || h.venue == "kucoin" || h.venue == "bitget") && h.line-contextLines <= line && line <= h.line+contextLines {
				return h.venue
			}
		}
		return ""
	}
	buf := p.buf
	low := p.lowerOf(buf) // one pass; p.lower is not used by report below
	low = append([]byte(nil), low...)
	for _, kw := range [][]byte{[]byte("passphrase"), []byte("password")} {
		for off := 0; ; {
			i := bytes.Index(low[off:], kw)
			if i < 0 {
				break
			}
			at := off + i
			off = at + len(kw)
			v, vs := assignedValue(buf, at+len(kw))
			if v == nil {
				continue
			}
			venue := near(p.line(at))
			if venue == "" {
				continue
			}
			live := p.match(Token, v)
			if live == nil && p.suppressed(vs, v) {
				continue
			}
			r := &rule{id: venue + "-api-passphrase", venue: venue, what: "API passphrase", severity: High}
			p.report(r, vs, v, live)
		}
	}
}

// assignedValue returns the value assigned right after a name ending at
// off on the same line (`passphrase = "v"`, `"password": "v"`,
// `PASSPHRASE=v`), and its offset, or nil for placeholders and
// references.
func assignedValue(buf []byte, off int) ([]byte, int) {
	i := off
	// rest of the name: OKX_PASSPHRASE, passphrase_v2, "password"
	for i < len(buf) && (classOf[buf[i]]&(cAlnum|cUnder|cDash) != 0) {
		i++
	}
	for i < len(buf) && (buf[i] == '"' || buf[i] == '\'' || buf[i] == ' ' || buf[i] == '\t') {
		i++
	}
	if i >= len(buf) || (buf[i] != '=' && buf[i] != ':') {
		return nil, 0
	}
	i++
	if i < len(buf) && buf[i] == '>' {
		i++
	}
	for i < len(buf) && (buf[i] == ' ' || buf[i] == '\t') {
		i++
	}
	quote := byte(0)
	if i < len(buf) && (buf[i] == '"' || buf[i] == '\'' || buf[i] == '`') {
		quote = buf[i]
		i++
	}
	start := i
	for i < len(buf) && buf[i] != '\n' && buf[i] != '\r' {
		c := buf[i]
		if quote != 0 && c == quote {
			break
		}
		if quote == 0 && (c == ' ' || c == '\t' || c == ',' || c == ';' || c == '}' || c == ')' || c == '#') {
			break
		}
		i++
	}
	v := buf[start:i]
	if len(v) < 6 || len(v) > 64 || placeholder(v) {
		return nil, 0
	}
	return v, start
}

// placeholder recognises values that are not a passphrase: references to
// variables, templates, and the usual stand-ins.
func placeholder(v []byte) bool {
	switch v[0] {
	case '$', '<', '{', '%', '[', '(', '*', '\\':
		return true
	}
	low := bytes.ToLower(v)
	for _, w := range []string{"your_", "your-", "yourpass", "xxxx", "changeme", "change_me", "example", "passphrase", "password", "redacted", "getenv", "environ", "process.env", "os.", "config."} {
		if bytes.Contains(low, []byte(w)) {
			return true
		}
	}
	switch string(low) {
	case "none", "null", "nil", "todo", "false", "true", "undefined", "secret":
		return true
	}
	same := true
	for _, c := range v[1:] {
		if c != v[0] {
			same = false
			break
		}
	}
	return same
}
