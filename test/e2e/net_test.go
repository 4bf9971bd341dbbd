package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/tshark"
)

// twoSites is the network of the tunnel-router tests:
//
//	ha ── xa ── core ── xb ── hb        site A (198.51.100.0/24, 2001:db8:a::/64)
//	            │ │ └─(2nd link)─ xb     site B (203.0.113.0/24, 2001:db8:b::/64), two RLOCs
//	           ms px ── (core) ── nl     Map-Server/Resolver; PxTR; non-LISP host 192.0.2.10
//
// The RLOC network is 198.18.0.0/15 and 2001:db8:ff::/48; core routes the
// EID prefixes to the PxTR, which attracts them for non-LISP hosts.
func twoSites() *lab.Topology {
	b := lab.NewBuilder("e2e")
	def4 := func(via string) lab.Route { return lab.Via("0.0.0.0/0", via) }
	def6 := func(via string) lab.Route { return lab.Via("::/0", via) }
	under4 := func(via string, metric int) lab.Route { return lab.Via("198.18.0.0/15", via).WithMetric(metric) }
	under6 := func(via string, metric int) lab.Route { return lab.Via("2001:db8:ff::/48", via).WithMetric(metric) }
	b.Node("core", "router", true,
		lab.Via("198.51.100.0/24", "198.18.5.2"), lab.Via("203.0.113.0/24", "198.18.5.2"),
		lab.Via("2001:db8:a::/64", "2001:db8:ff:5::2"), lab.Via("2001:db8:b::/64", "2001:db8:ff:5::2"))
	b.Node("ms", "ms", false, def4("198.18.1.1"), def6("2001:db8:ff:1::1"))
	b.Node("xa", "xtr", true, under4("198.18.2.1", 0), under6("2001:db8:ff:2::1", 0))
	b.Node("xb", "xtr", true, under4("198.18.3.1", 10), under4("198.18.4.1", 20), under6("2001:db8:ff:3::1", 10), under6("2001:db8:ff:4::1", 20))
	b.Node("px", "pxtr", true, under4("198.18.5.1", 0), under6("2001:db8:ff:5::1", 0),
		lab.Via("192.0.2.0/24", "198.18.5.1"), lab.Via("2001:db8:100::/64", "2001:db8:ff:5::1"))
	b.Node("ha", "host", false, def4("198.51.100.1"), def6("2001:db8:a::1"))
	b.Node("hb", "host", false, def4("203.0.113.1"), def6("2001:db8:b::1"))
	b.Node("nl", "host", false, def4("192.0.2.1"), def6("2001:db8:100::1"))
	// Instance ID 1000 reuses site A's and site B's prefixes on other hosts.
	b.Node("ha2", "host", false, def4("198.51.100.1"))
	b.Node("hb2", "host", false, def4("203.0.113.1"))
	b.Link("core", "to-ms", "ms", "eth0", "198.18.1.1/24 2001:db8:ff:1::1/64", "198.18.1.2/24 2001:db8:ff:1::2/64")
	b.Link("core", "to-xa", "xa", "up0", "198.18.2.1/24 2001:db8:ff:2::1/64", "198.18.2.2/24 2001:db8:ff:2::2/64")
	b.Link("core", "to-xb1", "xb", "up1", "198.18.3.1/24 2001:db8:ff:3::1/64", "198.18.3.2/24 2001:db8:ff:3::2/64")
	b.Link("core", "to-xb2", "xb", "up2", "198.18.4.1/24 2001:db8:ff:4::1/64", "198.18.4.2/24 2001:db8:ff:4::2/64")
	b.Link("core", "to-px", "px", "eth0", "198.18.5.1/24 2001:db8:ff:5::1/64", "198.18.5.2/24 2001:db8:ff:5::2/64")
	b.Link("core", "to-nl", "nl", "eth0", "192.0.2.1/24 2001:db8:100::1/64", "192.0.2.10/24 2001:db8:100::10/64")
	b.Link("xa", "eid0", "ha", "eth0", "198.51.100.1/24 2001:db8:a::1/64", "198.51.100.10/24 2001:db8:a::10/64")
	b.Link("xb", "eid0", "hb", "eth0", "203.0.113.1/24 2001:db8:b::1/64", "203.0.113.10/24 2001:db8:b::10/64")
	// The xTR side of these links gets its address once lispd has moved
	// the interface into the instance's VRF (the lab refuses one address
	// twice on a node: only the VRF makes that right).
	// MTU 1400: without kernel VRFs (policy rules instead) the xTR
	// kernel's own ICMP "too big" for this instance would follow the main
	// table to the instance-0 host, so the links stay below the TUN MTU.
	b.Link("xa", "eid1", "ha2", "eth0", "", "198.51.100.10/24")
	b.Link("xb", "eid1", "hb2", "eth0", "", "203.0.113.10/24")
	t := b.T
	t.Links[len(t.Links)-1].MTU, t.Links[len(t.Links)-2].MTU = 1400, 1400
	return t
}

