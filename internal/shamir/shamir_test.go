package shamir

import (
	"bytes"
	"errors"
	"testing"
)

// subsets calls fn with every k-element subset of 0..n-1.
func subsets(n, k int, fn func([]int)) {
	idx := make([]int, 0, k)
	var rec func(start int)
	rec = func(start int) {
		if len(idx) == k {
			fn(append([]int(nil), idx...))
			return
		}
		for i := start; i < n; i++ {
			idx = append(idx, i)
			rec(i + 1)
			idx = idx[:len(idx)-1]
		}
	}
	rec(0)
}

func TestFieldInverse(t *testing.T) {
	for a := 1; a < 256; a++ {
		if got := mul(byte(a), inv(byte(a))); got != 1 {
			t.Fatalf("mul(%d, inv(%d)) = %d, want 1", a, a, got)
		}
	}
}

func TestEverySubsetRebuilds(t *testing.T) {
	tests := []struct{ n, k int }{{5, 3}, {3, 2}, {2, 2}, {5, 5}}
	secret := []byte("root key marker 0123456789abcdef")
	for _, tt := range tests {
		shares, err := Split(secret, tt.n, tt.k)
		if err != nil {
			t.Fatalf("Split(%d, %d): %v", tt.n, tt.k, err)
		}
		for size := tt.k; size <= tt.n; size++ {
			subsets(tt.n, size, func(pick []int) {
				var sub [][]byte
				for _, i := range pick {
					sub = append(sub, shares[i])
				}
				got, err := Combine(sub)
				if err != nil || !bytes.Equal(got, secret) {
					t.Errorf("%d-of-%d: Combine(%v) = %x, %v, want the secret", tt.k, tt.n, pick, got, err)
				}
			})
		}
		subsets(tt.n, tt.k-1, func(pick []int) {
			var sub [][]byte
			for _, i := range pick {
				sub = append(sub, shares[i])
			}
			if _, err := Combine(sub); !errors.Is(err, ErrTooFew) {
				t.Errorf("%d-of-%d: Combine(%v) error = %v, want ErrTooFew", tt.k, tt.n, pick, err)
			}
		})
	}
}

func TestSplitRejectsBadParams(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		n, k   int
	}{
		{"k below 2", []byte("s"), 3, 1},
		{"k above n", []byte("s"), 3, 4},
		{"n above 255", []byte("s"), 256, 3},
		{"empty secret", nil, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Split(tt.secret, tt.n, tt.k); err == nil {
				t.Errorf("Split(%d, %d) error = nil, want an error", tt.n, tt.k)
			}
		})
	}
}

func TestCombineRejects(t *testing.T) {
	secret := []byte("0123456789abcdef")
	a, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s []byte, i int) []byte {
		c := append([]byte(nil), s...)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		shares [][]byte
		want   error
	}{
		{"duplicate", [][]byte{a[0], a[1], a[0]}, ErrDuplicate},
		{"other split", [][]byte{a[0], a[1], b[2]}, ErrMixed},
		{"corrupt y byte", [][]byte{a[0], a[1], flip(a[2], headerLen+3)}, ErrCorrupt},
		{"corrupt x", [][]byte{a[0], a[1], flip(a[2], headerLen-1)}, ErrCorrupt},
		{"corrupt checksum", [][]byte{a[0], flip(a[1], len(a[1])-1), a[2]}, ErrCorrupt},
		{"truncated", [][]byte{a[0], a[1], a[2][:len(a[2])-1]}, ErrCorrupt},
		{"too short", [][]byte{a[0], a[1], {1, 2, 3}}, ErrCorrupt},
		{"too few", [][]byte{a[0], a[1]}, ErrTooFew},
		{"none", nil, ErrTooFew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Combine(tt.shares)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Combine() = %x, %v, want error %v", got, err, tt.want)
			}
			if bytes.Contains([]byte(err.Error()), secret) {
				t.Errorf("Combine() error %q contains the secret", err)
			}
		})
	}
}

// TestFewerSharesFitAnySecret shows that k-1 shares are consistent with every
// possible secret: for each candidate, a polynomial through (0, candidate)
// and the k-1 real shares exists, and a share forged from it combines with
// the real ones to that candidate.
func TestFewerSharesFitAnySecret(t *testing.T) {
	shares, err := Split([]byte{0x42}, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	known := shares[:2]
	xs := []byte{known[0][headerLen-1], known[1][headerLen-1]}
	ys := []byte{known[0][headerLen], known[1][headerLen]}
	const forgedX = 5
	for c := 0; c < 256; c++ {
		// Lagrange through (0,c), (x0,y0), (x1,y1), evaluated at forgedX.
		px := []byte{0, xs[0], xs[1]}
		py := []byte{byte(c), ys[0], ys[1]}
		var y byte
		for i := range px {
			num, den := byte(1), byte(1)
			for j := range px {
				if i != j {
					num = mul(num, forgedX^px[j])
					den = mul(den, px[i]^px[j])
				}
			}
			y ^= mul(py[i], mul(num, inv(den)))
		}
		forged := append([]byte(nil), known[0]...)
		forged[headerLen-1] = forgedX
		forged[headerLen] = y
		sum := checksum(forged[:len(forged)-checksumLen])
		copy(forged[len(forged)-checksumLen:], sum[:])
		got, err := Combine([][]byte{known[0], known[1], forged})
		if err != nil || len(got) != 1 || got[0] != byte(c) {
			t.Fatalf("Combine(2 real + forged for %d) = %x, %v, want %02x", c, got, err, c)
		}
	}
}

// TestFewerSharesAreUniform checks statistically that one share of a 2-of-n
// split is uniformly distributed whatever the secret: a chi-square test over
// the 256 values of a share byte, for two very different secrets. The bound
// (255 degrees of freedom, limit 400) fails a correct implementation with
// probability below 1e-9.
func TestFewerSharesAreUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	const rounds = 256 * 40
	for _, secret := range []byte{0x00, 0xff} {
		var counts [256]int
		for range rounds {
			shares, err := Split([]byte{secret}, 3, 2)
			if err != nil {
				t.Fatal(err)
			}
			counts[shares[0][headerLen]]++
		}
		expected := float64(rounds) / 256
		var chi float64
		for _, c := range counts {
			d := float64(c) - expected
			chi += d * d / expected
		}
		if chi > 400 {
			t.Errorf("secret %02x: chi-square of one share = %.1f, want <= 400 (uniform)", secret, chi)
		}
	}
}

func FuzzCombine(f *testing.F) {
	shares, err := Split([]byte("fuzz seed secret"), 3, 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shares[0], shares[1], shares[2])
	f.Add(shares[0], shares[0], []byte{})
	f.Add([]byte{1}, []byte{}, []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		got, err := Combine([][]byte{a, b, c})
		if err != nil {
			return
		}
		// A successful combine must be reproducible from the first
		// threshold shares alone.
		info, _ := Parse(a)
		again, err := Combine([][]byte{a, b, c}[:info.Threshold])
		if err != nil || !bytes.Equal(got, again) {
			t.Fatalf("Combine is not stable: %x then %x, %v", got, again, err)
		}
	})
}
