package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/venues"
)

func newClientCmd(a *app) *cobra.Command {
	cmd := group("client", "Issue, list, revoke, rotate and downgrade bot credentials")
	cmd.AddCommand(newClientIssueCmd(a), newClientListCmd(a), newClientRevokeCmd(a), newClientRotateCmd(a),
		newClientReadOnlyCmd(a), newClientRestoreCmd(a), newClientUnwrapCmd(a))
	return cmd
}

// withClientOps runs fn against a running gateway's control socket when one
// serves the data directory, or else against the data directory itself
// (unsealing the vault for this process).
func (a *app) withClientOps(ctx context.Context, fn func(clientOps) error) error {
	if s := dialControl(a.cfg.DataDir); s != nil {
		return fn(s)
	}
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
		return err
	}
	defer v.Seal()
	reg := client.New(client.Options{Store: db, Secrets: v, Logger: a.log})
	pols := map[string]bool{}
	for n := range a.cfg.Policies {
		pols[n] = true
	}
	return fn(registryOps{reg: reg, policies: pols, keys: func(ctx context.Context, ex, name string) error {
		_, err := v.Key(ctx, ex, name)
		return err
	}})
}

func newClientIssueCmd(a *app) *cobra.Command {
	var req issueRequest
	var keyRef, pubFile, certFile, wrapTTL string
	var asJSON, wrap bool
	cmd := &cobra.Command{
		Use:   "issue --key EXCHANGE/NAME --policy POLICY --ttl 24h",
		Short: "Issue a client credential bound to one exchange key and one policy",
		Long: `issue creates a credential in the venue's own format for a bot. For HMAC
venues keywarden generates the key and secret (and passphrase where the
venue has one) and prints them once. For public-key schemes (--kind ed25519,
ecdsa or rsa) the bot keeps its private key and you register its public key
with --public-key-file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ex, name, ok := strings.Cut(keyRef, "/")
			if !ok || ex == "" || name == "" {
				return fmt.Errorf("--key %q: want EXCHANGE/NAME, e.g. binance/main", keyRef)
			}
			req.Key = name
			if req.Venue == "" {
				req.Venue = ex
			}
			def, err := venues.ByName(req.Venue)
			if err != nil {
				return err
			}
			if def.Exchange != ex {
				return fmt.Errorf("venue %s signs with %s keys, not %s keys", def.Name, def.Exchange, ex)
			}
			if pubFile != "" {
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return err
				}
				req.PublicKey = string(b)
			}
			if certFile != "" {
				b, err := os.ReadFile(certFile)
				if err != nil {
					return err
				}
				blk, _ := pem.Decode(b)
				if blk == nil || blk.Type != "CERTIFICATE" {
					return fmt.Errorf("--client-cert %s: no PEM certificate found", certFile)
				}
				cert, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					return fmt.Errorf("--client-cert %s: %w", certFile, err)
				}
				req.CertSHA256 = client.CertFingerprint(cert)
			}
			if wrap {
				req.WrapTTL = wrapTTL
			}
			var out *issuedCredential
			err = a.withClientOps(cmd.Context(), func(o clientOps) error {
				out, err = o.Issue(cmd.Context(), req)
				return err
			})
			if err != nil {
				return fmt.Errorf("client issue: %w", err)
			}
			return printIssued(a.stdout, out, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyRef, "key", "", "exchange key as EXCHANGE/NAME (required)")
	f.StringVar(&req.Venue, "venue", "", "venue the bot calls (default: the key's exchange; e.g. binance-usdm)")
	f.StringVar(&req.Policy, "policy", "", "policy name from the configuration (required)")
	f.StringVar(&req.TTL, "ttl", "720h", "lifetime of the credential")
	f.StringSliceVar(&req.CIDRs, "cidr", nil, "allowed source addresses or CIDRs (repeatable; default any)")
	f.StringVar(&req.Label, "label", "", "a note for operators")
	f.StringVar(&req.Kind, "kind", "hmac", "hmac, ed25519, ecdsa or rsa")
	f.StringVar(&pubFile, "public-key-file", "", "the bot's PEM public key, for public-key kinds")
	f.StringVar(&certFile, "client-cert", "", "bind the credential to this TLS client certificate (PEM; needs gateway client_ca)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&wrap, "wrap", false, "print a single-use wrapping token instead of the secret (see client unwrap)")
	f.StringVar(&wrapTTL, "wrap-ttl", "10m", "how long the wrapping token can be unwrapped")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

func printIssued(w io.Writer, c *issuedCredential, asJSON bool) error {
	if c.WrapToken != "" && !asJSON {
		printWrapped(w, c)
		return nil
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	fmt.Fprintf(w, "Client credential for %s (key %s, policy %s), expires %s\n", c.Venue, c.Key, c.Policy, c.Expires.Format(time.RFC3339))
	fmt.Fprintf(w, "  API key:    %s\n", c.ID)
	if c.SecretText != "" {
		fmt.Fprintf(w, "  Secret:     %s\n", c.SecretText)
	}
	if c.PassphraseText != "" {
		fmt.Fprintf(w, "  Passphrase: %s\n", c.PassphraseText)
	}
	if c.SecretText != "" {
		fmt.Fprintln(w, "This secret is shown once and cannot be recovered; give it to the bot now.")
	}
	return nil
}

func newClientListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List client credentials (never their secrets)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cs []client.Client
			err := a.withClientOps(cmd.Context(), func(o clientOps) error {
				var err error
				cs, err = o.List(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("client list: %w", err)
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(cs)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVENUE\tKEY\tPOLICY\tKIND\tEXPIRES\tSTATE\tCIDRS\tLABEL")
			now := time.Now()
			for _, c := range cs {
				state := "active"
				if err := c.Active(now); err != nil {
					state = strings.TrimPrefix(err.Error(), "client credential ")
				} else if c.ReadOnly != nil {
					state = "read-only"
				}
				var cidrs []string
				for _, p := range c.CIDRs {
					cidrs = append(cidrs, p.String())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Venue, c.Key, c.Policy, c.Kind,
					c.Expires.Format(time.RFC3339), state, strings.Join(cidrs, ","), c.Label)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// findClient resolves a credential id to its venue.
func findClient(ctx context.Context, o clientOps, id string) (client.Client, error) {
	cs, err := o.List(ctx)
	if err != nil {
		return client.Client{}, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, nil
		}
	}
	return client.Client{}, fmt.Errorf("no client credential %q", id)
}

func newClientRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a client credential; the next request with it is refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withClientOps(cmd.Context(), func(o clientOps) error {
				c, err := findClient(cmd.Context(), o, args[0])
				if err != nil {
					return err
				}
				return o.Revoke(cmd.Context(), idRequest{Venue: c.Venue, ID: c.ID})
			})
			if err != nil {
				return fmt.Errorf("client revoke: %w", err)
			}
			fmt.Fprintf(a.stdout, "revoked %s\n", args[0])
			return nil
		},
	}
}

func newClientRotateCmd(a *app) *cobra.Command {
	var pubFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Replace a client credential with a new one of the same binding, revoking the old one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pub string
			if pubFile != "" {
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return err
				}
				pub = string(b)
			}
			var out *issuedCredential
			err := a.withClientOps(cmd.Context(), func(o clientOps) error {
				c, err := findClient(cmd.Context(), o, args[0])
				if err != nil {
					return err
				}
				out, err = o.Rotate(cmd.Context(), idRequest{Venue: c.Venue, ID: c.ID, PublicKey: pub})
				return err
			})
			if err != nil {
				return fmt.Errorf("client rotate: %w", err)
			}
			return printIssued(a.stdout, out, asJSON)
		},
	}
	cmd.Flags().StringVar(&pubFile, "public-key-file", "", "the bot's new PEM public key, for public-key kinds")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
