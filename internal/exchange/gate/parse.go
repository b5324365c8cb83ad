package gate

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// decodeJSON parses body as one strict JSON value (see exchange.DecodeJSON),
// with numbers kept as json.Number.
func decodeJSON(body []byte) (any, error) {
	v, err := exchange.DecodeJSON(body, exchange.MaxJSONDepth)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "%v", err)
	}
	return v, nil
}

// fields looks a request field up in the JSON object of the body and in the
// query. A field given in both places with different values is rejected: the
// policy must see the value the venue acts on.
type fields struct {
	obj   map[string]any
	query exchange.Params
}

func (f fields) str(name string) (string, error) {
	bv, inBody := f.obj[name]
	var b string
	if inBody {
		switch v := bv.(type) {
		case string:
			b = v
		case json.Number:
			b = v.String()
		case bool:
			if v {
				b = "true"
			} else {
				b = "false"
			}
		case nil:
			inBody = false
		default:
			return "", exchange.Errorf(exchange.ErrBadRequest, "field %q has the wrong type", exchange.SafeName(name))
		}
	}
	if f.query.Has(name) {
		q := f.query.Get(name)
		if inBody && q != b {
			return "", exchange.Errorf(exchange.ErrBadRequest, "field %q given twice with different values", exchange.SafeName(name))
		}
		return q, nil
	}
	return b, nil
}

// decimal returns the named field as a non-negative plain decimal number. It
// rejects exponents, signs, hex, underscores, spaces, NaN and overlong
// values rather than guess what the venue would read.
func (f fields) decimal(name string) (float64, error) {
	s, err := f.str(name)
	if err != nil || s == "" {
		return 0, err
	}
	if !plainDecimal(s, false) {
		return 0, exchange.Errorf(exchange.ErrBadRequest, "field %q is not a plain decimal number", exchange.SafeName(name))
	}
	return exchange.ParseFloat(s), nil
}

// plainDecimal reports whether s is digits with at most one decimal point
// (and a leading minus when signed), at most 32 bytes long.
func plainDecimal(s string, signed bool) bool {
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

// splitPath checks that p is a canonical absolute path and returns its
// segments. Anything that could make two spellings reach one endpoint is
// rejected rather than normalized: percent-encoding, empty segments (// and
// trailing slashes), dot segments, backslashes, semicolons, '@', controls
// and non-ASCII bytes.
func splitPath(p string) ([]string, error) {
	if len(p) == 0 || p[0] != '/' || len(p) > 512 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid path")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`%\;?#@"<>{}|^`+"`", c) >= 0 {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid character in path")
		}
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) > 16 {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "invalid path")
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "non-canonical path")
		}
	}
	return segs, nil
}

// signedQuery is the query as Gate signs it: not URL-encoded (spec §10a),
// so percent-escapes are decoded. Most queries hold no escapes and are
// returned unchanged without allocating.
func signedQuery(raw string) (string, error) {
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return raw, nil
	}
	s, err := url.QueryUnescape(raw)
	if err != nil {
		return "", exchange.Errorf(exchange.ErrBadRequest, "malformed query encoding")
	}
	return s, nil
}
