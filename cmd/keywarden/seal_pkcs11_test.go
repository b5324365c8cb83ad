//go:build pkcs11

package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestSealPKCS11 initialises, unseals and verifies a vault sealed by a key
// in the SoftHSM2 token scripts/setup/softhsm.sh prepared, then migrates it
// from the token to a transit key.
func TestSealPKCS11(t *testing.T) {
	module, token, pinFile := os.Getenv("KEYWARDEN_TEST_PKCS11_MODULE"), os.Getenv("KEYWARDEN_TEST_PKCS11_TOKEN"), os.Getenv("KEYWARDEN_TEST_PKCS11_PIN_FILE")
	if module == "" || token == "" || pinFile == "" {
		if os.Getenv("KEYWARDEN_REQUIRE_SOFTHSM") == "1" {
			t.Fatal("KEYWARDEN_REQUIRE_SOFTHSM=1 but the SoftHSM2 token variables are not set")
		}
		t.Skip("no SoftHSM2 token: source scripts/setup/softhsm.sh")
	}
	c := newCLI(t)
	label := "kw-cli-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + randomHex(t)
	sealURL := "pkcs11://" + module + "?token=" + token + "&pin_file=" + pinFile + "&label=" + label
	out := c.ok("", "operator", "init", "--seal", sealURL)
	if !strings.Contains(out, "sealed by pkcs11 key "+token+"/"+label) {
		t.Errorf("init output = %q", out)
	}
	c.env["KEYWARDEN_SEAL"] = sealURL
	c.ok("api_key=APIKEY-HSM\nsecret=hmac-"+marker+"\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	c.ok("", "operator", "verify")

	// Another label in the same token is another key: refused.
	c.env["KEYWARDEN_SEAL"] = strings.Replace(sealURL, "label="+label, "label="+label+"-other", 1)
	c.fails("sealed by pkcs11 key", "", "operator", "unseal")

	c.env["KEYWARDEN_SEAL"] = sealURL
	_, transitURL, _ := transitSealURL(t, c)
	c.ok("", "operator", "migrate-seal", "--to", transitURL)
	c.env["KEYWARDEN_SEAL"] = transitURL
	c.ok("", "operator", "verify")
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
