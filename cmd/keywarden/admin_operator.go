package main

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func newAdminOperatorCmd(a *app) *cobra.Command {
	cmd := group("operator", "Create operators and renew recovery codes through the admin API")
	cmd.AddCommand(newAdminOperatorCreateCmd(a), newAdminRecoveryCodesCmd(a))
	return cmd
}

func newAdminOperatorCreateCmd(a *app) *cobra.Command {
	var role, passFile string
	var keys []string
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE",
		Short: "Create an operator and show its TOTP enrollment (QR code) and recovery codes once",
		Long: `Create an operator through the admin API. The new operator's password is read
from --password-file or typed twice. Creating an admin asks for your fresh
TOTP code. The new operator's TOTP key is drawn as a QR code to scan, with
its recovery codes: hand them over and do not keep a copy.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := a.adminPassword(passFile)
			if err != nil {
				return err
			}
			defer clear(pw)
			var code []byte
			if role == "admin" {
				if code, err = a.stepUpCode(cmd.Context()); err != nil {
					return err
				}
				defer clear(code)
			}
			body := map[string]any{"name": args[0], "role": role, "keys": keys, "password": string(pw)}
			status, out, err := a.adminCall(cmd.Context(), "POST", "/v1/operators", body, code)
			if err != nil {
				return err
			}
			switch status {
			case http.StatusCreated:
			case http.StatusAccepted:
				fmt.Fprintf(a.stdout, "Approval needed: %s\n", out)
				return nil
			default:
				return apiError(status, out)
			}
			var res struct {
				TOTPURL       string   `json:"totp_url"`
				RecoveryCodes []string `json:"recovery_codes"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("admin API: %w", err)
			}
			fmt.Fprintf(a.stdout, "Operator %q created (%s).\n\n", args[0], role)
			return printEnrollment(a.stdout, res.TOTPURL, res.RecoveryCodes)
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin, security, trader-ops or auditor")
	cmd.Flags().StringSliceVar(&keys, "keys", nil, "exchange keys in scope (EXCHANGE/NAME); default all")
	cmd.Flags().StringVar(&passFile, "password-file", "", "file holding the new operator's password (mode 0600); default: prompt")
	return cmd
}

func newAdminRecoveryCodesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "recovery-codes",
		Short: "Replace your recovery codes with ten new ones (asks for a fresh TOTP code unless just stepped up)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code, err := a.stepUpCode(cmd.Context())
			if err != nil {
				return err
			}
			defer clear(code)
			status, out, err := a.adminCall(cmd.Context(), "POST", "/v1/auth/recovery-codes", nil, code)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return apiError(status, out)
			}
			var res struct {
				RecoveryCodes []string `json:"recovery_codes"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("admin API: %w", err)
			}
			fmt.Fprintln(a.stdout, "New recovery codes (the old ones no longer work); each replaces a TOTP code once:")
			for _, c := range res.RecoveryCodes {
				fmt.Fprintf(a.stdout, "  %s\n", c)
			}
			return nil
		},
	}
}
