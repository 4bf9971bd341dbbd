package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/lispd/lispd/internal/config"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
	"github.com/vishvananda/netlink"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// Addresses of the benchmark network:
//
//	ha ──── xa ──── core ──── xb ──── hb
//	             │
//	             ms
//
// Site A is 198.51.100.0/24 (ha 198.51.100.10), site B 203.0.113.0/24
// (hb 203.0.113.10); the RLOC network is 198.18.0.0/15 (xa 198.18.2.2,
// xb 198.18.3.2, Map-Server 198.18.1.2). The VXLAN phase numbers its
// overlay link 192.0.2.0/30.
const (
	eidA, eidB   = "198.51.100.0/24", "203.0.113.0/24"
	hostB        = "203.0.113.10"
	rlocA, rlocB = "198.18.2.2", "198.18.3.2"
	coreA, coreB = "198.18.2.1", "198.18.3.1"
	msAddr       = "198.18.1.2"
)

// topology is the network of every phase; the EID routes of each phase
// come and go on top of it. Its routers forward IPv4 only.
func topology(name string) *lab.Topology {
	b := lab.NewBuilder(name)
	b.Forwarding = map[string]string{"net.ipv4.ip_forward": "1"}
	under := func(via string) lab.Route { return lab.Via("198.18.0.0/15", via) }
	def := func(via string) lab.Route { return lab.Via("0.0.0.0/0", via) }
	b.Node("core", "router", true)
	b.Node("ms", "ms", false, def("198.18.1.1"))
	b.Node("xa", "xtr", true, under(coreA))
	b.Node("xb", "xtr", true, under(coreB))
	b.Node("ha", "host", false, def("198.51.100.1"))
	b.Node("hb", "host", false, def("203.0.113.1"))
	b.Link("core", "to-ms", "ms", "eth0", "198.18.1.1/24", msAddr+"/24")
	b.Link("core", "to-xa", "xa", "up0", coreA+"/24", rlocA+"/24")
	b.Link("core", "to-xb", "xb", "up0", coreB+"/24", rlocB+"/24")
	b.Link("xa", "eid0", "ha", "eth0", "198.51.100.1/24", "198.51.100.10/24")
	b.Link("xb", "eid0", "hb", "eth0", "203.0.113.1/24", hostB+"/24")
	return b.T
}

// phase is one way of carrying the EID traffic between xa and xb.
type phase struct {
	name  string
	label string // in the table
	up    func(ctx context.Context) error
	down  func() error
}

func (b *bench) phases() []phase {
	return []phase{
		{name: "plain", label: "plain routing", up: b.plainUp, down: b.plainDown},
		{name: "lisp", label: "LISP (lispd userspace)", up: b.lispUp, down: b.lispDown},
		{name: "ebpf", label: "lispd kernel (eBPF)", up: b.ebpfUp, down: b.lispDown},
		{name: "vxlan", label: "kernel VXLAN", up: b.vxlanUp, down: b.vxlanDown},
	}
}

// route is a static route of one node.
type route struct {
	node, dst, via, dev string
}

