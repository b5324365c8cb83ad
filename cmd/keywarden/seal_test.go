package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/seal/awskms/awskmstest"
	"github.com/keywarden/keywarden/internal/seal/transit/transittest"
)

// transitSealURL returns a transit fake with key transit/kw and the seal
// URL for it, with the token in a file.
func transitSealURL(t *testing.T, c *cli) (*transittest.Server, string, string) {
	t.Helper()
	f := transittest.New(t)
	f.AddKey("transit", "kw", false)
	tok := f.AddToken("transit/kw")
	writeFile(t, filepath.Join(c.dir, "vault-token"), tok+"\n", 0o600)
	ca := f.CAFile(t, c.dir)
	u, _ := url.Parse(f.URL)
	return f, "transit://" + u.Host + "/transit/kw?token_file=" + filepath.Join(c.dir, "vault-token") + "&ca_file=" + ca, tok
}

func TestSealTransitInitUnsealMigrateToKMS(t *testing.T) {
	c := newCLI(t)
	f, sealURL, tok := transitSealURL(t, c)
	out := c.ok("", "operator", "init", "--seal", sealURL)
	if !strings.Contains(out, "sealed by transit key transit/kw") {
		t.Errorf("init output = %q", out)
	}
	if f.Calls("encrypt") != 1 {
		t.Errorf("init made %d transit encrypt calls, want 1", f.Calls("encrypt"))
	}

	// Without the seal configured, commands say what is missing.
	c.fails("set [vault] seal or KEYWARDEN_SEAL", "", "operator", "unseal")
	c.env["KEYWARDEN_SEAL"] = sealURL
	c.ok("", "operator", "unseal")
	c.ok("api_key=APIKEY-SEAL\nsecret=hmac-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	c.ok("", "operator", "verify")
	if out := c.ok("", "operator", "status"); !strings.Contains(out, "Seal:           transit key transit/kw") {
		t.Errorf("status output = %q", out)
	}

	// The backend unreachable: the vault stays sealed, the error names the
	// backend and holds no token.
	down := httptest.NewTLSServer(http.NotFoundHandler())
	downHost := strings.TrimPrefix(down.URL, "https://")
	down.Close()
	fu, _ := url.Parse(f.URL)
	c.env["KEYWARDEN_SEAL"] = strings.Replace(sealURL, fu.Host, downHost, 1)
	msg := c.fails("the transit seal did not unseal the vault, which stays sealed", "", "operator", "verify")
	if !strings.Contains(msg, "server unreachable") || strings.Contains(msg, tok) {
		t.Errorf("unreachable seal error = %q", msg)
	}
	// The token revoked: refused, and said so.
	c.env["KEYWARDEN_SEAL"] = sealURL
	f.RevokeAll()
	msg = c.fails("permission denied", "", "operator", "unseal")
	if strings.Contains(msg, tok) {
		t.Errorf("error holds the token: %q", msg)
	}
	writeFile(t, filepath.Join(c.dir, "vault-token"), f.AddToken("transit/kw")+"\n", 0o600)
	c.ok("", "operator", "unseal")

	// Migrate to AWS KMS (a fake, with credentials from the environment).
	kms := awskmstest.New(t)
	keyID := kms.AddKey()
	kms.Allow("AKIAKEYWARDENTEST01", keyID)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAKEYWARDENTEST01")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-key-for-tests")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	kmsURL := "awskms://" + keyID + "?region=" + awskmstest.Region + "&endpoint=" + kms.URL
	out = c.ok("", "operator", "migrate-seal", "--to", kmsURL)
	if !strings.Contains(out, "Vault seal migrated to awskms key "+keyID) {
		t.Errorf("migrate-seal output = %q", out)
	}
	// The old seal no longer opens the vault; the new one does, and every
	// key still opens.
	c.fails("sealed by awskms key", "", "operator", "unseal")
	c.env["KEYWARDEN_SEAL"] = kmsURL
	c.ok("", "operator", "verify")
	if kms.Calls("GenerateDataKey") != 1 || kms.Calls("Decrypt") < 2 {
		t.Errorf("KMS calls: GenerateDataKey %d, Decrypt %d", kms.Calls("GenerateDataKey"), kms.Calls("Decrypt"))
	}
	c.fails("already sealed by awskms", "", "operator", "migrate-seal", "--to", kmsURL)
	c.fails("operator rekey", "", "operator", "migrate-seal", "--to", "passphrase")

	// And back to a passphrase with rekey.
	writeFile(t, filepath.Join(c.dir, "pass2"), "another long passphrase\n", 0o600)
	c.ok("", "operator", "rekey", "--new-passphrase-file", filepath.Join(c.dir, "pass2"))
	delete(c.env, "KEYWARDEN_SEAL")
	c.ok("", "--passphrase-file", filepath.Join(c.dir, "pass2"), "operator", "verify")
}

