package lab

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lispd/lispd/internal/yamlstrict"
)

// Topology describes a lab: nodes (one network namespace each), the
// point-to-point links (veth pairs) between them, and the layer 2 the
// nodes build on their link ends (bridges, VXLANs, static MACs).
type Topology struct {
	// Name prefixes everything the lab creates: namespaces are
	// "<Name>-<node>", run files live in /run/lisplab/<Name>/. Letters,
	// digits and '_' only (no '-', so a namespace name tells its lab and
	// node apart), at most 32 characters.
	Name  string
	Nodes []Node
	Links []Link
}

// Node is one network namespace.
type Node struct {
	// Name: letters, digits, '_' and '-', starting with a letter or
	// digit, at most 32 characters.
	Name string
	// Role is free text ("ms", "xtr", "pxtr", "router", "host", ...); the
	// lab only records it.
	Role string
	// Sysctls are set inside the node's namespace once its interfaces
	// exist, so per-interface keys (net.ipv4.conf.eth0.rp_filter) work.
	// Only net.* keys are allowed: they are the ones a network namespace
	// owns; any other would change the host. Keys use '.' (or '/') as in
	// sysctl(8).
	Sysctls map[string]string
	// Routes are installed after the links are up.
	Routes []Route
	// Loopbacks are addresses put on lo, e.g. an EID /32 or an anycast
	// address (which may repeat on several nodes). A bare address in YAML
	// is taken as a host prefix.
	Loopbacks []netip.Prefix
	// LispdConfig is the node's lispd configuration snippet as standalone
	// YAML (the `lispd:` mapping of the topology file), nil when absent.
	// The lab does not read it.
	LispdConfig []byte
	// LispdLine is the line of the topology file where the snippet starts
	// (0 when the topology did not come from a file), so a problem in the
	// generated config can be traced back.
	LispdLine int
	// LispdYAML is the snippet as a node tree, aliases expanded, whose
	// nodes carry their lines in the topology file, so that a problem in
	// it can be placed there (nil when the topology did not come from a
	// file). It is shared by copies of the topology: do not change it.
	LispdYAML *yaml.Node `json:"-"`
	// Aliases are more host names for addresses of this node (a host's
	// IPv6 EID, say), listed by DefaultHosts beside the node's own name.
	// Each address must be one of the node's.
	Aliases map[string]netip.Addr
	// VXLANs are tunnels the node makes (before its bridges, which may
	// take them as ports).
	VXLANs []VXLAN
	// Bridges make the node a switch between some of its link ends and
	// VXLANs.
	Bridges []Bridge
	// NAT, when set, makes the node a NAT box (nat.go).
	NAT *NAT `json:",omitempty"`
	// Etcd, when set, makes the node a member of the lab's etcd cluster
	// (etcd.go).
	Etcd *Etcd `json:",omitempty"`
}

// Bridge is a Linux bridge inside a node. It carries no address: it is a
// switch, not a host.
type Bridge struct {
	Name  string   // interface name
	Ports []string // the node's link ends and VXLANs it joins, set up
	// NoLearning lists ports whose frames' source MACs the bridge does
	// not learn (a VXLAN, so that a MAC seen across it cannot move a
	// local entry).
	NoLearning []string
	// FDB holds static entries: frames to MAC leave by Port only.
	FDB []FDBEntry
}

// FDBEntry is a static forwarding entry of a bridge (`bridge fdb replace
// MAC dev PORT master static`).
type FDBEntry struct {
	MAC  net.HardwareAddr
	Port string
}

// VXLAN is a point-to-point VXLAN tunnel inside a node, carrying its
// frames over UDP from Local to Remote out of Dev.
type VXLAN struct {
	Name          string
	VNI           uint32     // 24 bits
	Local, Remote netip.Addr // tunnel ends; Local may be left zero
	Dev           string     // the link end the tunnel runs over
	Port          int        // UDP destination port; 0: 4789 (IANA)
}

