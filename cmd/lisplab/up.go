package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
)

const upLong = `Build the lab a topology file describes and start lispd in its LISP nodes.

lisplab up reads FILE (see examples/lab/), checks the topology and builds the
lispd configuration of every node with a "lispd:" section — that section with
admin.socket set to /run/lisplab/NAME/NODE.sock — and validates each one
before anything is created; a problem is reported as FILE:LINE of the
topology file. Then it creates one network namespace per node (NAME-NODE),
the links, addresses, sysctls and routes, writes a hosts file for every node
(each node's name and the aliases the topology gives, so "ping host-b" works
inside the lab), writes the configurations to /run/lisplab/NAME/NODE.yaml,
starts the etcd member of every node with an "etcd:" section (the real etcd
server, Debian package etcd-server: one cluster of all of them, data and log
in /run/lisplab/NAME/NODE-etcd{,.log}) and waits until each is healthy,
starts "lispd --config /run/lisplab/NAME/NODE.yaml" in each LISP node (log in
/run/lisplab/NAME/NODE-lispd.log) and waits until every admin socket
answers, and until every ETR has registered its EID prefixes with its
Map-Servers (so that the first ping finds the other site registered rather
than a negative map-cache entry). It ends by printing how to reach each
node.

If anything fails on the way, what was built is taken down again (unless
--keep) and the end of the failing lispd's log is shown. An ETR that does
not register within --timeout (a wrong key, say) leaves the lab up for a
look and makes up exit 1.

A lab called NAME that is already up is left alone: lisplab says so and
exits 1; --replace takes it down first. lispd is the --lispd binary, else
the lispd next to the lisplab executable, else the one in $PATH.`

const upExample = `  lisplab up examples/lab/two-sites.yaml
  lisplab up examples/lab/two-sites.yaml --name mylab --lispd ./lispd
  lisplab up examples/lab/pxtr.yaml --replace`

type upOptions struct {
	name    string
	replace bool
	lispd   string
	timeout time.Duration
	keep    bool
	waitReg bool
}

func newUpCmd(s streams) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:     "up FILE",
		Short:   "Build a lab from a topology file and start lispd in it",
		Long:    upLong,
		Example: upExample,
		Args:    exactArgs(1, "one topology FILE"),
		PreRunE: needRoot(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), s, args[0])
		},
	}
	cmd.Flags().StringVar(&o.name, "name", "", "lab name instead of the topology's (letters, digits, '_')")
	cmd.Flags().BoolVar(&o.replace, "replace", false, "take a lab of the same name down first")
	cmd.Flags().StringVar(&o.lispd, "lispd", "", "lispd binary (default: next to lisplab, else in $PATH)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the lab and every lispd to come up")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "leave the lab up when a lispd fails to start (to look at it)")
	cmd.Flags().BoolVar(&o.waitReg, "wait-registered", true, "wait until every ETR has registered with its Map-Servers")
	return cmd
}

// runInfo is what lisplab up records in /run/lisplab/NAME/lisplab.json for
// status.
type runInfo struct {
	File  string    `json:"topology-file"`
	Lispd string    `json:"lispd,omitempty"`
	Up    time.Time `json:"up-since"`
}

const runInfoFile = "lisplab.json"

