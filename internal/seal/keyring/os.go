//go:build keyring

package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"time"
)

// Get returns the passphrase stored for account. The caller zeroes it.
func Get(ctx context.Context, account string) ([]byte, error) {
	if account == "" {
		return nil, errors.New("keyring: no account")
	}
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name, args = "security", []string{"find-generic-password", "-s", Service, "-a", account, "-w"}
	default:
		name, args = "secret-tool", []string{"lookup", "service", Service, "account", account}
	}
	out, err := run(ctx, name, args, nil)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(bytes.TrimSpace(out)) == 0 {
			// Both tools exit non-zero with no output when nothing is stored.
			return nil, ErrNotFound
		}
		clear(out)
		return nil, fmt.Errorf("keyring: %s: %w", name, err)
	}
	n := len(out)
	if n > 0 && out[n-1] == '\n' {
		n-- // security -w ends the password with a newline
	}
	p := append([]byte(nil), out[:n]...)
	clear(out)
	if len(p) == 0 {
		return nil, ErrNotFound
	}
	return p, nil
}

// Set stores secret for account, replacing an older entry. On macOS it
// returns an error with the command to run instead: security reads a
// password only from its arguments or the terminal.
func Set(ctx context.Context, account string, secret []byte) error {
	if account == "" || len(secret) == 0 {
		return errors.New("keyring: no account or no secret")
	}
	if runtime.GOOS == "darwin" {
		return fmt.Errorf("keyring: on macOS store it yourself, typing the passphrase at the prompt: security add-generic-password -U -s %s -a %q -w", Service, account)
	}
	_, err := run(ctx, "secret-tool", []string{"store", "--label", "keywarden vault passphrase (" + account + ")", "service", Service, "account", account}, secret)
	if err != nil {
		return fmt.Errorf("keyring: secret-tool: %w", err)
	}
	return nil
}

// run runs a keyring program with stdin, returning its stdout. Its stderr
// is dropped: it never holds the secret, but it may be noisy.
func run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed (Debian: apt install libsecret-tools): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	err = cmd.Run()
	return out.Bytes(), err
}
