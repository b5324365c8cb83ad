package coinbase

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so a hostile body cannot exhaust the stack.
const maxJSONDepth = 32

// errJSON is returned for any body that is not one strict JSON value.
var errJSON = errors.New("invalid JSON body")

// decodeStrict parses b as exactly one JSON value, rejecting invalid UTF-8,
// duplicate object keys at any depth, deep nesting and trailing data. A
// duplicated key is how a parser differential hides a second quantity from
// the policy, so the venue and keywarden must never read different values.
// Objects become map[string]any, arrays []any, numbers json.Number.
func decodeStrict(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errJSON
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := strictValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errJSON
	}
	return v, nil
}

func strictValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSON
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, errJSON
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, errJSON
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errJSON
				}
				if _, dup := m[k]; dup {
					return nil, errJSON
				}
				v, err := strictValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, errJSON
			}
			return m, nil
		case '[':
			var a []any
			for dec.More() {
				v, err := strictValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, errJSON
			}
			if a == nil {
				a = []any{}
			}
			return a, nil
		}
		return nil, errJSON
	default:
		return t, nil
	}
}

// jsonString returns v as a string when it is a JSON string or number, the
// two ways venues accept decimal fields.
func jsonString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}
