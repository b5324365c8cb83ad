// Package bad holds planted violations of every lint rule; lint_test.go
// checks each is reported on the line its "want" comment names.
package bad

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/awnumar/memguard"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Options carries a secret field without any redaction.
type Options struct {
	Name       string
	Passphrase []byte
}

// Wrapper holds a redacting secret, but prints itself in full.
type Wrapper struct{ Key exchange.Secret }

func stringOfSecret(c *exchange.Credential, o Options, b *memguard.LockedBuffer) []string {
	return []string{
		string(c.Secret),         // want H4-string
		string(c.Passphrase[:4]), // want H4-string
		string(o.Passphrase),     // want H4-string
		string(b.Bytes()),        // want H4-string
	}
}

func formatted(o Options, p *Options, l *slog.Logger) {
	fmt.Printf("options %v\n", o)        // want H4-format
	_ = fmt.Errorf("bad options %+v", p) // want H4-format
	log.Println("options", o)            // want H4-format
	slog.Info("options", "o", o)         // want H4-format
	l.Warn("wrapper", "w", Wrapper{})    // want H4-format
	_ = slog.Any("o", p)                 // want H4-format
	_ = slog.With("o", o)                // want H4-format
}

type app struct{ getenv func(string) string }

func env(a app) (string, bool) {
	_ = a.getenv("VAULT_TOKEN")             // want H4-env
	_ = os.Getenv("KEYWARDEN_PASSPHRASE")   // want H4-env
	return os.LookupEnv("EXCHANGE_API_KEY") // want H4-env
}

func insecure() *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true} // want H4-tls
	c.InsecureSkipVerify = len(os.Args) > 3    // want H4-tls
	return c
}

func compare(gotSig, wantSig string, mac, expectedMAC []byte, digest [32]byte, other [32]byte, token string) bool {
	return gotSig == wantSig || // want H5-compare
		bytes.Equal(mac, expectedMAC) || // want H5-compare
		digest == other || // want H5-compare
		token != os.Args[0] || // want H5-compare
		bytes.Compare(computeHMAC(), mac) == 0 // want H5-compare
}

func computeHMAC() []byte { return nil }
