package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lab"
)

const statusLong = `Show every lab that is up (or only lab NAME): its nodes and their roles,
whether each node's namespace exists, and for each node that runs lispd
whether lispd is running and answering on its admin socket, with what lispd
reports (GET /v1/status): its roles and uptime; for a Map-Server the number
of EID prefixes registered, for an xTR or PxTR the number of map-cache
entries and, for an ETR, its registration state with each Map-Server.

--json prints an array with one object per lab: "name", "topology-file",
"up-since", "healthy", "error" (a lab whose state cannot be read) and
"nodes", each with "name", "role", "namespace",
"present", "addresses" and, for LISP nodes, "lispd": "pid", "running",
"answering", "socket", "log", "config", "version", "roles",
"uptime-seconds", "registered-prefixes" (Map-Server), "map-cache-entries"
(xTR, PxTR), "map-servers" ("address", "state") and "error".

Exit status: 0 when every node is there and every lispd answers (or no lab
is up), 1 otherwise or when lab NAME is not up.`

func newStatusCmd(s streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show the labs that are up, their nodes and lispd health",
		Long:  statusLong,
		Example: `  lisplab status
  lisplab status two_sites --json | jq '.[0].nodes[] | {name, lispd}'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return cli.Usagef("status takes at most one lab NAME, got %d arguments", len(args))
			}
			return nil
		},
		PreRunE: needRoot(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			if len(args) == 1 {
				names = args
			} else {
				var err error
				if names, err = lab.List(); err != nil {
					return cli.Failed(err)
				}
			}
			var labs []labStatus
			for _, name := range names {
				ls, err := statusOf(cmd.Context(), name)
				switch {
				case err != nil && len(args) == 1:
					return cli.Failed(err)
				case err != nil:
					// Listed but unreadable: left by a crash, say. Show it
					// rather than hide the labs that are fine.
					ls = labStatus{Name: name, Error: err.Error(), Nodes: []nodeStatus{}}
				}
				labs = append(labs, ls)
			}
			healthy := !slices.ContainsFunc(labs, func(l labStatus) bool { return !l.Healthy })
			if asJSON {
				if labs == nil {
					labs = []labStatus{}
				}
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(labs); err != nil {
					return cli.Failed(err)
				}
			} else {
				printStatus(s.out, labs)
			}
			if !healthy {
				return cli.Exit(cli.ExitFailed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type labStatus struct {
	Name    string       `json:"name"`
	File    string       `json:"topology-file,omitempty"`
	Up      *time.Time   `json:"up-since,omitempty"`
	Healthy bool         `json:"healthy"`
	Error   string       `json:"error,omitempty"`
	Nodes   []nodeStatus `json:"nodes"`
}

type nodeStatus struct {
	Name      string       `json:"name"`
	Role      string       `json:"role"`
	Namespace string       `json:"namespace"`
	Present   bool         `json:"present"`
	Addresses []string     `json:"addresses"`
	Lispd     *lispdStatus `json:"lispd,omitempty"`
	// hostAddr names the node in the table (Topology.HostAddr: not an
	// anycast loopback).
	hostAddr string
}

type lispdStatus struct {
	PID        int        `json:"pid,omitempty"`
	Running    bool       `json:"running"`
	Answering  bool       `json:"answering"`
	Socket     string     `json:"socket"`
	Log        string     `json:"log"`
	Config     string     `json:"config"`
	Version    string     `json:"version,omitempty"`
	Roles      []string   `json:"roles,omitempty"`
	Uptime     float64    `json:"uptime-seconds,omitempty"`
	Prefixes   *int       `json:"registered-prefixes,omitempty"`
	MapCache   *int       `json:"map-cache-entries,omitempty"`
	MapServers []msStatus `json:"map-servers,omitempty"`
	Error      string     `json:"error,omitempty"`
}

type msStatus struct {
	Address string `json:"address"`
	State   string `json:"state"`
}

// statusOf gathers the state of lab name.
func statusOf(ctx context.Context, name string) (labStatus, error) {
	l, err := lab.Attach(name)
	if err != nil {
		return labStatus{}, err
	}
	defer l.Close()
	ls := labStatus{Name: name, Healthy: true}
	if data, err := os.ReadFile(filepath.Join(l.Dir(), runInfoFile)); err == nil {
		var ri runInfo
		if json.Unmarshal(data, &ri) == nil {
			ls.File = ri.File
			if !ri.Up.IsZero() {
				ls.Up = &ri.Up
			}
		}
	}
	nodes, serr := l.Status()
	topo := l.Topology()
	for _, ns := range nodes {
		n := nodeStatus{Name: ns.Name, Role: ns.Role, Namespace: ns.Namespace, Present: ns.Present, Addresses: []string{}}
		for _, a := range topo.Addrs(ns.Name) {
			n.Addresses = append(n.Addresses, a.String())
		}
		if a, ok := topo.HostAddr(ns.Name); ok {
			n.hostAddr = a.String()
		}
		if !ns.Present {
			ls.Healthy = false
		}
		var proc *lab.ProcStatus
		for i := range ns.Procs {
			if ns.Procs[i].Name == "lispd" {
				proc = &ns.Procs[i]
			}
		}
		// A LISP node: one with a lispd section, or where lispd was started.
		if topo.Node(ns.Name).LispdConfig != nil || proc != nil {
			n.Lispd = lispdHealth(ctx, l, ns.Name, proc)
			if !n.Lispd.Running || !n.Lispd.Answering {
				ls.Healthy = false
			}
		}
		ls.Nodes = append(ls.Nodes, n)
	}
	if serr != nil && len(nodes) == 0 {
		return ls, serr
	}
	return ls, nil
}

// lispdHealth asks node's lispd how it is.
func lispdHealth(ctx context.Context, l *lab.Lab, node string, proc *lab.ProcStatus) *lispdStatus {
	st := &lispdStatus{
		Socket: l.SocketPath(node),
		Log:    l.LogPath(node, "lispd"),
		Config: filepath.Join(l.Dir(), node+".yaml"),
	}
	if proc != nil {
		st.PID, st.Running = proc.PID, proc.Running
	}
	if !st.Running {
		st.Error = "lispd is not running (see its log)"
		return st
	}
	// At most three queries of a daemon that answers in milliseconds.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := adminapi.NewClient(st.Socket)
	ds, err := c.Status(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Answering = true
	st.Version, st.Roles, st.Uptime = ds.Version, ds.Roles, ds.Uptime
	if slices.Contains(ds.Roles, "map-server") {
		n := ds.Prefixes
		st.Prefixes = &n
	}
	if slices.Contains(ds.Roles, "xtr") {
		mc, err := c.MapCache(ctx, adminapi.MapCacheQuery{})
		if err != nil {
			st.Error = "map-cache: " + err.Error()
		} else {
			n := len(mc)
			st.MapCache = &n
		}
		db, err := c.Database(ctx)
		if err == nil && len(db.Entries) > 0 {
			for _, m := range db.MapServers {
				st.MapServers = append(st.MapServers, msStatus{Address: m.Address.String(), State: m.State})
			}
		}
	}
	return st
}

func printStatus(w io.Writer, labs []labStatus) {
	if len(labs) == 0 {
		fmt.Fprintln(w, "no lab is up")
		return
	}
	for i, ls := range labs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if ls.Error != "" {
			fmt.Fprintf(w, "lab %s: NOT HEALTHY: %s (lisplab down --name %s removes what is left)\n", ls.Name, ls.Error, ls.Name)
			continue
		}
		health := "healthy"
		if !ls.Healthy {
			health = "NOT HEALTHY"
		}
		fmt.Fprintf(w, "lab %s: %d nodes, %s", ls.Name, len(ls.Nodes), health)
		if ls.Up != nil {
			fmt.Fprintf(w, ", up %s", time.Since(*ls.Up).Round(time.Second))
		}
		if ls.File != "" {
			fmt.Fprintf(w, " (%s)", ls.File)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tROLE\tADDRESS\tLISPD\tROLES\tUPTIME\tSTATE")
		for _, n := range ls.Nodes {
			addr := dash(n.hostAddr)
			if !n.Present {
				fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\tnamespace %s missing\n", n.Name, dash(n.Role), addr, n.Namespace)
				continue
			}
			if n.Lispd == nil {
				fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\n", n.Name, dash(n.Role), addr)
				continue
			}
			d := n.Lispd
			run := "not running"
			switch {
			case d.Running && d.Answering:
				run = fmt.Sprintf("up (pid %d)", d.PID)
			case d.Running:
				run = fmt.Sprintf("not answering (pid %d)", d.PID)
			}
			roles, uptime := "-", "-"
			if len(d.Roles) > 0 {
				roles = strings.Join(d.Roles, ",")
			}
			if d.Answering {
				uptime = (time.Duration(d.Uptime) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(n.Role), addr, run, roles, uptime, lispdState(d))
		}
		tw.Flush()
	}
}

// lispdState sums up what lispd reports: registrations, map-cache size.
func lispdState(d *lispdStatus) string {
	var parts []string
	if d.Prefixes != nil {
		parts = append(parts, fmt.Sprintf("%d EID prefixes registered", *d.Prefixes))
	}
	if d.MapCache != nil {
		parts = append(parts, fmt.Sprintf("map-cache: %d", *d.MapCache))
	}
	for _, m := range d.MapServers {
		parts = append(parts, fmt.Sprintf("%s with %s", m.State, m.Address))
	}
	if d.Error != "" && (d.Running || len(parts) == 0) {
		parts = append(parts, d.Error)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}
