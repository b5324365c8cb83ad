//go:build !keyring

package keyring

import "context"

// Get returns ErrNotBuilt.
func Get(context.Context, string) ([]byte, error) { return nil, ErrNotBuilt }

// Set returns ErrNotBuilt.
func Set(context.Context, string, []byte) error { return ErrNotBuilt }
