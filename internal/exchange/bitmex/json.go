package bitmex

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so hostile bodies cannot exhaust the stack.
const maxJSONDepth = 32

var errJSON = errors.New("invalid json")

// parseJSON decodes b strictly: valid UTF-8, one value, no duplicate object
// keys at any level, bounded depth. Numbers stay json.Number so amounts are
// not rounded. Objects are map[string]any, arrays []any.
func parseJSON(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errJSON
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errJSON
	}
	return v, nil
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSON
	}
	tok, err := d.Token()
	if err != nil {
		return nil, errJSON
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, errJSON
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errJSON
				}
				if _, dup := m[k]; dup {
					return nil, errDuplicateKey
				}
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if end, err := d.Token(); err != nil || end != json.Delim('}') {
				return nil, errJSON
			}
			return m, nil
		case '[':
			a := []any{}
			for d.More() {
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if end, err := d.Token(); err != nil || end != json.Delim(']') {
				return nil, errJSON
			}
			return a, nil
		}
		return nil, errJSON
	default:
		return t, nil
	}
}

var errDuplicateKey = errors.New("duplicate json key")
