package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/vault"
)

func newOperatorCmd(a *app) *cobra.Command {
	cmd := group("operator", "Initialize, unseal, rotate and rekey the vault")
	cmd.AddCommand(newOperatorInitCmd(a), newOperatorUnsealCmd(a), newOperatorStatusCmd(a),
		newOperatorRotateCmd(a), newOperatorRekeyCmd(a), newOperatorVerifyCmd(a), newOperatorFirstAdminCmd(a),
		newOperatorMigrateSealCmd(a), newOperatorKeyringStoreCmd(a))
	return cmd
}

func newOperatorInitCmd(a *app) *cobra.Command {
	var shares, threshold int
	var adminName, adminPassFile, sealFlag string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the vault, sealed by a passphrase or by k-of-n unseal shares",
		Long: `Create the vault in the data directory.

Without flags the vault is sealed by a passphrase, read from [vault]
passphrase_file (KEYWARDEN_PASSPHRASE_FILE, --passphrase-file) or typed twice
on the terminal. With --shares and --threshold it is sealed by Shamir shares:
they are printed once and never stored. With --seal and a URL (or [vault]
seal), the root key is wrapped by an external seal that also unseals the
vault at every start: transit://, awskms:// or pkcs11:// (see
keywarden operator migrate-seal --help for the URL forms).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			useShares := cmd.Flags().Changed("shares") || cmd.Flags().Changed("threshold")
			choice, err := a.chooseSeal(ctx, sealFlag, useShares)
			if err != nil {
				return err
			}
			if choice.external != nil {
				defer choice.external.close()
			}
			useShares = choice.shamir
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if ok, err := v.Initialized(ctx); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("the vault in %s is already initialized", db.Dir())
			}
			opts := vault.InitOptions{KDF: a.cfg.Vault.KDF()}
			if choice.external != nil {
				opts.Seal = choice.external
			} else if useShares {
				opts.Shares, opts.Threshold = shares, threshold
			} else {
				pass, err := a.newPassphrase()
				if err != nil {
					return err
				}
				defer clear(pass)
				opts.Passphrase = pass
			}
			out, err := v.Init(ctx, opts)
			if err != nil {
				return err
			}
			// The first admin is created after the vault's own output, so a
			// failure here never hides the unseal shares.
			firstAdmin := func() error {
				if adminName == "" {
					return nil
				}
				if err := a.createFirstAdmin(ctx, db, v, adminName, adminPassFile); err != nil {
					return fmt.Errorf("first admin: %w (the vault is initialized; retry with keywarden operator first-admin)", err)
				}
				return nil
			}
			if choice.external != nil {
				fmt.Fprintf(a.stdout, "Vault initialized in %s, sealed by %s key %s.\n", db.Dir(), choice.external.Type(), choice.external.KeyID())
				fmt.Fprintln(a.stdout, "Set [vault] seal (or KEYWARDEN_SEAL) to the same seal URL: it unseals the vault at every start.")
				return firstAdmin()
			}
			if !useShares {
				fmt.Fprintf(a.stdout, "Vault initialized in %s, sealed by a passphrase (Argon2id).\n", db.Dir())
				fmt.Fprintln(a.stdout, "Keep the passphrase safe: without it the exchange keys stored here cannot be recovered.")
				return firstAdmin()
			}
			printShares(a.stdout, out, threshold)
			fmt.Fprintf(a.stdout, "Vault initialized in %s.\n", db.Dir())
			return firstAdmin()
		},
	}
	cmd.Flags().IntVar(&shares, "shares", 5, "number of unseal shares to create")
	cmd.Flags().IntVar(&threshold, "threshold", 3, "number of shares needed to unseal")
	cmd.Flags().StringVar(&sealFlag, "seal", "", "passphrase, shamir, or an external seal URL (transit://, awskms://, pkcs11://); default [vault] seal, else passphrase")
	cmd.Flags().StringVar(&adminName, "admin-name", "", "also create the first admin operator of the admin API")
	cmd.Flags().StringVar(&adminPassFile, "admin-password-file", "", "file holding that admin's password (mode 0600); default: prompt")
	return cmd
}

func printShares(w io.Writer, shares [][]byte, threshold int) {
	fmt.Fprintf(w, `Unseal shares: any %d of these %d shares unseal the vault.
They are shown this once and stored nowhere. Give each share to a different
operator now, and keep them apart: anyone holding %d of them can unseal the
vault, and with fewer than %d the exchange keys stored here are lost.

`, threshold, len(shares), threshold, threshold)
	for i, s := range shares {
		fmt.Fprintf(w, "Share %d: %s\n", i+1, encodeShare(s))
		clear(s)
	}
	fmt.Fprintln(w)
}

// newPassphrase reads a new passphrase: from the configured file, or typed
// twice on the terminal.
func (a *app) newPassphrase() ([]byte, error) {
	if a.cfg.Vault.PassphraseFile != "" {
		return readPassphraseFile(a.cfg.Vault.PassphraseFile)
	}
	return a.prompt.newPassphrase()
}

func newOperatorUnsealCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unseal",
		Short: "Check that a passphrase or a set of unseal shares opens the vault",
		Long: `Unseal the vault in this process: with the passphrase (file or terminal),
or with unseal shares read one per line from the terminal or stdin, showing
progress. The unsealed state lives only in the process that unsealed it:
this command checks the passphrase or shares and exits. A running keywarden
server is unsealed through its own API, and other CLI commands that need
secrets unseal for themselves.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "Vault unsealed: the passphrase or shares are valid. It seals again as this command exits.")
			return nil
		},
	}
}

func newOperatorStatusCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the vault is initialized, how it is sealed, and how many keys it holds",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := v.Status(ctx)
			if err != nil {
				return err
			}
			keys, err := v.Keys(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(struct {
					DataDir string `json:"data_dir"`
					vault.Status
					Keys int `json:"keys"`
				}{db.Dir(), st, len(keys)})
			}
			fmt.Fprintf(a.stdout, "Data directory: %s\n", db.Dir())
			fmt.Fprintf(a.stdout, "Initialized:    %v\n", st.Initialized)
			switch st.SealType {
			case vault.SealPassphrase:
				fmt.Fprintln(a.stdout, "Seal:           passphrase (Argon2id)")
			case vault.SealShamir:
				fmt.Fprintf(a.stdout, "Seal:           %d of %d unseal shares\n", st.Threshold, st.Shares)
			case vault.SealExternal:
				fmt.Fprintf(a.stdout, "Seal:           %s key %s\n", st.SealBackend, st.SealKeyID)
			case "":
			default:
				fmt.Fprintf(a.stdout, "Seal:           %s\n", st.SealType)
			}
			if st.Initialized {
				fmt.Fprintf(a.stdout, "Created:        %s\n", st.Created.Format("2006-01-02 15:04:05 MST"))
			}
			fmt.Fprintf(a.stdout, "Exchange keys:  %d\n", len(keys))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOperatorRotateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Add a new keyring term; new secrets are sealed under it, old ones still open",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			if err := v.Rotate(ctx); err != nil {
				return err
			}
			st, err := v.Status(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Keyring rotated: new secrets use term %d (%d terms).\n", st.Term, st.Terms)
			return nil
		},
	}
}

func newOperatorRekeyCmd(a *app) *cobra.Command {
	var shares, threshold int
	var newPassFile string
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Change the passphrase, or the unseal shares and threshold",
		Long: `Replace the seal without re-encrypting anything. The vault is unsealed with
the current passphrase or shares first. The new seal is a passphrase (from
--new-passphrase-file or typed twice on the terminal) or, with --shares and
--threshold, new unseal shares printed once. Old shares stop working.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			useShares := cmd.Flags().Changed("shares") || cmd.Flags().Changed("threshold")
			if useShares && newPassFile != "" {
				return errors.New("choose either --shares/--threshold or --new-passphrase-file")
			}
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			opts := vault.RekeyOptions{KDF: a.cfg.Vault.KDF()}
			if useShares {
				opts.Shares, opts.Threshold = shares, threshold
			} else {
				var pass []byte
				if newPassFile != "" {
					pass, err = readPassphraseFile(newPassFile)
				} else {
					pass, err = a.prompt.newPassphrase()
				}
				if err != nil {
					return err
				}
				defer clear(pass)
				opts.Passphrase = pass
			}
			out, err := v.Rekey(ctx, opts)
			if err != nil {
				return err
			}
			if useShares {
				printShares(a.stdout, out, threshold)
				fmt.Fprintln(a.stdout, "Vault rekeyed: the old passphrase or shares no longer unseal it.")
				return nil
			}
			fmt.Fprintln(a.stdout, "Vault rekeyed to the new passphrase: the old passphrase or shares no longer unseal it.")
			if a.cfg.Vault.PassphraseFile != "" && newPassFile != "" {
				fmt.Fprintf(a.stdout, "Update passphrase_file (now %s) to point at the new passphrase.\n", a.cfg.Vault.PassphraseFile)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&shares, "shares", 5, "number of new unseal shares")
	cmd.Flags().IntVar(&threshold, "threshold", 3, "number of new shares needed to unseal")
	cmd.Flags().StringVar(&newPassFile, "new-passphrase-file", "", "file holding the new passphrase (mode 0600)")
	return cmd
}

func newOperatorVerifyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the database and that every stored exchange key opens",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if err := db.QuickCheck(ctx); err != nil {
				return err
			}
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			problems, err := v.Verify(ctx)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(a.stdout, "%s: %s\n", p.Record, p.Issue)
			}
			if len(problems) > 0 {
				return fmt.Errorf("verify: %d problems", len(problems))
			}
			fmt.Fprintln(a.stdout, "Database and key inventory are consistent.")
			return nil
		},
	}
}
