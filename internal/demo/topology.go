// Package demo is `lisplab demo`: a LISP network built in namespaces and a
// story told on it in seven steps, each with measured times, ending in a
// summary table:
//
//  1. registration: the ETRs of the client site and of two data centres
//     register their EID prefixes with the Map-Server;
//  2. first resolution: a TCP connection's first packet misses the ITR's
//     map-cache; the Map-Request goes through the Map-Resolver and the
//     Map-Server to an ETR, which answers the ITR;
//  3. load sharing: flows spread over a data centre's two RLOCs by weight;
//  4. PITR/PETR: a host outside LISP reaches an EID and is reached back;
//  5. locator failure: an RLOC goes down under a stream and RLOC probing
//     moves the traffic to the other one;
//  6. dynamic EID across subnets: a VM moves to the other data centre and
//     back; its new xTR registers it and the client's ITR learns of the
//     move by publish/subscribe, while a TCP connection keeps running;
//  7. dynamic EID on an extended subnet: the same over a subnet stretched
//     between the data centres with VXLAN, the LAN's xTRs telling each
//     other of the move.
package demo

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/lab"
)

// vMAC is the gateway MAC both data centres answer with (VRRP's range),
// so a VM that moves keeps its ARP entry for its gateway.
var vMAC = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}

// Addresses of the story.
const (
	msAddr   = "198.18.1.2"
	c1Addr   = "198.51.100.10"
	d1Addr   = "203.0.113.10"
	d2Addr   = "203.0.113.130"
	nlAddr   = "192.0.2.130"
	xcRLOC   = "198.18.2.2"
	dc1aRLOC = "198.18.3.2"
	dc1bRLOC = "198.18.4.2"
	dc2RLOC  = "198.18.6.2"
	// c1 and d1 are dual-stack: the IPv6 series moves d1's IPv6 address
	// (in DC1's 2001:db8:d::/64, which DC2's ext0 stretches too).
	c1Addr6 = "2001:db8:c::10"
	d1Addr6 = "2001:db8:d::10"
	// notifyGroup is where the xTRs of a LAN tell each other of the hosts
	// they detect (MCAST-TEST-NET).
	notifyGroup = "233.252.0.1"
	// groupSecret signs the notify group's claims: every data-centre xTR
	// of the LAN holds it, DC2's too (it joins the stretched LAN).
	groupSecret = "vms-group-key"
	// notifyGroup6 is the IPv6 range's notify group (link scope, based
	// on the documentation prefix).
	notifyGroup6 = "ff32:40:2001:db8::4342"
)

