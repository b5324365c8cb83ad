//go:build !pkcs11

package pkcs11

import (
	"context"
)

// Seal is a PKCS#11 seal; without the pkcs11 build tag it cannot be made.
type Seal struct{}

// New returns ErrNotBuilt: this binary was built without the pkcs11 tag.
func New(cfg Config) (*Seal, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return nil, ErrNotBuilt
}

// Type implements vault.SealWrapper.
func (*Seal) Type() string { return Type }

// KeyID implements vault.SealWrapper.
func (*Seal) KeyID() string { return "" }

// Wrap implements vault.SealWrapper.
func (*Seal) Wrap(context.Context, []byte, []byte) ([]byte, error) { return nil, ErrNotBuilt }

// Unwrap implements vault.SealWrapper.
func (*Seal) Unwrap(context.Context, []byte, []byte) ([]byte, error) { return nil, ErrNotBuilt }

// Close does nothing.
func (*Seal) Close() error { return nil }