const msConfig = `
control: {addresses: [198.18.1.2, "2001:db8:ff:1::2"]}
map-server:
  sites:
    - name: site-a
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-a-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}, {prefix: "2001:db8:a::/64"}, {prefix: 198.51.100.0/24, instance-id: 1000}]
    - name: site-b
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-b-key}]
      eid-prefixes: [{prefix: 203.0.113.0/24}, {prefix: "2001:db8:b::/64"}, {prefix: 203.0.113.0/24, instance-id: 1000}]
map-resolver: {}
`

// Everything that is not the RLOC network goes into the TUN: remote EIDs,
// and non-LISP destinations, which negative map-cache entries send to the PETR.
const xtrCommon = `
  itr: true
  etr: true
  map-resolvers: [198.18.1.2]
  register-interval: 5s
  rloc-probing: {interval: 1s}
  petrs: [198.18.5.2]
  eid-routes: [0.0.0.0/1, 128.0.0.0/1, "2000::/3"]
`

var xaConfig = `
xtr:` + xtrCommon + `  eid-interfaces: [eid0, eid1]
  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: site-a-key}]
  database:
    # Site A crosses families on purpose: its IPv4 EIDs are reached over
    # its IPv6 RLOC, its IPv6 EIDs over its IPv4 RLOC.
    - {eid-prefix: 198.51.100.0/24, locators: [{address: 198.18.2.2, priority: 2}, {address: "2001:db8:ff:2::2", priority: 1}]}
    - {eid-prefix: "2001:db8:a::/64", locators: [{address: 198.18.2.2, priority: 1}, {address: "2001:db8:ff:2::2", priority: 2}]}
    - {eid-prefix: 198.51.100.0/24, instance-id: 1000, locators: [{address: 198.18.2.2}]}
  vrfs: [{instance-id: 1000, name: vrf1000, table: 1000, interfaces: [eid1], eid-routes: [0.0.0.0/1, 128.0.0.0/1]}]
`

var xbConfig = `
xtr:` + xtrCommon + `  eid-interfaces: [eid0, eid1]
  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: site-b-key}]
  database:
    - eid-prefix: 203.0.113.0/24
      locators: [{address: 198.18.3.2, weight: 50}, {address: 198.18.4.2, weight: 50}, {address: "2001:db8:ff:3::2", priority: 2}]
    - eid-prefix: "2001:db8:b::/64"
      locators: [{address: 198.18.3.2, weight: 50}, {address: 198.18.4.2, weight: 50}, {address: "2001:db8:ff:3::2", priority: 2}]
    - {eid-prefix: 203.0.113.0/24, instance-id: 1000, locators: [{address: 198.18.3.2}, {address: 198.18.4.2}]}
  vrfs: [{instance-id: 1000, name: vrf1000, table: 1000, interfaces: [eid1], eid-routes: [0.0.0.0/1, 128.0.0.0/1]}]
`

const pxConfig = `
xtr:
  itr: true
  map-resolvers: [198.18.1.2]
  rloc-probing: {interval: 1s}
  tun-addresses: [198.18.5.2/32]
pitr: {eid-prefixes: [198.51.100.0/24, 203.0.113.0/24, "2001:db8:a::/64", "2001:db8:b::/64"]}
petr:
  allowed-source-eids: [{prefix: 198.51.100.0/24}, {prefix: 203.0.113.0/24}, {prefix: "2001:db8:a::/64"}, {prefix: "2001:db8:b::/64"}]
`

// network is a running twoSites lab with lispd in every LISP node.
type network struct {
	t     *testing.T
	lab   *lab.Lab
	dir   string
	procs map[string]*lab.LispdProc // lispd per node
}

func startNetwork(t *testing.T) *network { return startNetworkOn(t, twoSites(), msConfig, nil) }

// startNetworkWith is startNetwork with each node's configuration passed
// through edit first.
func startNetworkWith(t *testing.T, edit func(node, cfg string) string) *network {
	return startNetworkOn(t, twoSites(), msConfig, edit)
}

// startNetworkOn runs twoSites' lispds on topo (twoSites with more nodes)
// with the Map-Server configuration ms, each configuration passed through
// edit when there is one.
func startNetworkOn(t *testing.T, topo *lab.Topology, ms string, edit func(node, cfg string) string) *network {
	return startNetworkHolding(t, topo, ms, edit, 6)
}