func TestSealURLErrors(t *testing.T) {
	c := newCLI(t)
	c.fails("unknown seal type", "", "operator", "init", "--seal", "gcpkms://projects/p/keys/k")
	c.fails("want a transit://", "", "operator", "init", "--seal", "transit-host:8200")
	c.fails("unknown settings tokenfile", "", "operator", "init", "--seal", "transit://127.0.0.1:8200/transit/kw?tokenfile=/x")
	c.fails("want transit://host[:port]/<mount>/<key>", "", "operator", "init", "--seal", "transit://127.0.0.1:8200/kw")
	c.fails("only allowed to a loopback", "", "operator", "init", "--seal", "transit://vault.example:8200/transit/kw?tls=false&token_file=/x")
	c.fails("--shares and --threshold go with --seal shamir", "", "operator", "init", "--seal", "passphrase", "--shares", "3")
	msg := c.fails("want a transit://", "", "operator", "init", "--seal", "hunter2-secret?token=abc")
	if strings.Contains(msg, "token=abc") {
		t.Errorf("error echoes the query: %q", msg)
	}
	// Nothing was initialized by the refused commands.
	if out := c.ok("", "operator", "status"); !strings.Contains(out, "Initialized:    false") {
		t.Errorf("status after refused inits = %q", out)
	}
}

// TestServeRefusesUnreachableSeal starts serve with a transit seal whose
// server is gone: it must stop before listening, naming the backend.
func TestServeRefusesUnreachableSeal(t *testing.T) {
	c := newCLI(t)
	f, sealURL, tok := transitSealURL(t, c)
	c.ok("", "operator", "init", "--seal", sealURL)
	f.Close()
	addr := freePort(t)
	getenv := func(k string) string {
		switch k {
		case "KEYWARDEN_CONFIG":
			return c.config
		case "KEYWARDEN_SEAL":
			return sealURL
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := runIO(ctx, []string{"keywarden", "serve", "--plaintext", "--listen", addr}, getenv, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "transit seal did not unseal the vault") {
		t.Fatalf("serve with an unreachable seal = %v, want a refusal naming the transit seal", err)
	}
	if strings.Contains(err.Error()+errOut.String()+out.String(), tok) {
		t.Error("serve's output holds the token")
	}
}

// TestServeAutoUnsealsWithTransit starts serve on a vault sealed by a
// transit key: it unseals itself, with nothing typed, and serves.
func TestServeAutoUnsealsWithTransit(t *testing.T) {
	c := newCLI(t)
	f, sealURL, _ := transitSealURL(t, c)
	c.ok("", "operator", "init", "--seal", sealURL)
	decrypts := f.Calls("decrypt")
	addr := freePort(t)
	getenv := func(k string) string {
		switch k {
		case "KEYWARDEN_CONFIG":
			return c.config
		case "KEYWARDEN_SEAL":
			return sealURL
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runIO(ctx, []string{"keywarden", "serve", "--plaintext", "--listen", addr}, getenv, strings.NewReader(""), &out, &errOut)
	}()
	waitHealthy(t, "http://"+addr, done)
	if got := f.Calls("decrypt"); got != decrypts+1 {
		t.Errorf("serve made %d transit decrypt calls, want 1", got-decrypts)
	}
	// Migrating the seal while serve runs: serve does it, and keeps serving.
	kms := awskmstest.New(t)
	keyID := kms.AddKey()
	kms.Allow("AKIAKEYWARDENTEST02", keyID)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAKEYWARDENTEST02")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-key-for-tests")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	kmsURL := "awskms://" + keyID + "?region=" + awskmstest.Region + "&endpoint=" + kms.URL
	if out := c.ok("", "operator", "migrate-seal", "--to", kmsURL); !strings.Contains(out, "migrated to awskms key "+keyID+" by the running keywarden serve") {
		t.Errorf("online migrate-seal output = %q", out)
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("serve after the migration: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v\n%s", err, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The vault now unseals with the new seal only.
	c.env["KEYWARDEN_SEAL"] = kmsURL
	if out := c.ok("", "operator", "status"); !strings.Contains(out, "awskms") {
		t.Errorf("status after the online migration = %q", out)
	}
	c.env["KEYWARDEN_SEAL"] = sealURL
	c.fails("", "", "operator", "verify")
}
