package audit

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// The gateway writes an intent and an outcome for every request, so their
// payloads are encoded here by hand, byte for byte as encoding/json encodes
// them (HTML-safe string escapes, its float format, omitempty), without
// reflection. parseLine still checks every stored line against
// json.Marshal, and a differential test and fuzz target hold the two
// encoders together.

var errNonFinite = errors.New("json: unsupported value: NaN or infinite number")

// intentSize estimates the length of in's stored form (member names,
// numbers and some room for escapes), so that it is encoded into one
// allocation.
func intentSize(in *Intent) int {
	n := 128 + len(in.Client) + len(in.Key) + len(in.Venue) + len(in.Method) + len(in.Path) +
		len(in.SourceIP) + len(in.Decision) + len(in.Rule) + len(in.Reason) + len(in.Body)
	c := &in.Call
	n += 72 + len(c.Venue) + len(c.Method) + len(c.Path) + len(c.Endpoint) + len(c.Scope)
	for i := range c.Orders {
		o := &c.Orders[i]
		n += 168 + len(o.Symbol) + len(o.Type) + len(o.ClientOrderID)
	}
	if t := c.Transfer; t != nil {
		n += 160 + len(t.Asset) + len(t.Address) + len(t.Network) + len(t.Memo) + len(t.Destination)
	}
	return n + n/8
}

// appendIntent appends in's stored form, as json.Marshal(in.stored()).
func appendIntent(b []byte, in *Intent) ([]byte, error) {
	b = append(b, '{')
	first := true
	b = appendStrMember(b, &first, "client", in.Client)
	b = appendStrMember(b, &first, "key", in.Key)
	b = appendStrMember(b, &first, "venue", in.Venue)
	b = appendStrMember(b, &first, "method", in.Method)
	b = appendStrMember(b, &first, "path", in.Path)
	b = appendStrMember(b, &first, "source_ip", in.SourceIP)
	if !callIsZero(in.Call) {
		b = appendName(b, &first, "call")
		var err error
		if b, err = appendCall(b, in); err != nil {
			return nil, err
		}
	}
	b = appendName(b, &first, "decision")
	b = appendJSONString(b, in.Decision)
	b = appendStrMember(b, &first, "rule", in.Rule)
	b = appendStrMember(b, &first, "reason", in.Reason)
	b = appendStrMember(b, &first, "body", in.Body)
	return append(b, '}'), nil
}

func appendCall(b []byte, in *Intent) ([]byte, error) {
	c := &in.Call
	b = append(b, '{')
	first := true
	b = appendStrMember(b, &first, "venue", c.Venue)
	b = appendStrMember(b, &first, "method", c.Method)
	b = appendStrMember(b, &first, "path", c.Path)
	b = appendStrMember(b, &first, "endpoint", c.Endpoint)
	b = appendStrMember(b, &first, "scope", string(c.Scope))
	if len(c.Orders) > 0 {
		b = appendName(b, &first, "orders")
		b = append(b, '[')
		for i := range c.Orders {
			if i > 0 {
				b = append(b, ',')
			}
			o := &c.Orders[i]
			b = append(b, '{')
			of := true
			b = appendStrMember(b, &of, "action", string(o.Action))
			b = appendStrMember(b, &of, "symbol", o.Symbol)
			b = appendStrMember(b, &of, "side", string(o.Side))
			b = appendStrMember(b, &of, "type", o.Type)
			var err error
			for _, f := range [...]struct {
				name string
				v    float64
			}{{"quantity", o.Quantity}, {"price", o.Price}, {"quote_quantity", o.QuoteQuantity}, {"notional", o.Notional}} {
				if b, err = appendFloatMember(b, &of, f.name, f.v); err != nil {
					return nil, err
				}
			}
			b = appendBoolMember(b, &of, "contracts", o.Contracts)
			b = appendStrMember(b, &of, "client_order_id", o.ClientOrderID)
			b = appendBoolMember(b, &of, "reduce_only", o.ReduceOnly)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if t := c.Transfer; t != nil {
		b = appendName(b, &first, "transfer")
		b = append(b, '{')
		tf := true
		b = appendStrMember(b, &tf, "asset", t.Asset)
		var err error
		if b, err = appendFloatMember(b, &tf, "amount", t.Amount); err != nil {
			return nil, err
		}
		b = appendStrMember(b, &tf, "address", t.Address)
		b = appendStrMember(b, &tf, "network", t.Network)
		b = appendStrMember(b, &tf, "memo", t.Memo)
		b = appendStrMember(b, &tf, "destination", t.Destination)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendOutcome appends o as json.Marshal(o).
func appendOutcome(b []byte, o *Outcome) []byte {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	first := false
	b = appendStrMember(b, &first, "venue_order_id", o.VenueOrderID)
	b = append(b, `,"latency_micros":`...)
	b = strconv.AppendInt(b, o.LatencyMicros, 10)
	b = appendStrMember(b, &first, "error", o.Error)
	return append(b, '}')
}

// appendName appends `"name":`, after a comma unless it is the first member.
func appendName(b []byte, first *bool, name string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendStrMember appends an omitempty string member.
func appendStrMember(b []byte, first *bool, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(appendName(b, first, name), v)
}

// appendBoolMember appends an omitempty bool member.
func appendBoolMember(b []byte, first *bool, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(appendName(b, first, name), "true"...)
}

// appendFloatMember appends an omitempty float64 member in encoding/json's
// format: shortest representation, exponent form below 1e-6 and from 1e21
// up, with a one-digit negative exponent written without its leading zero.
func appendFloatMember(b []byte, first *bool, name string, f float64) ([]byte, error) {
	if f == 0 {
		return b, nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errNonFinite
	}
	b = appendName(b, first, name)
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes strings: '"',
// '\\' and control characters escaped (\b \f \n \r \t by name), '<', '>'
// and '&' as \u003c \u003e \u0026, U+2028 and U+2029 escaped, and every
// invalid UTF-8 byte replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
