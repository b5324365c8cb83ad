package vault

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// downKMS is a bare KeyWrapper that names itself and can be taken down.
type downKMS struct {
	fakeKMS
	down *atomic.Bool
}

var errRefused = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

func (d downKMS) Type() string { return "testkms" }

func (d downKMS) Unwrap(ctx context.Context, w []byte) ([]byte, error) {
	if d.down.Load() {
		return nil, errRefused
	}
	return d.fakeKMS.Unwrap(ctx, w)
}

// An external seal that cannot be reached leaves the vault sealed with an
// error naming the backend and its cause, never the shares or passphrase.
func TestUnsealErrorNamesBackend(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	var down atomic.Bool
	kms := downKMS{fakeKMS: fakeKMS{key: bytes.Repeat([]byte{7}, 32)}, down: &down}
	if _, err := e.vault(t).Init(ctx, InitOptions{Wrapper: kms}); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	v := e.vault(t)
	err := v.UnsealWith(ctx, kms)
	if err == nil || !v.Sealed() {
		t.Fatalf("UnsealWith(backend down) = %v, sealed %v; want an error and a sealed vault", err, v.Sealed())
	}
	if !errors.Is(err, ErrSealBackend) || !errors.Is(err, errRefused) {
		t.Errorf("error %v does not match ErrSealBackend and the backend's own error", err)
	}
	if errors.Is(err, ErrBadShares) || errors.Is(err, ErrBadPassphrase) {
		t.Errorf("error %v blames shares or a passphrase for a backend failure", err)
	}
	if want := "vault unseal: external (testkms) seal: " + errRefused.Error(); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	down.Store(false)
	if err := v.UnsealWith(ctx, kms); err != nil || v.Sealed() {
		t.Fatalf("UnsealWith(backend back) = %v, want unsealed", err)
	}
}
