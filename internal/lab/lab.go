package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultStopTimeout is how long Stop and Down wait after SIGTERM before
// sending SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// Lab is a running topology. Its methods may be called from several
// goroutines at once, except Down, after which the Lab is done with.
type Lab struct {
	// StopTimeout is how long a process gets between SIGTERM and SIGKILL.
	StopTimeout time.Duration

	topo *Topology // validated, interface names filled in
	dir  string

	mu       sync.Mutex
	nodes    map[string]*nodeRT
	linkDown []bool
	procs    []*Proc
	down     bool
}

// nodeRT is a node's runtime state: handles to its namespace, opened on
// first use.
type nodeRT struct {
	node *Node
	ns   string
	h    netns.NsHandle
	nl   *netlink.Handle
	// ifaces: interface name -> prefixes on it ("lo" included).
	ifaces map[string][]netip.Prefix
}

// state is what /run/lisplab/<name>/state.json records, so that another
// process (lisplab status/exec/down, or a later test run) can find the lab.
type state struct {
	Topology *Topology
	Owner    owner
	Test     bool // made by NewTest: removable once its owner is gone
}

type owner struct {
	PID   int
	Start uint64 // process start time, against pid reuse
}

const stateFile = "state.json"

// Name is the topology name.
func (l *Lab) Name() string { return l.topo.Name }

// Topology returns a copy of the lab's topology, with every interface name
// filled in.
func (l *Lab) Topology() *Topology { return l.topo.clone() }

// Dir is the lab's run directory, /run/lisplab/<name>.
func (l *Lab) Dir() string { return l.dir }

// Namespace is the network namespace of node: "<name>-<node>".
func (l *Lab) Namespace(node string) string { return Namespace(l.topo.Name, node) }

// SocketPath is where node's admin socket belongs:
// /run/lisplab/<name>/<node>.sock.
func (l *Lab) SocketPath(node string) string { return filepath.Join(l.dir, node+".sock") }

// LogPath is the log file of the process name started on node.
func (l *Lab) LogPath(node, name string) string {
	return filepath.Join(l.dir, node+"-"+name+".log")
}

// PIDPath is the pid file of the process name started on node.
func (l *Lab) PIDPath(node, name string) string {
	return filepath.Join(l.dir, node+"-"+name+".pid")
}

func labDir(name string) string { return filepath.Join(RunRoot, name) }

// Up creates the topology: one namespace per node, veth links (with their
// MACs), sysctls, addresses, VXLANs and bridges, and routes, and records it in /run/lisplab/<name>/state.json.
// If the lab's run directory or one of its namespaces already exists
// (a lab of that name is up, or was left by a crash) it fails without
// touching them. On any other error it removes what it created.
func Up(ctx context.Context, t *Topology) (*Lab, error) {
	return up(ctx, t, false)
}

func up(ctx context.Context, t *Topology, test bool) (l *Lab, err error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	topo := t.withDefaults()
	dir := labDir(topo.Name)
	if err := os.MkdirAll(RunRoot, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lab %s: %s exists: the lab is up, or was left by a crash (take it down with DownByName / lisplab down)", topo.Name, dir)
		}
		return nil, err
	}
	for _, n := range topo.Nodes {
		ns := Namespace(topo.Name, n.Name)
		if _, err := os.Lstat(filepath.Join(NetnsDir, ns)); err == nil {
			os.Remove(dir)
			return nil, fmt.Errorf("lab %s: namespace %s already exists (left by a crash? take the lab down with DownByName / lisplab down)", topo.Name, ns)
		}
	}
	l = newLab(topo)
	defer func() {
		if err != nil {
			err = fmt.Errorf("lab %s: %w", topo.Name, err)
			if derr := l.Down(); derr != nil {
				err = fmt.Errorf("%w (and tearing down: %v)", err, derr)
			}
			l = nil
		}
	}()
	self := os.Getpid()
	st := state{Topology: topo, Owner: owner{PID: self, Start: startTime(self)}, Test: test}
	if err := writeState(dir, &st); err != nil {
		return l, err
	}
	if err := ensureNetnsDir(); err != nil {
		return l, err
	}
	steps := []func(context.Context) error{l.createNodes, l.createLinks, l.applySysctls, l.addAddrs, l.createLayer2, l.applyRoutes, l.applyNAT}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return l, err
		}
		if err := step(ctx); err != nil {
			return l, err
		}
	}
	return l, nil
}

