package exchange

import "strings"

// Strict readers shared by the venues whose requests carry JSON bodies or
// query parameters read by exact name (Bitget, Bybit, OKX): one checked
// path form, one strict JSON decoder and one way to read decimals, so the
// describers of those venues cannot drift apart on what they accept.

// CanonicalPath checks that p is a plain venue path and returns it in lower
// case, the form used to look up routes. Only letters, digits, '-', '_',
// '.' and '/' are allowed, and CheckPath rejects the rest of what a router
// could read differently from keywarden: dot segments, empty segments and a
// trailing slash. Lower-casing means a case variant of a dangerous path is
// classified as that path (or as an unknown, admin-scoped one), never as
// something milder.
func CanonicalPath(p string, maxLen int) (string, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			return "", Errorf(ErrBadRequest, "invalid request path: unexpected character")
		}
	}
	if err := CheckPath(p, maxLen); err != nil {
		return "", err
	}
	return strings.ToLower(p), nil
}

// ParseJSONBody decodes body strictly with DecodeJSONFold: valid UTF-8, one
// JSON value and nothing after it, no duplicate object keys (not even ones
// differing only in case, which case-insensitive decoders would merge),
// nesting at most maxDepth. Objects are map[string]any, numbers
// json.Number. A failure is an ErrBadRequest.
func ParseJSONBody(body []byte, maxDepth int) (any, error) {
	v, err := DecodeJSONFold(body, maxDepth)
	if err != nil {
		return nil, Errorf(ErrBadRequest, "%v", err)
	}
	return v, nil
}

// FieldReader is one JSON object or one set of query parameters, read by
// exact name.
type FieldReader interface {
	Str(name string) (string, error)
}

// ObjFields reads the members of a decoded JSON object.
type ObjFields map[string]any

// Str returns the named member as text (see Fields.Field): null and absent
// are "", objects and arrays are rejected.
func (o ObjFields) Str(name string) (string, error) {
	return Fields{Body: o}.Field(name)
}

// QueryFields reads query parameters; an absent one is "".
type QueryFields Params

// Str returns the named parameter.
func (q QueryFields) Str(name string) (string, error) {
	return Params(q).Get(name), nil
}

// Decimal parses a plain non-negative decimal ("0.01", "30000"); "" is 0.
// Exponents, signs, hex, underscores, spaces and non-ASCII digits are
// rejected rather than read as 0, so a policy never sees a smaller number
// than the venue might.
func Decimal(name, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	if !PlainDecimal(s, false) {
		return 0, Errorf(ErrBadRequest, "parameter %q is not a decimal number", SafeName(name))
	}
	return ParseFloat(s), nil
}

// Num reads the named field as a Decimal.
func Num(f FieldReader, name string) (float64, error) {
	s, err := f.Str(name)
	if err != nil {
		return 0, err
	}
	return Decimal(name, s)
}

// GetStrings reads several fields at once, stopping at the first error.
func GetStrings(f FieldReader, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		s, err := f.Str(n)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
