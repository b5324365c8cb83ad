// Package good holds code close to every lint rule that must not be
// reported: redacting types, constants, non-secret names, and findings
// allowed by a comment with a reason.
package good

import (
	"bytes"
	"crypto/hmac"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Info has no secret field.
type Info struct {
	Name, APIKey string
	Secrets      int // not bytes: a count
}

func strings(c *exchange.Credential, i Info, raw []byte) []string {
	return []string{
		string(c.APIKey),
		string(raw),
		i.Name,
		// keywarden:allow H4-string the venue wants the passphrase as a header value
		string(c.Passphrase),
	}
}

func formatted(c *exchange.Credential, s exchange.Secret, i Info) {
	fmt.Printf("%v %s %+v %v\n", c, s, i, c.Secret)
	slog.Info("key", "secret", s, "info", i)
}

func scan(in string, o *struct{ Secret []byte }) {
	_, _ = fmt.Sscanf(in, "%s", &o.Secret)
}

func env() string {
	return os.Getenv("KEYWARDEN_CONFIG") + os.Getenv(os.Args[0]) + os.Getenv("KEYWARDEN_PASSPHRASE_FILE")
}

func tlsConf() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: false,
	}
}

func compare(sig, want []byte, sigType string, hashes int) bool {
	return hmac.Equal(sig, want) ||
		sigType == "hmac" ||
		len(sig) == 0 || sig == nil ||
		hashes == 3 ||
		bytes.Equal(sig[:0], nil) ||
		//keywarden:allow H5-compare public value, nothing secret to time
		bytes.Equal(sig, want)
}
