//go:build !keyring

package keyring

import (
	"context"
	"errors"
	"testing"
)

func TestNotBuilt(t *testing.T) {
	if _, err := Get(context.Background(), "/srv/kw"); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Get() = %v, want ErrNotBuilt", err)
	}
	if err := Set(context.Background(), "/srv/kw", []byte("x")); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Set() = %v, want ErrNotBuilt", err)
	}
}
