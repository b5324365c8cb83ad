package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/spf13/cobra"
)

func newAlertCmd(a *app) *cobra.Command {
	cmd := group("alert", "Check alert delivery")
	cmd.AddCommand(&cobra.Command{
		Use:   "test",
		Short: "Send a test alert through every configured notifier",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := a.cfg.Alerts.notifiers(a.cfg.path)
			if err != nil {
				return err
			}
			if len(ns) == 0 {
				return errors.New("no notifiers configured: add an [alerts] section")
			}
			host, _ := os.Hostname()
			al := monitor.Alert{Rule: monitor.RuleTest, Severity: monitor.SeverityInfo, Subject: "keywarden",
				Summary: "test alert from keywarden alert test", Evidence: map[string]string{"host": host}, Time: time.Now().UTC()}
			var failed int
			for _, n := range ns {
				ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
				err := n.Notify(ctx, al)
				cancel()
				if err != nil {
					failed++
					fmt.Fprintf(a.stdout, "%s: FAILED: %v\n", notifierName(n), err)
					continue
				}
				fmt.Fprintf(a.stdout, "%s: delivered\n", notifierName(n))
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d notifiers failed", failed, len(ns))
			}
			return nil
		},
	})
	return cmd
}

// notifierName names a notifier for the operator without its secrets.
func notifierName(n monitor.Notifier) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", n), "*notify.")
}