// DefaultVXLANPort is the IANA VXLAN port, used when VXLAN.Port is 0.
const DefaultVXLANPort = 4789

// Link is a veth pair between two nodes.
type Link struct {
	A, B string // node names
	// AName, BName are the interface names inside the namespaces (at most
	// 15 bytes). Empty means the next free "ethN" of that node, numbered
	// in link order.
	AName, BName   string
	AAddrs, BAddrs []netip.Prefix // addresses with their prefix length
	MTU            int            // 0: the kernel default (1500)
	Down           bool           // created administratively down
	// AMAC, BMAC set the ends' MAC addresses (a gateway MAC that two
	// routers share, say); nil: the kernel picks a random one.
	AMAC, BMAC net.HardwareAddr
}

// Route is a static route of one node.
type Route struct {
	Dst    netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Via    netip.Addr   // gateway; zero for a route straight out of Dev
	Dev    string       // interface; empty: the one whose subnet holds Via
	Metric int
}

// String formats the route as `ip route` would.
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	if r.Via.IsValid() {
		b.WriteString(" via " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

// Limits on names. Namespace names have no short limit, but the admin
// socket path /run/lisplab/NAME/NODE.sock must fit a sockaddr_un (108
// bytes), which 32+32 keeps it well within.
const (
	maxLabName  = 32
	maxNodeName = 32
	maxIfName   = 15 // IFNAMSIZ-1
	maxHostName = 63 // a DNS label
)

var (
	labNameRE  = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	sysctlRE   = regexp.MustCompile(`^net[./][A-Za-z0-9_./-]+$`)
)

// Namespace is the network namespace name of node in the lab named lab.
func Namespace(lab, node string) string { return lab + "-" + node }

// Error is one problem in a topology.
type Error struct {
	File string // set by LoadTopology
	Line int    // 1-based line in File; 0 when unknown
	// Path locates the value at fault in the topology, e.g.
	// "nodes[1].routes[0].via"; LoadTopology turns it into Line.
	Path string
	Msg  string // says which node or link it concerns
}

// Error formats e as "FILE:LINE: message" when it comes from a file, else
// as the message alone.
func (e Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// Errors is every problem found, in order.
type Errors []Error

// Error prints one problem per line.
func (es Errors) Error() string { return yamlstrict.Lines(es) }

// validator collects problems.
type validator struct{ errs Errors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks names, addresses, links and routes, and returns Errors
// listing every problem, or nil.
func (t *Topology) Validate() error {
	v := &validator{}
	switch {
	case t.Name == "":
		v.add("name", "topology name is empty")
	case len(t.Name) > maxLabName:
		v.add("name", "topology name %q is longer than %d characters", t.Name, maxLabName)
	case !labNameRE.MatchString(t.Name):
		v.add("name", "topology name %q may hold only letters, digits and '_'", t.Name)
	}
	if len(t.Nodes) == 0 {
		v.add("nodes", "topology has no nodes")
	}
	nodeIdx := map[string]int{}
	for i, n := range t.Nodes {
		p := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			v.add(p+".name", "node %d has no name", i+1)
			continue
		case len(n.Name) > maxNodeName:
			v.add(p+".name", "node name %q is longer than %d characters", n.Name, maxNodeName)
		case !nodeNameRE.MatchString(n.Name):
			v.add(p+".name", "node name %q may hold only letters, digits, '_' and '-' and must start with a letter or digit", n.Name)
		}
		if _, dup := nodeIdx[n.Name]; dup {
			v.add(p+".name", "node %q is defined twice", n.Name)
			continue
		}
		nodeIdx[n.Name] = i
	}

	ifnames := defaultIfNames(t)
	// Per node: interface name -> the prefixes on it.
	ifaces := make(map[string]map[string][]netip.Prefix, len(t.Nodes))
	for _, n := range t.Nodes {
		ifaces[n.Name] = map[string][]netip.Prefix{"lo": slices.Clone(n.Loopbacks)}
	}
	linkAddrOwner := map[string]string{} // node|address -> where
	for i, l := range t.Links {
		p := fmt.Sprintf("links[%d]", i)
		desc := fmt.Sprintf("link %d (%s-%s)", i+1, l.A, l.B)
		okA, okB := v.linkEnd(p+".a", desc, "a", l.A, nodeIdx), v.linkEnd(p+".b", desc, "b", l.B, nodeIdx)
		if okA && okB && l.A == l.B {
			v.add(p+".b", "%s: both ends are on node %q", desc, l.A)
			okB = false
		}
		if l.MTU != 0 && (l.MTU < 68 || l.MTU > 65535) {
			v.add(p+".mtu", "%s: mtu %d is outside 68..65535", desc, l.MTU)
		}
		for _, end := range []struct {
			ok     bool
			node   string
			ifname string
			addrs  []netip.Prefix
			key    string
		}{
			{okA, l.A, ifnames[i][0], l.AAddrs, "a"},
			{okB, l.B, ifnames[i][1], l.BAddrs, "b"},
		} {
			if mac := map[string]net.HardwareAddr{"a": l.AMAC, "b": l.BMAC}[end.key]; mac != nil {
				if msg := checkMAC(mac); msg != "" {
					v.add(p+"."+end.key+"-mac", "%s: %s", desc, msg)
				}
			}
			if end.ifname != "" {
				if msg := checkIfName(end.ifname); msg != "" {
					v.add(p+"."+end.key+"-name", "%s: %s", desc, msg)
				}
			}
			for j, a := range end.addrs {
				ap := fmt.Sprintf("%s.%s-addrs[%d]", p, end.key, j)
				if msg := checkAddr(a); msg != "" {
					v.add(ap, "%s: %s", desc, msg)
					continue
				}
				if a.Addr().Is6() && l.MTU != 0 && l.MTU < 1280 {
					v.add(p+".mtu", "%s: mtu %d is below IPv6's minimum of 1280", desc, l.MTU)
				}
				// One address twice on a node is a mistake; on two nodes it
				// is how anycast and overlapping instance IDs look.
				key := end.node + "|" + a.Addr().String()
				if owner, dup := linkAddrOwner[key]; dup {
					v.add(ap, "%s: address %s is already on %s", desc, a.Addr(), owner)
					continue
				}
				linkAddrOwner[key] = end.node + ":" + end.ifname
			}
			if !end.ok || end.ifname == "" {
				continue
			}
			if _, dup := ifaces[end.node][end.ifname]; dup {
				v.add(p+"."+end.key+"-name", "%s: node %q already has an interface %q", desc, end.node, end.ifname)
				continue
			}
			ifaces[end.node][end.ifname] = end.addrs
		}
	}

	aliasOwner := map[string]string{} // alias -> node
	for i, n := range t.Nodes {
		if n.Name == "" {
			continue
		}
		p := fmt.Sprintf("nodes[%d]", i)
		for _, k := range slices.Sorted(maps.Keys(n.Sysctls)) {
			val := n.Sysctls[k]
			switch {
			case !sysctlRE.MatchString(k) || strings.Contains(k, "..") || strings.Contains(k, "//"):
				v.add(p+".sysctls."+k, "node %s: sysctl %q: only net.* keys can be set in a namespace", n.Name, k)
			case val == "" || strings.ContainsAny(val, "\n\x00"):
				v.add(p+".sysctls."+k, "node %s: sysctl %s: the value must be one non-empty line", n.Name, k)
			}
		}
		for j, a := range n.Loopbacks {
			if msg := checkAddr(a); msg != "" {
				v.add(fmt.Sprintf("%s.loopbacks[%d]", p, j), "node %s: loopback: %s", n.Name, msg)
				continue
			}
			if owner, dup := linkAddrOwner[n.Name+"|"+a.Addr().String()]; dup {
				v.add(fmt.Sprintf("%s.loopbacks[%d]", p, j), "node %s: loopback %s is also on %s", n.Name, a.Addr(), owner)
			}
		}
		v.aliases(p, t, n, nodeIdx, aliasOwner)
		v.layer2(p, n, ifaces[n.Name])
		checkNAT(v, p, n, ifaces[n.Name])
		checkEtcd(v, t, p, n)
		seen := map[string]bool{}
		for j, r := range n.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", p, j)
			v.route(rp, n.Name, r, ifaces[n.Name])
			key := fmt.Sprintf("%s/%d", r.Dst, r.Metric)
			if r.Dst.IsValid() && seen[key] {
				v.add(rp+".dst", "node %s: a second route to %s with metric %d would replace the first", n.Name, r.Dst, r.Metric)
			}
			seen[key] = true
		}
	}
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// aliases checks the host-name aliases of node n, whose path is p; owner
// collects the aliases of the nodes seen so far.
func (v *validator) aliases(p string, t *Topology, n Node, nodes map[string]int, owner map[string]string) {
	if len(n.Aliases) == 0 {
		return
	}
	own := t.Addrs(n.Name)
	for _, name := range slices.Sorted(maps.Keys(n.Aliases)) {
		a, ap := n.Aliases[name], p+".aliases."+name
		switch _, isNode := nodes[name]; {
		case len(name) > maxHostName || !hostnameRE.MatchString(name):
			v.add(ap, "node %s: alias %q is not a host name (letters, digits, '.', '-', '_')", n.Name, name)
		case isNode:
			v.add(ap, "node %s: alias %q is the name of a node", n.Name, name)
		case owner[name] != "":
			v.add(ap, "node %s: alias %q is already an alias of node %s", n.Name, name, owner[name])
		case !a.IsValid():
			v.add(ap, "node %s: alias %s has no address", n.Name, name)
		case !slices.Contains(own, a):
			v.add(ap, "node %s: alias %s: %s is not an address of the node", n.Name, name, a)
		}
		if owner[name] == "" {
			owner[name] = n.Name
		}
	}
}

// layer2 checks the VXLANs and bridges of node n, whose path is p and
// whose link ends (and lo) are ifaces.
func (v *validator) layer2(p string, n Node, ifaces map[string][]netip.Prefix) {
	// kind of every interface the node will have, for the bridges' ports.
	kind := map[string]string{}
	for name := range ifaces {
		kind[name] = "link"
	}
	kind["lo"] = "lo"
	claim := func(path, name, what string) bool {
		if msg := checkIfName(name); name == "" || msg != "" {
			if name == "" {
				msg = what + " has no name"
			}
			v.add(path+".name", "node %s: %s", n.Name, msg)
			return false
		}
		if _, dup := kind[name]; dup {
			v.add(path+".name", "node %s: %s %s: the node already has an interface %q", n.Name, what, name, name)
			return false
		}
		kind[name] = what
		return true
	}
	for i, x := range n.VXLANs {
		xp := fmt.Sprintf("%s.vxlans[%d]", p, i)
		claim(xp, x.Name, "vxlan")
		desc := fmt.Sprintf("node %s: vxlan %s", n.Name, x.Name)
		if x.VNI > 1<<24-1 {
			v.add(xp+".vni", "%s: vni %d is more than 24 bits", desc, x.VNI)
		}
		if x.Port < 0 || x.Port > 65535 {
			v.add(xp+".port", "%s: port %d is outside 1..65535", desc, x.Port)
		}
		switch msg := checkUnicast(x.Remote); {
		case !x.Remote.IsValid():
			v.add(xp, "%s: needs a remote address", desc)
		case msg != "":
			v.add(xp+".remote", "%s: remote: %s", desc, msg)
		}
		if x.Local.IsValid() {
			if msg := checkUnicast(x.Local); msg != "" {
				v.add(xp+".local", "%s: local: %s", desc, msg)
			} else if x.Remote.IsValid() && x.Local.Is4() != x.Remote.Is4() {
				v.add(xp+".local", "%s: local and remote are of different address families", desc)
			}
		}
		if _, ok := ifaces[x.Dev]; x.Dev != "" && (!ok || x.Dev == "lo") {
			v.add(xp+".dev", "%s: node has no link end %q", desc, x.Dev)
		}
	}
	for i, b := range n.Bridges {
		claim(fmt.Sprintf("%s.bridges[%d]", p, i), b.Name, "bridge")
	}
	owner := map[string]string{} // port -> bridge
	for i, b := range n.Bridges {
		bp := fmt.Sprintf("%s.bridges[%d]", p, i)
		desc := fmt.Sprintf("node %s: bridge %s", n.Name, b.Name)
		ports := map[string]bool{}
		for j, port := range b.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", bp, j)
			switch k := kind[port]; {
			case k == "":
				v.add(pp, "%s: node has no interface %q", desc, port)
			case k == "lo" || k == "bridge":
				v.add(pp, "%s: %s cannot be a bridge port", desc, port)
			case owner[port] != "":
				v.add(pp, "%s: %s is already a port of bridge %s", desc, port, owner[port])
			default:
				owner[port] = b.Name
				ports[port] = true
			}
		}
		for j, port := range b.NoLearning {
			if !slices.Contains(b.Ports, port) {
				v.add(fmt.Sprintf("%s.no-learning[%d]", bp, j), "%s: no-learning: %s is not a port of the bridge", desc, port)
			}
		}
		for j, e := range b.FDB {
			ep := fmt.Sprintf("%s.fdb[%d]", bp, j)
			if msg := checkMAC(e.MAC); msg != "" {
				v.add(ep+".mac", "%s: fdb: %s", desc, msg)
			}
			if !slices.Contains(b.Ports, e.Port) {
				v.add(ep+".port", "%s: fdb: %q is not a port of the bridge", desc, e.Port)
			}
		}
	}
}

// checkMAC says why mac cannot be an interface's or a unicast FDB
// entry's address, or "".
func checkMAC(mac net.HardwareAddr) string {
	switch {
	case len(mac) != 6:
		return fmt.Sprintf("%q is not a 6-byte MAC address", mac.String())
	case mac[0]&1 != 0:
		return fmt.Sprintf("%s is a group address, not a unicast MAC", mac)
	case [6]byte(mac) == [6]byte{}:
		return "00:00:00:00:00:00 cannot be an interface's MAC"
	}
	return ""
}

// checkUnicast says why a cannot be a tunnel end, or "".
func checkUnicast(a netip.Addr) string {
	switch {
	case a.Is4In6():
		return fmt.Sprintf("%s: write IPv4-mapped addresses as IPv4", a)
	case a.Zone() != "":
		return fmt.Sprintf("%s: addresses take no zone", a)
	case a.IsUnspecified() || a.IsMulticast():
		return fmt.Sprintf("%s is not a unicast address", a)
	}
	return ""
}

func (v *validator) linkEnd(path, desc, key, node string, nodes map[string]int) bool {
	if node == "" {
		v.add(path, "%s: end %s names no node", desc, key)
		return false
	}
	if _, ok := nodes[node]; !ok {
		v.add(path, "%s: no node is named %q", desc, node)
		return false
	}
	return true
}

// route checks one route of node, whose interfaces and their prefixes are
// ifaces.
func (v *validator) route(path, node string, r Route, ifaces map[string][]netip.Prefix) {
	desc := fmt.Sprintf("node %s: route %s", node, r)
	if !r.Dst.IsValid() {
		v.add(path+".dst", "node %s: route has no valid destination", node)
		return
	}
	if r.Dst != r.Dst.Masked() {
		v.add(path+".dst", "%s: destination has host bits set (did you mean %s?)", desc, r.Dst.Masked())
	}
	if r.Metric < 0 {
		v.add(path+".metric", "%s: metric is negative", desc)
	}
	if !r.Via.IsValid() && r.Dev == "" {
		v.add(path, "%s: needs a gateway (via) or an interface (dev)", desc)
		return
	}
	if r.Dev != "" {
		if _, ok := ifaces[r.Dev]; !ok {
			v.add(path+".dev", "%s: node has no interface %q", desc, r.Dev)
			return
		}
	}
	if !r.Via.IsValid() {
		return
	}
	if r.Via.Is4() != r.Dst.Addr().Is4() || r.Via.Is4In6() {
		v.add(path+".via", "%s: gateway and destination are of different address families", desc)
		return
	}
	if r.Via.IsUnspecified() || r.Via.IsMulticast() {
		v.add(path+".via", "%s: %s cannot be a gateway", desc, r.Via)
		return
	}
	if r.Via.IsLinkLocalUnicast() {
		if r.Dev == "" {
			v.add(path+".dev", "%s: a link-local gateway needs dev", desc)
		}
		return
	}
	// The kernel wants the gateway inside a subnet of the interface.
	for name, prefixes := range ifaces {
		if name == "lo" || (r.Dev != "" && name != r.Dev) {
			continue
		}
		for _, p := range prefixes {
			if p.Addr() == r.Via {
				v.add(path+".via", "%s: the gateway is the node's own address", desc)
				return
			}
		}
	}
	if routeDev(r, ifaces) == "" {
		where := "any of the node's links"
		if r.Dev != "" {
			where = r.Dev
		}
		v.add(path+".via", "%s: gateway %s is not in a subnet of %s", desc, r.Via, where)
	}
}

// routeDev is the interface a route leaves by: Dev, or the interface whose
// subnet holds Via; "" when none does.
func routeDev(r Route, ifaces map[string][]netip.Prefix) string {
	if r.Dev != "" && (!r.Via.IsValid() || r.Via.IsLinkLocalUnicast() || r.Dev == "lo") {
		return r.Dev
	}
	for _, name := range slices.Sorted(maps.Keys(ifaces)) {
		if name == "lo" || (r.Dev != "" && name != r.Dev) {
			continue
		}
		for _, p := range ifaces[name] {
			if p.Masked().Contains(r.Via) {
				return name
			}
		}
	}
	return ""
}

func checkAddr(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "invalid address prefix"
	case p.Addr().Is4In6():
		return fmt.Sprintf("%s: write IPv4-mapped addresses as IPv4", p)
	case p.Addr().Zone() != "":
		return fmt.Sprintf("%s: addresses take no zone", p)
	case p.Addr().IsUnspecified() || p.Addr().IsMulticast():
		return fmt.Sprintf("%s cannot be an interface address", p.Addr())
	}
	return ""
}

// checkIfName applies the kernel's rules for interface names, plus a few
// names the lab keeps for itself or that sysctl paths would confuse.
func checkIfName(name string) string {
	switch {
	case len(name) > maxIfName:
		return fmt.Sprintf("interface name %q is longer than %d bytes", name, maxIfName)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Sprintf("%q is not a valid interface name", name)
	case name == "lo" || name == "all" || name == "default":
		return fmt.Sprintf("interface name %q is reserved", name)
	}
	return ""
}

// defaultIfNames returns each link's two interface names: the given ones,
// or for an empty name the lowest "ethN" its node does not use yet,
// allotted in link order.
func defaultIfNames(t *Topology) [][2]string {
	used := map[string]map[string]bool{}
	mark := func(node, name string) {
		if used[node] == nil {
			used[node] = map[string]bool{}
		}
		used[node][name] = true
	}
	for _, l := range t.Links {
		if l.AName != "" {
			mark(l.A, l.AName)
		}
		if l.BName != "" {
			mark(l.B, l.BName)
		}
	}
	next := func(node string) string {
		for i := 0; ; i++ {
			name := fmt.Sprintf("eth%d", i)
			if !used[node][name] {
				mark(node, name)
				return name
			}
		}
	}
	out := make([][2]string, len(t.Links))
	for i, l := range t.Links {
		out[i] = [2]string{l.AName, l.BName}
		if l.AName == "" && l.A != "" {
			out[i][0] = next(l.A)
		}
		if l.BName == "" && l.B != "" {
			out[i][1] = next(l.B)
		}
	}
	return out
}

// clone returns a deep copy of t.
func (t *Topology) clone() *Topology {
	c := &Topology{Name: t.Name, Nodes: slices.Clone(t.Nodes), Links: slices.Clone(t.Links)}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		n.Sysctls = maps.Clone(n.Sysctls)
		n.Routes = slices.Clone(n.Routes)
		n.Loopbacks = slices.Clone(n.Loopbacks)
		n.LispdConfig = slices.Clone(n.LispdConfig)
		n.Aliases = maps.Clone(n.Aliases)
		n.VXLANs = slices.Clone(n.VXLANs)
		n.Bridges = slices.Clone(n.Bridges)
		if n.NAT != nil {
			nat := *n.NAT
			n.NAT = &nat
		}
		if n.Etcd != nil {
			e := *n.Etcd
			n.Etcd = &e
		}
		for j := range n.Bridges {
			b := &n.Bridges[j]
			b.Ports, b.NoLearning = slices.Clone(b.Ports), slices.Clone(b.NoLearning)
			b.FDB = slices.Clone(b.FDB)
			for k := range b.FDB {
				b.FDB[k].MAC = slices.Clone(b.FDB[k].MAC)
			}
		}
	}
	for i := range c.Links {
		l := &c.Links[i]
		l.AAddrs, l.BAddrs = slices.Clone(l.AAddrs), slices.Clone(l.BAddrs)
		l.AMAC, l.BMAC = slices.Clone(l.AMAC), slices.Clone(l.BMAC)
	}
	return c
}