// startNetworkHolding is startNetworkOn for configurations whose
// databases register prefixes EID prefixes in all, not twoSites' six.
func startNetworkHolding(t *testing.T, topo *lab.Topology, ms string, edit func(node, cfg string) string, prefixes int) *network {
	if edit == nil {
		edit = func(_, cfg string) string { return cfg }
	}
	l := lab.NewTest(t, topo)
	n := &network{t: t, lab: l, dir: t.TempDir(), procs: map[string]*lab.LispdProc{}}
	hosts := map[string]netip.Addr{"ha": netip.MustParseAddr("198.51.100.10"), "hb": netip.MustParseAddr("203.0.113.10"), "nl": netip.MustParseAddr("192.0.2.10")}
	if err := l.WriteHosts(hosts); err != nil {
		t.Fatal(err)
	}
	for node, cfg := range map[string]string{"ms": ms, "xa": xaConfig, "xb": xbConfig, "px": pxConfig} {
		n.startLispd(node, edit(node, cfg))
	}
	// The instance-1000 gateway address, without a route in the main
	// table: lispd routed the instance's prefixes in its own table.
	n.addAddr("xa", "eid1", "198.51.100.1/24")
	n.addAddr("xb", "eid1", "203.0.113.1/24")
	n.waitPrefixes("ms", prefixes)
	return n
}

func (n *network) startLispd(node, cfg string) {
	if _, err := n.lab.WriteLispdConfig(n.dir, node, cfg); err != nil {
		n.t.Fatal(err)
	}
	n.runLispd(node)
}

// runLispd (re)starts lispd in node with the config written for it.
func (n *network) runLispd(node string) {
	path := filepath.Join(n.dir, node+".yaml")
	p, err := n.lab.StartLispd(node, path, lab.LispdOptions{Binary: lispdBin})
	if err != nil {
		n.t.Fatal(err)
	}
	n.procs[node] = p
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		n.t.Fatal(err)
	}
}

// waitPrefixes waits until the Map-Server on node holds exactly want
// registered EID prefixes.
func (n *network) waitPrefixes(node string, want int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.procs[node].WaitPrefixes(ctx, want); err != nil {
		n.t.Fatal(err)
	}
}

// query calls f on the admin API of a node's lispd, giving it two seconds.
func query[T any](n *network, node string, f func(*adminapi.Client, context.Context) (T, error)) (T, error) {
	return adminapi.Query(context.Background(), n.lab.SocketPath(node), 2*time.Second, f)
}

// clearMapCache empties a node's map-cache.
func (n *network) clearMapCache(node string) error {
	_, err := query(n, node, func(c *adminapi.Client, ctx context.Context) (int, error) {
		return c.ClearMapCache(ctx, adminapi.MapCacheQuery{})
	})
	return err
}

// ping, tcpEcho, addAddr and setIface are the lab's, failing the test
// where nothing else can go on.
func (n *network) ping(node, dst string, extra ...string) error {
	return n.lab.Ping(node, dst, extra...)
}

func (n *network) tcpEcho(srv, cli string, addr netip.AddrPort) error {
	return n.lab.TCPEcho(srv, cli, addr)
}

func (n *network) addAddr(node, iface, prefix string) {
	if err := n.lab.AddAddr(node, iface, prefix); err != nil {
		n.t.Fatal(err)
	}
}

func (n *network) setIface(node, iface string, up bool) {
	if err := n.lab.SetIface(node, iface, up); err != nil {
		n.t.Fatal(err)
	}
}

// capture records the LISP traffic of the core router with tshark; stop
// returns the complete capture's path ("" without tshark).
func (n *network) capture() (stop func() string) {
	if _, err := tshark.Find(); err != nil {
		n.t.Log(err, ": no capture")
		return func() string { return "" }
	}
	path := filepath.Join(os.Getenv("E2E_KEEP"), "core.pcap")
	if os.Getenv("E2E_KEEP") == "" {
		path = filepath.Join(n.dir, "core.pcap")
	}
	c, err := tshark.Start(n.lab, "core", "tshark", path, tshark.LISPFilter)
	if err != nil {
		n.t.Fatal(err)
	}
	return func() string {
		if err := c.Stop(); err != nil {
			n.t.Error(err)
		}
		return path
	}
}

// wiresharkClean fails the test on every frame of a capture Wireshark
// finds malformed or warns about (TCP sequence analysis aside: the traffic
// carried, not its encapsulation).
func wiresharkClean(t *testing.T, path string) {
	t.Helper()
	findings, err := tshark.Check(path)
	if err != nil {
		t.Error(err)
	}
	for _, f := range findings {
		t.Errorf("tshark: %s", f)
	}
}
