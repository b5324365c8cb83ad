package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/scan"
)

// scanFlags are the flags of keywarden scan.
type scanFlags struct {
	git, staged bool
	format      string
	output      string
	live        string
	revoke      bool
	noIgnore    bool
	exclude     []string
}

func newScanCmd(a *app) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [PATH...] [-]",
		Short: "Find leaked exchange keys in files, archives, stdin and git history",
		Long: `Scan files and directories (archives inside them are opened), standard input
("-"), the whole git history of a repository (--git: every blob of every
branch and tag), or the staged changes (--staged, what the pre-commit hook
runs), for exchange API keys, secrets, passphrases and private keys of every
venue keywarden knows, and for generic high-entropy secrets.

Nothing found is printed in full: only its first four characters and length.
The exit status is non-zero when anything is found.

When the vault in the data directory can be unsealed (--live auto, the
default, tries when a passphrase file is configured or a terminal can ask),
every candidate is fingerprinted with the vault's fingerprint key and
compared with the stored exchange keys and the client credentials: a match is
reported as "this is your live key binance/main", alerted through the
[alerts] notifiers, and offered for revocation (--revoke, or a prompt on a
terminal). Revocation is the same as keywarden key revoke and keywarden
client revoke, and is allowed by the same proof: the vault unsealed by this
process.

Paths listed in .keywardenignore (gitignore-like globs, at the root of each
scanned directory or repository) are skipped, and so are lines carrying a
keywarden:allow comment (and the line after one).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runScan(cmd, args, &f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.git, "git", false, "scan the whole history of the git repository at each PATH (default .)")
	fl.BoolVar(&f.staged, "staged", false, "scan the staged changes of the git repository at each PATH (default .)")
	fl.StringVar(&f.format, "format", "text", "output format: text, json or sarif")
	fl.StringVar(&f.output, "output", "", "write the report to this file instead of stdout")
	fl.StringVar(&f.live, "live", "auto", "match findings with the vault's live keys: auto, on or off")
	fl.BoolVar(&f.revoke, "revoke", false, "revoke every live key found, without asking")
	fl.BoolVar(&f.noIgnore, "no-ignore", false, "do not read .keywardenignore")
	fl.StringSliceVar(&f.exclude, "exclude", nil, "extra ignore pattern (gitignore-like); repeatable")
	cmd.AddCommand(newScanInstallHookCmd(a))
	return cmd
}

// errFindings makes the exit status non-zero when secrets were found.
type errFindings struct{ n, live int }

func (e errFindings) Error() string {
	if e.live > 0 {
		return fmt.Sprintf("%d secret(s) found, %d of them live keys", e.n, e.live)
	}
	return fmt.Sprintf("%d secret(s) found", e.n)
}

func (a *app) runScan(cmd *cobra.Command, args []string, f *scanFlags) error {
	switch f.format {
	case "text", "json", "sarif":
	default:
		return fmt.Errorf("--format %q: want text, json or sarif", f.format)
	}
	if f.git && f.staged {
		return errors.New("--git and --staged exclude each other")
	}
	ctx := cmd.Context()
	stdinScanned := false
	for _, p := range args {
		if p == "-" {
			stdinScanned = true
			continue
		}
		if _, err := os.Stat(p); err != nil {
			if looksLikeSecret(p) {
				// A secret pasted where a path goes: never echo it.
				return errors.New("a PATH argument does not exist (not shown: it looks like a secret; pipe secrets to keywarden scan - instead)")
			}
			return fmt.Errorf("scan: %w", err)
		}
	}
	lv, err := a.openLive(ctx, f.live)
	if err != nil {
		return err
	}
	defer lv.close()
	opts := scan.Options{Logger: a.log, Ignore: f.exclude, NoIgnoreFile: f.noIgnore}
	if lv.matcher != nil {
		opts.Matcher = lv.matcher
	}
	s := scan.New(opts)
	report, err := scanTargets(ctx, s, args, f, cmd.InOrStdin())
	if err != nil {
		return err
	}
	if err := a.writeReport(report, f); err != nil {
		return err
	}
	live := 0
	for _, fd := range report.Findings {
		if fd.Live != nil {
			live++
		}
	}
	if live > 0 {
		lv.respond(ctx, a, report, f.revoke, !stdinScanned && a.prompt.interactive())
	}
	if len(report.Findings) > 0 {
		return errFindings{n: len(report.Findings), live: live}
	}
	return nil
}

// scanTargets scans what the arguments name.
func scanTargets(ctx context.Context, s *scan.Scanner, args []string, f *scanFlags, stdin io.Reader) (*scan.Report, error) {
	if len(args) == 0 {
		args = []string{"."}
	}
	report := &scan.Report{Findings: []scan.Finding{}}
	var paths []string
	for _, p := range args {
		var r *scan.Report
		var err error
		switch {
		case p == "-":
			r, err = s.ScanReader(ctx, "stdin", stdin)
		case f.git:
			r, err = s.ScanGit(ctx, p)
		case f.staged:
			r, err = s.ScanStaged(ctx, p)
		default:
			paths = append(paths, p)
			continue
		}
		if err != nil {
			return nil, err
		}
		report.Merge(r)
	}
	if len(paths) > 0 {
		r, err := s.Scan(ctx, paths)
		if err != nil {
			return nil, err
		}
		report.Merge(r)
	}
	return report, nil
}

func (a *app) writeReport(r *scan.Report, f *scanFlags) error {
	w := a.stdout
	if f.output != "" {
		file, err := os.OpenFile(f.output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	var err error
	switch f.format {
	case "json":
		err = r.WriteJSON(w)
	case "sarif":
		err = r.WriteSARIF(w)
	default:
		err = r.WriteText(w)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if f.output != "" && f.format != "text" {
		// keep the operator informed on the terminal
		fmt.Fprintf(a.stderr, "%d finding(s); report written to %s\n", len(r.Findings), f.output)
	}
	return nil
}

// liveOwners lists the distinct live keys among the findings, in order.
func liveOwners(r *scan.Report) []*scan.Live {
	seen := map[string]bool{}
	var out []*scan.Live
	for _, f := range r.Findings {
		if f.Live == nil {
			continue
		}
		k := f.Live.Kind + "\x00" + f.Live.Owner
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f.Live)
	}
	return out
}

// firstLocation says where a live key was first found.
func firstLocation(r *scan.Report, l *scan.Live) scan.Finding {
	for _, f := range r.Findings {
		if f.Live != nil && f.Live.Kind == l.Kind && f.Live.Owner == l.Owner {
			return f
		}
	}
	return scan.Finding{}
}

// yes reads a yes/no answer.
func yes(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return s == "y" || s == "yes"
}