// withDefaults returns a deep copy of t with every interface name filled in.
func (t *Topology) withDefaults() *Topology {
	c := t.clone()
	for i, names := range defaultIfNames(c) {
		c.Links[i].AName, c.Links[i].BName = names[0], names[1]
	}
	return c
}

// Node returns the node named name, or nil.
func (t *Topology) Node(name string) *Node {
	for i := range t.Nodes {
		if t.Nodes[i].Name == name {
			return &t.Nodes[i]
		}
	}
	return nil
}

// Addrs returns the addresses of node: its loopbacks, then those of its
// link ends in link order.
func (t *Topology) Addrs(node string) []netip.Addr {
	var out []netip.Addr
	if n := t.Node(node); n != nil {
		for _, p := range n.Loopbacks {
			out = append(out, p.Addr())
		}
	}
	for _, l := range t.Links {
		if l.A == node {
			for _, p := range l.AAddrs {
				out = append(out, p.Addr())
			}
		}
		if l.B == node {
			for _, p := range l.BAddrs {
				out = append(out, p.Addr())
			}
		}
	}
	return out
}

// DefaultHosts maps every node's name to its HostAddr, for WriteHosts.
// Nodes without addresses are left out. The nodes' Aliases are added.
func (t *Topology) DefaultHosts() map[string]netip.Addr {
	m := map[string]netip.Addr{}
	for _, n := range t.Nodes {
		maps.Copy(m, n.Aliases)
		if a, ok := t.HostAddr(n.Name); ok {
			m[n.Name] = a
		}
	}
	return m
}

// HostAddr is the address that names node (the lab's hosts file, lisplab
// status): the first IPv4 address of Addrs, else the first IPv6 one, of
// those no other node has. An anycast loopback (the Map-Servers of a
// cluster share one) names none of its nodes unless they have nothing else.
func (t *Topology) HostAddr(node string) (netip.Addr, bool) {
	all := t.Addrs(node)
	own := slices.DeleteFunc(slices.Clone(all), func(a netip.Addr) bool {
		for _, n := range t.Nodes {
			if n.Name != node && slices.Contains(t.Addrs(n.Name), a) {
				return true
			}
		}
		return false
	})
	if len(own) == 0 {
		own = all
	}
	if i := slices.IndexFunc(own, netip.Addr.Is4); i >= 0 {
		return own[i], true
	}
	if len(own) > 0 {
		return own[0], true
	}
	return netip.Addr{}, false
}
