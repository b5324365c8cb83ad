package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/seal/awskms"
	"github.com/keywarden/keywarden/internal/seal/pkcs11"
	"github.com/keywarden/keywarden/internal/seal/transit"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/vault"
)

// An external seal is named by a URL whose query holds settings and paths
// to credential files, never credentials:
//
//	transit://host:8200/<mount>/<key>?token_file=F | role_id_file=F&secret_id_file=F
//	    [&ca_file=F][&derived=true][&namespace=N][&tls=false (loopback only)]
//	awskms://<key id, ARN or alias/name>[?region=R][&endpoint=URL]
//	pkcs11://<module path>?token=T&pin_file=F[&label=L]

// externalSeal is an opened seal backend and what to release after use.
type externalSeal struct {
	vault.SealWrapper
	close func()
}

// openSeal builds the seal a URL names. create lets a PKCS#11 seal
// generate its key in the token (init, migrate-seal). getenv supplies
// VAULT_TOKEN for a transit seal without a token file.
func openSeal(ctx context.Context, raw string, getenv func(string) string, create bool) (*externalSeal, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("seal %q: want a transit://, awskms:// or pkcs11:// URL", redactSealURL(raw))
	}
	target, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("seal %s: query: %w", scheme, err)
	}
	if _, ok := sealSettings[scheme]; !ok {
		return nil, fmt.Errorf("seal: unknown seal type %q (want transit, awskms or pkcs11)", scheme)
	}
	params := sealParams{scheme: scheme, q: q}
	if err := params.known(sealSettings[scheme]); err != nil {
		return nil, err
	}
	var s *externalSeal
	switch scheme {
	case "transit":
		s, err = openTransit(target, &params, getenv)
	case "awskms":
		s, err = openAWSKMS(ctx, target, &params)
	default:
		s, err = openPKCS11(target, &params, create)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// sealSettings are the query parameters each seal type takes.
var sealSettings = map[string][]string{
	"transit": {"tls", "derived", "namespace", "ca_file", "token_file", "role_id_file", "secret_id_file", "approle_mount"},
	"awskms":  {"region", "endpoint"},
	"pkcs11":  {"token", "label", "pin_file"},
}

// sealParams holds a seal URL's query parameters.
type sealParams struct {
	scheme string
	q      url.Values
}

func (p *sealParams) get(name string) string { return p.q.Get(name) }

func (p *sealParams) bool(name string) (bool, error) {
	switch v := p.get(name); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("seal %s: %s=%q: want true or false", p.scheme, name, v)
	}
}

// known reports parameters that are not in allowed, or given twice.
func (p *sealParams) known(allowed []string) error {
	var unknown []string
	for k, vs := range p.q {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		} else if len(vs) > 1 {
			return fmt.Errorf("seal %s: %s is given %d times", p.scheme, k, len(vs))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("seal %s: unknown settings %s", p.scheme, strings.Join(unknown, ", "))
	}
	return nil
}

func openTransit(target string, p *sealParams, getenv func(string) string) (*externalSeal, error) {
	host, path, _ := strings.Cut(target, "/")
	i := strings.LastIndex(path, "/")
	if host == "" || i <= 0 || i == len(path)-1 {
		return nil, errors.New("seal transit: want transit://host[:port]/<mount>/<key>")
	}
	useTLS, err := p.bool("tls")
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if p.q.Has("tls") && !useTLS {
		scheme = "http" // transit.New allows it for loopback only
	}
	derived, err := p.bool("derived")
	if err != nil {
		return nil, err
	}
	cfg := transit.Config{
		Address:      scheme + "://" + host,
		Mount:        path[:i],
		Key:          path[i+1:],
		Derived:      derived,
		Namespace:    p.get("namespace"),
		CAFile:       p.get("ca_file"),
		TokenFile:    p.get("token_file"),
		RoleIDFile:   p.get("role_id_file"),
		SecretIDFile: p.get("secret_id_file"),
		AppRoleMount: p.get("approle_mount"),
	}
	if cfg.TokenFile == "" && cfg.RoleIDFile == "" && cfg.SecretIDFile == "" {
		if tok := getenv("VAULT_TOKEN"); tok != "" {
			cfg.Token = []byte(tok)
		}
	}
	if cfg.CAFile == "" {
		cfg.CAFile = getenv("VAULT_CACERT")
	}
	s, err := transit.New(cfg)
	clear(cfg.Token)
	if err != nil {
		return nil, err
	}
	return &externalSeal{SealWrapper: s, close: s.Close}, nil
}

