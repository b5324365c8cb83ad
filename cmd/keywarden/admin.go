package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newAdminCmd(a *app) *cobra.Command {
	var data string
	var totp bool
	cmd := &cobra.Command{
		Use:   "admin METHOD PATH",
		Short: "Call the admin API with the session from keywarden login",
		Long: `Call the admin API (documented at /v1/openapi.json) with the session saved
by keywarden login, and print the JSON answer. Examples:

  keywarden admin GET /v1/keys
  keywarden admin POST /v1/gateway/stop
  keywarden admin POST /v1/gateway/resume --totp
  keywarden admin POST /v1/clients --data '{"venue":"binance","key":"main","policy":"trader","ttl":"720h"}'

--totp asks for a fresh TOTP code and sends it for a step-up action.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, path := strings.ToUpper(args[0]), args[1]
			if !strings.HasPrefix(path, "/v1/") {
				return errors.New("PATH must start with /v1/")
			}
			s, err := a.loadAdminSession()
			if err != nil {
				return err
			}
			hc, err := adminHTTP(s.CA)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), method, s.URL+path, bytes.NewReader([]byte(data)))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+s.Token)
			req.Header.Set("Content-Type", "application/json")
			if totp {
				code, err := a.prompt.secret("TOTP code: ")
				if err != nil {
					return err
				}
				req.Header.Set("X-Keywarden-TOTP", string(code))
			}
			res, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("admin: %w", err)
			}
			defer res.Body.Close()
			if _, err := io.Copy(a.stdout, io.LimitReader(res.Body, 16<<20)); err != nil {
				return err
			}
			if res.StatusCode >= 300 {
				return fmt.Errorf("admin: %s", res.Status)
			}
			return nil
		},
	}
	cmd.AddCommand(newAdminPolicyCmd(a), newAdminOperatorCmd(a))
	cmd.Flags().StringVar(&data, "data", "", "JSON request body")
	cmd.Flags().BoolVar(&totp, "totp", false, "send a fresh TOTP code for a step-up action")
	return cmd
}
