package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
)

const execLong = `Run a command inside a node of a lab that is up: in the node's network
namespace, with the lab's hosts file as /etc/hosts (so node names resolve)
and /sys showing the node's interfaces. stdin, stdout and stderr are the
command's; lisplab exits with the command's exit status (128+N when a signal
N ended it). Interactive programs (a shell, tcpdump) work too.

The lab may be left out when only one lab is up:
  lisplab exec NODE -- CMD...

Everything after NODE is the command; "--" before it is optional but keeps
lisplab from reading the command's flags. SIGTERM and SIGHUP sent to lisplab
are passed on to the command; Ctrl-C reaches it from the terminal.`

const execExample = `  lisplab exec two_sites host-a -- ping -c 3 host-b
  lisplab exec two_sites xtr-a -- ip route
  lisplab exec two_sites core -- tcpdump -ni any udp port 4341
  lisplab exec host-a -- bash`

func newExecCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "exec [NAME] NODE -- CMD...",
		Short:   "Run a command inside a node of a lab",
		Long:    execLong,
		Example: execExample,
		Args:    cobra.ArbitraryArgs,
		PreRunE: needRoot(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, node, argv, err := execArgs(args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			return execIn(s, name, node, argv)
		},
	}
	// The command's own flags are not lisplab's.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// execArgs splits [NAME] NODE [--] CMD...; dash is where cobra saw "--"
// (-1: none). As flags stop at the first argument, a "--" after NAME or
// NODE is still in args. Without "--" both NAME and NODE are needed.
func execArgs(args []string, dash int) (name, node string, argv []string, err error) {
	if dash < 0 {
		for i := 1; i <= 2 && i < len(args); i++ {
			if args[i] == "--" {
				dash = i
				args = append(args[:i:i], args[i+1:]...)
				break
			}
		}
	}
	before := args
	if dash >= 0 {
		before, argv = args[:dash], args[dash:]
	} else if len(args) >= 2 {
		before, argv = args[:2], args[2:]
	}
	switch len(before) {
	case 2:
		name, node = before[0], before[1]
	case 1:
		node = before[0]
		labs, lerr := lab.List()
		switch {
		case lerr != nil:
			return "", "", nil, cli.Failed(lerr)
		case len(labs) == 0:
			return "", "", nil, cli.Failed(errors.New("no lab is up"))
		case len(labs) > 1:
			return "", "", nil, cli.Usagef("%d labs are up (%v): say which, as lisplab exec NAME %s -- CMD", len(labs), labs, node)
		}
		name = labs[0]
	default:
		return "", "", nil, cli.Usagef("exec takes [NAME] NODE -- CMD...")
	}
	if len(argv) == 0 {
		return "", "", nil, cli.Usagef("exec: no command to run in %s", node)
	}
	return name, node, argv, nil
}

// execIn runs argv in node of lab name and passes its exit status on.
func execIn(s streams, name, node string, argv []string) error {
	l, err := lab.Attach(name)
	if err != nil {
		return cli.Failed(err)
	}
	defer l.Close()
	if l.Topology().Node(node) == nil {
		var names []string
		for _, n := range l.Topology().Nodes {
			names = append(names, n.Name)
		}
		return cli.Usagef("lab %s has no node %q (nodes: %v)", name, node, names)
	}
	c := l.Exec(node, argv...)
	c.Stdin, c.Stdout, c.Stderr = s.in, s.out, s.err
	if err := c.Start(); err != nil {
		return cli.Failed(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = c.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	err = c.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return cli.Exit(128 + int(ws.Signal()))
		}
		return cli.Exit(ee.ExitCode())
	}
	return cli.Failed(fmt.Errorf("exec in %s: %w", node, err))
}
