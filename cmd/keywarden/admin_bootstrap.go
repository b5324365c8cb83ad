package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// adminPassword reads the first admin's password from file, or typed twice
// on the terminal (one line of stdin off a terminal).
func (a *app) adminPassword(file string) ([]byte, error) {
	if file != "" {
		return readPassphraseFile(file)
	}
	pw, err := a.prompt.secret("Admin password (12 or more characters): ")
	if err != nil {
		return nil, err
	}
	if !a.prompt.interactive() {
		return pw, nil
	}
	again, err := a.prompt.secret("Again: ")
	if err != nil {
		clear(pw)
		return nil, err
	}
	defer clear(again)
	if !bytes.Equal(pw, again) {
		clear(pw)
		return nil, errors.New("the passwords differ")
	}
	return pw, nil
}

// createFirstAdmin creates the first admin operator of an unsealed vault
// and prints its TOTP enrollment and recovery codes once. It refuses when
// an operator exists already: later operators are created through the
// admin API, by an admin with a fresh TOTP code.
func (a *app) createFirstAdmin(ctx context.Context, db store.Store, v *vault.Vault, name, passFile string) error {
	ops, err := newOperators(ctx, db, v)
	if err != nil {
		return err
	}
	if any, err := ops.Any(ctx); err != nil {
		return err
	} else if any {
		return errors.New("operators exist already: create more through the admin API")
	}
	pw, err := a.adminPassword(passFile)
	if err != nil {
		return err
	}
	defer clear(pw)
	op, enr, err := ops.Create(ctx, operator.CreateOptions{Name: name, Role: operator.RoleAdmin, Password: pw})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Admin operator %q created.\n\n", op.Name)
	err = printEnrollment(a.stdout, enr.URL, enr.RecoveryCodes)
	clear(enr.Seed)
	return err
}

// printEnrollment shows a TOTP enrollment once: the key URI as a QR code
// for an authenticator app, the URI itself, and the recovery codes.
func printEnrollment(w io.Writer, uri string, codes []string) error {
	qr, err := operator.QRText(uri, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, `Scan this QR code with an authenticator app, or paste the URL (or its
secret= value) into it. Both are shown once.

%s
  %s

Recovery codes: each one replaces a TOTP code once at login. Keep them
offline, apart from the authenticator.

`, qr, uri)
	for _, c := range codes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	fmt.Fprintln(w)
	return nil
}

func newOperatorFirstAdminCmd(a *app) *cobra.Command {
	var name, passFile string
	cmd := &cobra.Command{
		Use:   "first-admin",
		Short: "Create the first admin operator of the admin API",
		Long: `Create the first admin operator (password and TOTP) of a vault that has
none yet, for vaults initialized without --admin-name. Stop keywarden serve
first: this command opens the data directory itself.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			defer v.Seal()
			return a.createFirstAdmin(ctx, db, v, name, passFile)
		},
	}
	cmd.Flags().StringVar(&name, "name", "admin", "operator name")
	cmd.Flags().StringVar(&passFile, "password-file", "", "file holding the admin password (mode 0600); default: prompt")
	return cmd
}
