package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/server"
)

// RuleWrapMisuse names the alert raised when a wrapping token is used a
// second time or after it expired.
const RuleWrapMisuse = "wrap_token_misuse"

// unwrapHandler serves POST /v1/unwrap on the gateway listener: audited in
// the gateway's audit log, misuse raised as a critical alert.
func unwrapHandler(srv *server.Server, raise func(monitor.Alert)) http.Handler {
	return client.UnwrapHandler(srv.Clients, client.UnwrapOptions{
		Audit: func(ctx context.Context, kind string, detail map[string]string) error {
			_, err := srv.Audit.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: kind, Actor: "unwrap", Detail: detail}})
			return err
		},
		Misuse: func(m *client.WrapMisuse, source string) {
			subject := m.Venue + "/" + m.ID
			raise(monitor.Alert{Rule: RuleWrapMisuse, Severity: monitor.SeverityCritical, Subject: subject,
				Summary: "wrapping token for " + subject + " presented again or after its expiry (" + m.Err.Error() +
					"): it may have been intercepted; the credential is revoked",
				Evidence: map[string]string{"source": source, "revoked": fmt.Sprint(m.Revoked)}})
		},
	})
}

// wrapIssued replaces a new credential's secret by a single-use wrapping
// token valid for ttlText. A credential that cannot be wrapped is revoked:
// its secret was never shown and would be lost.
func wrapIssued(ctx context.Context, reg *client.Registry, iss *client.Issued, ttlText string) (*issuedCredential, error) {
	defer iss.Secret.Zero()
	defer iss.Passphrase.Zero()
	ttl, err := time.ParseDuration(ttlText)
	if err == nil {
		var token string
		if token, err = reg.Wrap(ctx, iss.Venue, iss.ID, ttl); err == nil {
			return &issuedCredential{Client: iss.Client, WrapToken: token, WrapExpires: time.Now().Add(ttl).UTC()}, nil
		}
	} else {
		err = fmt.Errorf("wrap ttl %q: want a duration like 10m", ttlText)
	}
	if rerr := reg.Revoke(context.WithoutCancel(ctx), iss.Venue, iss.ID); rerr != nil {
		return nil, fmt.Errorf("%w (and revoking the unwrapped credential failed: %v)", err, rerr)
	}
	return nil, err
}

// printWrapped shows a wrapping token instead of a secret.
func printWrapped(w io.Writer, c *issuedCredential) {
	fmt.Fprintf(w, "Client credential for %s (key %s, policy %s), expires %s\n", c.Venue, c.Key, c.Policy, c.Expires.Format(time.RFC3339))
	fmt.Fprintf(w, "  API key:        %s\n", c.ID)
	fmt.Fprintf(w, "  Wrapping token: %s\n", c.WrapToken)
	fmt.Fprintf(w, "The token unwraps once, until %s, to the secret:\n", c.WrapExpires.Format(time.RFC3339))
	fmt.Fprintln(w, "  echo TOKEN | keywarden client unwrap --gateway https://GATEWAY   (or POST /v1/unwrap {\"token\": ...})")
	fmt.Fprintln(w, "A second or late unwrap revokes the credential and raises a critical alert.")
}

func newClientUnwrapCmd(a *app) *cobra.Command {
	var gateway, caFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "unwrap --gateway URL < token",
		Short: "Exchange a single-use wrapping token for the credential it wraps",
		Long: `unwrap reads a wrapping token (from keywarden client issue --wrap) on
standard input, never from the command line, posts it to the gateway's
/v1/unwrap and prints the credential. A token works once: a second or late
unwrap revokes the credential and raises a critical alert.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4<<10)).ReadString('\n')
			if err != nil && err != io.EOF {
				return fmt.Errorf("client unwrap: read the token: %w", err)
			}
			token := strings.TrimSpace(line)
			if token == "" {
				return fmt.Errorf("client unwrap: no token on standard input")
			}
			if gateway == "" {
				g := a.cfg.Gateway
				scheme := "https"
				if g.Plaintext {
					scheme = "http"
				}
				gateway = scheme + "://" + g.Listen
			}
			hc := &http.Client{Timeout: 30 * time.Second}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("client unwrap: --ca-file: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("client unwrap: --ca-file %s: no PEM certificate", caFile)
				}
				hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			body, _ := json.Marshal(map[string]string{"token": token})
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimSuffix(gateway, "/")+client.UnwrapPath, strings.NewReader(string(body)))
			if err != nil {
				return fmt.Errorf("client unwrap: %w", err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("client unwrap: %w", err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if err != nil {
				return fmt.Errorf("client unwrap: %w", err)
			}
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error string `json:"error"`
				}
				_ = json.Unmarshal(raw, &e)
				return fmt.Errorf("client unwrap: %s: %s", resp.Status, e.Error)
			}
			var out client.UnwrapResponse
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("client unwrap: malformed answer: %w", err)
			}
			c := &issuedCredential{Client: client.Client{ID: out.ID, Venue: out.Venue, Key: out.Key, Policy: out.Policy, Expires: out.Expires},
				SecretText: out.Secret, PassphraseText: out.Passphrase}
			return printIssued(a.stdout, c, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&gateway, "gateway", "", "gateway base URL (default: from the configuration's [gateway] listen)")
	f.StringVar(&caFile, "ca-file", "", "PEM certificate to trust for the gateway (e.g. from keywarden tls ca)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