func openAWSKMS(ctx context.Context, target string, p *sealParams) (*externalSeal, error) {
	key, err := url.PathUnescape(target)
	if err != nil || key == "" {
		return nil, errors.New("seal awskms: want awskms://<key id, key ARN or alias/name>")
	}
	s, err := awskms.New(ctx, awskms.Config{KeyID: key, Region: p.get("region"), Endpoint: p.get("endpoint")})
	if err != nil {
		return nil, err
	}
	return &externalSeal{SealWrapper: s, close: func() {}}, nil
}

func openPKCS11(target string, p *sealParams, create bool) (*externalSeal, error) {
	module, err := url.PathUnescape(target)
	if err != nil || module == "" {
		return nil, errors.New("seal pkcs11: want pkcs11://<module path>?token=T&pin_file=F")
	}
	s, err := pkcs11.New(pkcs11.Config{
		Module: module, TokenLabel: p.get("token"), KeyLabel: p.get("label"), PINFile: p.get("pin_file"), CreateKey: create,
	})
	if err != nil {
		return nil, err
	}
	return &externalSeal{SealWrapper: s, close: func() { _ = s.Close() }}, nil
}

// redactSealURL drops a query from a malformed seal setting before it is
// echoed: only paths belong there, but a pasted secret might not.
func redactSealURL(raw string) string {
	if i := strings.IndexAny(raw, "?"); i >= 0 {
		return raw[:i] + "?..."
	}
	if len(raw) > 60 {
		return raw[:60] + "..."
	}
	return raw
}

// recoverSealMigration rolls back a seal migration a crash interrupted
// (see vault.MigrateSeal); every command that unseals calls it first.
func recoverSealMigration(ctx context.Context, v *vault.Vault) error {
	_, err := v.RecoverSealMigration(ctx)
	return err
}

// unsealExternal unseals a vault sealed by a transit, KMS or PKCS#11 seal
// with the seal configured in [vault] seal. If the backend cannot be
// reached the vault stays sealed and the error names the backend.
func unsealExternal(ctx context.Context, v *vault.Vault, cfg *Config, st vault.Status) error {
	if st.SealBackend == "" {
		return errors.New("the vault uses an external seal this command cannot open")
	}
	if cfg.Vault.Seal == "" {
		return fmt.Errorf("the vault is sealed by %s key %q: set [vault] seal or KEYWARDEN_SEAL to its URL", st.SealBackend, st.SealKeyID)
	}
	getenv := cfg.Vault.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	s, err := openSeal(ctx, cfg.Vault.Seal, getenv, false)
	if err != nil {
		return err
	}
	defer s.close()
	if err := v.UnsealWithSeal(ctx, s); err != nil {
		return fmt.Errorf("the %s seal did not unseal the vault, which stays sealed: %w", st.SealBackend, err)
	}
	return nil
}

// sealChoice is what --seal selects at operator init.
type sealChoice struct {
	external *externalSeal
	shamir   bool
}

func (a *app) chooseSeal(ctx context.Context, flag string, sharesFlags bool) (sealChoice, error) {
	if flag == "" {
		switch {
		case sharesFlags:
			flag = "shamir"
		case a.cfg.Vault.Seal != "":
			flag = a.cfg.Vault.Seal
		default:
			flag = "passphrase"
		}
	}
	switch flag {
	case "passphrase":
		if sharesFlags {
			return sealChoice{}, errors.New("--shares and --threshold go with --seal shamir")
		}
		return sealChoice{}, nil
	case "shamir":
		return sealChoice{shamir: true}, nil
	}
	if sharesFlags {
		return sealChoice{}, errors.New("--shares and --threshold go with --seal shamir")
	}
	s, err := openSeal(ctx, flag, a.getenv, true)
	if err != nil {
		return sealChoice{}, err
	}
	return sealChoice{external: s}, nil
}

