//go:build keyring && !darwin

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyringPassphrase stores the passphrase with keyring-store through a
// fake secret-tool and unseals with it, no passphrase file configured.
func TestKeyringPassphrase(t *testing.T) {
	tool := t.TempDir()
	script := `#!/bin/sh
dir="` + tool + `"
echo "$@" >> "$dir/argv"
case "$1" in
store) shift 3; key=$(echo "$@" | tr ' /' '__'); cat > "$dir/entry-$key" ;;
lookup) shift; key=$(echo "$@" | tr ' /' '__'); [ -f "$dir/entry-$key" ] || exit 1; cat "$dir/entry-$key" ;;
esac
`
	writeFile(t, filepath.Join(tool, "secret-tool"), script, 0o700)
	t.Setenv("PATH", tool+string(os.PathListSeparator)+os.Getenv("PATH"))

	c := newCLI(t)
	c.ok("", "operator", "init")
	c.env["KEYWARDEN_PASSPHRASE_KEYRING"] = "1"
	// Wrong passphrase: refused before anything is stored.
	writeFile(t, filepath.Join(c.dir, "wrong"), "not the passphrase at all\n", 0o600)
	c.fails("wrong passphrase", "", "--passphrase-file", filepath.Join(c.dir, "wrong"), "operator", "keyring-store")
	out := c.ok("", "operator", "keyring-store")
	if !strings.Contains(out, "Passphrase stored in the desktop keyring") {
		t.Errorf("keyring-store output = %q", out)
	}
	// Now without a passphrase file: the keyring supplies it.
	cfg, _ := os.ReadFile(c.config)
	writeFile(t, c.config, strings.Replace(string(cfg), `passphrase_file = "pass"`, "", 1), 0o600)
	c.ok("", "operator", "unseal")
	argv, _ := os.ReadFile(filepath.Join(tool, "argv"))
	if strings.Contains(string(argv), "battery") {
		t.Errorf("the passphrase reached secret-tool's arguments:\n%s", argv)
	}
	delete(c.env, "KEYWARDEN_PASSPHRASE_KEYRING")
	c.fails("no passphrase", "", "operator", "unseal")
}
