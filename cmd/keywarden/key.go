package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// knownExchanges are the exchange names keys can be stored for, with
// whether the exchange's keys come with a passphrase.
func knownExchanges() map[string]bool {
	out := map[string]bool{}
	for _, d := range venues.Known() {
		out[d.Exchange] = out[d.Exchange] || d.Format.Passphrase
	}
	return out
}

func newKeyCmd(a *app) *cobra.Command {
	cmd := group("key", "Add, list, show and remove exchange API keys")
	cmd.AddCommand(newKeyAddCmd(a), newKeyListCmd(a), newKeyShowCmd(a), newKeyRemoveCmd(a),
		newKeyPlanCmd(a), newKeyAuditCmd(a), newKeyRotateCmd(a), newKeyRevokeCmd(a), newKeyImportCmd(a))
	return cmd
}

// keyAddFlags are key add's options. None of them is secret.
type keyAddFlags struct {
	exchange, name, account, label, kind string
	scopes                               []string
	fromFile                             string
	stdin                                bool
}

func newKeyAddCmd(a *app) *cobra.Command {
	var f keyAddFlags
	cmd := &cobra.Command{
		Use:   "add --exchange EXCHANGE --name NAME [--from-file F | --stdin]",
		Short: "Store an exchange API key in the vault",
		Long: `Store an exchange API key, sealed, in the vault.

The API key, its secret (or private key) and, for exchanges that use one, its
passphrase are read from a prompt without echo, from a file (--from-file) or
from stdin (--stdin); never from the command line. A file or stdin holds
either lines of name=value:

    api_key=...
    secret=...
    passphrase=...

with a PEM private key block instead of secret= for RSA, ECDSA and Ed25519
keys, or a JSON object with the same names (an exchange's downloaded key file
with "name" and "privateKey" works too).

When the vault is sealed by shares, the shares are read first, one per line,
from the terminal or stdin.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			defer v.Seal()
			if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
				return err
			}
			m, err := f.readMaterial(a.prompt)
			if err != nil {
				return err
			}
			defer m.zero()
			info, err := addKey(ctx, v, &f, m)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Added %s (%s, fingerprint %s).\n", info.ID(), info.Kind, info.Fingerprint)
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
	fl.StringVar(&f.fromFile, "from-file", "", "read the key material from this file")
	fl.BoolVar(&f.stdin, "stdin", false, "read the key material from stdin")
	return cmd
}

func (f *keyAddFlags) check(cmd *cobra.Command) error {
	if f.exchange == "" || f.name == "" {
		return errors.New("key add needs --exchange and --name")
	}
	if _, ok := knownExchanges()[f.exchange]; !ok {
		names := make([]string, 0, len(knownExchanges()))
		for n := range knownExchanges() {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("unknown exchange %q (known: %s)", f.exchange, strings.Join(names, ", "))
	}
	for _, fl := range []struct{ name, val string }{{"name", f.name}, {"account", f.account}, {"label", f.label}} {
		if looksLikeSecret(fl.val) {
			return fmt.Errorf("--%s looks like a secret; secrets are read from a prompt, --from-file or --stdin, never from the command line", fl.name)
		}
	}
	if f.fromFile != "" && f.stdin {
		return errors.New("choose one of --from-file and --stdin")
	}
	switch f.kind {
	case "", "hmac", "ed25519", "rsa", "ecdsa":
	default:
		return fmt.Errorf("unknown --kind %q (want hmac, ed25519, rsa or ecdsa)", f.kind)
	}
	return nil
}

// material is key material as read; zero wipes it.
type material struct {
	apiKey     string
	secret     []byte
	passphrase []byte
	pemType    string // type of the PEM block the secret came from, if any
}

func (m *material) zero() {
	clear(m.secret)
	clear(m.passphrase)
}

func (f *keyAddFlags) readMaterial(p *prompter) (*material, error) {
	needsPass := knownExchanges()[f.exchange]
	var (
		raw []byte
		err error
	)
	switch {
	case f.fromFile != "":
		raw, err = os.ReadFile(f.fromFile)
		if err != nil {
			return nil, fmt.Errorf("key material: %w", err)
		}
	case f.stdin:
		raw, err = p.rest(1 << 20)
		if err != nil {
			return nil, fmt.Errorf("key material from stdin: %w", err)
		}
	case p.interactive():
		return promptMaterial(p, f.kind, needsPass)
	default:
		return nil, errors.New("no key material: use --stdin or --from-file, or run in a terminal")
	}
	defer clear(raw)
	m, err := parseMaterial(raw)
	if err != nil {
		return nil, fmt.Errorf("key material: %w", err)
	}
	if needsPass && len(m.passphrase) == 0 {
		m.zero()
		return nil, fmt.Errorf("key material: %s keys have a passphrase; add a passphrase= line", f.exchange)
	}
	return m, nil
}

func promptMaterial(p *prompter, kind string, needsPass bool) (*material, error) {
	m := &material{}
	var err error
	if m.apiKey, err = p.text("API key: "); err != nil {
		return nil, err
	}
	prompt := "API secret (hidden): "
	if kind != "" && kind != "hmac" {
		prompt = "Private key as base64 (hidden; use --from-file for a PEM file): "
	}
	if m.secret, err = p.secret(prompt); err != nil {
		return nil, err
	}
	if needsPass {
		if m.passphrase, err = p.secret("API passphrase (hidden): "); err != nil {
			m.zero()
			return nil, err
		}
	}
	return m, nil
}

// parseMaterial reads key material as JSON or as name=value lines with an
// optional PEM block. Errors name fields and line numbers, never values.
func parseMaterial(raw []byte) (*material, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, errors.New("empty")
	}
	if trimmed[0] == '{' {
		return parseMaterialJSON(trimmed)
	}
	m := &material{}
	fail := func(err error) (*material, error) { m.zero(); return nil, err }
	lines := bytes.Split(raw, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) {
			if m.secret != nil {
				return fail(fmt.Errorf("line %d: a PEM key and a secret; give one", i+1))
			}
			start := i
			for i < len(lines) && !bytes.HasPrefix(bytes.TrimSpace(lines[i]), []byte("-----END ")) {
				i++
			}
			if i == len(lines) {
				return fail(fmt.Errorf("line %d: PEM block without its END line", start+1))
			}
			block := bytes.Join(lines[start:i+1], []byte("\n"))
			b, _ := pem.Decode(block)
			if b == nil {
				return fail(fmt.Errorf("line %d: malformed PEM block", start+1))
			}
			clear(b.Bytes)
			m.pemType = b.Type
			m.secret = append(block, '\n')
			continue
		}
		name, val, ok := bytes.Cut(line, []byte("="))
		if !ok {
			name, val, ok = bytes.Cut(line, []byte(":"))
		}
		if !ok {
			return fail(fmt.Errorf("line %d: want name=value", i+1))
		}
		val = bytes.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(string(name))) {
		case "api_key", "apikey", "key":
			m.apiKey = string(val)
		case "secret", "api_secret", "secret_key":
			if m.secret != nil {
				return fail(fmt.Errorf("line %d: a second secret", i+1))
			}
			m.secret = append([]byte(nil), val...)
		case "passphrase", "password":
			m.passphrase = append([]byte(nil), val...)
		default:
			return fail(fmt.Errorf("line %d: unknown field (want api_key, secret, passphrase or a PEM block)", i+1))
		}
	}
	if m.apiKey == "" {
		return fail(errors.New("no api_key"))
	}
	if len(m.secret) == 0 {
		return fail(errors.New("no secret or private key"))
	}
	return m, nil
}

func parseMaterialJSON(raw []byte) (*material, error) {
	var fields map[string]string
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, errors.New("not a JSON object of strings")
	}
	m := &material{}
	pick := func(names ...string) string {
		for _, n := range names {
			if v, ok := fields[n]; ok {
				return v
			}
		}
		return ""
	}
	m.apiKey = pick("api_key", "apiKey", "key", "name", "id")
	secret := pick("secret", "api_secret", "apiSecret", "private_key", "privateKey")
	m.secret = []byte(secret)
	m.passphrase = []byte(pick("passphrase", "password"))
	if b, _ := pem.Decode(m.secret); b != nil {
		m.pemType = b.Type
		clear(b.Bytes)
	}
	if m.apiKey == "" || len(m.secret) == 0 {
		m.zero()
		return nil, errors.New("JSON needs api_key (or name) and secret (or privateKey)")
	}
	return m, nil
}

// kindFor picks the key kind: the flag, else the PEM block's type, else
// hmac.
func kindFor(flag string, m *material) exchange.KeyKind {
	if flag != "" {
		return exchange.KeyKind(flag)
	}
	switch m.pemType {
	case "EC PRIVATE KEY":
		return exchange.KeyECDSA
	case "RSA PRIVATE KEY":
		return exchange.KeyRSA
	case "PRIVATE KEY":
		b, _ := pem.Decode(m.secret)
		if b == nil {
			break
		}
		defer clear(b.Bytes)
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			break
		}
		switch k.(type) {
		case ed25519.PrivateKey:
			return exchange.KeyEd25519
		case *rsa.PrivateKey:
			return exchange.KeyRSA
		case *ecdsa.PrivateKey:
			return exchange.KeyECDSA
		}
	}
	return exchange.KeyHMAC
}

// addKey stores key material read for f in v.
func addKey(ctx context.Context, v *vault.Vault, f *keyAddFlags, m *material) (vault.KeyInfo, error) {
	return v.AddKey(ctx, vault.KeyInput{
		Exchange:   f.exchange,
		Name:       f.name,
		Account:    f.account,
		Label:      f.label,
		Kind:       kindFor(f.kind, m),
		APIKey:     m.apiKey,
		Secret:     m.secret,
		Passphrase: m.passphrase,
		Scopes:     f.scopes,
	})
}

func newKeyListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored exchange keys (metadata only)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := v.Keys(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(keys)
			}
			if len(keys) == 0 {
				fmt.Fprintln(a.stdout, "No exchange keys stored.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tKIND\tACCOUNT\tLABEL\tSCOPES\tFINGERPRINT\tCREATED\tLAST USED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID(), k.Kind, dash(k.Account), dash(k.Label),
					dash(strings.Join(k.Scopes, ",")), k.Fingerprint, day(k.Created), day(k.LastUsed))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

// splitKeyID parses EXCHANGE/NAME.
func splitKeyID(cmd *cobra.Command, args []string) (string, string, error) {
	if len(args) != 1 {
		return "", "", fmt.Errorf("%s needs one EXCHANGE/NAME argument", cmd.CommandPath())
	}
	ex, name, ok := strings.Cut(args[0], "/")
	if !ok || ex == "" || name == "" || looksLikeSecret(args[0]) {
		return "", "", errors.New("want the key as EXCHANGE/NAME, e.g. binance/main")
	}
	return ex, name, nil
}

func newKeyShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show EXCHANGE/NAME",
		Short: "Show one exchange key's metadata",
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, name, err := splitKeyID(cmd, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			k, err := v.Key(ctx, ex, name)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(k)
			}
			fmt.Fprintf(a.stdout, "Key:          %s\n", k.ID())
			fmt.Fprintf(a.stdout, "Kind:         %s\n", k.Kind)
			fmt.Fprintf(a.stdout, "Account:      %s\n", dash(k.Account))
			fmt.Fprintf(a.stdout, "Label:        %s\n", dash(k.Label))
			fmt.Fprintf(a.stdout, "Scopes:       %s\n", dash(strings.Join(k.Scopes, ",")))
			fmt.Fprintf(a.stdout, "Fingerprint:  %s\n", k.Fingerprint)
			fmt.Fprintf(a.stdout, "Created:      %s\n", k.Created.UTC().Format(time.RFC3339))
			fmt.Fprintf(a.stdout, "Rotated:      %s\n", k.Rotated.UTC().Format(time.RFC3339))
			if k.LastUsed.IsZero() {
				fmt.Fprintln(a.stdout, "Last used:    never")
			} else {
				fmt.Fprintf(a.stdout, "Last used:    %s\n", k.LastUsed.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeyRemoveCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove EXCHANGE/NAME",
		Short: "Remove an exchange key and its sealed secret",
		Long: `Remove an exchange key and its sealed secret from the vault. Asks you to
type the key's EXCHANGE/NAME to confirm, unless --yes is given. The key still
works at the exchange: delete it there too.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, name, err := splitKeyID(cmd, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v, db, err := openVault(ctx, &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			if _, err := v.Key(ctx, ex, name); err != nil {
				return err
			}
			id := ex + "/" + name
			if !yes {
				got, err := a.prompt.text(fmt.Sprintf("Type %s to remove it: ", id))
				if err != nil {
					return fmt.Errorf("not confirmed, nothing removed: %w", err)
				}
				if strings.TrimSpace(got) != id {
					return errors.New("not confirmed, nothing removed")
				}
			}
			if err := v.RemoveKey(ctx, ex, name); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Removed %s. Delete the key at the exchange too: it still works there.\n", id)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "remove without asking for confirmation")
	return cmd
}
