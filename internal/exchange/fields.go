package exchange

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Fields looks request fields up in a decoded JSON body object and in the
// query, for venues that accept an order's fields in either place.
type Fields struct {
	Body  map[string]any
	Query Params
}

// Field returns the named field as text. A JSON number or boolean is read as
// written and null as absent. A field given in both the body and the query
// with different values is rejected: the policy must see the value the venue
// acts on.
func (f Fields) Field(name string) (string, error) {
	bv, inBody := f.Body[name]
	var b string
	if inBody {
		switch v := bv.(type) {
		case string, json.Number, bool:
			b, _ = JSONString(v)
		case nil:
			inBody = false
		default:
			return "", Errorf(ErrBadRequest, "field %q has the wrong type", SafeName(name))
		}
	}
	if f.Query.Has(name) {
		q := f.Query.Get(name)
		if inBody && q != b {
			return "", Errorf(ErrBadRequest, "field %q given twice with different values", SafeName(name))
		}
		return q, nil
	}
	return b, nil
}

// Decimal returns the named field as a non-negative plain decimal number, 0
// when absent. It rejects exponents, signs, hex, underscores, spaces, NaN and
// overlong values rather than guess what the venue would read.
func (f Fields) Decimal(name string) (float64, error) {
	s, err := f.Field(name)
	if err != nil || s == "" {
		return 0, err
	}
	if !PlainDecimal(s, false) {
		return 0, Errorf(ErrBadRequest, "field %q is not a plain decimal number", SafeName(name))
	}
	return ParseFloat(s), nil
}

// PlainDecimal reports whether s is digits with at most one decimal point
// inside them (and a leading minus when signed), at most 32 bytes long.
func PlainDecimal(s string, signed bool) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	if signed && s[0] == '-' {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && s[0] != '.' && s[len(s)-1] != '.'
}

// SplitPath checks that p is a canonical absolute path and returns its
// segments. Anything that could make two spellings reach one endpoint is
// rejected rather than normalized: percent-encoding, empty segments (// and
// trailing slashes), dot segments, backslashes, semicolons, '@', controls
// and non-ASCII bytes.
func SplitPath(p string) ([]string, error) {
	if len(p) == 0 || p[0] != '/' || len(p) > 512 {
		return nil, Errorf(ErrBadRequest, "invalid path")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`%\;?#@"<>{}|^`+"`", c) >= 0 {
			return nil, Errorf(ErrBadRequest, "invalid character in path")
		}
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) > 16 {
		return nil, Errorf(ErrBadRequest, "invalid path")
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return nil, Errorf(ErrBadRequest, "non-canonical path")
		}
	}
	return segs, nil
}

// UnescapedQuery returns the raw query with percent-escapes and '+' decoded,
// for venues that sign the query as it reads rather than as it was sent
// (Gate, KuCoin). Most queries hold no escapes and are returned unchanged
// without allocating.
func UnescapedQuery(raw string) (string, error) {
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return raw, nil
	}
	s, err := url.QueryUnescape(raw)
	if err != nil {
		return "", Errorf(ErrBadRequest, "malformed query encoding")
	}
	return s, nil
}

// CheckPath rejects a path, at most maxLen bytes long, that a server might
// normalise into another one: it must be absolute, printable ASCII without
// '%', '\\', ';', '?' or '#', and free of empty, "." and ".." segments and
// a trailing slash. Unlike SplitPath it allows the characters some venues
// use in path segments, such as '@' and '{'.
func CheckPath(path string, maxLen int) error {
	if path == "" || path[0] != '/' || len(path) > maxLen {
		return Errorf(ErrBadRequest, "malformed path")
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '\\' || c == ';' || c == '?' || c == '#' {
			return Errorf(ErrBadRequest, "malformed path")
		}
	}
	if strings.HasSuffix(path, "/") || strings.Contains(path, "//") {
		return Errorf(ErrBadRequest, "malformed path")
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "." || seg == ".." {
			return Errorf(ErrBadRequest, "malformed path")
		}
	}
	return nil
}
