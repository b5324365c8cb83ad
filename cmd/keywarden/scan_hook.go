package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// hookMarker identifies a pre-commit hook keywarden wrote.
const hookMarker = "# keywarden pre-commit hook"

func newScanInstallHookCmd(a *app) *cobra.Command {
	var force bool
	var dir string
	cmd := &cobra.Command{
		Use:   "install-hook [--force]",
		Short: "Install a git pre-commit hook that refuses commits staging a secret",
		Long: `Write the pre-commit hook of the git repository at --dir (default .): it runs
keywarden scan --staged and stops the commit when a secret is staged. A hook
that keywarden did not write is left alone unless --force, which keeps it as
pre-commit.keywarden-backup. Bypass the hook once with git commit --no-verify.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := installHook(cmd.Context(), dir, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Installed the keywarden pre-commit hook in %s.\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing pre-commit hook keywarden did not write")
	cmd.Flags().StringVar(&dir, "dir", ".", "the git repository")
	return cmd
}

// hookScript runs the keywarden that installed it, or the one on PATH.
func hookScript(self string) string {
	return "#!/bin/sh\n" + hookMarker + `: refuses a commit that stages a secret.
# Installed by "keywarden scan install-hook"; skip once with git commit --no-verify.
KEYWARDEN=${KEYWARDEN:-` + shellQuote(self) + `}
command -v "$KEYWARDEN" >/dev/null 2>&1 || KEYWARDEN=keywarden
exec "$KEYWARDEN" scan --staged
`
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// installHook writes the hook and returns its path.
func installHook(ctx context.Context, dir string, force bool) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--git-path", "hooks").Output()
	if err != nil {
		return "", fmt.Errorf("%s is not a git repository", dir)
	}
	hooks := strings.TrimSpace(string(out))
	if !filepath.IsAbs(hooks) {
		hooks = filepath.Join(dir, hooks)
	}
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(hooks, "pre-commit")
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case bytes.Contains(old, []byte(hookMarker)):
		// ours: update it
	case !force:
		return "", fmt.Errorf("%s exists and was not written by keywarden; use --force to replace it (it is kept as pre-commit.keywarden-backup)", path)
	default:
		if err := os.WriteFile(path+".keywarden-backup", old, 0o755); err != nil {
			return "", err
		}
	}
	self, err := os.Executable()
	if err != nil {
		self = "keywarden"
	}
	if err := os.WriteFile(path, []byte(hookScript(self)), 0o755); err != nil {
		return "", err
	}
	return path, os.Chmod(path, 0o755)
}
