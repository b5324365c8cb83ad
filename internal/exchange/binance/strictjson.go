package binance

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

const maxJSONDepth = 16

// checkStrictJSON reports an error unless data is exactly one valid JSON
// value with no duplicate object keys (a duplicate key is how a parser
// differential hides a second quantity from the policy, threat T5) and no
// nesting deeper than maxJSONDepth. Invalid UTF-8 is rejected rather than
// replaced, as encoding/json would.
func checkStrictJSON(data []byte) error {
	if !utf8.Valid(data) || !json.Valid(data) {
		return errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		isKey  bool // next token in this object is a key
	}
	var stack []frame
	for range len(data) + 1 {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return errors.New("truncated JSON")
			}
			return nil
		}
		if err != nil {
			return errors.New("invalid JSON")
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				continue
			}
			if top.isKey {
				k, ok := tok.(string)
				if !ok {
					return errors.New("invalid JSON")
				}
				if _, dup := top.keys[k]; dup {
					return errors.New("duplicate JSON key")
				}
				top.keys[k] = struct{}{}
				top.isKey = false
				continue
			}
			top.isKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{object: true, keys: map[string]struct{}{}, isKey: true})
			case '[':
				stack = append(stack, frame{})
			case ']':
				stack = stack[:len(stack)-1]
			}
			if len(stack) > maxJSONDepth {
				return errors.New("JSON nested too deeply")
			}
		}
	}
	return errors.New("invalid JSON")
}