func newLab(topo *Topology) *Lab {
	l := &Lab{
		StopTimeout: DefaultStopTimeout,
		topo:        topo,
		dir:         labDir(topo.Name),
		nodes:       map[string]*nodeRT{},
		linkDown:    make([]bool, len(topo.Links)),
	}
	for i := range topo.Nodes {
		n := &topo.Nodes[i]
		l.nodes[n.Name] = &nodeRT{
			node:   n,
			ns:     Namespace(topo.Name, n.Name),
			h:      netns.None(),
			ifaces: map[string][]netip.Prefix{"lo": n.Loopbacks},
		}
	}
	for i, lk := range topo.Links {
		l.linkDown[i] = lk.Down
		l.nodes[lk.A].ifaces[lk.AName] = lk.AAddrs
		l.nodes[lk.B].ifaces[lk.BName] = lk.BAddrs
	}
	return l
}

func writeState(dir string, st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

func readState(name string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(labDir(name), stateFile))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(labDir(name), stateFile), err)
	}
	if st.Topology == nil || st.Topology.Name != name {
		return nil, fmt.Errorf("%s: not the state of lab %s", filepath.Join(labDir(name), stateFile), name)
	}
	return &st, nil
}

// Attach returns the lab called name that an earlier Up (in this process
// or another) created, as recorded in /run/lisplab/<name>/state.json. The
// returned Lab can Exec, Do, SetLink, WriteHosts, Status, Start and Down;
// processes that another process started are reached through their pid
// files (Status, Down), not as *Proc.
func Attach(name string) (*Lab, error) {
	if !labNameRE.MatchString(name) {
		return nil, fmt.Errorf("lab %q: not a valid lab name", name)
	}
	st, err := readState(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("lab %s is not up", name)
		}
		return nil, err
	}
	if err := st.Topology.Validate(); err != nil {
		return nil, fmt.Errorf("lab %s: recorded topology: %w", name, err)
	}
	l := newLab(st.Topology.withDefaults())
	for i, lk := range l.topo.Links {
		if n, err := l.node(lk.A); err == nil {
			if link, err := n.nl.LinkByName(lk.AName); err == nil {
				l.linkDown[i] = link.Attrs().Flags&net.FlagUp == 0
			}
		}
	}
	return l, nil
}

// Close releases the namespace and netlink handles the Lab holds and
// leaves the lab up: what a program that used Attach does when it is done.
// (An open handle keeps a namespace alive in the kernel even after Down
// removes it from /run/netns.) Handles are opened again if the Lab is
// used after Close.
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nodes {
		n.close()
	}
}

// List returns the names of the labs recorded under /run/lisplab.
func List() ([]string, error) {
	return dirNames(RunRoot, func(e fs.DirEntry) bool { return e.IsDir() && labNameRE.MatchString(e.Name()) })
}

// dirNames returns the names of dir's entries that keep accepts; a missing
// dir holds none.
func dirNames(dir string, keep func(fs.DirEntry) bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// node returns node's runtime state with its namespace handles open.
func (l *Lab) node(name string) (*nodeRT, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil, fmt.Errorf("lab %s is down", l.topo.Name)
	}
	n, ok := l.nodes[name]
	if !ok {
		return nil, fmt.Errorf("lab %s has no node %q", l.topo.Name, name)
	}
	if err := n.open(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *nodeRT) open() error {
	if n.nl != nil {
		return nil
	}
	if !n.h.IsOpen() {
		h, err := netns.GetFromName(n.ns)
		if err != nil {
			return fmt.Errorf("node %s: namespace %s: %w", n.node.Name, n.ns, err)
		}
		n.h = h
	}
	nl, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("node %s: netlink: %w", n.node.Name, err)
	}
	n.nl = nl
	return nil
}

func (n *nodeRT) close() {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.h.IsOpen() {
		n.h.Close()
		n.h = netns.None()
	}
}

