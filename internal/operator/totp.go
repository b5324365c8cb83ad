package operator

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"time"
)

// TOTP parameters: RFC 6238 with HMAC-SHA1, six digits and 30-second steps,
// the defaults every authenticator app understands.
const (
	totpPeriod = 30
	totpDigits = 6
	totpSkew   = 1 // steps accepted either side of now
)

// hotp is RFC 4226's HOTP value for counter, truncated to digits digits.
func hotp(seed []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, seed)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step at which code is valid for seed around now and
// after last (codes are single-use: a step at or before last is refused),
// and whether one matched. It compares in constant time.
func matchTOTP(seed []byte, code string, now time.Time, last int64) (int64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	cur := totpStep(now)
	var found int64
	ok := false
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s <= last || s < 0 {
			continue
		}
		if hmac.Equal([]byte(hotp(seed, uint64(s), totpDigits)), []byte(code)) && !ok {
			found, ok = s, true
		}
	}
	return found, ok
}

// otpauthURL is the key URI authenticator apps import (the format Google
// Authenticator documents). It contains the seed: show it once, never log it.
func otpauthURL(issuer, account string, seed []byte) string {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	q := url.Values{}
	q.Set("secret", enc)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(totpDigits))
	q.Set("period", fmt.Sprint(totpPeriod))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}

// Code returns the TOTP code of seed at t. It exists for tests and for
// tooling that enrolls a software authenticator.
func Code(seed []byte, t time.Time) string { return hotp(seed, uint64(totpStep(t)), totpDigits) }