func (b *bench) routeOp(r route, add bool) error {
	return b.lab.Do(r.node, func() error {
		nr := &netlink.Route{Dst: ipNet(pfx(r.dst)), Gw: net.IP(ip(r.via).AsSlice())}
		if r.dev != "" {
			l, err := netlink.LinkByName(r.dev)
			if err != nil {
				return err
			}
			nr.LinkIndex = l.Attrs().Index
		}
		if add {
			return netlink.RouteReplace(nr)
		}
		return netlink.RouteDel(nr)
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Plain routing: the xTR nodes route the EID prefixes through core.
var plainRoutes = []route{
	{node: "xa", dst: eidB, via: coreA},
	{node: "core", dst: eidA, via: rlocA},
	{node: "core", dst: eidB, via: rlocB},
	{node: "xb", dst: eidA, via: coreB},
}

func (b *bench) plainUp(ctx context.Context) error {
	for _, r := range plainRoutes {
		if err := b.routeOp(r, true); err != nil {
			return fmt.Errorf("%s: route %s: %w", r.node, r.dst, err)
		}
	}
	return b.pingB(ctx, "plain routing", 10*time.Second)
}

// pingB pings hb from ha until three pings in a row are answered.
func (b *bench) pingB(ctx context.Context, via string, limit time.Duration) error {
	return b.eventually(ctx, "ping "+hostB+" from ha through "+via, limit, func() bool {
		return b.lab.ExecContext(ctx, "ha", "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", hostB).Run() == nil
	})
}

func (b *bench) plainDown() error {
	var errs []error
	for _, r := range plainRoutes {
		errs = append(errs, b.routeOp(r, false))
	}
	return errors.Join(errs...)
}

// LISP: a Map-Server/Map-Resolver on ms and lispd xTRs on xa and xb that
// route the remote site's prefix into their TUN. RLOC-probing is off: one
// locator per site, nothing to choose.
const msConfig = `
control: {addresses: [198.18.1.2]}
map-server:
  sites:
    - name: site-a
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-a-key}]
      eid-prefixes: [{prefix: 198.51.100.0/24}]
    - name: site-b
      keys: [{key-id: 1, algorithm: hmac-sha-256-128, secret: site-b-key}]
      eid-prefixes: [{prefix: 203.0.113.0/24}]
map-resolver: {}
`

func xtrConfig(site, local, remote, rloc, dataPlane string) string {
	return fmt.Sprintf(`
xtr:
  data-plane: %s
  itr: true
  etr: true
  map-resolvers: [%s]
  map-servers: [{address: %s, key-id: 1, algorithm: hmac-sha-256-128, secret: site-%s-key}]
  register-interval: 5s
  rloc-probing: {interval: 0s}
  eid-interfaces: [eid0]
  eid-routes: [%s]
  database:
    - {eid-prefix: %s, locators: [{address: %s}]}
`, dataPlane, msAddr, msAddr, site, remote, local, rloc)
}

// lispUp runs the LISP phase on lispd's userspace data plane alone,
// ebpfUp with the kernel path in front of it.
func (b *bench) lispUp(ctx context.Context) error { return b.lispdUp(ctx, config.DataPlaneUserspace) }
func (b *bench) ebpfUp(ctx context.Context) error { return b.lispdUp(ctx, config.DataPlaneKernel) }

func (b *bench) lispdUp(ctx context.Context, dataPlane string) error {
	cfgs := []struct{ node, cfg string }{
		{"ms", msConfig},
		{"xa", xtrConfig("a", eidA, eidB, rlocA, dataPlane)},
		{"xb", xtrConfig("b", eidB, eidA, rlocB, dataPlane)},
	}
	for _, c := range cfgs {
		if err := b.startLispd(ctx, c.node, c.cfg); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := b.procs[0].WaitPrefixes(rctx, 2); err != nil { // ms: both sites
		return err
	}
	// The first packets to each side trigger Map-Requests and are held
	// or dropped; ping until the mappings are in both map-caches.
	return b.pingB(ctx, "LISP", 15*time.Second)
}

func (b *bench) startLispd(ctx context.Context, node, cfg string) error {
	path := filepath.Join(b.dir, node+".yaml")
	head := fmt.Sprintf("log: {level: warn}\nadmin: {socket: %s", b.lab.SocketPath(node))
	if b.profileDir != "" && node != "ms" {
		head += ", pprof: " + pprofAddr
	}
	full := head + "}\n" + cfg
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		return err
	}
	p, err := b.lab.StartLispd(node, path, lab.LispdOptions{Binary: b.lispd})
	if err != nil {
		return err
	}
	shareAutogroup(p.PID)
	b.procs = append(b.procs, p)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.WaitReady(ctx)
}

func (b *bench) lispDown() error {
	var errs []error
	for _, p := range b.procs {
		errs = append(errs, p.Stop())
	}
	b.procs = nil
	return errors.Join(errs...)
}

// VXLAN: a kernel vxlan device on each xTR, unicast to the other's RLOC
// (VNI 100, port 4789, UDP checksums on as lispd sends them), numbered
// 192.0.2.1/30 and 192.0.2.2/30, with the remote EID prefix routed
// through it.
var vxlanEnds = []struct {
	node, local, remote, addr, peer, dst string
}{
	{"xa", rlocA, rlocB, "192.0.2.1/30", "192.0.2.2", eidB},
	{"xb", rlocB, rlocA, "192.0.2.2/30", "192.0.2.1", eidA},
}

const vxlanDev = "vx0"

func (b *bench) vxlanUp(ctx context.Context) error {
	for _, e := range vxlanEnds {
		err := b.lab.Do(e.node, func() error {
			up, err := netlink.LinkByName("up0")
			if err != nil {
				return err
			}
			vx := &netlink.Vxlan{
				LinkAttrs:    netlink.LinkAttrs{Name: vxlanDev},
				VxlanId:      100,
				VtepDevIndex: up.Attrs().Index,
				SrcAddr:      net.IP(ip(e.local).AsSlice()),
				Group:        net.IP(ip(e.remote).AsSlice()), // unicast: the default remote
				Port:         4789,
				UDPCSum:      true,
			}
			if err := netlink.LinkAdd(vx); err != nil {
				return err
			}
			link, err := netlink.LinkByName(vxlanDev)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(pfx(e.addr))}); err != nil {
				return err
			}
			return netlink.LinkSetUp(link)
		})
		if err != nil {
			return fmt.Errorf("%s: vxlan: %w", e.node, err)
		}
		if err := b.routeOp(route{node: e.node, dst: e.dst, via: e.peer, dev: vxlanDev}, true); err != nil {
			return fmt.Errorf("%s: route %s: %w", e.node, e.dst, err)
		}
	}
	return b.pingB(ctx, "VXLAN", 10*time.Second)
}

func (b *bench) vxlanDown() error {
	var errs []error
	for _, e := range vxlanEnds {
		errs = append(errs, b.lab.Do(e.node, func() error {
			l, err := netlink.LinkByName(vxlanDev)
			if err != nil {
				return err
			}
			return netlink.LinkDel(l) // its routes go with it
		}))
	}
	return errors.Join(errs...)
}

func (b *bench) eventually(ctx context.Context, what string, limit time.Duration, f func() bool) error {
	if err := poll.Until(ctx, limit, 100*time.Millisecond, f); err != nil {
		return fmt.Errorf("%w waiting for %s", err, what)
	}
	return nil
}
