package nat

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/oor"
	"github.com/lispd/lispd/internal/poll"
	"github.com/lispd/lispd/internal/tshark"
	"github.com/lispd/lispd/wire"
	"github.com/vishvananda/netlink"
)

// sitesTopology is the network of the traffic tests:
//
//	hp ── xp ──┐                         public site P: 198.51.100.0/24, 2001:db8:a::/64
//	           core ── ms                MS/MR + RTR (198.18.1.2)
//	hn1 ── xn1 ── nat1 ──┘ │             site N1 behind an endpoint-independent NAT: 203.0.113.0/24, 2001:db8:b::/64
//	hn2 ── xn2 ── nat2 ────┘             site N2 behind a symmetric NAT: 192.0.2.0/24, 2001:db8:c::/64
//
// The public RLOC network is 198.18.1-4.0/24; the NATs' inside links are
// 198.19.1.0/24 and 198.19.2.0/24, which core does not route.
func sitesTopology(udpTimeout int) *lab.Topology {
	b := lab.NewBuilder("natt")
	under := func(via string) lab.Route { return lab.Via("198.18.0.0/15", via) }
	b.Node("core", "router", true)
	b.Node("ms", "ms", false, under("198.18.1.1"))
	b.Node("xp", "xtr", true, under("198.18.2.1"))
	b.Node("nat1", "nat", true, lab.Via("0.0.0.0/0", "198.18.3.1"))
	b.Node("nat2", "nat", true, lab.Via("0.0.0.0/0", "198.18.4.1"))
	// The default routes are for Open Overlay Router, which uses no
	// interface without one; lispd's EID routes (/1) are more specific.
	b.Node("xn1", "xtr", true, under("198.19.1.1"), lab.Via("0.0.0.0/0", "198.19.1.1"))
	b.Node("xn2", "xtr", true, under("198.19.2.1"), lab.Via("0.0.0.0/0", "198.19.2.1"))
	b.Node("hp", "host", false, lab.Via("0.0.0.0/0", "198.51.100.1"), lab.Via("::/0", "2001:db8:a::1"))
	b.Node("hn1", "host", false, lab.Via("0.0.0.0/0", "203.0.113.1"), lab.Via("::/0", "2001:db8:b::1"))
	b.Node("hn2", "host", false, lab.Via("0.0.0.0/0", "192.0.2.1"), lab.Via("::/0", "2001:db8:c::1"))
	b.Link("core", "to-ms", "ms", "eth0", "198.18.1.1/24", "198.18.1.2/24")
	b.Link("core", "to-xp", "xp", "up0", "198.18.2.1/24", "198.18.2.2/24")
	b.Link("core", "to-nat1", "nat1", "out0", "198.18.3.1/24", "198.18.3.2/24")
	b.Link("core", "to-nat2", "nat2", "out0", "198.18.4.1/24", "198.18.4.2/24")
	b.Link("nat1", "in0", "xn1", "up0", "198.19.1.1/24", "198.19.1.2/24")
	b.Link("nat2", "in0", "xn2", "up0", "198.19.2.1/24", "198.19.2.2/24")
	b.Link("xp", "eid0", "hp", "eth0", "198.51.100.1/24 2001:db8:a::1/64", "198.51.100.10/24 2001:db8:a::10/64")
	b.Link("xn1", "eid0", "hn1", "eth0", "203.0.113.1/24 2001:db8:b::1/64", "203.0.113.10/24 2001:db8:b::10/64")
	b.Link("xn2", "eid0", "hn2", "eth0", "192.0.2.1/24 2001:db8:c::1/64", "192.0.2.10/24 2001:db8:c::10/64")
	for i := range b.T.Nodes {
		switch b.T.Nodes[i].Name {
		case "nat1":
			b.T.Nodes[i].NAT = &lab.NAT{Outside: "out0", UDPTimeout: udpTimeout}
		case "nat2":
			b.T.Nodes[i].NAT = &lab.NAT{Outside: "out0", Symmetric: true, UDPTimeout: udpTimeout}
		}
	}
	return b.T
}

const (
	rtrAddr          = "198.18.1.2"
	registerInterval = 3 * time.Second // the NATed xTRs' refresh of their NAT state
	natUDPTimeout    = 8               // seconds: shorter than the test runs, longer than the refresh
)

