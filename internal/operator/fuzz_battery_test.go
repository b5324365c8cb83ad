package operator

import (
	"testing"
	"time"
)

// FuzzTOTP (spec/security.md Z12): matching any code never panics; a code
// matches only at a step inside the ±skew window and after the last used
// step, and only if it is the code of that step.
func FuzzTOTP(f *testing.F) {
	seed := []byte("KWMARKER-totp-seed-0123")
	now := time.Unix(1_800_000_000, 0)
	f.Add(seed, Code(seed, now), now.Unix(), int64(0))
	f.Add(seed, Code(seed, now), now.Unix(), totpStep(now)) // replay of the same step
	f.Add(seed, "000000", now.Unix(), int64(0))
	f.Add(seed, "12345", now.Unix(), int64(0))
	f.Add(seed, "１２３４５６", now.Unix(), int64(0))
	f.Add([]byte{}, "", int64(-1), int64(-1))
	f.Fuzz(func(t *testing.T, seed []byte, code string, unix, last int64) {
		if unix < 0 || unix > 1<<40 {
			return
		}
		at := time.Unix(unix, 0)
		step, ok := matchTOTP(seed, code, at, last)
		if !ok {
			return
		}
		cur := totpStep(at)
		if step < cur-totpSkew || step > cur+totpSkew {
			t.Fatalf("matched step %d outside the window around %d", step, cur)
		}
		if step <= last {
			t.Fatalf("matched step %d at or before the last used step %d (a replay)", step, last)
		}
		if want := hotpCode(seed, uint64(step), totpDigits); want != code {
			t.Fatalf("code %q matched step %d whose code is %q", code, step, want)
		}
	})
}
