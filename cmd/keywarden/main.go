// Command keywarden is the single keywarden binary: the vault and key
// inventory commands, the signing gateway and its tools, as subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// hardened says whether main marked the process not dumpable.
var hardened bool

func main() {
	hardened = harden()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keywarden:", err)
		os.Exit(1)
	}
}
