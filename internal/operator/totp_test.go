package operator

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestTOTPVectors checks Code and matchTOTP against RFC 6238 appendix B
// (SHA-1, seed "12345678901234567890"). The RFC lists eight-digit values;
// a six-digit code is their last six digits (the modulus differs only).
func TestTOTPVectors(t *testing.T) {
	seed := []byte("12345678901234567890")
	tests := []struct {
		unix int64
		want string // eight digits, from the RFC
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, tt := range tests {
		at := time.Unix(tt.unix, 0)
		if got := hotpCode(seed, uint64(tt.unix/30), 8); got != tt.want {
			t.Errorf("hotpCode(T=%d, 8) = %q, want %q", tt.unix, got, tt.want)
		}
		want6 := tt.want[2:]
		if got := Code(seed, at); got != want6 {
			t.Errorf("Code(T=%d) = %q, want %q", tt.unix, got, want6)
		}
		step, ok := matchTOTP(seed, want6, at, 0)
		if !ok || step != tt.unix/30 {
			t.Errorf("matchTOTP(T=%d) = %d, %v, want %d, true", tt.unix, step, ok, tt.unix/30)
		}
		// Replay protection: once its step is the last accepted one, the
		// same code is refused.
		if _, ok := matchTOTP(seed, want6, at, step); ok {
			t.Errorf("matchTOTP(T=%d, last=%d) accepted a used code", tt.unix, step)
		}
	}
}

func TestTOTPWindow(t *testing.T) {
	seed := []byte("12345678901234567890")
	now := time.Unix(1234567890, 0)
	tests := []struct {
		name   string
		offset time.Duration
		want   bool
	}{
		{"previous step", -30 * time.Second, true},
		{"current step", 0, true},
		{"next step", 30 * time.Second, true},
		{"two steps back", -60 * time.Second, false},
		{"two steps ahead", 60 * time.Second, false},
	}
	for _, tt := range tests {
		code := Code(seed, now.Add(tt.offset))
		if _, ok := matchTOTP(seed, code, now, 0); ok != tt.want {
			t.Errorf("%s: matchTOTP = %v, want %v", tt.name, ok, tt.want)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := matchTOTP(seed, bad, now, 0); ok {
			t.Errorf("matchTOTP(%q) = true, want false", bad)
		}
	}
}

// TestOTPAuthURLKeepsParameters checks that the key URI carries the
// parameters codes are computed with, and the seed.
func TestOTPAuthURLKeepsParameters(t *testing.T) {
	u, err := otpauthURL("keywarden", "ann", []byte("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"otpauth://totp/keywarden:ann?", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		"algorithm=SHA1", "digits=6", "period=30", "issuer=keywarden"} {
		if !strings.Contains(u, want) {
			t.Errorf("otpauthURL = %q, lacks %q", u, want)
		}
	}
}

// TestQRText decodes the half blocks back into modules and compares them
// with the encoder's matrix, quiet zone included.
func TestQRText(t *testing.T) {
	const uri = "otpauth://totp/keywarden:ann?algorithm=SHA1&digits=6&issuer=keywarden&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	m, err := qrMatrix(uri)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) < 21 || (len(m)-17)%4 != 0 {
		t.Fatalf("qrMatrix size %d, not a QR version size", len(m))
	}
	for _, invert := range []bool{false, true} {
		text, err := QRText(uri, invert)
		if err != nil {
			t.Fatal(err)
		}
		n := len(m) + 2*qrQuiet
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if len(lines) != (n+1)/2 {
			t.Fatalf("QRText has %d lines, want %d", len(lines), (n+1)/2)
		}
		got := make([][]bool, n)
		for i := range got {
			got[i] = make([]bool, n)
		}
		for ly, line := range lines {
			rs := []rune(line)
			if len(rs) != n {
				t.Fatalf("line %d has %d runes, want %d", ly, len(rs), n)
			}
			for x, r := range rs {
				top := r == '█' || r == '▀'
				bottom := r == '█' || r == '▄'
				if !top && !bottom && r != ' ' {
					t.Fatalf("line %d: unexpected rune %q", ly, r)
				}
				// A drawn block is a light module unless inverted.
				got[2*ly][x] = top == invert
				if 2*ly+1 < n {
					got[2*ly+1][x] = bottom == invert
				}
			}
		}
		want := make([][]bool, n)
		for y := range want {
			want[y] = make([]bool, n)
			for x := range want[y] {
				if my, mx := y-qrQuiet, x-qrQuiet; my >= 0 && my < len(m) && mx >= 0 && mx < len(m) {
					want[y][x] = m[my][mx]
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("QRText(invert=%v) modules differ (-want +got):\n%s", invert, diff)
		}
	}
}

func TestQRPNG(t *testing.T) {
	const uri = "otpauth://totp/keywarden:ann?secret=GEZDGNBVGY3TQOJQ"
	b, err := QRPNG(uri, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("QRPNG is no PNG: %v", err)
	}
	m, _ := qrMatrix(uri)
	n := len(m) + 2*qrQuiet
	scale := 256 / n
	if got := img.Bounds().Dx(); got != n*scale || img.Bounds().Dy() != n*scale {
		t.Fatalf("QRPNG size %v, want %d square", img.Bounds(), n*scale)
	}
	// Sample each module's centre.
	for y := range n {
		for x := range n {
			r, _, _, _ := img.At(x*scale+scale/2, y*scale+scale/2).RGBA()
			dark := r < 0x8000
			my, mx := y-qrQuiet, x-qrQuiet
			want := my >= 0 && my < len(m) && mx >= 0 && mx < len(m) && m[my][mx]
			if dark != want {
				t.Fatalf("QRPNG module (%d,%d) dark=%v, want %v", x, y, dark, want)
			}
		}
	}
}
