// Package cli is what lispd's command-line tools (lispctl, lisplab) share
// around cobra: exit codes carried by errors, one place that prints an
// error and picks the exit status, and a main that cancels on a signal.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes common to the tools (docs/interfaces.md).
const (
	ExitOK     = 0
	ExitFailed = 1 // the command ran, but failed or its result is bad
	ExitUsage  = 2 // bad flags or arguments, input that cannot be used
)

// Error carries an exit code out of a command. Err, when set, is printed;
// Usage adds a pointer to --help.
type Error struct {
	Code  int
	Err   error
	Usage bool
	Raw   bool // print Err as it is (FILE:LINE: lines), without the tool's name
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Usagef reports bad flags or arguments (exit 2).
func Usagef(format string, a ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, a...), Usage: true}
}

// Failed reports a command that ran and failed (exit 1).
func Failed(err error) error { return &Error{Code: ExitFailed, Err: err} }

// Exit ends with code and prints nothing: the output already said it all.
func Exit(code int) error { return &Error{Code: code} }

// Setup makes root print nothing itself (Run prints each error once, with
// its exit code), write to the given streams, and report bad flags as
// usage errors.
func Setup(root *cobra.Command, in io.Reader, out, errOut io.Writer) {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &Error{Code: ExitUsage, Err: err, Usage: true}
	})
}

// Run executes root with args under ctx (nil: context.Background()) and
// returns the exit code, having printed the error, if any, to stderr as
// "NAME: error" (NAME is root's).
func Run(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(root.Name(), cmd, err, stderr)
}

// exitCode prints err (if it has something to say) and maps it to an exit
// code. Errors that are not ours come from cobra's own argument and
// command parsing, so they are usage errors.
func exitCode(name string, cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *Error
	if !errors.As(err, &ee) {
		ee = &Error{Code: ExitUsage, Err: err, Usage: true}
	}
	switch {
	case ee.Err != nil && ee.Raw:
		fmt.Fprintln(stderr, ee.Err)
	case ee.Err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, ee.Err)
	}
	if ee.Usage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.Code
}

// Main runs a tool: run gets a context that SIGINT or SIGTERM cancels, and
// its result is the process's exit status.
func Main(run func(ctx context.Context) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}
