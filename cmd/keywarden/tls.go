package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/tlsca"
)

func newTLSCmd(a *app) *cobra.Command {
	cmd := group("tls", "The gateway's local certificate authority")
	cmd.AddCommand(&cobra.Command{
		Use:   "ca",
		Short: "Print keywarden's local CA certificate (PEM) for bots to trust",
		Long: `ca prints the certificate of the local CA that issues the gateway's TLS
certificate when no tls_cert/tls_key is configured, creating the CA on first
use (its key is sealed in the vault). Give it to bots, e.g. with
SSL_CERT_FILE, NODE_EXTRA_CA_CERTS or REQUESTS_CA_BUNDLE.`,
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
			ca, err := tlsca.LoadOrCreate(ctx, db, v, time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout, string(ca.CertPEM))
			return err
		},
	})
	return cmd
}