// rtrConfig (a format: its data plane): Map-Server, Map-Resolver and RTR in one lispd, whose ITR
// side resolves what the NATed sites send to the rest of the world.
//
// The Map-Server signs the Map-Notifies it sends the RTR (the MS-RTR
// authentication data), and the RTR takes no others: both halves run on
// every registration through the RTR, OOR's included.
const rtrConfig = `control: {addresses: [198.18.1.2]}
map-server:
  rtrs: [198.18.1.2]
  rtr-keys: [{address: 198.18.1.2, key-id: 7, algorithm: hmac-sha-1-96, secret: ms-rtr-key}]
  sites:
    - name: public
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: public-key}]
      # 2001:db8:d::/64 is nat2's too: TestMovedNotifyThroughRTR moves it.
      eid-prefixes: [{prefix: 198.51.100.0/24}, {prefix: "2001:db8:a::/64"}, {prefix: "2001:db8:d::/64", accept-more-specifics: true}]
    - name: nat1
      # key-id 0, HMAC-SHA-1-96: what Open Overlay Router can do (oor_test.go).
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: nat1-key}, {key-id: 0, algorithm: hmac-sha-1-96, secret: nat1-key}]
      eid-prefixes: [{prefix: 203.0.113.0/24}, {prefix: "2001:db8:b::/64"}]
    - name: nat2
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: nat2-key}]
      eid-prefixes: [{prefix: 192.0.2.0/24}, {prefix: "2001:db8:c::/64"}, {prefix: "2001:db8:d::/64", accept-more-specifics: true}]
map-resolver: {}
rtr:
  map-servers: [198.18.1.2]
  map-server-keys: [{address: 198.18.1.2, key-id: 7, algorithm: hmac-sha-1-96, secret: ms-rtr-key}]
xtr:
  itr: true
  data-plane: %s
  map-resolvers: [198.18.1.2]
`

// siteConfig is an xTR's configuration: rloc its RLOC, key its site's
// secret, nat whether it runs NAT traversal.
func siteConfig(rloc, key string, nat bool, eids ...string) string {
	c := fmt.Sprintf(`xtr:
  itr: true
  etr: true
  data-plane: %s
  map-resolvers: [198.18.1.2]
  register-interval: %s
  eid-interfaces: [eid0]
  eid-routes: [0.0.0.0/1, 128.0.0.0/1, "2000::/3"]
  map-servers: [{address: 198.18.1.2, key-id: 1, algorithm: hmac-sha-256-128, secret: %s}]
  database:
`, dataPlane(), registerInterval, key)
	for _, e := range eids {
		c += fmt.Sprintf("    - {eid-prefix: %q, locators: [{address: %s}]}\n", e, rloc)
	}
	if nat {
		c += "  nat-traversal: {enabled: true, info-interval: 10s}\n"
	}
	return c
}

// dataPlane is the xTRs' and the RTR's data path: $LISPD_DATAPLANE
// (LISPD_DATAPLANE=kernel runs the suite on the kernel path), else the
// userspace one.
func dataPlane() string {
	if dp := os.Getenv(lab.DataPlaneEnv); dp != "" {
		return dp
	}
	return "userspace"
}

type natNet struct {
	t       *testing.T
	lab     *lab.Lab
	procs   map[string]*lab.LispdProc
	capture *coreCapture // on core, from before any lispd started; nil: none
	inside  *coreCapture // on xn2, inside the symmetric NAT; nil: none
	oor     *oor.Proc    // Open Overlay Router on xn1, if it runs there
}

func startNATNet(t *testing.T, capture bool) *natNet { return startNATNetOOR(t, capture, nil) }

// startNATNetOOR is startNATNet with Open Overlay Router as the xTR of
// site N1 when oc is not nil.
func startNATNetOOR(t *testing.T, capture bool, oc *oor.Config) *natNet {
	return startNATNetWith(t, capture, oc, nil)
}

