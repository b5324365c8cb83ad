package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
		Use:   "import vault://<mount>/<path>[#<field>] --exchange EXCHANGE --name NAME",
		Short: "Copy an exchange API key from HashiCorp Vault or OpenBao KV (version 2) into the vault",
		Long: `Read an exchange API key from a KV version 2 secret and store it, sealed, in
the keywarden vault, like key add.

Without #field, the secret's fields are the key material: api_key, secret
(or privateKey, a PEM block) and passphrase, as in a key add JSON file. With
#field, that one field holds the material in any form key add reads
(name=value lines, JSON or a PEM block).

The server is --vault-addr or VAULT_ADDR; the token is read from
--vault-token-file or VAULT_TOKEN, or an AppRole login uses
--vault-role-id-file and --vault-secret-id-file. The token needs read on
<mount>/data/<path>.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !strings.HasPrefix(args[0], "vault://") {
				return errors.New("key import takes one argument: vault://<mount>/<path>[#<field>]")
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
