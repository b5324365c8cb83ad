package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// adminSessionFile holds the CLI's admin API session in the data
// directory (mode 0600): the URL, the CA file and the session token.
const adminSessionFile = "admin-session.json"

type adminSession struct {
	URL   string `json:"url"`
	CA    string `json:"ca,omitempty"`
	Token string `json:"token"`
}

func (a *app) adminSessionPath() string { return filepath.Join(a.cfg.DataDir, adminSessionFile) }

func (a *app) loadAdminSession() (adminSession, error) {
	var s adminSession
	b, err := os.ReadFile(a.adminSessionPath())
	if errors.Is(err, os.ErrNotExist) {
		return s, errors.New("not logged in: run keywarden login")
	} else if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("admin session: %w", err)
	}
	return s, nil
}

// adminHTTP returns a client that trusts only caFile (the local CA's
// certificate, from keywarden tls ca) or, without it, the system roots.
func adminHTTP(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

func newLoginCmd(a *app) *cobra.Command {
	var url, name, caFile string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to the admin API with password and TOTP code",
		Long: `Log in to a running keywarden's admin API. The password and the TOTP code
(or a recovery code) are read from the terminal, or one per line from stdin.
The session token is kept in the data directory (mode 0600) for the admin
command; sessions end after 15 idle minutes or 8 hours.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--name is required")
			}
			if caFile != "" {
				abs, err := filepath.Abs(caFile)
				if err != nil {
					return err
				}
				caFile = abs
			}
			pw, err := a.prompt.secret("Password: ")
			if err != nil {
				return err
			}
			defer clear(pw)
			code, err := a.prompt.secret("TOTP or recovery code: ")
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"name": name, "password": string(pw), "code": string(code)})
			defer clear(body)
			hc, err := adminHTTP(caFile)
			if err != nil {
				return err
			}
			res, err := hc.Post(strings.TrimRight(url, "/")+"/v1/auth/login", "application/json", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			defer res.Body.Close()
			var out struct {
				Token string `json:"token"`
				Error string `json:"error"`
			}
			if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
				return fmt.Errorf("login: %s %s", res.Status, out.Error)
			}
			b, _ := json.Marshal(adminSession{URL: strings.TrimRight(url, "/"), CA: caFile, Token: out.Token})
			if err := os.WriteFile(a.adminSessionPath(), b, 0o600); err != nil {
				return fmt.Errorf("save session: %w", err)
			}
			fmt.Fprintf(a.stdout, "Logged in as %s.\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "https://127.0.0.1:8444", "admin API URL")
	cmd.Flags().StringVar(&name, "name", "", "operator name")
	cmd.Flags().StringVar(&caFile, "ca", "", "CA certificate to trust (keywarden tls ca prints the local one)")
	return cmd
}
