package exchange

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxJSONDepth is the nesting limit venues use unless they need a tighter one.
const MaxJSONDepth = 32

// Errors returned by DecodeJSON and CheckJSON. Their text is fit to show a
// client: it never quotes the body, only (for a duplicate) a SafeName'd key.
var (
	ErrJSONSyntax       = errors.New("invalid JSON body")
	ErrJSONUTF8         = errors.New("body is not valid UTF-8")
	ErrJSONTrailing     = errors.New("invalid JSON body: trailing data")
	ErrJSONTooDeep      = errors.New("invalid JSON body: nested too deeply")
	ErrJSONDuplicateKey = errors.New("duplicate JSON key")
)

// DecodeJSON parses b as exactly one JSON value and returns it, with objects
// as map[string]any, arrays as []any (never nil) and numbers as json.Number,
// so amounts are not rounded. It rejects invalid UTF-8 (encoding/json would
// silently replace it), duplicate object keys at any depth, more than
// maxDepth nested objects and arrays, and anything after the value. A
// duplicated key is how a parser differential hides a second quantity from
// the policy (threat T5): keywarden and the venue must never read different
// values.
//
// The error is one of the ErrJSON* values, or wraps ErrJSONDuplicateKey with
// the key's SafeName.
func DecodeJSON(b []byte, maxDepth int) (any, error) {
	return decodeJSON(b, maxDepth, false)
}

// DecodeJSONFold is DecodeJSON that also rejects two keys of one object that
// differ only in case ("qty" and "Qty", or "s" and "\u017f"), for venues
// whose servers match keys the way encoding/json does, without regard to
// case: such a server reads one of the two values and keywarden cannot tell
// which. Keys are compared as strings.EqualFold compares them.
func DecodeJSONFold(b []byte, maxDepth int) (any, error) {
	return decodeJSON(b, maxDepth, true)
}

func decodeJSON(b []byte, maxDepth int, fold bool) (any, error) {
	if !utf8.Valid(b) {
		return nil, ErrJSONUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeJSONValue(dec, 0, maxDepth, fold)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrJSONTrailing
	}
	return v, nil
}

// CheckJSON reports whether b is one strict JSON value, as DecodeJSON does.
func CheckJSON(b []byte, maxDepth int) error {
	_, err := DecodeJSON(b, maxDepth)
	return err
}

// decodeJSONValue reads one value from dec; depth counts the objects and
// arrays already open around it. Recursion is bounded by maxDepth. With
// fold, keys of one object must also differ other than in case.
func decodeJSONValue(dec *json.Decoder, depth, maxDepth int, fold bool) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, ErrJSONSyntax
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if d != '{' && d != '[' {
		return nil, ErrJSONSyntax
	}
	if depth+1 > maxDepth {
		return nil, ErrJSONTooDeep
	}
	if d == '[' {
		list := []any{}
		for dec.More() {
			v, err := decodeJSONValue(dec, depth+1, maxDepth, fold)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		if end, err := dec.Token(); err != nil || end != json.Delim(']') {
			return nil, ErrJSONSyntax
		}
		return list, nil
	}
	obj := map[string]any{}
	var folded map[string]struct{}
	if fold {
		folded = map[string]struct{}{}
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, ErrJSONSyntax
		}
		k, ok := kt.(string)
		if !ok {
			return nil, ErrJSONSyntax
		}
		if _, dup := obj[k]; dup {
			return nil, fmt.Errorf("%w %q", ErrJSONDuplicateKey, SafeName(k))
		}
		if fold {
			fk := foldKey(k)
			if _, dup := folded[fk]; dup {
				return nil, fmt.Errorf("%w %q", ErrJSONDuplicateKey, SafeName(k))
			}
			folded[fk] = struct{}{}
		}
		v, err := decodeJSONValue(dec, depth+1, maxDepth, fold)
		if err != nil {
			return nil, err
		}
		obj[k] = v
	}
	if end, err := dec.Token(); err != nil || end != json.Delim('}') {
		return nil, ErrJSONSyntax
	}
	return obj, nil
}

// foldKey returns k with every rune replaced by the smallest rune of its
// Unicode simple case-folding orbit, so foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b). For an ASCII letter that rune is its upper case,
// so ASCII keys, the usual case, are only upper-cased.
func foldKey(k string) string {
	ascii := true
	for i := 0; i < len(k); i++ {
		if k[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(k)
	}
	var sb strings.Builder
	sb.Grow(len(k))
	for _, r := range k {
		least := r
		// An orbit holds at most a handful of runes; the bound is a guard.
		for f, n := unicode.SimpleFold(r), 0; f != r && n < 8; f, n = unicode.SimpleFold(f), n+1 {
			least = min(least, f)
		}
		sb.WriteRune(least)
	}
	return sb.String()
}

// JSONString returns a decoded JSON scalar as the text a venue reads: a
// string as is, a number as written, a boolean as "true" or "false". Venues
// accept decimal fields both as strings and as numbers.
func JSONString(v any) (string, bool) {
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

// jsonMember is one top-level member of a JSON object: the bytes from the
// first byte of its key to the last byte of its value.
type jsonMember struct {
	name       string
	start, end int
}

// jsonMembers returns the offset just after the opening brace of the JSON
// object b and its members in order, with their byte spans, so a member can
// be removed or added without re-encoding the rest.
func jsonMembers(b []byte) (open int, ms []jsonMember, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return 0, nil, ErrJSONSyntax
	}
	open = int(dec.InputOffset())
	prev := open
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return 0, nil, ErrJSONSyntax
		}
		k, ok := kt.(string)
		if !ok {
			return 0, nil, ErrJSONSyntax
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, nil, ErrJSONSyntax
		}
		end := int(dec.InputOffset())
		start := skipJSONSpace(b, prev)
		if start < len(b) && b[start] == ',' {
			start = skipJSONSpace(b, start+1)
		}
		ms = append(ms, jsonMember{name: k, start: start, end: end})
		prev = end
	}
	if _, err := dec.Token(); err != nil {
		return 0, nil, ErrJSONSyntax
	}
	return open, ms, nil
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// maxRemovedMembers bounds RemoveJSONMembers; bodies carry few auth fields.
const maxRemovedMembers = 8

// RemoveJSONMembers returns the JSON object b without its top-level members
// called one of names, leaving every other byte as it was, so a signature
// over the remaining bytes still matches what the client sent. It fails when
// b is not an object or holds more than a handful of such members.
func RemoveJSONMembers(b []byte, names ...string) ([]byte, error) {
	out := b
	for range maxRemovedMembers + 1 {
		_, ms, err := jsonMembers(out)
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
	return nil, ErrJSONSyntax
}

// PrependJSONMember returns the JSON object b with the raw member m (already
// encoded, like `"nonce":"1"`) inserted as its first member. The caller
// vouches that m is well formed.
func PrependJSONMember(b []byte, m string) ([]byte, error) {
	open, ms, err := jsonMembers(b)
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
