package operator

import (
	"bytes"
	"testing"
)

func TestSeedFromURL(t *testing.T) {
	seed := []byte("0123456789abcdefghij")
	uri, err := otpauthURL("keywarden", "alice", seed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SeedFromURL("scan this:\n" + uri + "\nthen confirm")
	if err != nil || !bytes.Equal(got, seed) {
		t.Errorf("SeedFromURL(otpauthURL(seed)) = %x, %v; want %x", got, err, seed)
	}
	for _, text := range []string{"no uri here", "otpauth://totp/x?issuer=k", "otpauth://totp/x?secret=!!!"} {
		if s, err := SeedFromURL(text); err == nil {
			t.Errorf("SeedFromURL(%q) = %x, want an error", text, s)
		}
	}
}
