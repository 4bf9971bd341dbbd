package main

import (
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/demo"
)

const demoLong = `Build a LISP network in namespaces — a client site (C1), data centre DC1
(the VM d1 behind two xTRs, one RLOC each, weights 50/50), data centre DC2, a
Map-Server/Map-Resolver, a PxTR and a non-LISP host — and tell the LISP
story on it, with measured times:

  1. the ETRs of a client site and of data centre DC1 register (Map-Register,
     Map-Notify), and the Map-Server shows them;
  2. C1 opens a TCP connection to d1: the ITR misses, the Map-Request goes
     through the Map-Resolver and Map-Server to a DC1 ETR, whose Map-Reply
     comes straight back; time to the first answer, and the map-cache entry;
  3. many flows from C1 to d1 spread over DC1's two RLOCs by weight (50/50),
     counted at each ETR;
  4. a non-LISP host reaches d1 through the PITR, and d1 reaches it through
     the PETR;
  5. one DC1 uplink fails under a 1,000 packets/s stream: RLOC probing moves
     the traffic to the other RLOC; the outage is measured;
  6. d1, a VM, migrates to DC2 and back keeping its address (across
     subnets): the new xTR detects it, the Map-Server moves its /32 and
     publishes the move; convergence, packets lost and a TCP connection that
     survives are measured;
  7. the same with DC1's subnet stretched to DC2 over VXLAN (extended
     subnet).

It ends with a summary table and exits 0 only if every step passed. --keep
leaves the network up to explore (lisplab status; lisplab down --name lispdemo).
--web serves a page that draws the network, each node's state and the steps
lighting up as they run (it prints the page's address).`

// defaultWeb is where `lisplab demo --web` serves its page: loopback only.
const defaultWeb = "127.0.0.1:9344"

func newDemoCmd(s streams) *cobra.Command {
	var keep bool
	var lispd, lispctl, name, web string
	cmd := &cobra.Command{
		Use:     "demo",
		Short:   "Build a demo LISP network and show registration, resolution, load sharing, PxTR, failover and VM mobility",
		Long:    demoLong,
		Args:    cobra.NoArgs,
		PreRunE: needRoot(s),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := findLispd(lispd, s.executable)
			if err != nil {
				return cli.Failed(err)
			}
			if lispctl == "" {
				lispctl = findLispctl(s)
			}
			if err := demo.Run(cmd.Context(), demo.Options{Name: name, Lispd: bin, Lispctl: lispctl, Keep: keep, Out: s.out, Web: web}); err != nil {
				return cli.Failed(err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the network up at the end")
	cmd.Flags().StringVar(&lispd, "lispd", "", "lispd binary (default: next to lisplab, else in $PATH)")
	cmd.Flags().StringVar(&lispctl, "lispctl", "", "lispctl binary for the show excerpts (default: next to lisplab, else in $PATH)")
	cmd.Flags().StringVar(&name, "name", "lispdemo", "lab name")
	cmd.Flags().StringVar(&web, "web", "", "serve the lab page (network graph, node state, the steps as they run) at `HOST:PORT`; bare --web: "+defaultWeb)
	cmd.Flags().Lookup("web").NoOptDefVal = defaultWeb
	return cmd
}

// findLispctl looks next to lisplab, then in $PATH; without it the demo
// just leaves out the `show` excerpts.
func findLispctl(s streams) string {
	if s.executable != nil {
		if self, err := s.executable(); err == nil {
			p := filepath.Join(filepath.Dir(self), "lispctl")
			if _, err := exec.LookPath(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("lispctl"); err == nil {
		return p
	}
	return ""
}
