package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/spf13/cobra"
)

// app is what every command shares: the injected environment and streams,
// and the configuration loaded before the command runs.
type app struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	prompt *prompter

	cfg Config
	log *slog.Logger

	// flags on the root command
	configPath     string
	dataDir        string
	logLevel       string
	passphraseFile string

	// bg is the work serve starts in the background: alert delivery,
	// incident recording, automatic responses, a panic's evidence snapshot
	// and venue actions. serve waits for it before it closes the audit
	// log, the vault and the store, so nothing writes into the data
	// directory after serve returns.
	bg sync.WaitGroup
}

// run runs keywarden with args (args[0] is the program name).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, getenv, os.Stdin, stdout, stderr)
}

// runIO is run with stdin injected, for tests.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr, prompt: newPrompter(stdin, stderr)}
	root := newRootCmd(a)
	if len(args) > 0 {
		args = args[1:]
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "keywarden",
		Short: "Vault and signing gateway for exchange API keys",
		Long: `keywarden keeps exchange API secrets sealed and signs for your bots,
so that bots never hold an exchange secret.

Configuration comes from a TOML file (--config or KEYWARDEN_CONFIG), then
KEYWARDEN_* environment variables, then flags.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) },
	}
	f := root.PersistentFlags()
	f.StringVar(&a.configPath, "config", "", "config file (TOML); default $KEYWARDEN_CONFIG")
	f.StringVar(&a.dataDir, "data-dir", "", "data directory; default $KEYWARDEN_DATA_DIR or ./keywarden-data")
	f.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error")
	f.StringVar(&a.passphraseFile, "passphrase-file", "", "file holding the vault passphrase (mode 0600)")
	root.AddCommand(newOperatorCmd(a), newKeyCmd(a), newServeCmd(a), newClientCmd(a), newDemoCmd(a), newPolicyCmd(a), newAuditCmd(a), newSimulateCmd(a), newTLSCmd(a), newGatewayCmd(a), newBenchCmd(a), newAlertCmd(a), newPanicCmd(a), newLoginCmd(a), newAdminCmd(a), newReportCmd(a), newScanCmd(a))
	root.AddCommand(newIncidentCmd(a))
	root.AddCommand(newBackupCmd(a), newRestoreCmd(a), newClusterCmd(a))
	return root
}

// setup loads and validates the configuration and builds the logger.
func (a *app) setup(cmd *cobra.Command) error {
	path := a.configPath
	if path == "" {
		path = a.getenv("KEYWARDEN_CONFIG")
	}
	cfg, err := loadConfig(path, a.getenv)
	if err != nil {
		return err
	}
	flags := cmd.Flags()
	if flags.Changed("data-dir") {
		cfg.DataDir = a.dataDir
	}
	if flags.Changed("log-level") {
		cfg.LogLevel = a.logLevel
	}
	if flags.Changed("passphrase-file") {
		cfg.Vault.PassphraseFile = a.passphraseFile
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	a.cfg = cfg
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// group returns a command that only holds subcommands. Unknown
// subcommands are refused without echoing them: they may be a pasted
// secret.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown %s subcommand (see %s --help)", cmd.Name(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// noArgs refuses positional arguments without echoing them.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments; secrets are read from a prompt, a file or stdin, never from the command line", cmd.CommandPath())
	}
	return nil
}
