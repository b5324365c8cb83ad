package lint

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
)

// H5 (nightly): a dudect-style timing test of credential verification. Two
// classes of forged requests are verified in random interleaving: "fixed",
// whose signature matches the right one in every byte but the last (the
// slowest case for an early-exit comparison), and "random", a random
// signature. Both are refused. Welch's t-test on the two timing samples
// says whether verification time depends on how much of the signature is
// right; |t| > 5 fails (dudect's threshold).
//
// Timing on a shared machine is noisy, so this runs only with
// KEYWARDEN_DUDECT=1. KEYWARDEN_DUDECT_SAMPLES sets the samples per class
// (default 100000); the run also stops after 2 minutes.

// welch returns Welch's t statistic of a and b.
func welch(a, b []float64) float64 {
	mv := func(x []float64) (m, v float64) {
		for _, e := range x {
			m += e
		}
		m /= float64(len(x))
		for _, e := range x {
			v += (e - m) * (e - m)
		}
		return m, v / float64(len(x)-1)
	}
	ma, va := mv(a)
	mb, vb := mv(b)
	return (ma - mb) / math.Sqrt(va/float64(len(a))+vb/float64(len(b)))
}

// cropT returns the largest |t| over the whole samples and the samples
// cropped at a few percentiles of their pooled distribution (dudect's
// crops, which remove interrupts and other long outliers).
func cropT(a, b []float64) float64 {
	pooled := slices.Concat(a, b)
	slices.Sort(pooled)
	best := math.Abs(welch(a, b))
	for _, p := range []float64{0.5, 0.75, 0.9, 0.99} {
		limit := pooled[int(p*float64(len(pooled)-1))]
		keep := func(x []float64) []float64 {
			var out []float64
			for _, e := range x {
				if e <= limit {
					out = append(out, e)
				}
			}
			return out
		}
		ca, cb := keep(a), keep(b)
		if len(ca) > 10 && len(cb) > 10 {
			best = max(best, math.Abs(welch(ca, cb)))
		}
	}
	return best
}

// measure times f(class) for n samples per class in random order, within
// the deadline, and returns the two samples in nanoseconds.
func measure(t *testing.T, n int, deadline time.Time, f func(class int)) (fixed, random []float64) {
	t.Helper()
	order := make([]byte, 2*n)
	if _, err := rand.Read(order); err != nil {
		t.Fatal(err)
	}
	for i := range order {
		if time.Now().After(deadline) && i > 2000 {
			t.Logf("stopped at the time bound after %d samples", i)
			break
		}
		class := int(order[i] & 1)
		start := time.Now()
		f(class)
		d := float64(time.Since(start).Nanoseconds())
		if class == 0 {
			fixed = append(fixed, d)
		} else {
			random = append(random, d)
		}
	}
	return fixed, random
}

func dudectSamples(t *testing.T) int {
	if os.Getenv("KEYWARDEN_DUDECT") != "1" {
		t.Skip("timing test: set KEYWARDEN_DUDECT=1 to run it (nightly)")
	}
	n := 100_000
	if s := os.Getenv("KEYWARDEN_DUDECT_SAMPLES"); s != "" {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok || !v.IsInt64() || v.Int64() < 1000 || v.Int64() > 10_000_000 {
			t.Fatalf("KEYWARDEN_DUDECT_SAMPLES=%q: want 1000 to 10000000", s)
		}
		n = int(v.Int64())
	}
	return n
}

func TestDudect_H5_CredentialVerification(t *testing.T) {
	n := dudectSamples(t)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "dudect-client-0123456789",
		Secret: exchange.Secret(hex.EncodeToString(secret))}
	venue := binance.Spot(nil)
	now := time.Now()
	base := &exchange.Request{Method: http.MethodGet, Path: "/api/v3/account", RawQuery: "omitZeroBalances=true",
		Header: http.Header{"X-Mbx-Apikey": {client.APIKey}}}
	if err := venue.Signer.Sign(base, client, now); err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(base.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	good := q.Get("signature")
	if len(good) != 64 {
		t.Fatalf("signature %q is not 64 hex digits", good)
	}
	if _, err := venue.Verifier.Verify(base.Clone(), client, now); err != nil {
		t.Fatalf("the right signature does not verify: %v", err)
	}
	last := "0"
	if good[63] == '0' {
		last = "1"
	}
	forged := func(sig string) *exchange.Request {
		r := base.Clone()
		q, _ := url.ParseQuery(base.RawQuery)
		q.Set("signature", sig)
		r.RawQuery = q.Encode()
		return r
	}
	// The same number of distinct request objects in each class, so that
	// memory and cache behave alike and only the signature differs.
	const pool = 64
	var reqs [2][pool]*exchange.Request
	for i := range pool {
		reqs[0][i] = forged(good[:63] + last)
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		reqs[1][i] = forged(hex.EncodeToString(b))
	}
	var next [2]int
	fixed, random := measure(t, n, time.Now().Add(2*time.Minute), func(class int) {
		r := reqs[class][next[class]%pool]
		next[class]++
		if _, err := venue.Verifier.Verify(r, client, now); err == nil {
			panic("a forged signature verified")
		}
	})
	tv := cropT(fixed, random)
	t.Logf("credential verification: |t| = %.2f over %d fixed and %d random samples (fail above 5)", tv, len(fixed), len(random))
	if tv > 5 {
		t.Errorf("verification time depends on the signature: |t| = %.2f > 5", tv)
	}
}

// The harness finds a leak where there is one: an early-exit comparison of
// 4 KiB buffers gives |t| far above 5.
func TestDudect_H5_DetectsLeak(t *testing.T) {
	n := dudectSamples(t) / 10
	secret := make([]byte, 4096)
	_, _ = rand.Read(secret)
	fixed := slices.Clone(secret)
	fixed[len(fixed)-1] ^= 1
	random := make([]byte, len(secret))
	_, _ = rand.Read(random)
	leaky := func(a, b []byte) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	fs, rs := measure(t, n, time.Now().Add(time.Minute), func(class int) {
		in := fixed
		if class == 1 {
			in = random
		}
		if leaky(secret, in) {
			panic("equal")
		}
	})
	tv := cropT(fs, rs)
	t.Logf("early-exit comparison: |t| = %.2f over %d and %d samples", tv, len(fs), len(rs))
	if tv <= 5 {
		t.Errorf("the harness did not see the early-exit leak: |t| = %.2f", tv)
	}
}
