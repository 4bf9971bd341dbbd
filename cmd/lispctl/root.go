package main

import (
	"context"
	"fmt"
	"io"

	"github.com/lispd/lispd/internal/cli"
	"github.com/spf13/cobra"
)

// Where lispctl finds lispd's admin socket. Exit codes are cli's: 1 when
// the command ran but the result is bad (a message did not decode), 2 for
// bad flags or arguments and unreadable input.
const (
	envSocket   = "LISPD_SOCKET"
	defaultSock = "/run/lispd/lispd.sock"
)

// streams is what a command reads and writes. main passes the process's;
// tests pass buffers and run commands in-process.
type streams struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// ctx ends long-running commands (lig, bench) early; main cancels it
	// on SIGINT/SIGTERM. nil means context.Background().
	ctx context.Context
}

// inputError reports input that cannot be read at all (exit 2).
func inputError(err error) error { return &cli.Error{Code: cli.ExitUsage, Err: err} }

// outputError reports that writing the output failed (exit 1): the
// command ran, but its result did not get out.
func outputError(err error) error {
	return cli.Failed(fmt.Errorf("writing output: %w", err))
}

// errDecodeFailed is the silent exit 1 after output that already shows
// what went wrong.
var errDecodeFailed = cli.Exit(cli.ExitFailed)

// run executes lispctl with args and returns the exit code.
func run(args []string, s streams) int {
	return cli.Run(s.ctx, newRootCmd(s), args, s.err)
}

// newRootCmd builds the whole command tree writing to s.
func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "lispctl",
		Short: "Operator CLI for lispd, the LISP (RFC 9300/9301) router",
		Long: `lispctl is the operator CLI for lispd, a LISP (Locator/ID Separation Protocol,
RFC 9300/9301) xTR, Map-Server and Map-Resolver.

Commands that query a running lispd reach it over its admin socket, set by
--socket or the LISPD_SOCKET environment variable. Offline tools such as
decode, lig and bench need no daemon.`,
		Version: versionString(),
	}
	// Errors are printed once, by cli.Run, with the right exit code;
	// cobra's own printing would duplicate them and add the full usage.
	cli.Setup(root, s.in, s.out, s.err)
	root.SetVersionTemplate("{{.Version}}\n")
	// Declared here so that cobra does not give --version the -v shorthand,
	// which means --verbose in subcommands.
	root.Flags().Bool("version", false, "print the version and exit")

	sock := defaultSock
	if v := s.getenv(envSocket); v != "" {
		sock = v
	}
	root.PersistentFlags().String("socket", sock,
		"path of lispd's admin socket (env "+envSocket+")")

	root.AddCommand(newDecodeCmd(s), newLigCmd(s), newBenchCmd(s), newVersionCmd(s), newShowCmd(s), newReloadCmd(s), newClearCmd(s), newMonitorCmd(s))
	return root
}
