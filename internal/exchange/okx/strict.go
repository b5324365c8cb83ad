package okx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxDepth bounds JSON nesting; no OKX request nests deeper than a few levels.
const maxDepth = 16

// maxPath bounds the length of a request path.
const maxPath = 256

func badRequest(format string, args ...any) *exchange.Error {
	return exchange.Errorf(exchange.ErrBadRequest, format, args...)
}

// canonicalPath checks that p is a plain venue path and returns it in lower
// case, the form used to look up routes. It rejects anything a router could
// read differently from keywarden: percent-encoding, dot segments, empty
// segments, a trailing slash, backslashes, parameters and non-ASCII bytes.
// Lower-casing means a case variant of a dangerous path is classified as
// that path (or as an unknown, admin-scoped one), never as something milder.
func canonicalPath(p string) (string, error) {
	if p == "" || p[0] != '/' || len(p) > maxPath {
		return "", badRequest("invalid request path")
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		return "", badRequest("invalid request path: trailing slash")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			return "", badRequest("invalid request path: unexpected character")
		}
	}
	if strings.Contains(p, "//") {
		return "", badRequest("invalid request path: empty segment")
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "", badRequest("invalid request path: dot segment")
		}
	}
	return strings.ToLower(p), nil
}

// parseJSON decodes body strictly: valid UTF-8, one JSON value and nothing
// after it, no duplicate object keys (not even ones differing only in case,
// which case-insensitive decoders would merge), bounded depth. Objects are
// map[string]any, numbers json.Number.
func parseJSON(body []byte) (any, error) {
	if !utf8.Valid(body) {
		return nil, badRequest("json body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("json body has data after the value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, badRequest("json body nests too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, badRequest("invalid json body")
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			var folded map[string]bool
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, badRequest("invalid json body")
				}
				k, ok := kt.(string)
				if !ok {
					return nil, badRequest("invalid json body")
				}
				if folded == nil {
					folded = map[string]bool{}
				}
				lk := strings.ToLower(k)
				if folded[lk] {
					return nil, badRequest("duplicate json key %q", exchange.SafeName(k))
				}
				folded[lk] = true
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, badRequest("invalid json body")
			}
			return m, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, badRequest("invalid json body")
			}
			return a, nil
		}
		return nil, badRequest("invalid json body")
	default:
		return t, nil
	}
}

// fields is one JSON object or one set of query parameters, read by exact
// name.
type fields interface {
	str(name string) (string, error)
}

type objFields map[string]any

func (o objFields) str(name string) (string, error) {
	v, ok := o[name]
	if !ok || v == nil {
		return "", nil
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case json.Number:
		return string(t), nil
	case bool:
		return strconv.FormatBool(t), nil
	}
	return "", badRequest("parameter %q has the wrong type", exchange.SafeName(name))
}

// decimal parses a plain non-negative decimal ("0.01", "30000"); "" is 0.
// Exponents, signs, hex, underscores, spaces and non-ASCII digits are
// rejected rather than read as 0, so a policy never sees a smaller number
// than the venue might.
func decimal(name, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 40 {
		return 0, badRequest("parameter %q is not a decimal number", exchange.SafeName(name))
	}
	dot := false
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return 0, badRequest("parameter %q is not a decimal number", exchange.SafeName(name))
		}
	}
	if digits == 0 {
		return 0, badRequest("parameter %q is not a decimal number", exchange.SafeName(name))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, badRequest("parameter %q is not a decimal number", exchange.SafeName(name))
	}
	return f, nil
}

// num reads the named field as a decimal.
func num(f fields, name string) (float64, error) {
	s, err := f.str(name)
	if err != nil {
		return 0, err
	}
	return decimal(name, s)
}

// getStrings reads several string fields at once, stopping at the first
// error.
func getStrings(f fields, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		s, err := f.str(n)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