func (l *Lab) createNodes(ctx context.Context) error {
	for _, nd := range l.topo.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := l.nodes[nd.Name]
		h, err := createNetns(n.ns)
		if err != nil {
			return err
		}
		n.h = h
		if err := n.open(); err != nil {
			return err
		}
		lo, err := n.nl.LinkByName("lo")
		if err == nil {
			err = n.nl.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("node %s: lo up: %w", nd.Name, err)
		}
		// No duplicate address detection on any interface, link-local
		// addresses included, so IPv6 works the moment a link is up. The
		// node's own sysctls come later and may turn it back on.
		err = onThreadIn(n.h, func() error {
			for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
				if err := writeSysctl(k, "0"); err != nil && !errors.Is(err, errNoSysctl) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", nd.Name, err)
		}
	}
	return nil
}

// linkAlias labels both ends of a lab veth (ip link shows it), so a link
// can be traced to its lab wherever it ends up.
func linkAlias(lab string, i int, lk Link) string {
	return fmt.Sprintf("lisplab:%s:%d %s:%s-%s:%s", lab, i, lk.A, lk.AName, lk.B, lk.BName)
}

// createLinks creates each veth pair with both ends directly inside their
// namespaces, in one netlink request made from A's namespace with the peer
// placed in B's. No end ever exists in the host namespace, so interface
// names need no host-unique mangling, and a crash can leave no veth behind
// there: deleting a namespace deletes its ends and their peers.
func (l *Lab) createLinks(ctx context.Context) error {
	for i, lk := range l.topo.Links {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, b := l.nodes[lk.A], l.nodes[lk.B]
		attrs := netlink.NewLinkAttrs()
		attrs.Name = lk.AName
		attrs.MTU = lk.MTU
		veth := netlink.NewVeth(attrs)
		veth.PeerName = lk.BName
		veth.PeerNamespace = netlink.NsFd(b.h)
		if err := a.nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("link %d (%s:%s-%s:%s): %w", i+1, lk.A, lk.AName, lk.B, lk.BName, err)
		}
		alias := linkAlias(l.topo.Name, i, lk)
		for _, end := range []struct {
			n      *nodeRT
			ifname string
			mac    net.HardwareAddr
		}{{a, lk.AName, lk.AMAC}, {b, lk.BName, lk.BMAC}} {
			if end.mac != nil {
				if err := setMAC(end.n, end.ifname, end.mac); err != nil {
					return fmt.Errorf("link %d: %w", i+1, err)
				}
			}
			link, err := end.n.nl.LinkByName(end.ifname)
			if err == nil {
				err = end.n.nl.LinkSetAlias(link, alias)
			}
			if err != nil {
				return fmt.Errorf("link %d: %s:%s: %w", i+1, end.n.node.Name, end.ifname, err)
			}
		}
	}
	return nil
}

