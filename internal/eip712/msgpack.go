package eip712

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Object is a JSON object that keeps its members in the order they came.
type Object struct {
	Keys   []string
	Values []any
}

// Get returns the member called k.
func (o *Object) Get(k string) (any, bool) {
	for i, kk := range o.Keys {
		if kk == k {
			return o.Values[i], true
		}
	}
	return nil, false
}

// Set adds a member at the end, or replaces an existing one in place.
func (o *Object) Set(k string, v any) {
	for i, kk := range o.Keys {
		if kk == k {
			o.Values[i] = v
			return
		}
	}
	o.Keys = append(o.Keys, k)
	o.Values = append(o.Values, v)
}

// MaxDepth bounds the nesting DecodeOrdered accepts.
const MaxDepth = 16

// DecodeOrdered parses exactly one JSON value, keeping object member order:
// objects are *Object, arrays []any, numbers json.Number, strings string,
// plus bool and nil. It refuses invalid UTF-8, duplicate keys, nesting
// deeper than MaxDepth and trailing data, so every reader of the bytes sees
// the same value.
func DecodeOrdered(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8 in JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("invalid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, errors.New("JSON nested too deeply")
		}
		switch t {
		case '{':
			o := &Object{}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, errors.New("invalid JSON")
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("invalid JSON")
				}
				if seen[k] {
					return nil, errors.New("duplicate JSON key")
				}
				seen[k] = true
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.Keys = append(o.Keys, k)
				o.Values = append(o.Values, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, errors.New("invalid JSON")
			}
			return o, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, errors.New("invalid JSON")
			}
			return arr, nil
		}
		return nil, errors.New("invalid JSON")
	case string, json.Number, bool, nil:
		return t, nil
	}
	return nil, errors.New("invalid JSON")
}

// MarshalJSON writes an ordered value back as compact JSON, members in order.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case *Object:
		b.WriteByte('{')
		for i, k := range x.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if err := writeJSON(b, x.Values[i]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, it := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string, json.Number, bool, nil, uint64, int64, int:
		enc, err := json.Marshal(x)
		if err != nil {
			return err
		}
		b.Write(enc)
	default:
		return fmt.Errorf("cannot write %T as JSON", v)
	}
	return nil
}

// Msgpack encodes an ordered value as MessagePack the way Python's
// msgpack.packb does by default: maps in member order, integers in the
// smallest encoding (unsigned forms for non-negative values), floats as
// float64, strings as str. Hyperliquid hashes actions in exactly this form.
func Msgpack(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := packValue(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func packValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteByte(0xc0)
	case bool:
		if x {
			b.WriteByte(0xc3)
		} else {
			b.WriteByte(0xc2)
		}
	case string:
		packStr(b, x)
	case uint64:
		packUint(b, x)
	case int64:
		packInt(b, x)
	case int:
		packInt(b, int64(x))
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if strings.HasPrefix(s, "-") {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return errors.New("integer out of range")
				}
				packInt(b, n)
			} else {
				n, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					return errors.New("integer out of range")
				}
				packUint(b, n)
			}
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return errors.New("number out of range")
		}
		b.WriteByte(0xcb)
		_ = binary.Write(b, binary.BigEndian, math.Float64bits(f))
	case []any:
		n := len(x)
		switch {
		case n < 16:
			b.WriteByte(0x90 | byte(n))
		case n <= math.MaxUint16:
			b.WriteByte(0xdc)
			_ = binary.Write(b, binary.BigEndian, uint16(n))
		default:
			b.WriteByte(0xdd)
			_ = binary.Write(b, binary.BigEndian, uint32(n))
		}
		for _, it := range x {
			if err := packValue(b, it); err != nil {
				return err
			}
		}
	case *Object:
		n := len(x.Keys)
		switch {
		case n < 16:
			b.WriteByte(0x80 | byte(n))
		case n <= math.MaxUint16:
			b.WriteByte(0xde)
			_ = binary.Write(b, binary.BigEndian, uint16(n))
		default:
			b.WriteByte(0xdf)
			_ = binary.Write(b, binary.BigEndian, uint32(n))
		}
		for i, k := range x.Keys {
			packStr(b, k)
			if err := packValue(b, x.Values[i]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("cannot encode %T as msgpack", v)
	}
	return nil
}

func packStr(b *bytes.Buffer, s string) {
	n := len(s)
	switch {
	case n < 32:
		b.WriteByte(0xa0 | byte(n))
	case n <= math.MaxUint8:
		b.WriteByte(0xd9)
		b.WriteByte(byte(n))
	case n <= math.MaxUint16:
		b.WriteByte(0xda)
		_ = binary.Write(b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0xdb)
		_ = binary.Write(b, binary.BigEndian, uint32(n))
	}
	b.WriteString(s)
}

func packUint(b *bytes.Buffer, n uint64) {
	switch {
	case n < 128:
		b.WriteByte(byte(n))
	case n <= math.MaxUint8:
		b.WriteByte(0xcc)
		b.WriteByte(byte(n))
	case n <= math.MaxUint16:
		b.WriteByte(0xcd)
		_ = binary.Write(b, binary.BigEndian, uint16(n))
	case n <= math.MaxUint32:
		b.WriteByte(0xce)
		_ = binary.Write(b, binary.BigEndian, uint32(n))
	default:
		b.WriteByte(0xcf)
		_ = binary.Write(b, binary.BigEndian, n)
	}
}

func packInt(b *bytes.Buffer, n int64) {
	if n >= 0 {
		packUint(b, uint64(n))
		return
	}
	switch {
	case n >= -32:
		b.WriteByte(byte(int8(n)))
	case n >= math.MinInt8:
		b.WriteByte(0xd0)
		b.WriteByte(byte(int8(n)))
	case n >= math.MinInt16:
		b.WriteByte(0xd1)
		_ = binary.Write(b, binary.BigEndian, int16(n))
	case n >= math.MinInt32:
		b.WriteByte(0xd2)
		_ = binary.Write(b, binary.BigEndian, int32(n))
	default:
		b.WriteByte(0xd3)
		_ = binary.Write(b, binary.BigEndian, n)
	}
}
