package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes shared by every lispctl command.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran, but the result is bad (e.g. a message did not decode)
	exitUsage   = 2 // bad flags or arguments, unreadable input
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

// exitError carries the exit code out of a command. err, when set, is
// printed; usage adds a pointer to --help.
type exitError struct {
	code  int
	err   error
	usage bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError reports bad flags or arguments (exit 2).
func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...), usage: true}
}

// inputError reports input that cannot be read at all (exit 2).
func inputError(err error) error { return &exitError{code: exitUsage, err: err} }

// outputError reports that writing the output failed (exit 1): the
// command ran, but its result did not get out.
func outputError(err error) error {
	return &exitError{code: exitFailed, err: fmt.Errorf("writing output: %w", err)}
}

// errDecodeFailed is the silent exit 1 after output that already shows
// what went wrong.
var errDecodeFailed = &exitError{code: exitFailed}

// run executes lispctl with args and returns the exit code.
func run(args []string, s streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(cmd, err, s.err)
}

// exitCode prints err (if it has something to say) and maps it to an exit
// code. Errors that are not ours come from cobra's own argument and
// command parsing, so they are usage errors.
func exitCode(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: exitUsage, err: err, usage: true}
	}
	if ee.err != nil {
		fmt.Fprintf(stderr, "lispctl: %v\n", ee.err)
	}
	if ee.usage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
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
		// Errors are printed once, by exitCode, with the right exit code;
		// cobra's own printing would duplicate them and add the full usage.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetVersionTemplate("{{.Version}}\n")
	// Declared here so that cobra does not give --version the -v shorthand,
	// which means --verbose in subcommands.
	root.Flags().Bool("version", false, "print the version and exit")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err, usage: true}
	})

	sock := defaultSock
	if v := s.getenv(envSocket); v != "" {
		sock = v
	}
	root.PersistentFlags().String("socket", sock,
		"path of lispd's admin socket (env "+envSocket+")")

	root.AddCommand(newDecodeCmd(s), newLigCmd(s), newBenchCmd(s), newVersionCmd(s), newShowCmd(s), newReloadCmd(s), newClearCmd(s))
	return root
}