func newOperatorMigrateSealCmd(a *app) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "migrate-seal --to <seal URL>",
		Short: "Re-wrap the root key under another seal (transit, AWS KMS or PKCS#11)",
		Long: `Unseal the vault with its current seal, wrap the root key under the new one,
check that the new seal gives the root key back, and switch in one store
transaction. Secrets, the keyring and the root key are unchanged. If any step
fails the old seal stays in force; a migration interrupted by a crash is
rolled back the next time keywarden starts, and can be run again.

Seal URLs:
  transit://host:8200/<mount>/<key>?token_file=F   (or role_id_file=F&secret_id_file=F; ca_file=F)
  awskms://<key id, ARN or alias/name>?region=R
  pkcs11://<module path>?token=T&label=L&pin_file=F

Afterwards set [vault] seal (or KEYWARDEN_SEAL) to the new URL. To go back
to a passphrase or unseal shares, use keywarden operator rekey.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if to == "" {
				return errors.New("--to <seal URL> is required")
			}
			if to == "passphrase" || to == "shamir" {
				return errors.New("to seal with a passphrase or unseal shares, use keywarden operator rekey")
			}
			if s := dialControl(a.cfg.DataDir); s != nil {
				// serve is running: it migrates its own, unsealed vault while
				// it keeps serving.
				var out sealMigrated
				if err := s.call(ctx, "POST", "/v1/seal/migrate", sealMigrateRequest{To: to}, &out); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Vault seal migrated to %s key %s by the running keywarden serve.\n", out.Type, out.KeyID)
				fmt.Fprintln(a.stdout, "Set [vault] seal (or KEYWARDEN_SEAL) to the new seal URL before the next start; the old seal no longer unseals this vault.")
				return nil
			}
			next, err := openSeal(ctx, to, a.getenv, true)
			if err != nil {
				return err
			}
			defer next.close()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			rolledBack, err := v.RecoverSealMigration(ctx)
			if err != nil {
				return err
			}
			if rolledBack {
				fmt.Fprintln(a.stdout, "An interrupted seal migration was rolled back; migrating again.")
			}
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			if err := v.MigrateSeal(ctx, next); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Vault seal migrated to %s key %s.\n", next.Type(), next.KeyID())
			fmt.Fprintln(a.stdout, "Set [vault] seal (or KEYWARDEN_SEAL) to the new seal URL before the next start; the old seal no longer unseals this vault.")
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "URL of the new seal")
	return cmd
}

// sealMigrateRequest asks a running serve to migrate its vault's seal. The
// URL names files for tokens and PINs, never the secrets themselves.
type sealMigrateRequest struct {
	To string `json:"to"`
}

// sealMigrated is the new seal after a migration.
type sealMigrated struct {
	Type  string `json:"type"`
	KeyID string `json:"key_id"`
}

// migrateSealOnline migrates the running, unsealed vault of serve to the
// seal at to, without stopping the gateway, and records it in the audit
// log (before, and its result).
func (a *app) migrateSealOnline(ctx context.Context, srv *server.Server, to string) (sealMigrated, error) {
	if to == "" || to == "passphrase" || to == "shamir" {
		return sealMigrated{}, errors.New("migrate-seal needs the URL of a transit, awskms or pkcs11 seal")
	}
	next, err := openSeal(ctx, to, a.getenv, true)
	if err != nil {
		return sealMigrated{}, err
	}
	defer next.close()
	out := sealMigrated{Type: next.Type(), KeyID: next.KeyID()}
	detail := map[string]string{"seal": out.Type, "key_id": out.KeyID}
	if _, err := srv.Audit.Append(ctx, audit.Record{Event: &audit.Event{Kind: "vault.seal.migrate", Actor: "control-socket", Detail: detail}}); err != nil {
		return sealMigrated{}, fmt.Errorf("migrate-seal refused: the audit log cannot record it: %w", err)
	}
	if err := srv.Vault.MigrateSeal(ctx, next); err != nil {
		a.log.Error("seal migration failed", "seal", out.Type, "err", err)
		return sealMigrated{}, err
	}
	if _, err := srv.Audit.Append(ctx, audit.Record{Event: &audit.Event{Kind: "vault.seal.migrated", Actor: "control-socket", Detail: detail}}); err != nil {
		a.log.Error("audit of a finished seal migration failed", "err", err)
	}
	a.log.Info("vault seal migrated", "seal", out.Type, "key_id", out.KeyID)
	return out, nil
}
