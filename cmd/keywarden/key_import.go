package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/seal/awssm"
	"github.com/keywarden/keywarden/internal/seal/transit"
)

// keyImportFlags are key import's options besides key add's. None of them
// is secret: credentials come from files or VAULT_TOKEN.
type keyImportFlags struct {
	addr, caFile, namespace           string
	tokenFile, roleIDFile, secretFile string
}

func newKeyImportCmd(a *app) *cobra.Command {
	var f keyAddFlags
	var v keyImportFlags
	cmd := &cobra.Command{
		Use:   "import vault://<mount>/<path>[#<field>] | aws-sm://<secret id>[?region=R][#<field>] --exchange EXCHANGE --name NAME",
		Short: "Copy an exchange API key from Vault/OpenBao KV (version 2) or AWS Secrets Manager into the vault",
		Long: `Read an exchange API key from a KV version 2 secret and store it, sealed, in
the keywarden vault, like key add.

Without #field, the secret's fields are the key material: api_key, secret
(or privateKey, a PEM block) and passphrase, as in a key add JSON file. With
#field, that one field holds the material in any form key add reads
(name=value lines, JSON or a PEM block).

The server is --vault-addr or VAULT_ADDR; the token is read from
--vault-token-file or VAULT_TOKEN, or an AppRole login uses
--vault-role-id-file and --vault-secret-id-file. The token needs read on
<mount>/data/<path>.

From AWS Secrets Manager, aws-sm://<name or ARN> reads the secret's current
SecretString with GetSecretValue, with the AWS SDK's default credentials;
region= and endpoint= go in the query. The SecretString is the key material
(a JSON object or name=value lines); with #field, that field of a JSON
SecretString is.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !(strings.HasPrefix(args[0], "vault://") || strings.HasPrefix(args[0], "aws-sm://")) {
				return errors.New("key import takes one argument: vault://<mount>/<path>[#<field>] or aws-sm://<secret id>[#<field>]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(cmd); err != nil {
				return err
			}
			if f.fromFile != "" {
				return errors.New("key import reads the key from Vault; --from-file is for key add")
			}
			if strings.HasPrefix(args[0], "aws-sm://") {
				return a.importFromAWS(cmd, &f, args[0])
			}
			mount, path, field, err := parseKVRef(args[0])
			if err != nil {
				return err
			}
			addr := v.addr
			if addr == "" {
				addr = a.getenv("VAULT_ADDR")
			}
			if addr == "" {
				return errors.New("no Vault address: set --vault-addr or VAULT_ADDR")
			}
			cfg := transit.Config{
				Address: addr, CAFile: v.caFile, Namespace: v.namespace,
				TokenFile: v.tokenFile, RoleIDFile: v.roleIDFile, SecretIDFile: v.secretFile,
			}
			if cfg.CAFile == "" {
				cfg.CAFile = a.getenv("VAULT_CACERT")
			}
			if cfg.TokenFile == "" && cfg.RoleIDFile == "" && cfg.SecretIDFile == "" {
				cfg.Token = []byte(a.getenv("VAULT_TOKEN"))
			}
			kv, err := transit.NewKV(cfg)
			clear(cfg.Token)
			if err != nil {
				return err
			}
			defer kv.Close()

			ctx := cmd.Context()
			vlt, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer vlt.Seal()
			if err := unsealFromConfig(ctx, vlt, &a.cfg, a.prompt); err != nil {
				return err
			}
			data, err := kv.Read(ctx, mount, path)
			if err != nil {
				return err
			}
			m, err := materialFromKV(data, field)
			clear(data)
			if err != nil {
				return fmt.Errorf("key material in %s/%s: %w", mount, path, err)
			}
			defer m.zero()
			if knownExchanges()[f.exchange] && len(m.passphrase) == 0 {
				return fmt.Errorf("key material in %s/%s: %s keys have a passphrase; add a passphrase field", mount, path, f.exchange)
			}
			info, err := addKey(ctx, vlt, &f, m)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Imported %s from %s/%s (%s, fingerprint %s).\n", info.ID(), mount, path, info.Kind, info.Fingerprint)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.exchange, "exchange", "", "exchange the key belongs to (binance, okx, coinbase, ...)")
	fl.StringVar(&f.name, "name", "", "name for the key within the exchange, e.g. main")
	fl.StringVar(&f.account, "account", "", "account or sub-account the key belongs to")
	fl.StringVar(&f.label, "label", "", "free-form label")
	fl.StringVar(&f.kind, "kind", "", "key kind: hmac, ed25519, rsa or ecdsa (default: from the key material, else hmac)")
	fl.StringSliceVar(&f.scopes, "scopes", nil, "scopes the key was created with at the exchange: read,trade,transfer,withdraw,account-admin")
	fl.StringVar(&v.addr, "vault-addr", "", "Vault or OpenBao address, https://host:8200 (default $VAULT_ADDR)")
	fl.StringVar(&v.caFile, "vault-ca-file", "", "PEM CA bundle for the server's certificate (default $VAULT_CACERT)")
	fl.StringVar(&v.namespace, "vault-namespace", "", "namespace (X-Vault-Namespace)")
	fl.StringVar(&v.tokenFile, "vault-token-file", "", "file holding the token (mode 0600; default $VAULT_TOKEN)")
	fl.StringVar(&v.roleIDFile, "vault-role-id-file", "", "AppRole role id file (mode 0600)")
	fl.StringVar(&v.secretFile, "vault-secret-id-file", "", "AppRole secret id file (mode 0600)")
	return cmd
}

// parseKVRef splits vault://<mount>/<path>[#<field>].
func parseKVRef(ref string) (mount, path, field string, err error) {
	rest := strings.TrimPrefix(ref, "vault://")
	rest, field, _ = strings.Cut(rest, "#")
	mount, path, _ = strings.Cut(rest, "/")
	if mount == "" || path == "" || strings.ContainsAny(rest, "?") {
		return "", "", "", errors.New("want vault://<mount>/<path>[#<field>], e.g. vault://secret/exchanges/binance-main")
	}
	return mount, path, field, nil
}

// materialFromKV builds key material from a KV secret: one field holding
// material in key add's formats, or the whole secret as its JSON form.
func materialFromKV(data map[string]string, field string) (*material, error) {
	if field != "" {
		v, ok := data[field]
		if !ok {
			return nil, fmt.Errorf("no field %q", field)
		}
		return parseMaterial([]byte(v))
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return parseMaterialJSON(raw)
}

// parseSMRef splits aws-sm://<secret id>[?region=R&endpoint=E][#<field>].
func parseSMRef(ref string) (id, field string, cfg awssm.Config, err error) {
	rest := strings.TrimPrefix(ref, "aws-sm://")
	rest, field, _ = strings.Cut(rest, "#")
	id, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil || id == "" {
		return "", "", cfg, errors.New("want aws-sm://<secret name or ARN>[?region=R][#<field>]")
	}
	for k, vs := range q {
		if (k != "region" && k != "endpoint") || len(vs) > 1 {
			return "", "", cfg, fmt.Errorf("aws-sm: unknown or repeated setting %s (want region, endpoint)", k)
		}
	}
	cfg.Region, cfg.Endpoint = q.Get("region"), q.Get("endpoint")
	return id, field, cfg, nil
}

// importFromAWS is key import from AWS Secrets Manager.
func (a *app) importFromAWS(cmd *cobra.Command, f *keyAddFlags, ref string) error {
	id, field, cfg, err := parseSMRef(ref)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	sm, err := awssm.New(ctx, cfg)
	if err != nil {
		return err
	}
	vlt, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer vlt.Seal()
	if err := unsealFromConfig(ctx, vlt, &a.cfg, a.prompt); err != nil {
		return err
	}
	text, err := sm.GetSecretString(ctx, id)
	if err != nil {
		return err
	}
	var m *material
	if field == "" {
		m, err = parseMaterial([]byte(text))
	} else {
		var fields map[string]string
		if json.Unmarshal([]byte(text), &fields) != nil {
			err = errors.New("the SecretString is not a JSON object of strings, so it has no fields")
		} else {
			m, err = materialFromKV(fields, field)
		}
	}
	if err != nil {
		return fmt.Errorf("key material in aws-sm %s: %w", id, err)
	}
	defer m.zero()
	if knownExchanges()[f.exchange] && len(m.passphrase) == 0 {
		return fmt.Errorf("key material in aws-sm %s: %s keys have a passphrase; add a passphrase field", id, f.exchange)
	}
	info, err := addKey(ctx, vlt, f, m)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Imported %s from aws-sm %s (%s, fingerprint %s).\n", info.ID(), id, info.Kind, info.Fingerprint)
	return nil
}
