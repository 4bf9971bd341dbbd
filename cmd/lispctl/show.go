package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/cli"
)

// api calls f on the admin API of the daemon at --socket. A failure to
// get an answer is exit 1; an *cli.Error of f's own passes as it is.
func api[T any](cmd *cobra.Command, f func(*adminapi.Client, context.Context) (T, error)) (T, error) {
	sock, _ := cmd.Flags().GetString("socket")
	v, err := adminapi.Query(cmd.Context(), sock, 10*time.Second, f)
	var ee *cli.Error
	if err != nil && !errors.As(err, &ee) {
		err = &cli.Error{Code: cli.ExitFailed, Err: err}
	}
	return v, err
}

// fetch gets the view of a `show` command, given its arguments.
type fetch[T any] func(c *adminapi.Client, ctx context.Context, cmd *cobra.Command, args []string) (T, error)

// whole is the fetch of a view that takes no argument.
func whole[T any](f func(*adminapi.Client, context.Context) (T, error)) fetch[T] {
	return func(c *adminapi.Client, ctx context.Context, _ *cobra.Command, _ []string) (T, error) {
		return f(c, ctx)
	}
}

// showCmd builds one `show` subcommand: fetch its view, print it as JSON
// with --json, else with text.
func showCmd[T any](s streams, use, short string, args cobra.PositionalArgs, get fetch[T], text func(io.Writer, T)) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := api(cmd, func(c *adminapi.Client, ctx context.Context) (T, error) { return get(c, ctx, cmd, args) })
			if err != nil {
				return err
			}
			// Read from the command run, which may be another that
			// borrows this RunE (show site --moves).
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			text(s.out, v)
			return nil
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	return c
}

// mapCacheQuery reads `[EID-or-PREFIX] [--instance-id N]`: a bad EID is a
// usage error; --instance-id scopes the EID, or alone selects one
// instance ID.
func mapCacheQuery(cmd *cobra.Command, args []string) (adminapi.MapCacheQuery, error) {
	var q adminapi.MapCacheQuery
	if len(args) == 1 {
		p, err := adminapi.ParseEIDOrPrefix(args[0])
		if err != nil {
			return q, cli.Usagef("%v", err)
		}
		q.EID = p
	}
	if f := cmd.Flags().Lookup("instance-id"); f != nil && f.Changed {
		iid, err := cmd.Flags().GetUint32("instance-id")
		if err != nil {
			return q, cli.Usagef("%v", err)
		}
		q.InstanceID = &iid
	}
	return q, nil
}

