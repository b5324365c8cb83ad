package exchange

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Param is one name=value pair, decoded, in the order it appeared.
type Param struct {
	Name, Value string
}

// Params is an ordered list of decoded parameters.
type Params []Param

// Get returns the value of the parameter called name, or "".
func (ps Params) Get(name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Has says whether a parameter called name is present.
func (ps Params) Has(name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// Float returns the named parameter as a number, or 0 when it is absent or
// not a finite number.
func (ps Params) Float(name string) float64 {
	return ParseFloat(ps.Get(name))
}

// ParseFloat parses a decimal number as venues send it; anything else,
// including NaN and infinities, is 0.
func ParseFloat(s string) float64 {
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		return 0
	}
	return f
}

// MaxParams bounds the parameters one query or form body may carry; no venue
// API needs more, and the bound keeps duplicate detection cheap.
const MaxParams = 256

// ParseQuery decodes a query string or form body strictly: every name and
// value must be valid percent-encoding of UTF-8, and a name may appear only
// once (a duplicated parameter is how a parser differential hides a second
// quantity from the policy, threat T5). Errors are ErrBadRequest *Errors.
func ParseQuery(raw string) (Params, error) {
	ps, err := AppendQuery(nil, raw)
	if err != nil {
		return nil, err
	}
	return ps, nil
}

// AppendQuery is ParseQuery appending to ps (duplicates are looked for
// among the parameters of raw only): a caller that keeps the parameters
// only while it runs can parse into an array of its own instead of a new
// slice. On an error ps is returned with nothing appended.
func AppendQuery(ps Params, raw string) (Params, error) {
	if raw == "" {
		return ps, nil
	}
	n := strings.Count(raw, "&") + 1
	if n > MaxParams {
		return ps, Errorf(ErrBadRequest, "too many parameters (more than %d)", MaxParams)
	}
	start := len(ps)
	if cap(ps)-start < n {
		ps = append(make(Params, 0, start+n), ps...)
	}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		dn, err := url.QueryUnescape(name)
		if err != nil {
			return ps[:start], Errorf(ErrBadRequest, "malformed parameter name encoding")
		}
		dv, err := url.QueryUnescape(value)
		if err != nil {
			return ps[:start], Errorf(ErrBadRequest, "malformed value encoding for parameter %q", SafeName(dn))
		}
		if !utf8.ValidString(dn) || !utf8.ValidString(dv) {
			return ps[:start], Errorf(ErrBadRequest, "parameter is not valid UTF-8")
		}
		if dn == "" {
			return ps[:start], Errorf(ErrBadRequest, "empty parameter name")
		}
		for _, p := range ps[start:] {
			if p.Name == dn {
				return ps[:start], Errorf(ErrBadRequest, "duplicate parameter %q", SafeName(dn))
			}
		}
		ps = append(ps, Param{dn, dv})
	}
	return ps, nil
}

// RemoveParams returns raw with every parameter whose decoded name is in
// names removed, keeping the order and exact bytes of the rest.
func RemoveParams(raw string, names ...string) string {
	if raw == "" {
		return raw
	}
	// Nothing to drop and no empty part to fold: raw is the answer.
	same := true
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if part == "" || namedIn(name, names) {
			same = false
			break
		}
	}
	if same {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if dn, err := url.QueryUnescape(name); err == nil {
			drop := false
			for _, n := range names {
				if dn == n {
					drop = true
					break
				}
			}
			if drop {
				continue
			}
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// AppendWithoutParams appends raw to dst with every parameter whose decoded
// name is in names removed, as RemoveParams does, without converting raw to
// a string first.
func AppendWithoutParams(dst, raw []byte, names ...string) []byte {
	start := len(dst)
	if len(raw) == 0 {
		return dst
	}
	for {
		part := raw
		amp := bytes.IndexByte(raw, '&')
		if amp >= 0 {
			part = raw[:amp]
		}
		name := part
		if i := bytes.IndexByte(part, '='); i >= 0 {
			name = part[:i]
		}
		if !bytesNamedIn(name, names) {
			if len(dst) > start {
				dst = append(dst, '&')
			}
			dst = append(dst, part...)
		}
		if amp < 0 {
			return dst
		}
		raw = raw[amp+1:]
	}
}

// namedIn says whether the decoded form of the parameter name is in names.
func namedIn(name string, names []string) bool {
	if strings.ContainsAny(name, "%+") {
		d, err := url.QueryUnescape(name)
		if err != nil {
			return false
		}
		name = d
	}
	for _, n := range names {
		if name == n {
			return true
		}
	}
	return false
}

// bytesNamedIn is namedIn for a name in a byte slice; a name with no
// escapes is compared without a copy.
func bytesNamedIn(name []byte, names []string) bool {
	if bytes.ContainsAny(name, "%+") {
		return namedIn(string(name), names)
	}
	for _, n := range names {
		if string(name) == n {
			return true
		}
	}
	return false
}

// SafeName returns s cut to 64 bytes with control characters replaced, for
// use in error messages that quote a caller-supplied name.
func SafeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
