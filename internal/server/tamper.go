package server

import (
	"context"
	"errors"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
)

// vaultKeys is what the gateways open exchange keys with: the vault.
type vaultKeys interface {
	Credential(ctx context.Context, exchange, name string) (*exchange.Credential, error)
}

// tamperWatch opens exchange keys through keys and tells onTamper when the
// vault refuses one as tampered with or rolled back (spec/security.md V5,
// V7): the request still fails closed, and the operator hears of it at
// once instead of from a bot's 503s. Other errors (sealed, unknown key)
// are not tampering and pass through untold.
type tamperWatch struct {
	keys     vaultKeys
	onTamper func(exchange, name string, err error)
}

func (w tamperWatch) Credential(ctx context.Context, ex, name string) (*exchange.Credential, error) {
	c, err := w.keys.Credential(ctx, ex, name)
	if err != nil && errors.Is(err, vault.ErrTampered) {
		w.onTamper(ex, name, err)
	}
	return c, err
}
