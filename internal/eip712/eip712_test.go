package eip712

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestMailExample is the worked example of the EIP-712 specification
// (https://eips.ethereum.org/EIPS/eip-712, assets/eip-712/Example.js):
// type string, domain separator, digest, the key keccak256("cow"), its
// address and its signature.
func TestMailExample(t *testing.T) {
	types := Types{
		"Person": {{"name", "string"}, {"wallet", "address"}},
		"Mail":   {{"from", "Person"}, {"to", "Person"}, {"contents", "string"}},
	}
	enc, err := types.EncodeType("Mail")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Mail(Person from,Person to,string contents)Person(string name,address wallet)"; enc != want {
		t.Errorf("EncodeType(Mail) = %q, want %q", enc, want)
	}
	contract, _ := ParseAddress("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")
	dom := Domain{Name: "Ether Mail", Version: "1", ChainID: 1, VerifyingContract: contract}
	if got, want := hex.EncodeToString(dom.Separator()), "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"; got != want {
		t.Errorf("Separator() = %s, want %s", got, want)
	}
	msg := map[string]any{
		"from":     map[string]any{"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
		"to":       map[string]any{"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
		"contents": "Hello, Bob!",
	}
	d, err := Digest(dom, types, "Mail", msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(d), "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"; got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
	key, err := PrivateKeyFromBytes(Keccak256([]byte("cow")))
	if err != nil {
		t.Fatal(err)
	}
	if got := key.Address().Hex(); got != strings.ToLower("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826") {
		t.Errorf("Address() = %s, want Cow's wallet", got)
	}
	sig, err := key.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := WordHex(sig.R), "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"; got != want || sig.V != 28 ||
		WordHex(sig.S) != "0x07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" {
		t.Errorf("Sign = r %s s %s v %d, want the specification's", got, WordHex(sig.S), sig.V)
	}
	if a, err := Recover(d, sig); err != nil || a != key.Address() {
		t.Errorf("Recover = %s, %v, want Cow", a, err)
	}
	if _, err := types.HashStruct("Mail", map[string]any{"from": msg["from"], "to": msg["to"]}); err == nil {
		t.Errorf("HashStruct accepted a message missing a member")
	}
}

// TestRecoverRefusesMalleable: the high-s twin of a valid signature and a
// v other than 27/28 are refused.
func TestRecoverRefusesMalleable(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := Keccak256([]byte("message"))
	sig, err := key.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	// s' = n - s
	var twin Signature = sig
	var borrow int
	for i := 31; i >= 0; i-- {
		v := int(n[i]) - int(sig.S[i]) - borrow
		borrow = 0
		if v < 0 {
			v += 256
			borrow = 1
		}
		twin.S[i] = byte(v)
	}
	twin.V = 55 - sig.V
	if _, err := Recover(d, twin); err == nil {
		t.Errorf("Recover accepted the high-s twin")
	}
	bad := sig
	bad.V = 29
	if _, err := Recover(d, bad); err == nil {
		t.Errorf("Recover accepted v = 29")
	}
	if s := key.String() + key.GoString(); strings.Contains(s, key.Hex()[2:]) {
		t.Errorf("String() shows the private key")
	}
}

// TestMsgpackWidths checks the smallest-encoding choices Python's msgpack
// makes, which Hyperliquid action hashes depend on.
func TestMsgpackWidths(t *testing.T) {
	tests := []struct {
		json, want string
	}{
		{`0`, "00"}, {`127`, "7f"}, {`128`, "cc80"}, {`256`, "cd0100"}, {`65536`, "ce00010000"},
		{`4294967296`, "cf0000000100000000"}, {`-1`, "ff"}, {`-32`, "e0"}, {`-33`, "d0df"}, {`-129`, "d1ff7f"},
		{`1.5`, "cb3ff8000000000000"}, {`true`, "c3"}, {`null`, "c0"},
		{`"` + strings.Repeat("a", 31) + `"`, "bf" + strings.Repeat("61", 31)},
		{`"` + strings.Repeat("a", 32) + `"`, "d920" + strings.Repeat("61", 32)},
		{`{"b":1,"a":2}`, "82a16201a16102"},
		{`[1,2]`, "920102"},
	}
	for _, tt := range tests {
		v, err := DecodeOrdered([]byte(tt.json))
		if err != nil {
			t.Fatalf("DecodeOrdered(%s): %v", tt.json, err)
		}
		b, err := Msgpack(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tt.want {
			t.Errorf("Msgpack(%s) = %s, want %s", tt.json, got, tt.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":1} x`, "\"\xff\"", strings.Repeat("[", 20) + strings.Repeat("]", 20)} {
		if _, err := DecodeOrdered([]byte(bad)); err == nil {
			t.Errorf("DecodeOrdered(%q) accepted it", bad)
		}
	}
}
