package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
)

const downLong = `Take a lab down: stop its lispd and every other process in its nodes,
delete its namespaces (and with them the links), its hosts files under
/etc/netns and /run/lisplab/NAME/. The lab is named by its topology FILE
(whose name: it uses), or by --name when it was brought up under another
name; --name wins when both are given.

down works from any shell, after lisplab or lispd crashed, and on what a
half-finished up left behind. Taking down a lab that is not up is not an
error: it says so and exits 0.`

func newDownCmd(s streams) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "down FILE | --name NAME",
		Short: "Take a lab down and remove everything it left",
		Long:  downLong,
		Example: `  lisplab down examples/lab/two-sites.yaml
  lisplab down --name mylab`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return cli.Usagef("down takes one topology FILE, got %d arguments", len(args))
			case len(args) == 0 && name == "":
				return cli.Usagef("down needs the topology FILE or --name NAME")
			}
			return nil
		},
		PreRunE: needRoot(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				topo, err := lab.LoadTopology(args[0])
				if err != nil {
					return inputError(fmt.Errorf("%w\n(give the lab's name with --name to take it down anyway)", err))
				}
				name = topo.Name
			}
			return down(s, name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the lab (as lisplab status lists it)")
	return cmd
}

func down(s streams, name string) error {
	present, _ := labPresent(name)
	if !present {
		// Hosts files left alone by an interrupted down are still ours.
		left, _ := filepath.Glob(filepath.Join(lab.EtcNetns, name+"-*"))
		present = len(left) > 0
	}
	nodes := len(labNamespaces(name))
	if err := lab.DownByName(name); err != nil {
		return cli.Failed(err)
	}
	if !present {
		fmt.Fprintf(s.out, "lab %s is not up: nothing to do\n", name)
		return nil
	}
	if left := labNamespaces(name); len(left) > 0 {
		slices.Sort(left)
		return cli.Failed(fmt.Errorf("lab %s: namespaces still there: %v", name, left))
	}
	if _, err := os.Stat(filepath.Join(lab.RunRoot, name)); err == nil {
		return cli.Failed(fmt.Errorf("lab %s: %s is still there", name, filepath.Join(lab.RunRoot, name)))
	}
	if nodes > 0 {
		fmt.Fprintf(s.out, "lab %s is down (%d nodes removed)\n", name, nodes)
	} else {
		fmt.Fprintf(s.out, "lab %s is down\n", name)
	}
	return nil
}
