package krakenfutures

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

// member is one top-level member of a JSON object: the bytes from the first
// byte of its key to the last byte of its value.
type member struct {
	name       string
	start, end int
}

// objectMembers returns the members of the JSON object b in order, with their
// byte spans, so a member can be removed without re-encoding the rest.
func objectMembers(b []byte) (open int, ms []member, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return 0, nil, errJSON
	}
	open = int(dec.InputOffset())
	prev := open
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return 0, nil, errJSON
		}
		k, ok := kt.(string)
		if !ok {
			return 0, nil, errJSON
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, nil, errJSON
		}
		end := int(dec.InputOffset())
		start := skipSpace(b, prev)
		if start < len(b) && b[start] == ',' {
			start = skipSpace(b, start+1)
		}
		ms = append(ms, member{name: k, start: start, end: end})
		prev = end
	}
	if _, err := dec.Token(); err != nil {
		return 0, nil, errJSON
	}
	return open, ms, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// removeJSONMembers returns the JSON object b without its top-level members
// called one of names, leaving every other byte as it was.
func removeJSONMembers(b []byte, names ...string) ([]byte, error) {
	out := b
	for range 8 { // each pass removes one member; bodies carry few auth fields
		_, ms, err := objectMembers(out)
		if err != nil {
			return nil, err
		}
		i := -1
		for j, m := range ms {
			for _, n := range names {
				if m.name == n {
					i = j
				}
			}
		}
		if i < 0 {
			return out, nil
		}
		var from, to int
		switch {
		case i+1 < len(ms):
			from, to = ms[i].start, ms[i+1].start
		case i > 0:
			from, to = ms[i-1].end, ms[i].end
		default:
			from, to = ms[i].start, ms[i].end
		}
		next := make([]byte, 0, len(out)-(to-from))
		next = append(next, out[:from]...)
		next = append(next, out[to:]...)
		out = next
	}
	return nil, errJSON
}

// prependJSONMember returns the JSON object b with the raw member m (already
// encoded, like `"nonce":"1"`) inserted as its first member.
func prependJSONMember(b []byte, m string) ([]byte, error) {
	open, ms, err := objectMembers(b)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(m)+1)
	out = append(out, b[:open]...)
	out = append(out, m...)
	if len(ms) > 0 {
		out = append(out, ',')
	}
	out = append(out, b[open:]...)
	return out, nil
}