func newShowCmd(s streams) *cobra.Command {
	show := &cobra.Command{Use: "show", Short: "show the state of a running lispd"}
	site := func(c *adminapi.Client, ctx context.Context, _ *cobra.Command, args []string) ([]adminapi.Site, error) {
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		return c.Sites(ctx, name)
	}
	mapCache := func(c *adminapi.Client, ctx context.Context, cmd *cobra.Command, args []string) ([]adminapi.MapCacheEntry, error) {
		q, err := mapCacheQuery(cmd, args)
		if err != nil {
			return nil, err
		}
		return c.MapCache(ctx, q)
	}
	siteMoves := func(c *adminapi.Client, ctx context.Context, _ *cobra.Command, args []string) ([]adminapi.SiteMove, error) {
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		return c.SiteMoves(ctx, name)
	}
	show.AddCommand(
		withMoves(showCmd(s, "site [NAME]", "Map-Server: sites, registered EID prefixes, who registered them", cobra.MaximumNArgs(1), site, printSites),
			showCmd(s, "site", "", cobra.MaximumNArgs(1), siteMoves, printMoves)),
		showCmd(s, "cluster", "Map-Server: the cluster sharing its registrations (etcd): nodes, leases, revision, lag", noArgs,
			whole((*adminapi.Client).Cluster), printCluster),
		showCmd(s, "subscriptions", "Map-Server: publish/subscribe subscribers per EID prefix", noArgs,
			whole((*adminapi.Client).Subscriptions), printSubscriptions),
		showCmd(s, "statistics", "counters: control messages by type, drops by reason, per-role counters", noArgs,
			whole((*adminapi.Client).Statistics), printStatistics),
		showCmd(s, "status", "version, roles, addresses, uptime", noArgs, whole((*adminapi.Client).Status), printStatus),
		showCmd(s, "database", "ETR: local EID prefixes, locators, registration state per Map-Server", noArgs,
			whole((*adminapi.Client).Database), printDatabase),
		showCmd(s, "rtr", "RTR: the xTRs behind NAT it serves: private and translated RLOC, EID prefixes, state", noArgs, whole((*adminapi.Client).RTR), printRTR),
		showCmd(s, "nat", "xTR: NAT discovery per Map-Server and local RLOC: translated RLOC and port, RTRs", noArgs, whole((*adminapi.Client).NAT), printNAT),
		showCmd(s, "rloc-probing", "xTR: probed remote RLOCs, state, RTT", noArgs, whole((*adminapi.Client).RLOCProbing), printRLOCProbing),
		showCmd(s, "dataplane", "xTR: data path in use (kernel eBPF or userspace), programs attached, their counts", noArgs,
			whole((*adminapi.Client).DataPlane), printDataPlane),
	)
	dyn := showCmd(s, "dynamic-eid", "xTR: dynamic-EID ranges, hosts detected here, hosts that moved away", noArgs,
		func(c *adminapi.Client, ctx context.Context, cmd *cobra.Command, _ []string) ([]adminapi.DynamicEIDRange, error) {
			var q adminapi.DynamicEIDQuery
			q.Family, _ = cmd.Flags().GetString("family")
			if f := cmd.Flags().Lookup("instance-id"); f != nil && f.Changed {
				iid, err := cmd.Flags().GetUint32("instance-id")
				if err != nil {
					return nil, cli.Usagef("%v", err)
				}
				q.InstanceID = &iid
			}
			if q.Family != "" && q.Family != adminapi.FamilyIPv4 && q.Family != adminapi.FamilyIPv6 {
				return nil, cli.Usagef("--family %q: want %s or %s", q.Family, adminapi.FamilyIPv4, adminapi.FamilyIPv6)
			}
			return c.DynamicEIDsMatching(ctx, q)
		}, printDynamicEIDs)
	dyn.Flags().String("family", "", "show only the ranges of this address family: ipv4 or ipv6")
	dyn.Flags().Uint32("instance-id", 0, "show only the ranges of this instance ID")
	show.AddCommand(dyn)
	mc := showCmd(s, "map-cache [EID-or-PREFIX]", "ITR: map-cache entries, locators and their state, TTLs", cobra.MaximumNArgs(1),
		mapCache, printMapCache)
	mc.Flags().Uint32("instance-id", 0, "instance ID of the EID (without an EID: show only this instance ID)")
	show.AddCommand(mc)
	return show
}

func newClearCmd(s streams) *cobra.Command {
	clr := &cobra.Command{Use: "clear", Short: "clear state of a running lispd"}
	mc := &cobra.Command{
		Use:   "map-cache [PREFIX]",
		Short: "flush the map-cache, or the entries inside PREFIX",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := mapCacheQuery(cmd, args)
			if err != nil {
				return err
			}
			n, err := api(cmd, func(c *adminapi.Client, ctx context.Context) (int, error) { return c.ClearMapCache(ctx, q) })
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "cleared %d map-cache entries\n", n)
			return nil
		},
	}
	mc.Flags().Uint32("instance-id", 0, "instance ID of the prefix (without a prefix: clear only this instance ID)")
	clr.AddCommand(mc)
	return clr
}

