package main

import (
	"context"
	"errors"
	"io"

	"github.com/lispd/lispd/internal/cli"
	"github.com/spf13/cobra"
)

// lisplab's exit codes are cli's: 1 when the command ran but failed (lab
// already up, lispd did not start, a node is unhealthy), 2 for bad flags
// or arguments, a bad topology or lispd config, or not root. exec passes
// the command's own code through.

// errNotRoot is what every command that touches namespaces says without root.
var errNotRoot = errors.New("lisplab needs root to create network namespaces (run it with sudo)")

// streams is what a command reads and writes, and the bits of the process
// it depends on. main passes the real ones; tests pass buffers and fakes
// and run commands in-process.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
	// getenv reads the environment (nil: none).
	getenv func(string) string
	// geteuid is os.Geteuid; tests fake a non-root user.
	geteuid func() int
	// executable is os.Executable, to find lispd next to lisplab.
	executable func() (string, error)
	// ctx ends `up` early (main cancels it on SIGINT/SIGTERM); nil means
	// context.Background().
	ctx context.Context
}

// inputError reports a bad topology or lispd configuration (exit 2); err
// holds FILE:LINE: lines, printed as they are.
func inputError(err error) error { return &cli.Error{Code: cli.ExitUsage, Err: err, Raw: true} }

// run executes lisplab with args and returns the exit code.
func run(args []string, s streams) int {
	if s.getenv == nil {
		s.getenv = func(string) string { return "" }
	}
	return cli.Run(s.ctx, newRootCmd(s), args, s.err)
}

const rootLong = `lisplab builds LISP networks on one Linux machine: each node of a topology
file (Map-Server/Map-Resolver, xTRs, PxTR, routers, hosts) becomes a network
namespace, each link a veth pair, with the addresses, routes and sysctls the
file gives. Every node with a "lispd:" section runs lispd with that
configuration, its admin socket at /run/lisplab/NAME/NODE.sock.

  lisplab up examples/lab/two-sites.yaml     build it and start lispd
  lisplab status                              what is up, is lispd healthy
  lisplab exec two_sites host-a -- ping host-b
  lispctl --socket /run/lisplab/two_sites/ms.sock show site
  lisplab down examples/lab/two-sites.yaml   remove all of it

Namespaces are called NAME-NODE (ip netns list shows them); run files live in
/run/lisplab/NAME/ (state, lispd configs, logs, sockets). Everything but
check and help needs root.

Exit status: 0 on success; 1 when the command ran and failed (the lab is
already up, lispd did not come up, status found a problem); 2 for usage
errors, a bad topology or lispd configuration, or when not run as root.
exec exits with the command's own status.`

// newRootCmd builds the whole command tree writing to s.
func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "lisplab",
		Short: "Build LISP networks in Linux network namespaces and run lispd in them",
		Long:  rootLong,
	}
	// Errors are printed once, by cli.Run, with the right exit code.
	cli.Setup(root, s.in, s.out, s.err)
	root.AddCommand(newUpCmd(s), newDownCmd(s), newStatusCmd(s), newExecCmd(s), newCheckCmd(s), newDemoCmd(s))
	return root
}

// needRoot is the PreRunE of the commands that touch namespaces.
func needRoot(s streams) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		if s.geteuid != nil && s.geteuid() != 0 {
			return &cli.Error{Code: cli.ExitUsage, Err: errNotRoot}
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs reported as a usage error naming what is
// missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return cli.Usagef("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
