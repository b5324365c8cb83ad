package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

func newGatewayCmd(a *app) *cobra.Command {
	cmd := group("gateway", "Inspect, stop or resume a running gateway")
	control := func(cmd *cobra.Command) (*socketOps, error) {
		s := dialControl(a.cfg.DataDir)
		if s == nil {
			return nil, errors.New("no keywarden serve is running on data directory " + a.cfg.DataDir)
		}
		return s, nil
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether the gateway accepts requests and each key's venue rate-limit usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := control(cmd)
			if err != nil {
				return err
			}
			var st gatewayStatus
			if err := s.call(cmd.Context(), "GET", "/v1/gateway/status", nil, &st); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(st)
			}
			fmt.Fprintf(a.stdout, "gateway: %s", st.State)
			if st.Reason != "" {
				fmt.Fprintf(a.stdout, " (%s)", st.Reason)
			}
			fmt.Fprintln(a.stdout)
			keys := make([]string, 0, len(st.RateLimits))
			for k := range st.RateLimits {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				rl := st.RateLimits[k]
				fmt.Fprintf(a.stdout, "  %s: %d of %d per %s\n", k, rl.Used, rl.Limit, rl.Window)
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, verb := range []struct{ use, short string }{
		{"stop", "Refuse every request until resumed (emergency stop)"},
		{"resume", "Accept requests again after a stop"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use: verb.use, Short: verb.short, Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := control(cmd)
				if err != nil {
					return err
				}
				var out map[string]string
				if err := s.call(cmd.Context(), "POST", "/v1/gateway/"+verb.use, struct{}{}, &out); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "gateway %s\n", out["gateway"])
				return nil
			},
		})
	}
	cmd.AddCommand(status)
	return cmd
}
