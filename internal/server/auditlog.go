package server

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/vault"
)

// OpenAudit opens the audit log in dir with the keys sealed in v, as New
// does, for commands that record events while keywarden serve is stopped
// (key rotation from the CLI). The vault must be unsealed.
func OpenAudit(ctx context.Context, v *vault.Vault, dir string, hashFields []string, log *slog.Logger) (*audit.Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	signer, err := vaultKey(ctx, v, auditSignerID, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(nil)
		return priv.Seed(), err
	})
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	hashKey, err := vaultKey(ctx, v, auditHashID, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := randRead(b)
		return b, err
	})
	if err != nil {
		clear(signer)
		return nil, fmt.Errorf("audit hash key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(signer)
	clear(signer)
	l, err := audit.Open(audit.Options{Dir: dir, Logger: log.With("component", "audit"), Signer: priv, HashKey: hashKey, HashFields: hashFields})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return l, nil
}