func (o *upOptions) run(ctx context.Context, s streams, file string) error {
	t, err := loadTopology(file, o.name)
	if err != nil {
		return asInputError(err)
	}
	name := t.topo.Name
	lispd := ""
	if len(t.configs) > 0 {
		if lispd, err = findLispd(o.lispd, s.executable); err != nil {
			return cli.Failed(err)
		}
	}

	if up, what := labPresent(name); up {
		if !o.replace {
			return cli.Failed(fmt.Errorf("lab %s is already up (%s): take it down with 'lisplab down --name %s', or use 'lisplab up --replace'", name, what, name))
		}
		fmt.Fprintf(s.out, "taking down lab %s first (--replace)\n", name)
		if err := lab.DownByName(name); err != nil {
			return cli.Failed(err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	l, err := lab.Up(ctx, t.topo)
	if err != nil {
		return cli.Failed(err)
	}
	procs, err := o.start(ctx, l, t, lispd)
	if err != nil {
		if o.keep {
			return cli.Failed(fmt.Errorf("%w\nthe lab is left up (--keep): look around, then 'lisplab down --name %s'", err, name))
		}
		if derr := l.Down(); derr != nil {
			err = fmt.Errorf("%w\n(and taking the lab down: %v)", err, derr)
		}
		return cli.Failed(err)
	}
	var regErr error
	if o.waitReg {
		regErr = waitRegistered(ctx, t, procs, o.timeout)
	}
	printReach(s.out, t, l, time.Since(start))
	if regErr != nil {
		return cli.Failed(fmt.Errorf("lab %s is up, but %w\n(see lisplab status %s and the lispd logs; the lab stays up)", name, regErr, name))
	}
	return nil
}

// waitRegistered waits until every ETR reports each of its Map-Servers as
// registered (Map-Notify received, or Map-Register sent when it asked for
// no Map-Notify).
func waitRegistered(ctx context.Context, t *topology, procs map[string]*lab.LispdProc, timeout time.Duration) error {
	for _, nc := range t.configs {
		if x := nc.cfg.XTR; x == nil || !x.ETR || len(x.Database) == 0 || len(x.MapServers) == 0 {
			continue
		}
		if err := procs[nc.node].WaitRegistered(ctx); err != nil {
			var nr *lab.NotRegisteredError
			if errors.As(err, &nr) {
				return fmt.Errorf("%w within --timeout %v: a wrong key or address?", err, timeout)
			}
			return err
		}
	}
	return nil
}

// start does everything after the namespaces exist: hosts files, lispd
// configurations, lispd, and the wait for the admin sockets. It returns
// the lispd of each LISP node.
func (o *upOptions) start(ctx context.Context, l *lab.Lab, t *topology, lispd string) (map[string]*lab.LispdProc, error) {
	if err := l.WriteHosts(t.topo.DefaultHosts()); err != nil {
		return nil, err
	}
	info, _ := json.MarshalIndent(runInfo{File: absPath(t.file), Lispd: lispd, Up: time.Now().UTC().Truncate(time.Second)}, "", "  ")
	if err := os.WriteFile(filepath.Join(l.Dir(), runInfoFile), append(info, '\n'), 0o644); err != nil {
		return nil, err
	}
	// The etcd members first: a Map-Server of a cluster shares its
	// registrations through them.
	if len(t.topo.EtcdEndpoints()) > 0 {
		if _, err := l.StartEtcd(ctx, ""); err != nil {
			return nil, err
		}
	}
	procs := map[string]*lab.LispdProc{}
	for _, nc := range t.configs {
		if err := os.WriteFile(nc.path, nc.data, 0o600); err != nil {
			return nil, err
		}
		p, err := l.StartLispd(nc.node, nc.path, lab.LispdOptions{Binary: lispd, Socket: nc.socket})
		if err != nil {
			return nil, err
		}
		procs[nc.node] = p
	}
	for _, nc := range t.configs {
		if err := procs[nc.node].WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	return procs, nil
}

// asInputError reports topology and configuration problems (exit 2),
// leaving errors that already carry a code alone.
func asInputError(err error) error {
	var ee *cli.Error
	if errors.As(err, &ee) {
		return err
	}
	return inputError(err)
}

// findLispd picks the lispd binary: flag, else next to this executable,
// else $PATH. The result is absolute.
func findLispd(flag string, executable func() (string, error)) (string, error) {
	check := func(p string) (string, error) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(abs)
		switch {
		case err != nil:
			return "", err
		case st.IsDir() || st.Mode()&0o111 == 0:
			return "", fmt.Errorf("%s is not an executable file", abs)
		}
		return abs, nil
	}
	if flag != "" {
		p, err := check(flag)
		if err != nil {
			return "", fmt.Errorf("--lispd: %w", err)
		}
		return p, nil
	}
	if executable != nil {
		if self, err := executable(); err == nil {
			if p, err := check(filepath.Join(filepath.Dir(self), "lispd")); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("lispd"); err == nil {
		return check(p)
	}
	return "", errors.New("cannot find lispd: not next to lisplab nor in $PATH; build it (go build ./cmd/lispd) and pass --lispd PATH")
}

// labPresent says whether anything of a lab called name is on the
// machine: its run directory or a namespace.
func labPresent(name string) (bool, string) {
	if _, err := os.Stat(filepath.Join(lab.RunRoot, name)); err == nil {
		return true, filepath.Join(lab.RunRoot, name) + " exists"
	}
	if ns := labNamespaces(name); len(ns) > 0 {
		return true, fmt.Sprintf("namespace %s exists", ns[0])
	}
	return false, ""
}

// labNamespaces lists the namespaces of lab name in /run/netns.
func labNamespaces(name string) []string {
	ents, err := os.ReadDir(lab.NetnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// printReach tells how to reach each node of a lab just brought up.
func printReach(w io.Writer, t *topology, l *lab.Lab, took time.Duration) {
	topo := l.Topology()
	name := topo.Name
	fmt.Fprintf(w, "lab %s is up: %d nodes, %d links, lispd in %d of them (%.1fs)\n\n", name, len(topo.Nodes), len(topo.Links),
		len(t.configs), took.Seconds())
	sockets := map[string]nodeConfig{}
	for _, nc := range t.configs {
		sockets[nc.node] = nc
	}
	hosts := topo.DefaultHosts()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tADDRESS\tLISPD ADMIN SOCKET")
	for _, n := range topo.Nodes {
		addr, sock := "-", "-"
		if a, ok := hosts[n.Name]; ok {
			addr = a.String()
		}
		if nc, ok := sockets[n.Name]; ok {
			sock = nc.socket
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, dash(n.Role), addr, sock)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nRun a command in a node (names in the hosts files: %s):\n", strings.Join(slices.Sorted(maps.Keys(hosts)), ", "))
	var hostNodes []string
	for _, n := range topo.Nodes {
		if _, lisp := sockets[n.Name]; !lisp {
			hostNodes = append(hostNodes, n.Name)
		}
	}
	// Two hosts if there are, else two nodes without lispd, else any.
	var hostRole []string
	for _, n := range topo.Nodes {
		if n.Role == "host" {
			hostRole = append(hostRole, n.Name)
		}
	}
	if len(hostRole) >= 2 {
		hostNodes = hostRole
	}
	first := topo.Nodes[0].Name
	target := topo.Nodes[len(topo.Nodes)-1].Name
	if len(hostNodes) > 0 {
		first = hostNodes[0]
		target = hostNodes[len(hostNodes)-1]
	}
	fmt.Fprintf(w, "  lisplab exec %s %s -- ping -c 3 %s\n", name, first, target)
	fmt.Fprintf(w, "  lisplab exec %s %s -- bash                # a shell in the node\n", name, first)
	if len(t.configs) > 0 {
		fmt.Fprintln(w, "\nAsk lispd:")
		for _, nc := range t.configs {
			for _, show := range showsFor(nc) {
				fmt.Fprintf(w, "  lispctl --socket %s show %s\n", nc.socket, show)
			}
		}
		fmt.Fprintf(w, "\nlispd logs: %s/NODE-lispd.log; configurations: %s/NODE.yaml\n", l.Dir(), l.Dir())
	}
	fmt.Fprintf(w, "State: lisplab status %s\nRemove: lisplab down --name %s\n", name, name)
}

// showsFor picks the most telling lispctl show commands for a node's roles.
func showsFor(nc nodeConfig) []string {
	c := nc.cfg
	var shows []string
	if c.MapServer != nil {
		shows = append(shows, "site")
	}
	if c.XTR != nil || c.PITR != nil {
		shows = append(shows, "map-cache")
	}
	if c.XTR != nil && len(c.XTR.Database) > 0 {
		shows = append(shows, "database")
	}
	if len(shows) == 0 {
		shows = []string{"status"}
	}
	return shows
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