// startNATNetWith is startNATNetOOR with more EID-prefixes in the
// databases of some xTRs (extra, by node).
func startNATNetWith(t *testing.T, capture bool, oc *oor.Config, extra map[string][]string) *natNet {
	l := lab.NewTest(t, sitesTopology(natUDPTimeout))
	n := &natNet{t: t, lab: l, procs: map[string]*lab.LispdProc{}}
	if capture {
		n.capture = startCapture(t, l, "core", filepath.Join(t.TempDir(), "core.pcap"))
		if n.capture != nil {
			n.inside = startCapture(t, l, "xn2", filepath.Join(t.TempDir(), "xn2.pcap"))
		}
	}
	// All at once: each takes seconds to start on a loaded machine.
	dir := t.TempDir()
	for node, cfg := range map[string]string{
		"ms":  fmt.Sprintf(rtrConfig, dataPlane()),
		"xp":  siteConfig("198.18.2.2", "public-key", false, append([]string{"198.51.100.0/24", "2001:db8:a::/64"}, extra["xp"]...)...),
		"xn1": siteConfig("198.19.1.2", "nat1-key", true, append([]string{"203.0.113.0/24", "2001:db8:b::/64"}, extra["xn1"]...)...),
		"xn2": siteConfig("198.19.2.2", "nat2-key", true, append([]string{"192.0.2.0/24", "2001:db8:c::/64"}, extra["xn2"]...)...),
	} {
		if node == "xn1" && oc != nil {
			p, err := oor.Start(l, node, "oor", *oc)
			if err != nil {
				t.Fatal(err)
			}
			n.oor = p
			continue
		}
		path, err := l.WriteLispdConfig(dir, node, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n.procs[node], err = l.StartLispd(node, path, lab.LispdOptions{Binary: lispdBin}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range n.procs {
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var xs []adminapi.NATedXTR
	if err := poll.Until(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		xs = n.rtrView()
		return len(xs) == 2 && xs[0].State == "verified" && xs[1].State == "verified"
	}); err != nil {
		t.Fatalf("the RTR does not serve both NATed xTRs: %+v\n%s", xs, n.procs["ms"].LogTail(30))
	}
	for _, x := range xs {
		t.Logf("RTR serves %s: private %s translated %s", x.XTRID, x.Private, x.Translated)
	}
	return n
}

func (n *natNet) rtrView() []adminapi.NATedXTR {
	v, _ := adminapi.Query(context.Background(), n.procs["ms"].Socket, time.Second, (*adminapi.Client).RTR)
	return v
}

// counter sums a counter of a node's lispd over its label sets matching
// label (name=value; "" matches all).
func (n *natNet) counter(node, subsystem, name, label, value string) uint64 {
	cs, err := adminapi.Query(context.Background(), n.procs[node].Socket, 2*time.Second, (*adminapi.Client).Statistics)
	if err != nil {
		n.t.Fatal(err)
	}
	var v uint64
	for _, c := range cs {
		if c.Subsystem == subsystem && c.Name == name && (label == "" || c.Labels[label] == value) {
			v += c.Value
		}
	}
	return v
}

// reach checks ping both ways between host pairs, IPv4 and IPv6.
func (n *natNet) reach(pairs [][2]string) {
	n.t.Helper()
	addrs := map[string][2]string{
		"hp":  {"198.51.100.10", "2001:db8:a::10"},
		"hn1": {"203.0.113.10", "2001:db8:b::10"},
		"hn2": {"192.0.2.10", "2001:db8:c::10"},
	}
	for _, p := range pairs {
		for _, fam := range []int{0, 1} {
			if err := n.lab.Ping(p[0], addrs[p[1]][fam]); err != nil {
				n.t.Errorf("%s → %s: %v", p[0], p[1], err)
			}
		}
	}
}

// TestTrafficThroughNAT: hosts behind an endpoint-independent and behind
// a symmetric NAT reach a public site and each other, and are reached,
// through the RTR (IPv4 and IPv6 EIDs over IPv4 RLOCs, ping and TCP); the
// NAT state stays open past the NAT's UDP timeout because the ECM'd
// Map-Registers refresh it; after both NATs lose their mappings the sites
// are reachable again within one register-interval; the RTR counts each
// xTR's packets; tshark finds nothing malformed on the core.
func TestTrafficThroughNAT(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	n := startNATNet(t, true)
	// Both ways: a NATed site is reached only through the state its
	// registration opened.
	n.reach([][2]string{{"hn1", "hp"}, {"hp", "hn1"}, {"hn2", "hp"}, {"hp", "hn2"}, {"hn1", "hn2"}, {"hn2", "hn1"}})
	for _, c := range []struct {
		srv, cli, addr string
	}{
		{"hp", "hn1", "198.51.100.10:7001"}, {"hn1", "hp", "203.0.113.10:7002"},
		{"hn2", "hp", "192.0.2.10:7003"}, {"hn1", "hn2", "[2001:db8:b::10]:7004"}, {"hp", "hn2", "[2001:db8:a::10]:7005"},
	} {
		if err := n.lab.TCPEcho(c.srv, c.cli, netip.MustParseAddrPort(c.addr)); err != nil {
			t.Errorf("TCP %s → %s (%s): %v", c.cli, c.srv, c.addr, err)
		}
	}
	for _, x := range n.rtrView() {
		if x.PacketsToXTR == 0 || x.PacketsFromXTR == 0 {
			t.Errorf("RTR counters of %s: %d to, %d from; want both > 0", x.Translated, x.PacketsToXTR, x.PacketsFromXTR)
		}
		t.Logf("RTR relayed %d packets to %s and %d from it", x.PacketsToXTR, x.Translated, x.PacketsFromXTR)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Quiet for twice the NATs' UDP timeout: only the ECM'd Map-Registers
	// keep the mappings; then the public site reaches both NATed sites.
	time.Sleep(2 * natUDPTimeout * time.Second)
	n.reach([][2]string{{"hp", "hn1"}, {"hp", "hn2"}})

	// The NATs reboot: every mapping gone. Measure how long until the
	// public site reaches each NATed site again.
	if err := n.lab.FlushNAT("nat1"); err != nil {
		t.Fatal(err)
	}
	if err := n.lab.FlushNAT("nat2"); err != nil {
		t.Fatal(err)
	}
	flushed := time.Now()
	for _, h := range []string{"203.0.113.10", "192.0.2.10"} {
		ctx, cancel := context.WithTimeout(context.Background(), 4*registerInterval)
		err := poll.Until(ctx, 4*registerInterval, 50*time.Millisecond, func() bool {
			return n.lab.Exec("hp", "ping", "-n", "-c", "1", "-W", "0.2", h).Run() == nil
		})
		cancel()
		rec := time.Since(flushed)
		if err != nil {
			t.Fatalf("%s unreachable %v after the NAT reboot", h, rec)
		}
		t.Logf("NAT reboot: %s reachable again after %v (register-interval %v)", h, rec.Round(10*time.Millisecond), registerInterval)
		if rec > registerInterval+time.Second {
			t.Errorf("recovery of %s took %v, more than one register-interval (%v)", h, rec, registerInterval)
		}
	}
	if n.capture == nil {
		t.Log("no capture: tshark check skipped")
		return
	}
	n.capture.stop()
	// Every NAT traversal message is in it, the RTR's Data-Map-Notify
	// included, and tshark finds none of them (nor anything else) malformed.
	got := natMessages(t, n.capture.path)
	t.Logf("capture on core: %v", got)
	for _, k := range []string{"info-request", "info-reply", "ecm-map-register-to-rtr", "data-map-notify"} {
		if got[k] == 0 {
			t.Errorf("no %s in the capture", k)
		}
	}
	findings, err := tshark.Check(n.capture.path)
	if err != nil {
		t.Error(err)
	}
	for _, f := range findings {
		t.Errorf("tshark: %s", f)
	}
	// On the wire inside the symmetric NAT, before it translates them,
	// the xTR's ECM'd Map-Registers leave from its data port 4341 (the
	// NAT then picks another port, which the RTR sends data back to).
	n.inside.stop()
	in := natMessages(t, n.inside.path)
	t.Logf("capture on xn2: %v", in)
	if in["ecm-map-register-to-rtr"] == 0 || in["ecm-map-register-to-rtr-from-4341"] != in["ecm-map-register-to-rtr"] {
		t.Errorf("inside the NAT: %d of %d ECM'd Map-Registers from port 4341, want all",
			in["ecm-map-register-to-rtr-from-4341"], in["ecm-map-register-to-rtr"])
	}
}

// TestRTRIsNoOpenRelay: the RTR relays only for registered EIDs. A NATed
// xTR whose registration the RTR verified sends a packet with a source
// EID it did not register, and a host that is no xTR sends one with a
// source EID of a NATed site: both are dropped, counted by reason, and
// never reach the destination; the same packet with the xTR's own source
// EID does (so the listener would see a relayed one).
func TestRTRIsNoOpenRelay(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	n := startNATNet(t, false)
	// The RTR resolves the public site first: the first packet would
	// only wait in its miss queue.
	if err := n.lab.Ping("hn1", "198.51.100.10"); err != nil {
		t.Fatal(err)
	}
	// The RTR serves xn1 on Map-Notifies whose MS-RTR authentication data
	// verified (rtrConfig keys the pair): none was refused.
	if got := n.counter("ms", "rtr", "map_notifies_received", "", ""); got == 0 {
		t.Error("the RTR took no Map-Notify")
	}
	for _, r := range []string{"ms-rtr-auth-failed", "ms-rtr-auth-missing"} {
		if got := n.counter("ms", "rtr", "messages_dropped", "reason", r); got != 0 {
			t.Errorf("the RTR dropped %d of its Map-Server's Map-Notifies (%s)", got, r)
		}
	}
	var ln *net.UDPConn
	if err := n.lab.Do("hp", func() (err error) {
		ln, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.10:9999")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := lab.CountDatagrams(ln)
	send := func(node, from, innerSrc string) {
		t.Helper()
		pkt := lispUDP(netip.MustParseAddr(innerSrc), netip.MustParseAddr("198.51.100.10"), 9999)
		if err := n.lab.Do(node, func() error {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 0)),
				net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(rtrAddr), wire.DataPort)))
			if err != nil {
				return err
			}
			defer c.Close()
			for range 5 {
				if _, err := c.Write(pkt); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	drops := func(reason string) uint64 { return n.counter("ms", "dataplane", "packets_dropped", "reason", reason) }

	spoofed, stranger := drops("rtr-source-eid-not-registered"), drops("rtr-not-registered")
	send("xn1", "198.19.1.2", "198.51.100.99") // the xTR, a source EID it did not register
	send("core", "198.18.1.1", "203.0.113.10") // not the xTR, a source EID of its site
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := poll.Until(ctx, 5*time.Second, 50*time.Millisecond, func() bool {
		return drops("rtr-source-eid-not-registered") >= spoofed+5 && drops("rtr-not-registered") >= stranger+5
	}); err != nil {
		t.Errorf("drops: rtr-source-eid-not-registered %d → %d, rtr-not-registered %d → %d; want +5 each",
			spoofed, drops("rtr-source-eid-not-registered"), stranger, drops("rtr-not-registered"))
	}
	time.Sleep(500 * time.Millisecond)
	if g := got.Load(); g != 0 {
		t.Errorf("the public host received %d relayed packets with forged sources", g)
	}
	// The control: the xTR's own source EID goes through.
	send("xn1", "198.19.1.2", "203.0.113.10")
	if err := poll.Until(ctx, 5*time.Second, 50*time.Millisecond, func() bool { return got.Load() > 0 }); err != nil {
		t.Errorf("the xTR's packet with its own source EID was not relayed either")
	}
}

// lispUDP builds a LISP data packet (header, instance 0) carrying an IPv4
// UDP datagram from src to dst:port.
func lispUDP(src, dst netip.Addr, port uint16) []byte {
	payload := []byte("forged")
	b := make([]byte, 8+20+8+len(payload))
	wire.DataHeader(b[:8]).Put(wire.DataI|wire.DataN, 0x123456, 0)
	ip := b[8:28]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], wire.ChecksumFold(wire.ChecksumAdd(0, ip)))
	u := b[28:]
	binary.BigEndian.PutUint16(u[0:], 40000)
	binary.BigEndian.PutUint16(u[2:], port)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	return b
}

// TestNATRenumbered: the endpoint-independent NAT's public address
// changes (a new DHCP lease). The site's next ECM'd Map-Register leaves
// from the new address, the RTR takes it once the Map-Server accepts the
// registration, and traffic both ways flows again; the outage is logged
// and stays within one register-interval (plus a second of slack).
func TestNATRenumbered(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	n := startNATNet(t, false)
	n.reach([][2]string{{"hp", "hn1"}, {"hn1", "hp"}})
	if t.Failed() {
		t.FailNow()
	}
	const renumbered = "198.18.3.3"
	start := time.Now()
	if err := renumber(n.lab, "nat1", "out0", "198.18.3.2/24", renumbered+"/24"); err != nil {
		t.Fatal(err)
	}
	// The default route went with the old address.
	if err := n.lab.Do("nat1", func() error {
		return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("198.18.3.1")})
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*registerInterval)
	defer cancel()
	ping := func(from, to string) bool {
		return n.lab.Exec(from, "ping", "-n", "-c", "1", "-W", "0.2", to).Run() == nil
	}
	if err := poll.Until(ctx, 6*registerInterval, 50*time.Millisecond, func() bool {
		return ping("hp", "203.0.113.10") && ping("hn1", "198.51.100.10")
	}); err != nil {
		t.Fatalf("the site is unreachable %v after its NAT was renumbered: %+v", time.Since(start), n.rtrView())
	}
	outage := time.Since(start)
	t.Logf("NAT renumbered to %s: traffic both ways again after %v (register-interval %v)", renumbered,
		outage.Round(10*time.Millisecond), registerInterval)
	if outage > registerInterval+time.Second {
		t.Errorf("outage %v: more than one register-interval (%v)", outage, registerInterval)
	}
	found := false
	for _, x := range n.rtrView() {
		found = found || x.Translated.Addr() == netip.MustParseAddr(renumbered)
	}
	if !found {
		t.Errorf("the RTR does not send to %s: %+v", renumbered, n.rtrView())
	}
	n.reach([][2]string{{"hp", "hn1"}, {"hn1", "hp"}, {"hn1", "hn2"}})
}

// TestMovedNotifyThroughRTR: the public site's xTR and the xTR behind the
// symmetric NAT both register 2001:db8:d::/64, which their sites share,
// so it moves between them at every refresh. Each move sends the xTR
// that lost it an unsolicited Map-Notify; until that xTR acknowledges,
// its own refresh of the prefix is stale and cannot take it back. The
// NATed xTR's comes through the RTR (signed for it, passed on as a
// Data-Map-Notify through the NAT). Once the RTR has passed one on, the
// prefix must go back to the NATed xTR and away again — which needs that
// xTR's ack to have reached the Map-Server — and the next one must come
// through the RTR too. Sent to the xTR's private address, as before, none
// came through the RTR.
func TestMovedNotifyThroughRTR(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables)")
	}
	shared := []string{"2001:db8:d::/64"}
	n := startNATNetWith(t, false, nil, map[string][]string{"xp": shared, "xn2": shared})
	moves := func() uint64 { return n.counter("ms", "map_server", "registrations_moved", "", "") }
	relayed := func() uint64 { return n.counter("ms", "rtr", "unsolicited_map_notifies_relayed", "", "") }
	wait := func(what string, done func() bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := poll.Until(ctx, 30*time.Second, 200*time.Millisecond, done); err != nil {
			t.Fatalf("%s: moves %d, unsolicited Map-Notifies relayed by the RTR %d\n%s", what, moves(), relayed(), n.procs["ms"].LogTail(30))
		}
	}
	wait("no moved Map-Notify through the RTR", func() bool { return relayed() >= 1 })
	m0 := moves()
	wait("the prefix did not move back and away again", func() bool { return moves() >= m0+2 && relayed() >= 2 })
	t.Logf("moves %d, moved Map-Notifies %d, acks %d, relayed by the RTR %d", moves(),
		n.counter("ms", "map_server", "moved_notifies_sent", "", ""), n.counter("ms", "map_server", "notify_acks_received", "", ""), relayed())
	for _, r := range []string{"ms-rtr-auth-failed", "ms-rtr-auth-missing"} {
		if v := n.counter("ms", "rtr", "messages_dropped", "reason", r); v != 0 {
			t.Errorf("RTR refused %d Map-Notifies (%s)", v, r)
		}
	}
}
