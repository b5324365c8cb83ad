package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
)

// Redacted replaces the value of every secret parameter or field Redact finds.
const Redacted = "[REDACTED]"

// unparseableBody replaces a JSON body Redact cannot parse: when the
// structure is unknown, the secret cannot be found, so nothing is kept.
const unparseableBody = "[REDACTED: unparseable body]"

// HashPrefix marks a value stored as a keyed HMAC: "h:" then hex
// HMAC-SHA256(Options.HashKey, value).
const HashPrefix = "h:"

// secretWords are matched against parameter names lower-cased with '-', '_'
// and '.' removed: a name containing one of them is secret.
var secretWords = []string{"secret", "signature", "passphrase", "password", "privatekey", "apikey", "accesskey"}

// secretExact are secret when the normalised name equals them.
var secretExact = []string{"sign", "sig", "token", "otp", "totp", "mfa", "xmbxapikey", "okaccesskey", "okaccesssign", "okaccesspassphrase"}

// appendNorm appends name lower-cased (ASCII) with '-', '_' and '.' removed.
func appendNorm(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func isSecretName(name string, extra []string) bool {
	var buf [64]byte
	n := appendNorm(buf[:0], name) // spills to the heap only for long names
	for _, w := range secretWords {
		if bytes.Contains(n, []byte(w)) {
			return true
		}
	}
	for _, w := range secretExact {
		if string(n) == w {
			return true
		}
	}
	for _, w := range extra {
		var eb [64]byte
		if string(n) == string(appendNorm(eb[:0], w)) {
			return true
		}
	}
	return false
}

// redactString is Redact for a string body; it returns body itself when
// there is nothing to redact.
func redactString(body string) string {
	t := strings.TrimSpace(body)
	if t == "" {
		return ""
	}
	if t[0] != '{' && t[0] != '[' && formIsClean(body) {
		return body
	}
	return string(Redact([]byte(body)))
}

// formIsClean says whether a form body has no secret and no undecodable
// parameter name, so Redact would return it unchanged.
func formIsClean(raw string) bool {
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			return false // Redact drops empty parts
		}
		name, _, _ := strings.Cut(part, "=")
		if strings.ContainsAny(name, "%+") {
			return false // decoding needed: take the careful path
		}
		if isSecretName(name, nil) {
			return false
		}
	}
	return true
}

// Redact returns body with the values of secret parameters replaced by
// Redacted. body is a JSON document or a query/form string. A parameter or
// JSON member is secret when its name looks like a signature, secret,
// passphrase, password, API key or one-time code (case, '-', '_' and '.'
// ignored), or matches one of secretNames. JSON that does not parse is
// replaced whole, and a form parameter whose name cannot be decoded is
// dropped: Redact fails closed.
func Redact(body []byte, secretNames ...string) []byte {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return nil
	}
	if t[0] == '{' || t[0] == '[' {
		out, err := redactJSON(t, secretNames)
		if err != nil {
			return []byte(unparseableBody)
		}
		return out
	}
	return redactForm(string(body), secretNames)
}

func redactForm(raw string, extra []string) []byte {
	var b strings.Builder
	b.Grow(len(raw))
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		dn, err := url.QueryUnescape(name)
		if err != nil {
			continue // undecodable name: cannot tell whether it is secret
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		if isSecretName(dn, extra) {
			b.WriteString(name)
			b.WriteString("=" + url.QueryEscape(Redacted))
			continue
		}
		b.WriteString(part)
	}
	return []byte(b.String())
}

