// Package eip712 is keywarden's own implementation of what Ethereum-style
// signing venues (Hyperliquid) need: Keccak-256, EIP-712 typed-data hashing,
// secp256k1 signatures with public-key recovery (r, s, v with v = 27 or 28,
// RFC 6979 deterministic nonces, low s), addresses, and a MessagePack encoder
// over order-preserving JSON values, which is how Hyperliquid hashes actions.
//
// Nothing here keeps a key: callers pass the private key for one signature.
// All functions are safe for concurrent use.
//
// Security: this package decides what is signed and whose signature is
// accepted. Changes here need a second security review.
package eip712

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/crypto/sha3"
)

// Keccak256 is the legacy (pre-NIST) Keccak-256 of the concatenated parts,
// the hash Ethereum and EIP-712 use.
func Keccak256(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Address is a 20-byte account address.
type Address [20]byte

// Hex returns the address as lower-case 0x-hex, the form Hyperliquid signs.
func (a Address) Hex() string { return "0x" + hex.EncodeToString(a[:]) }

// String is Hex.
func (a Address) String() string { return a.Hex() }

// IsZero reports whether a is the zero address.
func (a Address) IsZero() bool { return a == Address{} }

// ParseAddress parses 0x-prefixed hex of 20 bytes, in any letter case.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") {
		return a, errors.New("address must be 0x followed by 40 hex digits")
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return a, errors.New("address must be 0x followed by 40 hex digits")
	}
	return a, nil
}

// Field is one member of an EIP-712 struct type.
type Field struct {
	Name, Type string
}

// Types maps struct type names to their members, in declaration order.
type Types map[string][]Field

// Domain is an EIP-712 domain with the four members Hyperliquid uses.
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract Address
}

var domainTypes = Types{"EIP712Domain": {
	{"name", "string"}, {"version", "string"}, {"chainId", "uint256"}, {"verifyingContract", "address"},
}}

// Separator is the domain separator, hashStruct(EIP712Domain).
func (d Domain) Separator() []byte {
	h, err := domainTypes.HashStruct("EIP712Domain", map[string]any{
		"name": d.Name, "version": d.Version, "chainId": d.ChainID, "verifyingContract": d.VerifyingContract,
	})
	if err != nil {
		panic("eip712: domain: " + err.Error()) // the types above are fixed and valid
	}
	return h
}

// Digest is the 32-byte hash that is signed for a message of type primary
// under domain: keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)).
func Digest(d Domain, types Types, primary string, message map[string]any) ([]byte, error) {
	sh, err := types.HashStruct(primary, message)
	if err != nil {
		return nil, err
	}
	return Keccak256([]byte{0x19, 0x01}, d.Separator(), sh), nil
}

// EncodeType is the EIP-712 type string of name: its own signature
// followed by the signatures of every struct type it references, sorted.
func (t Types) EncodeType(name string) (string, error) {
	if _, ok := t[name]; !ok {
		return "", fmt.Errorf("eip712: unknown type %q", name)
	}
	deps := map[string]bool{}
	var walk func(string) error
	walk = func(n string) error {
		if deps[n] {
			return nil
		}
		deps[n] = true
		for _, f := range t[n] {
			base := baseType(f.Type)
			if _, ok := t[base]; ok {
				if err := walk(base); err != nil {
					return err
				}
			} else if !atomic(base) {
				return fmt.Errorf("eip712: type %s: unknown member type %q", n, f.Type)
			}
		}
		return nil
	}
	if err := walk(name); err != nil {
		return "", err
	}
	delete(deps, name)
	rest := make([]string, 0, len(deps))
	for d := range deps {
		rest = append(rest, d)
	}
	sort.Strings(rest)
	var b strings.Builder
	for _, n := range append([]string{name}, rest...) {
		b.WriteString(n)
		b.WriteByte('(')
		for i, f := range t[n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Type)
			b.WriteByte(' ')
			b.WriteString(f.Name)
		}
		b.WriteByte(')')
	}
	return b.String(), nil
}

// TypeHash is keccak256(EncodeType(name)).
func (t Types) TypeHash(name string) ([]byte, error) {
	s, err := t.EncodeType(name)
	if err != nil {
		return nil, err
	}
	return Keccak256([]byte(s)), nil
}

// HashStruct is keccak256(typeHash ‖ encodeData(data)). data holds every
// member of the type and nothing else. Values: string for string; []byte or
// 0x-hex string for bytes and bytesN; Address or 0x-hex string for address;
// bool; uint64, int64, int or *big.Int (or a decimal string) for intN/uintN;
// map[string]any for struct members; []any for arrays.
func (t Types) HashStruct(name string, data map[string]any) ([]byte, error) {
	enc, err := t.encodeData(name, data)
	if err != nil {
		return nil, err
	}
	return Keccak256(enc), nil
}

