//go:build !pkcs11

package pkcs11

import (
	"context"
	"errors"
	"testing"
)

func TestNotBuilt(t *testing.T) {
	_, err := New(Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PINFile: "/p"})
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("New() without the pkcs11 tag = %v, want ErrNotBuilt", err)
	}
	var s *Seal
	if _, err := s.Wrap(context.Background(), nil, nil); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Wrap() = %v, want ErrNotBuilt", err)
	}
	if _, err := New(Config{TokenLabel: "t", PINFile: "/p"}); err == nil || errors.Is(err, ErrNotBuilt) {
		t.Errorf("New() without a module = %v, want a configuration error", err)
	}
}
