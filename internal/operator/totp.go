package operator

import (
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238 with HMAC-SHA1, six digits and 30-second steps,
// the defaults every authenticator app understands. Seeds enrolled before
// codes were computed by github.com/pquerna/otp used the same parameters,
// so they stay valid.
const (
	totpPeriod = 30
	totpDigits = 6
	totpSkew   = 1 // steps accepted either side of now
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hotpOpts are the HOTP options for codes of digits digits.
func hotpOpts(digits int) hotp.ValidateOpts {
	return hotp.ValidateOpts{Digits: otp.Digits(digits), Algorithm: otp.AlgorithmSHA1}
}

// hotpCode is RFC 4226's HOTP value of seed for counter, truncated to
// digits digits.
func hotpCode(seed []byte, counter uint64, digits int) string {
	c, err := hotp.GenerateCodeCustom(b32.EncodeToString(seed), counter, hotpOpts(digits))
	if err != nil {
		return "" // never a valid code: fails closed
	}
	return c
}

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step at which code is valid for seed around now and
// after last (codes are single-use: a step at or before last is refused,
// which is the replay protection), and whether one matched. Every step of
// the window is checked, each in constant time.
func matchTOTP(seed []byte, code string, now time.Time, last int64) (int64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	secret := b32.EncodeToString(seed)
	cur := totpStep(now)
	var found int64
	ok := false
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s <= last || s < 0 {
			continue
		}
		valid, err := hotp.ValidateCustom(code, uint64(s), secret, hotpOpts(totpDigits))
		if err == nil && valid && !ok {
			found, ok = s, true
		}
	}
	return found, ok
}

// otpauthURL is the key URI authenticator apps import (the format Google
// Authenticator documents). It contains the seed: show it once, never log it.
func otpauthURL(issuer, account string, seed []byte) (string, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod,
		Secret: seed, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("totp key uri: %w", err)
	}
	return k.URL(), nil
}

// SeedFromURL returns the seed of the first otpauth:// key URI in text (as
// an enrollment prints it), the inverse of what enrollment shows. Like
// Code, it exists for tests and for tooling that enrolls a software
// authenticator.
func SeedFromURL(text string) ([]byte, error) {
	i := strings.Index(text, "otpauth://")
	if i < 0 {
		return nil, errors.New("totp: no otpauth:// key URI")
	}
	uri := text[i:]
	if j := strings.IndexAny(uri, " \t\r\n"); j >= 0 {
		uri = uri[:j]
	}
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return nil, fmt.Errorf("totp: key URI: %w", err)
	}
	seed, err := b32.DecodeString(strings.ToUpper(k.Secret()))
	if err != nil || len(seed) == 0 {
		return nil, errors.New("totp: key URI has no valid secret")
	}
	return seed, nil
}

// Code returns the TOTP code of seed at t. It exists for tests and for
// tooling that enrolls a software authenticator.
func Code(seed []byte, t time.Time) string {
	c, err := totp.GenerateCodeCustom(b32.EncodeToString(seed), t, totp.ValidateOpts{Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return ""
	}
	return c
}
