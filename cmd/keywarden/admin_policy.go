package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// adminCall sends one request to the admin API with the saved session and
// returns the status and the answer. totp, when set, goes in the step-up
// header.
func (a *app) adminCall(ctx context.Context, method, path string, body any, totp []byte) (int, []byte, error) {
	s, err := a.loadAdminSession()
	if err != nil {
		return 0, nil, err
	}
	hc, err := adminHTTP(s.CA)
	if err != nil {
		return 0, nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	if len(totp) > 0 {
		req.Header.Set("X-Keywarden-TOTP", string(totp))
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin: %w", err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	return res.StatusCode, out, err
}

// stepUpCode returns a fresh TOTP code for a step-up action, asked on the
// terminal, or nil when the session stepped up in the last minutes (a code
// is accepted once, so it is not asked for twice in a row).
func (a *app) stepUpCode(ctx context.Context) ([]byte, error) {
	status, out, err := a.adminCall(ctx, "GET", "/v1/auth/whoami", nil, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, apiError(status, out)
	}
	var who struct {
		SteppedUp bool `json:"stepped_up"`
	}
	if json.Unmarshal(out, &who) == nil && who.SteppedUp {
		return nil, nil
	}
	return a.prompt.secret("TOTP code: ")
}

// apiError is the message of an admin API refusal.
func apiError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("admin API: %d %s: %s", status, e.Code, e.Error)
	}
	return fmt.Errorf("admin API: %d %s", status, http.StatusText(status))
}

func newAdminPolicyCmd(a *app) *cobra.Command {
	cmd := group("policy", "Show and edit policies through the admin API")
	cmd.AddCommand(newAdminPolicyShowCmd(a), newAdminPolicyApplyCmd(a), newAdminPolicyDeleteCmd(a))
	return cmd
}

func newAdminPolicyShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print a policy as policy file text",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			status, body, err := a.adminCall(cmd.Context(), "GET", "/v1/policies/"+url.PathEscape(args[0])+"?format=toml", nil, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return apiError(status, body)
			}
			_, err = a.stdout.Write(body)
			return err
		},
	}
}

// policyChange is the admin API's answer to a policy edit.
type policyChange struct {
	Change struct {
		Diff            string   `json:"diff"`
		EnablesWithdraw bool     `json:"enables_withdraw"`
		Raised          []string `json:"raised"`
		AddedAddresses  []struct {
			Asset, Network, Address string
		} `json:"added_addresses"`
	} `json:"change"`
	StepUp  bool `json:"step_up"`
	Applied bool `json:"applied"`
}

func newAdminPolicyApplyCmd(a *app) *cobra.Command {
	var file string
	var approvals []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply NAME --file FILE",
		Short: "Create or replace a policy from a file holding its [policy.NAME] table",
		Long: `Create or replace a policy in the running keywarden: the file holds one
[policy.NAME] table, as in the configuration. The change is shown first (a
diff and what it widens); a change that widens the policy asks for a fresh
TOTP code; a change that needs approvals prints the pending request: once
approved, run the command again with --approval ID (once per request).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("--file is required")
			}
			text, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			path := "/v1/policies/" + url.PathEscape(name)
			body := map[string]string{"toml": string(text)}
			status, out, err := a.adminCall(ctx, "PUT", path+"?dry_run=true", body, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return apiError(status, out)
			}
			var dry policyChange
			if err := json.Unmarshal(out, &dry); err != nil {
				return fmt.Errorf("admin API: %w", err)
			}
			if dry.Change.Diff == "" {
				fmt.Fprintf(a.stdout, "Policy %s is unchanged.\n", name)
			} else {
				fmt.Fprint(a.stdout, dry.Change.Diff)
			}
			for _, r := range dry.Change.Raised {
				fmt.Fprintf(a.stdout, "widens: %s\n", r)
			}
			if dry.Change.EnablesWithdraw {
				fmt.Fprintln(a.stdout, "widens: enables withdrawals")
			}
			for _, ad := range dry.Change.AddedAddresses {
				fmt.Fprintf(a.stdout, "adds withdrawal address: %s %s %s (cool-down from now)\n", ad.Asset, ad.Network, ad.Address)
			}
			if dryRun {
				return nil
			}
			var code []byte
			if dry.StepUp {
				if code, err = a.stepUpCode(ctx); err != nil {
					return err
				}
				defer clear(code)
			}
			q := url.Values{}
			for _, id := range approvals {
				q.Add("approval", id)
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			status, out, err = a.adminCall(ctx, "PUT", path, body, code)
			if err != nil {
				return err
			}
			switch status {
			case http.StatusOK:
				fmt.Fprintf(a.stdout, "Policy %s applied: the gateway uses it from its next request.\n", name)
				return nil
			case http.StatusAccepted:
				var ap struct {
					ID     string `json:"id"`
					Action string `json:"action"`
					Rule   struct {
						Role     string `json:"role"`
						Required int    `json:"required"`
					} `json:"rule"`
				}
				_ = json.Unmarshal(out, &ap)
				fmt.Fprintf(a.stdout, "Approval needed (%s): request %s waits for %d approvals by %s operators.\n", ap.Action, ap.ID, ap.Rule.Required, ap.Rule.Role)
				fmt.Fprintf(a.stdout, "Once approved, run again with %s--approval %s.\n", strings.Repeat("--approval ID ", len(approvals)), ap.ID)
				return nil
			}
			return apiError(status, out)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "file holding the [policy.NAME] table")
	cmd.Flags().StringSliceVar(&approvals, "approval", nil, "an approved request for this change (repeat for each)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the change without making it")
	return cmd
}

func newAdminPolicyDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy; clients bound to it are denied from their next call",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			status, body, err := a.adminCall(cmd.Context(), "DELETE", "/v1/policies/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return apiError(status, body)
			}
			fmt.Fprintf(a.stdout, "Policy %s deleted.\n", args[0])
			return nil
		},
	}
}