func (t Types) encodeData(name string, data map[string]any) ([]byte, error) {
	th, err := t.TypeHash(name)
	if err != nil {
		return nil, err
	}
	fields := t[name]
	if len(data) != len(fields) {
		return nil, fmt.Errorf("eip712: %s has %d members, message has %d", name, len(fields), len(data))
	}
	out := slices.Clone(th)
	for _, f := range fields {
		v, ok := data[f.Name]
		if !ok {
			return nil, fmt.Errorf("eip712: %s: member %s missing", name, f.Name)
		}
		w, err := t.encodeValue(f.Type, v)
		if err != nil {
			return nil, fmt.Errorf("eip712: %s.%s: %w", name, f.Name, err)
		}
		out = append(out, w...)
	}
	return out, nil
}

func (t Types) encodeValue(typ string, v any) ([]byte, error) {
	if strings.HasSuffix(typ, "]") {
		i := strings.LastIndexByte(typ, '[')
		items, ok := v.([]any)
		if i < 0 || !ok {
			return nil, fmt.Errorf("want an array for %s", typ)
		}
		if n := typ[i+1 : len(typ)-1]; n != "" {
			if want, err := strconv.Atoi(n); err != nil || want != len(items) {
				return nil, fmt.Errorf("array %s has %d items", typ, len(items))
			}
		}
		var cat []byte
		for _, it := range items {
			w, err := t.encodeValue(typ[:i], it)
			if err != nil {
				return nil, err
			}
			cat = append(cat, w...)
		}
		return Keccak256(cat), nil
	}
	if _, ok := t[typ]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a struct for %s", typ)
		}
		return t.HashStruct(typ, m)
	}
	word := make([]byte, 32)
	switch {
	case typ == "string":
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("want a string")
		}
		return Keccak256([]byte(s)), nil
	case typ == "bytes":
		b, err := bytesOf(v)
		if err != nil {
			return nil, err
		}
		return Keccak256(b), nil
	case typ == "bool":
		b, ok := v.(bool)
		if !ok {
			return nil, errors.New("want a bool")
		}
		if b {
			word[31] = 1
		}
		return word, nil
	case typ == "address":
		var a Address
		switch x := v.(type) {
		case Address:
			a = x
		case string:
			var err error
			if a, err = ParseAddress(x); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("want an address")
		}
		copy(word[12:], a[:])
		return word, nil
	case strings.HasPrefix(typ, "bytes"):
		n, err := strconv.Atoi(typ[5:])
		if err != nil || n < 1 || n > 32 {
			return nil, fmt.Errorf("bad type %s", typ)
		}
		b, err := bytesOf(v)
		if err != nil {
			return nil, err
		}
		if len(b) != n {
			return nil, fmt.Errorf("%s value has %d bytes", typ, len(b))
		}
		copy(word, b)
		return word, nil
	case strings.HasPrefix(typ, "uint"), strings.HasPrefix(typ, "int"):
		signed := typ[0] == 'i'
		bits, err := strconv.Atoi(strings.TrimLeft(typ, "uint"))
		if err != nil || bits < 8 || bits > 256 || bits%8 != 0 {
			return nil, fmt.Errorf("bad type %s", typ)
		}
		n, err := intOf(v)
		if err != nil {
			return nil, err
		}
		lim := new(big.Int).Lsh(big.NewInt(1), uint(bits))
		if signed {
			half := new(big.Int).Rsh(lim, 1)
			if n.Cmp(half) >= 0 || n.Cmp(new(big.Int).Neg(half)) < 0 {
				return nil, fmt.Errorf("%s out of range", typ)
			}
		} else if n.Sign() < 0 || n.Cmp(lim) >= 0 {
			return nil, fmt.Errorf("%s out of range", typ)
		}
		if n.Sign() < 0 { // two's complement over 256 bits
			n = new(big.Int).Add(n, new(big.Int).Lsh(big.NewInt(1), 256))
		}
		n.FillBytes(word)
		return word, nil
	}
	return nil, fmt.Errorf("unsupported type %s", typ)
}

func bytesOf(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		if !strings.HasPrefix(x, "0x") {
			return nil, errors.New("want 0x-hex bytes")
		}
		return hex.DecodeString(x[2:])
	}
	return nil, errors.New("want bytes")
}

func intOf(v any) (*big.Int, error) {
	switch x := v.(type) {
	case uint64:
		return new(big.Int).SetUint64(x), nil
	case int64:
		return big.NewInt(x), nil
	case int:
		return big.NewInt(int64(x)), nil
	case *big.Int:
		return new(big.Int).Set(x), nil
	case string:
		n, ok := new(big.Int).SetString(x, 10)
		if !ok {
			return nil, errors.New("want a decimal integer")
		}
		return n, nil
	}
	return nil, errors.New("want an integer")
}

func baseType(t string) string {
	if i := strings.IndexByte(t, '['); i >= 0 {
		return t[:i]
	}
	return t
}

func atomic(t string) bool {
	switch {
	case t == "string", t == "bytes", t == "bool", t == "address":
		return true
	case strings.HasPrefix(t, "bytes"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "int"):
		return true
	}
	return false
}

// BigEndian64 is v as 8 big-endian bytes.
func BigEndian64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
