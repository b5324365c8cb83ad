package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/seal/awssm/awssmtest"
	"github.com/keywarden/keywarden/internal/seal/transit/transittest"
)

func TestKeyImportFromVaultKV(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	f := transittest.New(t)
	f.PutKV("secret", "exchanges/binance-main", map[string]any{"api_key": "APIKEY-KV1", "secret": "hmac-" + marker})
	f.PutKV("secret", "exchanges/okx", map[string]any{"material": "api_key=APIKEY-KV2\nsecret=okx-" + marker + "\npassphrase=pp-" + marker + "\n"})
	f.PutKV("secret", "exchanges/nopass", map[string]any{"api_key": "APIKEY-KV3", "secret": "s-" + marker})
	tok := f.AddToken("kv:secret/exchanges/binance-main", "kv:secret/exchanges/okx", "kv:secret/exchanges/nopass")
	c.env["VAULT_ADDR"] = f.URL
	c.env["VAULT_CACERT"] = f.CAFile(t, c.dir)
	c.env["VAULT_TOKEN"] = tok

	out := c.ok("", "key", "import", "vault://secret/exchanges/binance-main", "--exchange", "binance", "--name", "main", "--scopes", "read,trade")
	if !strings.Contains(out, "Imported binance/main from secret/exchanges/binance-main (hmac, fingerprint kwfp_") {
		t.Errorf("import output = %q", out)
	}
	// One field holding name=value material, with AppRole instead of a token.
	delete(c.env, "VAULT_TOKEN")
	roleID, secretID := f.AddRole(time.Hour, "kv:secret/exchanges/okx")
	writeFile(t, filepath.Join(c.dir, "role-id"), roleID, 0o600)
	writeFile(t, filepath.Join(c.dir, "secret-id"), secretID, 0o600)
	c.ok("", "key", "import", "vault://secret/exchanges/okx#material", "--exchange", "okx", "--name", "main",
		"--vault-role-id-file", filepath.Join(c.dir, "role-id"), "--vault-secret-id-file", filepath.Join(c.dir, "secret-id"))
	c.ok("", "operator", "verify")
	if out := c.ok("", "key", "list"); !strings.Contains(out, "binance") || !strings.Contains(out, "okx") {
		t.Errorf("key list = %q", out)
	}

	c.env["VAULT_TOKEN"] = tok
	c.fails("okx keys have a passphrase", "", "key", "import", "vault://secret/exchanges/nopass", "--exchange", "okx", "--name", "second")
	c.fails(`no field "nope"`, "", "key", "import", "vault://secret/exchanges/okx#nope", "--exchange", "okx", "--name", "third")
	c.fails("permission denied", "", "key", "import", "vault://secret/exchanges/other", "--exchange", "binance", "--name", "x")
	c.fails("already stored as binance/main", "", "key", "import", "vault://secret/exchanges/binance-main", "--exchange", "binance", "--name", "again")
	msg := c.fails("takes one argument", "", "key", "import", "APIKEY-"+marker, "--exchange", "binance", "--name", "y")
	if strings.Contains(msg, marker) {
		t.Errorf("error echoes the argument: %q", msg)
	}
	c.fails("want vault://<mount>/<path>", "", "key", "import", "vault://secret", "--exchange", "binance", "--name", "y")
	delete(c.env, "VAULT_ADDR")
	c.fails("no Vault address", "", "key", "import", "vault://secret/exchanges/binance-main", "--exchange", "binance", "--name", "z")
	for _, o := range c.outputs {
		if strings.Contains(o, tok) || strings.Contains(o, secretID) {
			t.Errorf("output holds a Vault credential: %q", o)
		}
	}
}

func TestKeyImportFromAWSSecretsManager(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	f := awssmtest.New(t)
	f.Put("exchanges/binance", `{"api_key":"APIKEY-SM1","secret":"hmac-`+marker+`"}`)
	f.Put("exchanges/kucoin", `{"material":"api_key=APIKEY-SM2\nsecret=ku-`+marker+`\npassphrase=pp-`+marker+`"}`)
	f.Allow("AKIAKEYWARDENSM01", "exchanges/binance", "exchanges/kucoin")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAKEYWARDENSM01")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sm-secret-access-key")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	q := "?region=eu-west-1&endpoint=" + f.URL
	out := c.ok("", "key", "import", "aws-sm://exchanges/binance"+q, "--exchange", "binance", "--name", "main")
	if !strings.Contains(out, "Imported binance/main from aws-sm exchanges/binance (hmac") {
		t.Errorf("import output = %q", out)
	}
	c.ok("", "key", "import", "aws-sm://exchanges/kucoin"+q+"#material", "--exchange", "kucoin", "--name", "main")
	c.ok("", "operator", "verify")
	c.fails("ResourceNotFoundException", "", "key", "import", "aws-sm://exchanges/none"+q, "--exchange", "binance", "--name", "x")
	c.fails("unknown or repeated setting profile", "", "key", "import", "aws-sm://exchanges/binance?profile=x", "--exchange", "binance", "--name", "x")
	for _, o := range c.outputs {
		if strings.Contains(o, "sm-secret-access-key") {
			t.Errorf("output holds the AWS secret key: %q", o)
		}
	}
}
