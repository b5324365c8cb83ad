// Package pkcs11 is a seal backend over a PKCS#11 token (an HSM, or
// SoftHSM2 for tests): an AES-256 key generated in the token,
// non-extractable and sensitive, encrypts the root key with AES-GCM inside
// the token, the additional data authenticated by the token's GCM. The key
// never leaves the token.
//
// The backend needs cgo and is built only with the build tag pkcs11 (it
// uses github.com/ThalesIgnite/crypto11 over github.com/miekg/pkcs11).
// Without the tag, New returns ErrNotBuilt. The user PIN is read from a
// file (mode 0600), never from arguments or the environment.
package pkcs11

import (
	"errors"
	"fmt"
)

// Type is the seal type recorded in the vault's seal configuration.
const Type = "pkcs11"

// ErrNotBuilt is returned by New in a binary built without the pkcs11 tag.
var ErrNotBuilt = errors.New("pkcs11 seal: keywarden was built without pkcs11 support (rebuild with: go build -tags pkcs11)")

// Config configures a PKCS#11 seal.
type Config struct {
	// Module is the path of the PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token.
	TokenLabel string
	// KeyLabel is the label of the AES key in the token (default
	// "keywarden-root").
	KeyLabel string
	// PINFile holds the user PIN (mode 0600).
	PINFile string
	// CreateKey lets Wrap generate the key when the token has none with
	// KeyLabel (operator init, migrate-seal). Unwrap never creates one.
	CreateKey bool
}

func (c *Config) check() error {
	if c.KeyLabel == "" {
		c.KeyLabel = "keywarden-root"
	}
	switch {
	case c.Module == "":
		return errors.New("pkcs11 seal: no module (the PKCS#11 library path)")
	case c.TokenLabel == "":
		return errors.New("pkcs11 seal: no token label")
	case c.PINFile == "":
		return errors.New("pkcs11 seal: no PIN file")
	}
	return nil
}

// KeyID is the key id a seal with this configuration records:
// "<token label>/<key label>".
func (c Config) KeyID() string { return c.TokenLabel + "/" + c.KeyLabel }

func (c *Config) String() string {
	return fmt.Sprintf("pkcs11 token %q key %q", c.TokenLabel, c.KeyLabel)
}
