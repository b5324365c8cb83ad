package bybit

import (
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// maxDepth bounds JSON nesting; no Bybit request nests deeper than a few levels.
const maxDepth = 16

// maxPath bounds the length of a request path.
const maxPath = 256

func badRequest(format string, args ...any) *exchange.Error {
	return exchange.Errorf(exchange.ErrBadRequest, format, args...)
}

// canonicalPath checks that p is a plain venue path and returns it in lower
// case, the form used to look up routes. Only letters, digits, '-', '_', '.'
// and '/' are allowed, and exchange.CheckPath rejects the rest of what a
// router could read differently from keywarden: dot segments, empty
// segments and a trailing slash. Lower-casing means a case variant of a
// dangerous path is classified as that path (or as an unknown, admin-scoped
// one), never as something milder.
func canonicalPath(p string) (string, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			return "", badRequest("invalid request path: unexpected character")
		}
	}
	if err := exchange.CheckPath(p, maxPath); err != nil {
		return "", err
	}
	return strings.ToLower(p), nil
}

// parseJSON decodes body strictly with exchange.DecodeJSONFold: valid UTF-8,
// one JSON value and nothing after it, no duplicate object keys (not even
// ones differing only in case, which case-insensitive decoders would merge),
// bounded depth. Objects are map[string]any, numbers json.Number.
func parseJSON(body []byte) (any, error) {
	v, err := exchange.DecodeJSONFold(body, maxDepth)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return v, nil
}

// fields is one JSON object or one set of query parameters, read by exact
// name.
type fields interface {
	str(name string) (string, error)
}

type objFields map[string]any

// str returns the named member as text (see exchange.Fields.Field): null and
// absent are "", objects and arrays are rejected.
func (o objFields) str(name string) (string, error) {
	return exchange.Fields{Body: o}.Field(name)
}

// decimal parses a plain non-negative decimal ("0.01", "30000"); "" is 0.
// Exponents, signs, hex, underscores, spaces and non-ASCII digits are
// rejected rather than read as 0, so a policy never sees a smaller number
// than the venue might.
func decimal(name, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	if !exchange.PlainDecimal(s, false) {
		return 0, badRequest("parameter %q is not a decimal number", exchange.SafeName(name))
	}
	return exchange.ParseFloat(s), nil
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

type queryFields exchange.Params

func (q queryFields) str(name string) (string, error) {
	return exchange.Params(q).Get(name), nil
}