// redactJSON re-emits the document compactly, token by token, replacing the
// value of every secret member (whatever its type) with Redacted.
func redactJSON(body []byte, extra []string) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var out bytes.Buffer
	out.Grow(len(body))
	type frame struct {
		obj   bool
		key   bool // next token is a member name
		count int
	}
	var stack []frame
	skip := 0 // depth of a secret value being skipped; 0 = not skipping
	sep := func() {
		if len(stack) == 0 {
			return
		}
		top := &stack[len(stack)-1]
		if top.count > 0 && (!top.obj || top.key) {
			out.WriteByte(',')
		}
	}
	for i := 0; i <= len(body); i++ {
		tok, err := d.Token()
		if err == io.EOF {
			if len(stack) != 0 || skip != 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if len(stack) == 0 && out.Len() > 0 {
			return nil, errors.New("trailing data after JSON value")
		}
		if skip > 0 {
			switch tok {
			case json.Delim('{'), json.Delim('['):
				skip++
			case json.Delim('}'), json.Delim(']'):
				skip--
			}
			if skip == 1 {
				skip = 0 // the skipped value is complete
			}
			continue
		}
		if len(stack) > 0 && stack[len(stack)-1].obj && stack[len(stack)-1].key {
			top := &stack[len(stack)-1]
			if name, ok := tok.(string); ok {
				sep()
				enc, _ := json.Marshal(name)
				out.Write(enc)
				out.WriteByte(':')
				top.key = false
				top.count++
				if isSecretName(name, extra) {
					enc, _ := json.Marshal(Redacted)
					out.Write(enc)
					top.key = true
					skip = 1
					// a scalar value is skipped by the single next token;
					// a structured one by its matching close.
					next, err := d.Token()
					if err != nil {
						return nil, err
					}
					switch next {
					case json.Delim('{'), json.Delim('['):
						skip = 2
					default:
						skip = 0
					}
				}
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			sep()
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				if !top.obj {
					top.count++
				}
				top.key = true
			}
			out.WriteByte(byte(tok.(json.Delim)))
			stack = append(stack, frame{obj: tok == json.Delim('{'), key: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			out.WriteByte(byte(tok.(json.Delim)))
			stack = stack[:len(stack)-1]
			continue
		}
		sep()
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if !top.obj {
				top.count++
			}
			top.key = true
		}
		switch v := tok.(type) {
		case json.Number:
			out.WriteString(v.String())
		case nil:
			out.WriteString("null")
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out.Write(enc)
		}
	}
	return nil, io.ErrUnexpectedEOF
}

// hasher stores sensitive identifiers as keyed HMACs.
type hasher struct {
	key    []byte
	fields map[string]bool
}

func (h *hasher) on(field string) bool { return h != nil && h.fields[field] }

func (h *hasher) sum(v string) string {
	if v == "" || strings.HasPrefix(v, HashPrefix) {
		return v
	}
	return HashValue(h.key, v)
}

// HashValue returns v as the log stores a hashed field: HashPrefix followed
// by hex HMAC-SHA256(key, v). Use it to search for a hashed value.
func HashValue(key []byte, v string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return HashPrefix + hex.EncodeToString(m.Sum(nil))
}

// apply hashes the configured fields of r's payload in place (r's payloads
// are copies owned by the log).
func (h *hasher) apply(r *Record) {
	if h == nil {
		return
	}
	if in := r.Intent; in != nil {
		if h.on(FieldClient) {
			in.Client = h.sum(in.Client)
		}
		if h.on(FieldKey) {
			in.Key = h.sum(in.Key)
		}
		if h.on(FieldSourceIP) {
			in.SourceIP = h.sum(in.SourceIP)
		}
		if t := in.Call.Transfer; t != nil && h.on(FieldAddress) {
			t.Address = h.sum(t.Address)
			t.Memo = h.sum(t.Memo)
		}
	}
	if ev := r.Event; ev != nil {
		for k, v := range ev.Detail {
			if h.on(k) {
				ev.Detail[k] = h.sum(v)
			}
		}
	}
}

// Field names for Options.HashFields. Event detail entries are hashed when
// their key is listed too.
const (
	FieldClient   = "client"
	FieldKey      = "key"
	FieldSourceIP = "source_ip"
	FieldAddress  = "address" // withdrawal address and memo
)
