package main

import (
	"fmt"
	"strings"

	"github.com/lispd/lispd/internal/cli"
	"github.com/spf13/cobra"
)

const checkLong = `Check topology files without building anything (no root needed): the
topology itself (names, links, addresses, routes, sysctls, aliases) and the
lispd configuration lisplab up would write for each node with a "lispd:"
section, validated as lispd check would. Problems are printed as FILE:LINE:
message, the line being in the topology file.

Exit status: 0 when every file is good, 2 otherwise.`

func newCheckCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE...",
		Short:   "Validate topology files and their lispd sections",
		Long:    checkLong,
		Example: `  lisplab check examples/lab/*.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("check needs at least one topology FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := false
			for _, file := range args {
				t, err := loadTopology(file, "")
				if err != nil {
					fmt.Fprintln(s.err, err)
					bad = true
					continue
				}
				var nodes []string
				for _, nc := range t.configs {
					nodes = append(nodes, nc.node)
				}
				fmt.Fprintf(s.out, "%s: ok: lab %s, %d nodes, %d links, lispd in %s\n", file, t.topo.Name,
					len(t.topo.Nodes), len(t.topo.Links), orNone(strings.Join(nodes, ", ")))
			}
			if bad {
				return cli.Exit(cli.ExitUsage)
			}
			return nil
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