// Topology is the demo network:
//
//	c1 ── xc ──┐                 ┌── dc1a ──┐
//	           core ─────────────┤          sw1 ─┐
//	  ms ──────┤  │  │           └── dc1b ──┘  ┆  hv ── d1 (203.0.113.10, a VM)
//	  px ──────┘  │  │                  VXLAN  ┆  │
//	              │  └── dc2 ════════════════ sw2 ─┘── d2 (203.0.113.130)
//	              └── nl (non-LISP host, 192.0.2.130)
//
// Client site 198.51.100.0/24 behind xc; data centre DC1 203.0.113.0/25
// behind two xTRs, one RLOC each, equal priority, weights 50/50, on the
// LAN of switch sw1; data centre DC2 203.0.113.128/25 behind dc2 on
// switch sw2; a Map-Server/Map-Resolver; a PxTR for the non-LISP host.
// The RLOC network is 198.18.0.0/15. d1 is a VM: its hosts range
// 203.0.113.8/29 is a dynamic-EID range of both data centres, and step 6
// moves it to DC2 and back: the hypervisor hv switches its uplink from
// sw1 to sw2. sw2 also carries DC1's LAN, joined to sw1 by a VXLAN over a
// DCI link, for the extended-subnet moves; dc2 is its gateway there
// (ext0).
func Topology(name string) *lab.Topology {
	b := lab.NewBuilder(name)
	node, via, link := b.Node, lab.Via, b.Link
	node("core", "router", true, via("198.51.100.0/24", "198.18.5.2"), via("203.0.113.0/24", "198.18.5.2"))
	node("ms", "ms", false, via("0.0.0.0/0", "198.18.1.1"))
	node("xc", "xtr", true, via("198.18.0.0/15", "198.18.2.1"))
	node("dc1a", "xtr", true, via("198.18.0.0/15", "198.18.3.1"))
	node("dc1b", "xtr", true, via("198.18.0.0/15", "198.18.4.1"))
	node("dc2", "xtr", true, via("198.18.0.0/15", "198.18.6.1"))
	node("px", "pxtr", true, via("198.18.0.0/15", "198.18.5.1"), via("192.0.2.128/25", "198.18.5.1"))
	node("c1", "host", false, via("0.0.0.0/0", "198.51.100.1"), via("::/0", "2001:db8:c::1"))
	// d1's IPv6 gateway is fe80::1, which every gateway of its LANs holds
	// with the gateway MAC: a VM keeps it across a move.
	node("d1", "host", false, via("0.0.0.0/0", "203.0.113.1"),
		lab.Route{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fe80::1"), Dev: "eth0"})
	node("nl", "host", false, via("0.0.0.0/0", "192.0.2.129"))
	node("d2", "host", false, via("0.0.0.0/0", "203.0.113.129"))
	node("sw1", "switch", false)
	node("sw2", "switch", false)
	node("hv", "hypervisor", false)
	link("core", "to-ms", "ms", "eth0", "198.18.1.1/24", "198.18.1.2/24")
	link("core", "to-xc", "xc", "up0", "198.18.2.1/24", xcRLOC+"/24")
	link("core", "to-dc1a", "dc1a", "up0", "198.18.3.1/24", dc1aRLOC+"/24")
	link("core", "to-dc1b", "dc1b", "up0", "198.18.4.1/24", dc1bRLOC+"/24")
	link("core", "to-px", "px", "eth0", "198.18.5.1/24", "198.18.5.2/24")
	link("core", "to-nl", "nl", "eth0", "192.0.2.129/25", nlAddr+"/25")
	link("core", "to-dc2", "dc2", "up0", "198.18.6.1/24", dc2RLOC+"/24")
	link("xc", "eid0", "c1", "eth0", "198.51.100.1/24 2001:db8:c::1/64", c1Addr+"/24 "+c1Addr6+"/64")
	// The LANs: switch ports carry no address.
	link("dc1a", "lan0", "sw1", "dc1a", "203.0.113.1/25 2001:db8:d::1/64 fe80::1/64", "")
	link("dc1b", "lan0", "sw1", "dc1b", "203.0.113.2/25 2001:db8:d::2/64", "")
	// d1 is a VM on the hypervisor hv, whose bridge joins it to one of
	// the data-centre switches: a move changes the uplink, d1's own link
	// never goes down (as in a live migration).
	link("d1", "eth0", "hv", "d1", d1Addr+"/25 "+d1Addr6+"/64", "")
	link("hv", "to1", "sw1", "hv", "", "")
	link("hv", "to2a", "sw2", "hv", "", "")
	link("hv", "to2b", "sw2", "hvx", "", "")
	link("dc2", "lan0", "sw2", "dc2", "203.0.113.129/25 fe80::1/64", "")
	link("d2", "eth0", "sw2", "d2", d2Addr+"/25", "")
	// ext0 has no fe80::1 of its own (the lab keeps an address to one
	// interface a node): d1 keeps the gateway MAC it resolved, and a new
	// solicitation reaches dc1a's fe80::1 over the VXLAN.
	link("dc2", "ext0", "sw2", "dc2x", "203.0.113.1/25 2001:db8:d::1/64", "")
	link("sw1", "dci", "sw2", "dci", "192.0.2.1/30", "192.0.2.2/30")

	// Layer 2: the bridges of the two switches and the hypervisor, the
	// VXLAN that stretches DC1's LAN to sw2, and the gateways' shared
	// MAC. A gateway MAC is pinned to its local port (and the VXLAN port
	// learns nothing), so each site's hosts reach their own gateway.
	t := b.T
	for _, end := range [][2]string{{"dc1a", "lan0"}, {"dc2", "lan0"}, {"dc2", "ext0"}} {
		for i := range t.Links {
			if l := &t.Links[i]; l.A == end[0] && l.AName == end[1] {
				l.AMAC = vMAC
			}
		}
	}
	vxlan := func(local, remote string) []lab.VXLAN {
		return []lab.VXLAN{{Name: "vx0", VNI: 42, Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), Dev: "dci", Port: 4789}}
	}
	pin := func(port string) []lab.FDBEntry { return []lab.FDBEntry{{MAC: vMAC, Port: port}} }
	sw1, sw2, hv := t.Node("sw1"), t.Node("sw2"), t.Node("hv")
	sw1.VXLANs = vxlan("192.0.2.1", "192.0.2.2")
	sw1.Bridges = []lab.Bridge{{Name: "br0", Ports: []string{"dc1a", "dc1b", "hv", "vx0"}, NoLearning: []string{"vx0"}, FDB: pin("dc1a")}}
	sw2.VXLANs = vxlan("192.0.2.2", "192.0.2.1")
	sw2.Bridges = []lab.Bridge{
		{Name: "br0", Ports: []string{"dc2", "d2", "hv"}, FDB: pin("dc2")},
		{Name: "br1", Ports: []string{"dc2x", "vx0", "hvx"}, NoLearning: []string{"vx0"}, FDB: pin("dc2x")},
	}
	// d1's uplink starts in DC1; MoveD1 swaps it.
	hv.Bridges = []lab.Bridge{{Name: "hvbr", Ports: []string{"d1", "to1"}}}
	return b.T
}

const msConfig = `
control: {addresses: [198.18.1.2]}
map-server:
  sites:
    - name: client
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}, {prefix: "2001:db8:c::/64"}]
    # Both data centres may register hosts of the VM range: each with its
    # own key; a registration from the other site is a move.
    - name: dc1
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc1-key}]
      eid-prefixes: [{prefix: 203.0.113.0/25}, {prefix: 203.0.113.8/29, accept-more-specifics: true},
                     {prefix: "2001:db8:d::/64"}, {prefix: "2001:db8:d::10/124", accept-more-specifics: true}]
    - name: dc2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: dc2-key}]
      eid-prefixes: [{prefix: 203.0.113.128/25}, {prefix: 203.0.113.8/29, accept-more-specifics: true},
                     {prefix: "2001:db8:d::10/124", accept-more-specifics: true}]
map-resolver: {}
`

const xtrCommon = `
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 10s
  rloc-probing: {interval: 1s}
  petrs: [198.18.5.2]
  eid-routes: [0.0.0.0/1, 128.0.0.0/1, "2000::/3"]
`

// dc1Database is what both DC1 xTRs register: the site with both RLOCs.
const dc1Database = `  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: dc1-key}]
  database:
    - eid-prefix: 203.0.113.0/25
      locators: [{address: 198.18.3.2, priority: 1, weight: 50}, {address: 198.18.4.2, priority: 1, weight: 50}]
    - eid-prefix: "2001:db8:d::/64"
      locators: [{address: 198.18.3.2, priority: 1, weight: 50}, {address: 198.18.4.2, priority: 1, weight: 50}]
`

// Mobility is how the network is set up for host mobility: the mode of
// the VM range, and whether the client's ITR subscribes (RFC 9437) or
// learns of moves by SMR only.
type Mobility struct {
	Mode      string // across-subnet or extended-subnet
	Subscribe bool
	// HostTimeout is how long a VM may stay silent before its xTRs
	// unregister it (default 30 s).
	HostTimeout time.Duration
}

// vmRange is the dynamic-EID range of the VMs on a data-centre xTR.
func vmRange(iface string, m Mobility) string {
	timeout := m.HostTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return fmt.Sprintf(`  eid-interfaces: [%s]
  dynamic-eids:
    - {name: vms, prefix: 203.0.113.8/29, interface: %s, mode: %s, notify-group: %s, timeout: %v,
       group-key: {key-id: 1, algorithm: hmac-sha-256-128, secret: %[6]s}}
    - {name: vms6, prefix: "2001:db8:d::10/124", interface: %[2]s, mode: %[3]s, notify-group: "%[7]s", timeout: %[5]v,
       group-key: {key-id: 1, algorithm: hmac-sha-256-128, secret: %[6]s}}
`, iface, iface, m.Mode, notifyGroup, timeout, groupSecret, notifyGroup6)
}

// ClusterTopology is Topology with the Map-Server/Map-Resolver made a
// cluster of three (ms1, ms2, ms3), each a member of the lab's etcd
// cluster and sharing its registrations through it (docs/cluster.md).
// Each answers Map-Requests on the demo's Map-Resolver address, msAddr,
// as anycast: the core routes it to ms1, else ms2, else ms3, the way a
// routing protocol would once a node's link is gone. The ETRs register
// with each node's own address.
//
//	        ┌── ms1 198.18.11.2 ┐
//	core ───┼── ms2 198.18.12.2 ┼── lo 198.18.1.2/32 (anycast)
//	        └── ms3 198.18.13.2 ┘
func ClusterTopology(name string) *lab.Topology {
	t := Topology(name)
	t.Nodes = slices.DeleteFunc(t.Nodes, func(n lab.Node) bool { return n.Name == "ms" })
	t.Links = slices.DeleteFunc(t.Links, func(l lab.Link) bool { return l.B == "ms" })
	core := t.Node("core")
	for i, ms := range ClusterNodes {
		own, gw := clusterAddr(i), fmt.Sprintf("198.18.1%d.1", i+1)
		core.Routes = append(core.Routes, lab.Via(msAddr+"/32", own).WithMetric(10*(i+1)))
		t.Nodes = append(t.Nodes, lab.Node{Name: ms, Role: "ms", Loopbacks: []netip.Prefix{netip.MustParsePrefix(msAddr + "/32")},
			Routes: []lab.Route{lab.Via("0.0.0.0/0", gw)}, Etcd: &lab.Etcd{}})
		t.Links = append(t.Links, lab.Link{A: "core", AName: "to-" + ms, B: ms, BName: "eth0",
			AAddrs: []netip.Prefix{netip.MustParsePrefix(gw + "/24")}, BAddrs: []netip.Prefix{netip.MustParsePrefix(own + "/24")}})
	}
	return t
}

// ClusterNodes are the Map-Server/Map-Resolver nodes of ClusterTopology,
// in the core's order of preference.
var ClusterNodes = []string{"ms1", "ms2", "ms3"}

// clusterAddr is the own address of ClusterNodes[i].
func clusterAddr(i int) string { return fmt.Sprintf("198.18.1%d.2", i+1) }

// clusterLeaseTTL is how long a dead node's registrations outlive it in
// the cluster (the store's lease).
const clusterLeaseTTL = 5 * time.Second

// clusterMS is the configuration of ClusterNodes[i]: msConfig on its own
// address and the anycast one, with the etcd store.
func clusterMS(i int, endpoints []string) string {
	return strings.NewReplacer("control: {addresses: [198.18.1.2]}", fmt.Sprintf("control: {addresses: [%s, %s]}", clusterAddr(i), msAddr),
		"map-server:\n", fmt.Sprintf("map-server:\n  store: {etcd: {endpoints: [%s], node: %s, lease-ttl: %v, dial-timeout: 2s}}\n",
			strings.Join(endpoints, ", "), ClusterNodes[i], clusterLeaseTTL)).Replace(msConfig)
}

// clusterMapServers is what an xTR registers with in a cluster: every
// node's own address.
func clusterMapServers(cfg string) string {
	const one = "map-servers: [{address: 198.18.1.2, "
	i := strings.Index(cfg, one)
	if i < 0 {
		return cfg
	}
	end := i + strings.Index(cfg[i:], "}]")
	entry := cfg[i+len(one) : end] // key-id ... secret
	var servers []string
	for j := range ClusterNodes {
		servers = append(servers, fmt.Sprintf("{address: %s, %s}", clusterAddr(j), entry))
	}
	return cfg[:i] + "map-servers: [" + strings.Join(servers, ", ") + "]" + cfg[end+2:]
}

// config is the lispd configuration of a LISP node; endpoints, when set,
// are the etcd members of ClusterTopology.
func config(node string, m Mobility, endpoints []string) string {
	if len(endpoints) > 0 {
		if i := slices.Index(ClusterNodes, node); i >= 0 {
			return clusterMS(i, endpoints)
		}
		return clusterMapServers(config(node, m, nil))
	}
	switch node {
	case "ms":
		return msConfig
	case "xc":
		return "xtr:" + xtrCommon + fmt.Sprintf("  subscribe: %v\n", m.Subscribe) +
			`  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: client-key}]
  database:
    - {eid-prefix: 198.51.100.0/24, locators: [{address: 198.18.2.2}]}
    - {eid-prefix: "2001:db8:c::/64", locators: [{address: 198.18.2.2}]}
`
	case "dc1a", "dc1b":
		return "xtr:" + xtrCommon + dc1Database + vmRange("lan0", m)
	case "dc2":
		iface := "lan0"
		if m.Mode == "extended-subnet" {
			iface = "ext0"
		}
		return "xtr:" + xtrCommon + `  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: dc2-key}]
  database:
    - {eid-prefix: 203.0.113.128/25, locators: [{address: 198.18.6.2}]}
` + vmRange(iface, m)
	case "px":
		return `
xtr:
  itr: true
  map-resolvers: [198.18.1.2]
  rloc-probing: {interval: 1s}
  tun-addresses: [198.18.5.2/32]
pitr: {eid-prefixes: [198.51.100.0/24, 203.0.113.0/24]}
petr: {allowed-source-eids: [{prefix: 198.51.100.0/24}, {prefix: 203.0.113.0/24}]}
`
	}
	return ""
}

// lispNodes run lispd, in start order.
var lispNodes = []string{"ms", "xc", "dc1a", "dc1b", "dc2", "px"}

// clusterLispNodes run lispd in ClusterTopology, in start order.
var clusterLispNodes = append(slices.Clone(ClusterNodes), lispNodes[1:]...)
