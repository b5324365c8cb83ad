package exchange

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
	"testing"
)

// TestMACMatchesCryptoHMAC holds MAC to crypto/hmac for keys shorter than,
// as long as and longer than a block, and messages written in pieces.
func TestMACMatchesCryptoHMAC(t *testing.T) {
	hashes := []struct {
		name string
		new  func() *MAC
		h    func() hash.Hash
	}{
		{"sha256", NewHMACSHA256, sha256.New},
		{"sha512", NewHMACSHA512, sha512.New},
	}
	for _, hs := range hashes {
		for _, kl := range []int{0, 1, 32, 64, 65, 128, 129, 300} {
			for _, ml := range []int{0, 1, 100, 5000} {
				key := bytes.Repeat([]byte{byte(kl + 7)}, kl)
				msg := strings.Repeat("m", ml)
				ref := hmac.New(hs.h, key)
				ref.Write([]byte(msg + "!x"))
				want := ref.Sum(nil)
				m := hs.new()
				m.WriteString(msg)
				m.WriteByte('!')
				m.Write([]byte("x"))
				got := append([]byte(nil), m.Sum(key)...)
				m.Release()
				if !bytes.Equal(got, want) {
					t.Errorf("%s key %d msg %d: %x, want %x", hs.name, kl, ml, got, want)
				}
			}
		}
	}
}

// TestMACWipesAndReuses: a released MAC starts empty, keeps no key
// material, and the steady state allocates nothing.
func TestMACWipesAndReuses(t *testing.T) {
	key := []byte("a-secret-key")
	m := NewHMACSHA512()
	m.WriteString("first message")
	sum := m.Sum(key)
	m.Release()
	if m.pad != [len(m.pad)]byte{} || m.inner != [len(m.inner)]byte{} || m.out != [len(m.out)]byte{} || len(m.msg) != 0 {
		t.Errorf("released MAC still holds pads, sums or message")
	}
	if !bytes.Equal(sum, make([]byte, len(sum))) {
		t.Errorf("the result was not wiped on Release")
	}
	var out [64]byte
	allocs := testing.AllocsPerRun(100, func() {
		m := NewHMACSHA256()
		m.WriteString("GET\n/api/v1/orders\n")
		m.Write(key)
		copy(out[:], m.Sum(key))
		m.Release()
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("MAC: %v allocations per computation, want 0", allocs)
	}
}