func (l *Lab) applySysctls(ctx context.Context) error {
	for _, nd := range l.topo.Nodes {
		if len(nd.Sysctls) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := l.Do(nd.Name, func() error {
			for _, k := range slices.Sorted(maps.Keys(nd.Sysctls)) {
				if err := writeSysctl(k, nd.Sysctls[k]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", nd.Name, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// setAddrs puts prefixes on ifname of n (replacing equal ones, so it can
// run again after a link flap). IPv6 addresses skip duplicate address
// detection so they are usable at once.
func setAddrs(n *nodeRT, ifname string, prefixes []netip.Prefix) error {
	if len(prefixes) == 0 {
		return nil
	}
	link, err := n.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("node %s: %s: %w", n.node.Name, ifname, err)
	}
	for _, p := range prefixes {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := n.nl.AddrReplace(link, a); err != nil {
			return fmt.Errorf("node %s: %s: address %s: %w", n.node.Name, ifname, p, err)
		}
	}
	return nil
}

func setLinkUp(n *nodeRT, ifname string, up bool) error {
	link, err := n.nl.LinkByName(ifname)
	if err == nil {
		if up {
			err = n.nl.LinkSetUp(link)
		} else {
			err = n.nl.LinkSetDown(link)
		}
	}
	if err != nil {
		return fmt.Errorf("node %s: %s: set up=%v: %w", n.node.Name, ifname, up, err)
	}
	return nil
}

func (l *Lab) addAddrs(ctx context.Context) error {
	var ready []linkEnd
	for _, nd := range l.topo.Nodes {
		if err := setAddrs(l.nodes[nd.Name], "lo", nd.Loopbacks); err != nil {
			return err
		}
	}
	for i, lk := range l.topo.Links {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, b := l.nodes[lk.A], l.nodes[lk.B]
		if err := setAddrs(a, lk.AName, lk.AAddrs); err != nil {
			return err
		}
		if err := setAddrs(b, lk.BName, lk.BAddrs); err != nil {
			return err
		}
		if !l.linkDown[i] {
			if err := setLinkUp(a, lk.AName, true); err != nil {
				return err
			}
			if err := setLinkUp(b, lk.BName, true); err != nil {
				return err
			}
			ready = append(ready, linkEnd{a, lk.AName}, linkEnd{b, lk.BName})
		}
	}
	return waitCarrier(ctx, ready)
}

type linkEnd struct {
	n      *nodeRT
	ifname string
}

// carrierTimeout bounds the wait for links to come up.
const carrierTimeout = 5 * time.Second

// waitCarrier waits until every end has carrier. A veth has it as soon as
// both ends are up, but the kernel applies the change (and starts
// transmitting) from its link-watch work, which may run up to a second
// later; until then packets are dropped. Waiting here means traffic flows
// the moment Up or SetLink returns.
func waitCarrier(ctx context.Context, ends []linkEnd) error {
	ctx, cancel := context.WithTimeout(ctx, carrierTimeout)
	defer cancel()
	for _, e := range ends {
		for {
			link, err := e.n.nl.LinkByName(e.ifname)
			if err != nil {
				return fmt.Errorf("node %s: %s: %w", e.n.node.Name, e.ifname, err)
			}
			if link.Attrs().RawFlags&unix.IFF_RUNNING != 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node %s: %s: no carrier: %w", e.n.node.Name, e.ifname, context.Cause(ctx))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// ifaceDown says whether ifname of node belongs to a link that is down.
func (l *Lab) ifaceDown(node, ifname string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, lk := range l.topo.Links {
		if (lk.A == node && lk.AName == ifname) || (lk.B == node && lk.BName == ifname) {
			return l.linkDown[i]
		}
	}
	return false
}

// installRoutes (re)installs node's routes, skipping those that leave by
// a link that is down: the kernel would refuse them, and takes them away
// when a link goes down anyway. SetLink puts them back.
func (l *Lab) installRoutes(n *nodeRT) error {
	for _, r := range n.node.Routes {
		dev := routeDev(r, n.ifaces)
		if l.ifaceDown(n.node.Name, dev) {
			continue
		}
		nr := &netlink.Route{Dst: ipNet(r.Dst), Priority: r.Metric, Family: netlink.FAMILY_V4}
		if r.Dst.Addr().Is6() {
			nr.Family = netlink.FAMILY_V6
		}
		if r.Via.IsValid() {
			nr.Gw = r.Via.AsSlice()
		} else if r.Dst.Addr().Is4() {
			nr.Scope = netlink.SCOPE_LINK
		}
		if r.Dev != "" {
			link, err := n.nl.LinkByName(r.Dev)
			if err != nil {
				return fmt.Errorf("node %s: route %s: %w", n.node.Name, r, err)
			}
			nr.LinkIndex = link.Attrs().Index
		}
		if err := n.nl.RouteReplace(nr); err != nil {
			return fmt.Errorf("node %s: route %s: %w", n.node.Name, r, err)
		}
	}
	return nil
}

func (l *Lab) applyRoutes(ctx context.Context) error {
	for _, nd := range l.topo.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.installRoutes(l.nodes[nd.Name]); err != nil {
			return err
		}
	}
	return nil
}

// SetLink cuts (up=false) or restores (up=true) every link between nodes a
// and b, setting both ends down or up. Restoring puts back the link's
// addresses and the routes of both nodes, which the kernel drops when an
// interface goes down, and returns once both ends have carrier. As on a
// real network, a first packet right after may still be lost while the
// kernel settles (neighbour discovery, IPv6 address work).
func (l *Lab) SetLink(a, b string, up bool) error {
	na, err := l.node(a)
	if err != nil {
		return err
	}
	nb, err := l.node(b)
	if err != nil {
		return err
	}
	found := false
	var ready []linkEnd
	for i, lk := range l.topo.Links {
		var ea, eb string // a's and b's interface on this link
		switch {
		case lk.A == a && lk.B == b:
			ea, eb = lk.AName, lk.BName
		case lk.A == b && lk.B == a:
			ea, eb = lk.BName, lk.AName
		default:
			continue
		}
		found = true
		if err := setLinkUp(na, ea, up); err != nil {
			return err
		}
		if err := setLinkUp(nb, eb, up); err != nil {
			return err
		}
		l.mu.Lock()
		l.linkDown[i] = !up
		l.mu.Unlock()
		if up {
			if err := setAddrs(l.nodes[lk.A], lk.AName, lk.AAddrs); err != nil {
				return err
			}
			if err := setAddrs(l.nodes[lk.B], lk.BName, lk.BAddrs); err != nil {
				return err
			}
			ready = append(ready, linkEnd{na, ea}, linkEnd{nb, eb})
		}
	}
	if !found {
		return fmt.Errorf("lab %s: no link between %s and %s", l.topo.Name, a, b)
	}
	if up {
		if err := waitCarrier(context.Background(), ready); err != nil {
			return err
		}
		return errors.Join(l.installRoutes(na), l.installRoutes(nb))
	}
	return nil
}

// Do runs fn on an OS thread switched into node's network namespace, for
// netlink calls, sockets and /proc/sys/net. Goroutines that fn starts run
// elsewhere, in the host namespace; sockets fn opens stay in the node's
// namespace wherever they are used later. The thread is discarded after
// fn returns. A panic in fn is re-raised in the caller.
func (l *Lab) Do(node string, fn func() error) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	return onThreadIn(n.h, fn)
}

// Sysctl reads a sysctl inside node's namespace.
func (l *Lab) Sysctl(node, key string) (string, error) {
	var v string
	err := l.Do(node, func() (err error) {
		v, err = readSysctl(key)
		return err
	})
	return v, err
}

// hostsMarker opens every file the lab writes under /etc/netns; cleanup
// removes only files that carry it.
func hostsMarker(lab string) string {
	return "# lisplab " + lab + ": written by the lab, removed when it goes down\n"
}

func resolvConf(lab string) string {
	return hostsMarker(lab) + "# No DNS server inside the lab: names come from /etc/hosts.\n"
}

// etcFiles are the files the lab writes under /etc/netns/<namespace>/.
var etcFiles = []string{"hosts", "resolv.conf"}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// WriteHosts writes /etc/netns/<namespace>/hosts for every node, listing
// localhost and entries (name -> address), so that names resolve inside
// Exec'd commands (Exec binds the file over /etc/hosts, as `ip netns exec`
// does). It replaces what an earlier call wrote. Topology.DefaultHosts
// gives one entry per node.
//
// It also writes a resolv.conf naming no server: a lab node cannot reach
// the host's DNS server, and a look-up the hosts file cannot answer (the
// IPv6 address of a name listed with IPv4 only, say) would otherwise wait
// seconds for it; with no server, the resolver asks 127.0.0.1 and fails at
// once.
func (l *Lab) WriteHosts(entries map[string]netip.Addr) error {
	var b strings.Builder
	b.WriteString(hostsMarker(l.topo.Name))
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		a := entries[name]
		if !hostnameRE.MatchString(name) {
			return fmt.Errorf("lab %s: hosts: %q is not a host name", l.topo.Name, name)
		}
		if !a.IsValid() {
			return fmt.Errorf("lab %s: hosts: %s has no address", l.topo.Name, name)
		}
		fmt.Fprintf(&b, "%s\t%s\n", a, name)
	}
	for _, nd := range l.topo.Nodes {
		dir := filepath.Join(EtcNetns, l.Namespace(nd.Name))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("lab %s: %w", l.topo.Name, err)
		}
		for file, content := range map[string]string{"hosts": b.String(), "resolv.conf": resolvConf(l.topo.Name)} {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
				return fmt.Errorf("lab %s: %w", l.topo.Name, err)
			}
		}
	}
	return nil
}

// Down stops the processes the lab started (SIGTERM, then SIGKILL after
// StopTimeout), kills anything else still running in its namespaces,
// deletes the namespaces (and with them the veths), the hosts files it
// wrote under /etc/netns, and /run/lisplab/<name>/. It goes on past
// errors and reports them all. Calling it again does nothing.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()

	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Stop() })
	}
	wg.Wait()
	for _, n := range l.nodes {
		n.close()
	}
	errs = append(errs, downByName(l.topo.Name, l.topo, l.StopTimeout))
	return errors.Join(errs...)
}
