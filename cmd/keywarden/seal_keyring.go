package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/seal/keyring"
	"github.com/keywarden/keywarden/internal/vault"
)

// keyringAccount names a data directory's entry in the desktop keyring.
func keyringAccount(cfg *Config) (string, error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	return dir, nil
}

// keyringPassphrase reads the vault passphrase from the desktop keyring
// ([vault] passphrase_keyring). The caller zeroes it.
func keyringPassphrase(cfg *Config) ([]byte, error) {
	account, err := keyringAccount(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := keyring.Get(ctx, account)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, fmt.Errorf("%w (store it with keywarden operator keyring-store)", err)
	}
	return p, err
}

func newOperatorKeyringStoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "keyring-store",
		Short: "Keep the vault passphrase in the desktop keyring (Secret Service, macOS Keychain)",
		Long: `Check the passphrase (from passphrase_file, or typed on the terminal) against
the vault, then store it in the desktop keyring under the service
"keywarden" and the data directory's path. With [vault] passphrase_keyring =
true (or KEYWARDEN_PASSPHRASE_KEYRING=1) and no passphrase_file, commands
read it from there. Needs a binary built with -tags keyring, and secret-tool
(libsecret-tools) on Linux.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			account, err := keyringAccount(&a.cfg)
			if err != nil {
				return err
			}
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			st, err := v.Status(ctx)
			if err != nil {
				return err
			}
			if st.SealType != vault.SealPassphrase {
				return fmt.Errorf("the vault uses the %s seal; only a passphrase goes in the keyring", st.SealType)
			}
			cfg := a.cfg
			cfg.Vault.PassphraseKeyring = false // the passphrase comes from the file or the terminal
			pass, err := passphrase(&cfg, a.prompt, "Vault passphrase: ")
			if err != nil {
				return err
			}
			defer clear(pass)
			if err := v.Unseal(ctx, pass); err != nil {
				return err
			}
			if err := keyring.Set(ctx, account, pass); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Passphrase stored in the desktop keyring (service %s, account %s).\n", keyring.Service, account)
			return nil
		},
	}
}