func printMapCache(w io.Writer, es []adminapi.MapCacheEntry) {
	fmt.Fprintf(w, "LISP IPv4/IPv6 Mapping Cache, %d entries\n\n", len(es))
	for _, e := range es {
		left := time.Duration(e.ExpiresIn * float64(time.Second)).Round(time.Second)
		up := time.Duration(e.Uptime * float64(time.Second)).Round(time.Second)
		extra := ""
		if e.Subscribed {
			extra = ", subscribed"
		}
		fmt.Fprintf(w, "[%d] %s, uptime: %s, expires: %s, via %s%s\n", e.InstanceID, e.EIDPrefix, up, left, e.Source, extra)
		if e.Negative {
			fmt.Fprintf(w, "  Negative cache entry, action: %s\n", e.Action)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Locator\tUptime\tState\tPri/Wgt\tRTT")
		for _, l := range e.Locators {
			rtt := "-"
			if l.RTTms != nil {
				rtt = fmt.Sprintf("%.2f ms", *l.RTTms)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d/%d\t%s\n", l.Address, up, l.State, l.Priority, l.Weight, rtt)
		}
		tw.Flush()
	}
}

func printDatabase(w io.Writer, d adminapi.Database) {
	fmt.Fprintf(w, "LISP ETR database, xTR-ID %s, site-ID %d, %d entries\n\n", d.XTRID, d.SiteID, len(d.Entries))
	for _, e := range d.Entries {
		fmt.Fprintf(w, "[%d] %s\n", e.InstanceID, e.EIDPrefix)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Locator\tPri/Wgt\tMPri/MWgt\tSource")
		for _, l := range e.Locators {
			fmt.Fprintf(tw, "  %s\t%d/%d\t%d/%d\tcfg-addr\n", l.Address, l.Priority, l.Weight, l.MPriority, l.MWeight)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Map-Server\tKey\tState\tLast Map-Register\tLast Map-Notify\tRegisters/Notifies")
	for _, m := range d.MapServers {
		lr, ln := "never", "never"
		if m.LastRegister != nil {
			lr = ago(*m.LastRegister) + " ago"
		}
		if m.LastNotify != nil {
			ln = ago(*m.LastNotify) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d/%s\t%s\t%s\t%s\t%d/%d\n", m.Address, m.KeyID, m.Algorithm, m.State, lr, ln, m.Registers, m.Notifies)
	}
	tw.Flush()
}

func printRTR(w io.Writer, xs []adminapi.NATedXTR) {
	if len(xs) == 0 {
		fmt.Fprintln(w, "no xTRs behind NAT")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "xTR-ID\tPrivate RLOC\tTranslated RLOC\tEID Prefixes\tState\tLast Register\tRegisters/Notifies\tPackets To/From")
	for _, x := range xs {
		eids := make([]string, len(x.EIDs))
		for i, e := range x.EIDs {
			eids[i] = fmt.Sprintf("[%d] %s", e.InstanceID, e.EIDPrefix)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\t%d/%d\t%d/%d\n", x.XTRID, x.Private, x.Translated, strings.Join(eids, ","), x.State,
			ago(x.LastRegister), x.Registers, x.Notifies, x.PacketsToXTR, x.PacketsFromXTR)
	}
	tw.Flush()
}

func printNAT(w io.Writer, ns []adminapi.NATDiscovery) {
	if len(ns) == 0 {
		fmt.Fprintln(w, "no NAT discovery (xtr.nat-traversal off, or no Map-Server of a local RLOC's family)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Map-Server\tLocal RLOC\tState\tTranslated\tRTRs\tLast Reply\tRequests/Replies")
	for _, n := range ns {
		tr, lr, rtrs := "-", "never", "-"
		if n.Translated != nil {
			tr = n.Translated.String()
		}
		if n.LastReply != nil {
			lr = ago(*n.LastReply) + " ago"
		}
		if len(n.RTRs) > 0 {
			rtrs = join(n.RTRs, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", n.MapServer, n.LocalRLOC, n.State, tr, rtrs, lr, n.Requests, n.Replies)
	}
	tw.Flush()
}

func printRLOCProbing(w io.Writer, rs []adminapi.ProbedRLOC) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no RLOCs probed")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RLOC\tState\tRTT\tLast Probe\tLast Reply\tProbes/Replies\tMissed")
	for _, r := range rs {
		lp, lr := "never", "never"
		if r.LastProbe != nil {
			lp = ago(*r.LastProbe) + " ago"
		}
		if r.LastReply != nil {
			lr = ago(*r.LastReply) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f ms\t%s\t%s\t%d/%d\t%d\n", r.Address, r.State, r.RTTms, lp, lr, r.Probes, r.Replies, r.Missed)
	}
	tw.Flush()
}

func printDynamicEIDs(w io.Writer, rs []adminapi.DynamicEIDRange) {
	for i, r := range rs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		group := ""
		if r.NotifyGroup.IsValid() {
			group = ", notify-group " + r.NotifyGroup.String()
		}
		fmt.Fprintf(w, "Dynamic-EID %s: [%d] %s on %s, %s%s, timeout %s, %d hosts\n", r.Name, r.InstanceID, r.EIDPrefix,
			r.Interface, r.Mode, group, time.Duration(r.TimeoutSec*float64(time.Second)), len(r.Hosts))
		if len(r.Hosts) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  EID\tState\tDetected by\tSince\tLast seen\tMoves\tMoved to")
		for _, h := range r.Hosts {
			seen, to := "-", "-"
			if h.State == adminapi.HostLocal {
				seen = secs(h.LastSeenSec) + " ago"
			}
			if len(h.MovedTo) > 0 {
				to = join(h.MovedTo, ", ")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s ago\t%s\t%d\t%s\n", h.EID, h.State, h.DetectedBy, secs(h.SinceSec), seen, h.Moves, to)
		}
		tw.Flush()
	}
	if len(rs) == 0 {
		fmt.Fprintln(w, "no dynamic-EID ranges")
	}
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}

func newReloadCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "make lispd re-read its configuration file (like SIGHUP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := api(cmd, (*adminapi.Client).Reload)
			if err != nil {
				return err
			}
			printReload(s.out, res)
			return nil
		},
	}
}

// printReload says what a reload applied, section by section. (A refused
// reload is an error: it applied nothing.)
func printReload(w io.Writer, r adminapi.ReloadResult) {
	if len(r.Applied) == 0 {
		fmt.Fprintln(w, "configuration reloaded: nothing changed")
		return
	}
	fmt.Fprintln(w, "configuration reloaded; applied:")
	for _, sec := range slices.Sorted(maps.Keys(r.Applied)) {
		fmt.Fprintf(w, "  %s: %s\n", sec, strings.Join(r.Applied[sec], ", "))
	}
	for _, s := range []struct {
		what  string
		names []string
	}{{"added", r.SitesAdded}, {"removed", r.SitesRemoved}, {"changed", r.SitesChanged}} {
		if len(s.names) > 0 {
			fmt.Fprintf(w, "  sites %s: %s\n", s.what, strings.Join(s.names, ", "))
		}
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

// withMoves gives `show site` its --moves flag: the Map-Server's move log
// (moves's RunE) instead of the sites.
func withMoves(site, moves *cobra.Command) *cobra.Command {
	var on bool
	site.Flags().BoolVar(&on, "moves", false, "the move log instead: registrations another site took over (a host that moved), oldest first; with NAME, moves from or to that site")
	plain := site.RunE
	site.RunE = func(cmd *cobra.Command, args []string) error {
		if on {
			return moves.RunE(cmd, args)
		}
		return plain(cmd, args)
	}
	return site
}

// printMoves prints the move log, a line per move.
func printMoves(w io.Writer, moves []adminapi.SiteMove) {
	fmt.Fprintf(w, "LISP Map-Server move log, %d moves\n\n", len(moves))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Time\tEID prefix\tFrom site\tTo site\tFrom\tBy")
	for _, m := range moves {
		eid := m.EIDPrefix.String()
		if m.InstanceID != 0 {
			eid = fmt.Sprintf("[%d]%s", m.InstanceID, eid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Time.UTC().Format("15:04:05.000"), eid, m.FromSite, m.ToSite, m.From, m.By)
	}
	tw.Flush()
}

func printSites(w io.Writer, sites []adminapi.Site) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Site\tLast Register\tUp\tWho Last Registered\tInst ID\tEID Prefix")
	for _, s := range sites {
		if len(s.Registrations) == 0 {
			last := "never"
			if s.LastRegister != nil {
				last = ago(*s.LastRegister)
			}
			for _, p := range s.EIDPrefixes {
				fmt.Fprintf(tw, "%s\t%s\tno\t--\t\t%s\n", s.Name, last, p)
			}
			continue
		}
		for _, r := range s.Registrations {
			who, last := "--", time.Time{}
			for _, b := range r.RegisteredBy {
				if b.LastRegister.After(last) {
					last, who = b.LastRegister, b.Source.String()
				}
			}
			fmt.Fprintf(tw, "%s\t%s\tyes\t%s\t%d\t%s\n", s.Name, ago(last), who, r.InstanceID, r.EIDPrefix)
		}
	}
	tw.Flush()
	for _, s := range sites {
		fmt.Fprintf(w, "\nSite %q: %d registers accepted, %d authentication failures\n", s.Name, s.Registers, s.AuthFailures)
		for _, p := range s.EIDPrefixes {
			fmt.Fprintf(w, "  configured EID prefix %s\n", p)
		}
		for _, r := range s.Registrations {
			moved := ""
			if r.Moves > 0 && r.LastMove != nil {
				moved = fmt.Sprintf(", moved here %s ago (%d moves)", ago(*r.LastMove), r.Moves)
			}
			fmt.Fprintf(w, "  EID-prefix [%d] %s%s\n", r.InstanceID, r.EIDPrefix, moved)
			for _, b := range r.RegisteredBy {
				var flags []string
				if b.ProxyReply {
					flags = append(flags, "proxy-reply")
				}
				if b.WantNotify {
					flags = append(flags, "want-map-notify")
				}
				if b.Merge {
					flags = append(flags, "merge")
				}
				id := ""
				if b.XTRID != "" {
					id = fmt.Sprintf(" xtr-id %s site-id %d", b.XTRID, b.SiteID)
				}
				if b.Node != "" {
					// A cluster node's own registration expires here;
					// another node's lasts until that node drops it.
					held := fmt.Sprintf("held by node %s", b.Node)
					if b.ExpiresIn > 0 {
						held += fmt.Sprintf(", expires in %.0fs", b.ExpiresIn)
					}
					fmt.Fprintf(w, "    registered by %s%s, last %s ago, %s, ttl %d min, flags [%s]\n",
						b.Source, id, ago(b.LastRegister), held, b.TTL, strings.Join(flags, " "))
					continue
				}
				fmt.Fprintf(w, "    registered by %s%s, last %s ago, expires in %.0fs, ttl %d min, flags [%s]\n",
					b.Source, id, ago(b.LastRegister), b.ExpiresIn, b.TTL, strings.Join(flags, " "))
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "      Locator\tPri/Wgt\tMPri/MWgt\tState")
			for _, l := range r.Locators {
				fmt.Fprintf(tw, "      %s\t%d/%d\t%d/%d\t%s\n", l.Address, l.Priority, l.Weight, l.MPriority, l.MWeight, l.State)
			}
			tw.Flush()
		}
	}
}

func printCluster(w io.Writer, c adminapi.Cluster) {
	state := "connected"
	if !c.Connected {
		state = "UNREACHABLE: answering from the last table"
		if c.UnreachableSince != nil {
			state += fmt.Sprintf(" (since %s ago)", ago(*c.UnreachableSince))
		}
	}
	lease := c.Lease
	if lease == "" {
		lease = "none"
	}
	fmt.Fprintf(w, "Node %s, store %s %s prefix %s: %s\n", c.Node, c.Store, strings.Join(c.Endpoints, ","), c.Prefix, state)
	fmt.Fprintf(w, "Lease %s (ttl %.0fs), revision %d of %d, lag %.1fs, %d writes pending\n\n",
		lease, c.LeaseTTL, c.Revision, c.Head, c.LagSeconds, c.PendingWrite)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tAlive\tLease\tUp\tPrefixes")
	for _, n := range c.Nodes {
		name, up, alive := n.Name, "--", "no"
		if n.Self {
			name += " (this node)"
		}
		if n.Started != nil {
			up = ago(*n.Started)
		}
		if n.Alive {
			alive = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", name, alive, cmp.Or(n.Lease, "--"), up, n.Prefixes)
	}
	tw.Flush()
}

func printSubscriptions(w io.Writer, subs []adminapi.Subscription) {
	if len(subs) == 0 {
		fmt.Fprintln(w, "no subscriptions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Inst ID\tEID Prefix\tSite\txTR-ID\tSite-ID\tITR-RLOCs\tNonce")
	for _, s := range subs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", s.InstanceID, s.EIDPrefix, s.Site, s.XTRID, s.SiteID,
			join(s.ITRRLOCs, ","), s.Nonce)
	}
	tw.Flush()
}

func printStatistics(w io.Writer, cs []adminapi.Counter) {
	bySub := map[string][]adminapi.Counter{}
	var subs []string
	for _, c := range cs {
		if _, ok := bySub[c.Subsystem]; !ok {
			subs = append(subs, c.Subsystem)
		}
		bySub[c.Subsystem] = append(bySub[c.Subsystem], c)
	}
	sort.Strings(subs)
	for i, sub := range subs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s:\n", strings.ReplaceAll(sub, "_", "-"))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, c := range bySub[sub] {
			name := strings.ReplaceAll(c.Name, "_", " ")
			var ls []string
			for k, v := range c.Labels {
				ls = append(ls, k+"="+v)
			}
			sort.Strings(ls)
			if len(ls) > 0 {
				name += " (" + strings.Join(ls, ",") + ")"
			}
			fmt.Fprintf(tw, "  %s\t%d\t\n", name, c.Value)
		}
		tw.Flush()
	}
}

func printStatus(w io.Writer, s adminapi.Status) {
	fmt.Fprintf(w, "lispd %s, up %s\n", s.Version, time.Duration(s.Uptime*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(w, "roles:    %s\n", strings.Join(s.Roles, ", "))
	fmt.Fprintf(w, "control:  %s\n", join(s.Control, " "))
	if s.Metrics != "" {
		fmt.Fprintf(w, "metrics:  http://%s/metrics\n", s.Metrics)
	}
	if s.Config != "" {
		fmt.Fprintf(w, "config:   %s\n", s.Config)
	}
	if s.Sites > 0 {
		fmt.Fprintf(w, "sites:    %d, registered EID prefixes: %d\n", s.Sites, s.Prefixes)
	}
}

// join prints addresses as strings.Join prints strings.
func join[T fmt.Stringer](as []T, sep string) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return strings.Join(ss, sep)
}

func printDataPlane(w io.Writer, d adminapi.DataPlane) {
	fmt.Fprintf(w, "Data path: %s (xtr.data-plane: %s)\n", d.Path, d.Mode)
	if d.KernelReason != "" {
		fmt.Fprintf(w, "Kernel path not used: %s\n", d.KernelReason)
	}
	if len(d.Programs) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "Interface\tHook\tProgram\tProgram ID\tLink ID")
		for _, p := range d.Programs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", p.Interface, p.Hook, p.Program, p.ProgramID, p.LinkID)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Counter\tKernel\tUserspace")
	u := d.Userspace
	k := d.Kernel
	if k == nil {
		k = &adminapi.DataPlaneKernelCount{}
	}
	fmt.Fprintf(tw, "encapsulated packets\t%d\t%d\n", k.EncapsulatedPackets, u.EncapsulatedPackets)
	if d.Kernel != nil {
		fmt.Fprintf(tw, "  of which in place\t%d\t-\n", k.EncapsulatedInPlace)
	}
	fmt.Fprintf(tw, "decapsulated packets\t%d\t%d\n", k.DecapsulatedPackets, u.DecapsulatedPackets)
	fmt.Fprintf(tw, "map-cache entries\t%d\t%d\n", k.MapCacheEntries, u.MapCacheEntries)
	fmt.Fprintf(tw, "misses (userspace)\t\t%d\n", u.CacheMisses)
	fmt.Fprintf(tw, "miss queued/released\t\t%d/%d\n", u.MissQueued, u.MissReleased)
	if d.Kernel != nil {
		fmt.Fprintf(tw, "PETR encapsulated\t%d\n", k.PETREncapsulated)
		fmt.Fprintf(tw, "PETR decapsulated\t%d\n", k.PETRDecapsulated)
	}
	tw.Flush()
	if d.Kernel == nil {
		return
	}
	if k.MapUpdates > 0 {
		fmt.Fprintf(w, "\nMap-cache updates written to the kernel: %d; delay from the Map-Reply: median %.3f ms, p99 %.3f ms, max %.3f ms (latest 1024)\n",
			k.MapUpdates, k.MapUpdateP50Seconds*1e3, k.MapUpdateP99Seconds*1e3, k.MapUpdateMaxSeconds*1e3)
	}
	printReasons(w, "Handed to userspace", k.Punted)
	printReasons(w, "Dropped in the kernel", k.Dropped)
}

// printReasons prints the non-zero counts of a by-reason map, sorted.
func printReasons(w io.Writer, title string, m map[string]uint64) {
	var names []string
	for n, v := range m {
		if v > 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %d\n", n, m[n])
	}
}
