//go:build linux

package osnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIPNet(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   string
		ipLen  int
	}{
		{"198.51.100.0/24", "198.51.100.0/24", 4},
		{"192.0.2.77/32", "192.0.2.77/32", 4},
		{"0.0.0.0/0", "0.0.0.0/0", 4},
		{"2001:db8:1::/48", "2001:db8:1::/48", 16},
		{"2001:db8::7/128", "2001:db8::7/128", 16},
	} {
		n := ipnet(netip.MustParsePrefix(tc.prefix))
		// netlink picks the address family from the IP's length, so an
		// IPv4 prefix must not come out as 16 bytes.
		if n.String() != tc.want || len(n.IP) != tc.ipLen || len(n.Mask) != tc.ipLen {
			t.Errorf("ipnet(%s) = %s (IP %d bytes, mask %d), want %s with %d", tc.prefix, n, len(n.IP), len(n.Mask), tc.want, tc.ipLen)
		}
	}
}

// freshNetns moves the test, locked to its OS thread, into a new network
// namespace until it ends. Everything the test creates lives there, so it
// all goes away with the namespace, whether the test passed or not. It
// skips the test when not root. The test must not start subtests or
// goroutines that touch the network: they would run in the host namespace.
func freshNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI, .ci/run, runs the tests as root)")
	}
	runtime.LockOSThread()
	host, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current network namespace: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		host.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		defer host.Close()
		if err := netns.Set(host); err != nil {
			// Leave the thread locked: Go ends it with the goroutine
			// rather than reuse it in the wrong namespace.
			t.Errorf("back to the host network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
}

// iface adds an interface, up, in the test's namespace: one end of a veth
// pair (the other, name+"p", up too), since veth is what every kernel
// that runs lispd's lab has.
func iface(t *testing.T, name string) netlink.Link {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	for _, n := range []string{name + "p", name} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// routes returns the routes out of link in table (0: main) that were not
// made by the kernel, keyed by destination.
func routes(t *testing.T, link netlink.Link, table int) map[string]netlink.Route {
	t.Helper()
	if table == 0 {
		table = syscall.RT_TABLE_MAIN
	}
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: link.Attrs().Index, Table: table},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netlink.Route{}
	for _, r := range rs {
		if r.Dst == nil || r.Protocol == syscall.RTPROT_KERNEL {
			continue // the kernel's own, for the interface's addresses
		}
		out[r.Dst.String()] = r
	}
	return out
}

func keys(m map[string]netlink.Route) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestConfigure(t *testing.T) {
	freshNetns(t)
	link := iface(t, "lisp0")
	if err := netlink.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	cfg := TUNConfig{
		Name:   "lisp0",
		MTU:    1400,
		Addrs:  []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8:1::1/128")},
		Routes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("192.0.2.77/25"), netip.MustParsePrefix("2001:db8:2::/48")},
		Metric: 20,
	}
	c, err := Configure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	link, err = netlink.LinkByName("lisp0")
	if err != nil {
		t.Fatal(err)
	}
	if a := link.Attrs(); a.MTU != 1400 || a.Flags&net.FlagUp == 0 {
		t.Errorf("lisp0: mtu %d, flags %v; want 1400 and up", a.MTU, a.Flags)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, a := range addrs {
		found[a.IPNet.String()] = a.Flags
	}
	if _, ok := found["198.51.100.1/32"]; !ok {
		t.Errorf("addresses %v lack 198.51.100.1/32", found)
	}
	if f, ok := found["2001:db8:1::1/128"]; !ok || f&syscall.IFA_F_NODAD == 0 {
		t.Errorf("addresses %v: want 2001:db8:1::1/128 with nodad", found)
	}
	want := []string{"192.0.2.0/25", "2001:db8:2::/48", "203.0.113.0/24"} // prefixes masked
	got := routes(t, link, 0)
	if !slices.Equal(keys(got), want) {
		t.Fatalf("routes %v, want %v", keys(got), want)
	}
	for dst, r := range got {
		if r.Priority != 20 || (r.Dst.IP.To4() != nil && r.Scope != netlink.SCOPE_LINK) {
			t.Errorf("route %s: metric %d scope %v, want 20 and link", dst, r.Priority, r.Scope)
		}
	}

	// A restart after a crash finds its routes there and replaces them.
	again, err := Configure(cfg)
	if err != nil {
		t.Fatalf("Configure over existing addresses and routes: %v", err)
	}
	if got := routes(t, link, 0); !slices.Equal(keys(got), want) {
		t.Errorf("routes after the second Configure %v, want %v", keys(got), want)
	}

	// Undo takes the routes away, also when one is already gone.
	if err := netlink.RouteDel(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(netip.MustParsePrefix("203.0.113.0/24")),
		Scope: netlink.SCOPE_LINK, Priority: 20}); err != nil {
		t.Fatal(err)
	}
	if err := again.Undo(); err != nil {
		t.Errorf("Undo: %v", err)
	}
	if got := routes(t, link, 0); len(got) != 0 {
		t.Errorf("routes left after Undo: %v", keys(got))
	}
	if err := c.Undo(); err != nil {
		t.Errorf("Undo of routes already gone: %v", err)
	}
	if err := again.Undo(); err != nil {
		t.Errorf("second Undo: %v", err)
	}
}

func TestConfigureTable(t *testing.T) {
	freshNetns(t)
	link := iface(t, "lisp1")
	c, err := Configure(TUNConfig{Name: "lisp1", Routes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, Table: 1007})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(routes(t, link, 1007)); !slices.Equal(got, []string{"203.0.113.0/24"}) {
		t.Errorf("table 1007: %v", got)
	}
	if got := routes(t, link, 0); len(got) != 0 {
		t.Errorf("main table got routes: %v", keys(got))
	}
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := routes(t, link, 1007); len(got) != 0 {
		t.Errorf("table 1007 after Undo: %v", keys(got))
	}
}

func TestConfigureFails(t *testing.T) {
	freshNetns(t)
	if _, err := Configure(TUNConfig{Name: "nosuch0"}); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Configure of a missing device = %v, want an error naming it", err)
	}

	// An IPv6 route fails on a device with IPv6 off; the IPv4 route added
	// before it must be taken away again.
	link := iface(t, "lisp2")
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/lisp2/disable_ipv6", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Configure(TUNConfig{Name: "lisp2", Routes: []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:2::/48")}})
	if err == nil || !strings.Contains(err.Error(), "2001:db8:2::/48") {
		t.Fatalf("Configure = %v, want the IPv6 route to fail", err)
	}
	if got := routes(t, link, 0); len(got) != 0 {
		t.Errorf("routes left after a failed Configure: %v", keys(got))
	}
}

func TestInterfaceAddrs(t *testing.T) {
	freshNetns(t)
	link := iface(t, "eid0")
	for _, a := range []string{"192.0.2.5/24", "2001:db8::5/64", "169.254.7.7/16", "fe80::5/64"} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		addr.Flags = syscall.IFA_F_NODAD
		if err := netlink.AddrAdd(link, addr); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	got, err := InterfaceAddrs("eid0")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("2001:db8::5")}; !slices.Equal(got, want) {
		t.Errorf("InterfaceAddrs = %v, want the global unicast ones %v", got, want)
	}
	if _, err := InterfaceAddrs("nosuch0"); err == nil {
		t.Error("InterfaceAddrs of a missing interface succeeded")
	}
}

func TestHostRoutes(t *testing.T) {
	freshNetns(t)
	a, b := iface(t, "lan0"), iface(t, "lisp0")
	host4, host6 := netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8:1::7/128")

	// Someone else's route for exactly the host is replaced.
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: b.Attrs().Index, Dst: ipnet(host4), Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	h := NewHostRoutes(0)
	if err := h.Set(host4, "lan0"); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(host6, "lan0"); err != nil {
		t.Fatal(err)
	}
	if got := keys(routes(t, a, 0)); !slices.Equal(got, []string{"198.51.100.7/32", "2001:db8:1::7/128"}) {
		t.Errorf("lan0 routes %v", got)
	}
	if got := routes(t, b, 0); len(got) != 0 {
		t.Errorf("lisp0 still has %v", keys(got))
	}

	// The host moved away: its route now points into the TUN.
	if err := h.Set(host4, "lisp0"); err != nil {
		t.Fatal(err)
	}
	if got := keys(routes(t, a, 0)); !slices.Equal(got, []string{"2001:db8:1::7/128"}) {
		t.Errorf("lan0 routes after the move %v", got)
	}
	if got := keys(routes(t, b, 0)); !slices.Equal(got, []string{"198.51.100.7/32"}) {
		t.Errorf("lisp0 routes after the move %v", got)
	}

	if err := h.Delete(host4); err != nil {
		t.Fatal(err)
	}
	if got := routes(t, b, 0); len(got) != 0 {
		t.Errorf("lisp0 routes after Delete %v", keys(got))
	}
	if err := h.Delete(host4); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := h.Delete(netip.MustParsePrefix("203.0.113.9/32")); err != nil {
		t.Errorf("Delete of a route never set: %v", err)
	}

	// A route someone else removed is no error for Remove.
	if err := netlink.RouteDel(&netlink.Route{LinkIndex: a.Attrs().Index, Dst: ipnet(host6)}); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(host4, "lan0"); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if got := routes(t, a, 0); len(got) != 0 {
		t.Errorf("lan0 routes after Remove %v", keys(got))
	}

	if err := h.Set(host4, "nosuch0"); err == nil {
		t.Error("Set on a missing device succeeded")
	}
}

func TestHostRoutesTable(t *testing.T) {
	freshNetns(t)
	a := iface(t, "lan0")
	h := NewHostRoutes(1007)
	if err := h.Set(netip.MustParsePrefix("198.51.100.7/32"), "lan0"); err != nil {
		t.Fatal(err)
	}
	if got := keys(routes(t, a, 1007)); !slices.Equal(got, []string{"198.51.100.7/32"}) {
		t.Errorf("table 1007: %v", got)
	}
	if got := routes(t, a, 0); len(got) != 0 {
		t.Errorf("main table: %v", keys(got))
	}
	if err := h.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := routes(t, a, 1007); len(got) != 0 {
		t.Errorf("table 1007 after Remove: %v", keys(got))
	}
}

// rules returns "iif table" for every policy rule that looks up table.
func rules(t *testing.T, table int) []string {
	t.Helper()
	var out []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Table == table {
				out = append(out, r.IifName)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestEnsureVRF(t *testing.T) {
	freshNetns(t)
	tun, eid0, eid1 := iface(t, "lisp0"), iface(t, "eid0"), iface(t, "eid1")
	v, err := EnsureVRF("vrf-iid7", 1007, "lisp0", []string{"eid0", "eid1"},
		[]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:2::/48")})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(routes(t, eid0, 1007)); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Errorf("local EID routes in table 1007: %v", got)
	}
	if got := keys(routes(t, tun, 1007)); !slices.Equal(got, []string{"2001:db8:2::/48", "203.0.113.0/24"}) {
		t.Errorf("remote EID routes in table 1007: %v", got)
	}
	if v.created {
		t.Log("kernel has VRF devices")
		vrf, err := netlink.LinkByName("vrf-iid7")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"lisp0", "eid0", "eid1"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().MasterIndex != vrf.Attrs().Index {
				t.Errorf("%s is not a member of the VRF", name)
			}
		}
	} else {
		t.Log("kernel without VRF devices: policy rules")
		if got := rules(t, 1007); !slices.Equal(got, []string{"eid0", "eid0", "eid1", "eid1", "lisp0", "lisp0"}) {
			t.Errorf("rules to table 1007 from %v, want each member for IPv4 and IPv6", got)
		}
	}

	if err := v.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, l := range []netlink.Link{tun, eid0, eid1} {
		if got := routes(t, l, 1007); len(got) != 0 {
			t.Errorf("%s: routes left in table 1007: %v", l.Attrs().Name, keys(got))
		}
	}
	if got := rules(t, 1007); len(got) != 0 {
		t.Errorf("rules left: %v", got)
	}
	if _, err := netlink.LinkByName("vrf-iid7"); err == nil {
		t.Error("VRF device left")
	}
	if err := v.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := (*VRF)(nil).Remove(); err != nil {
		t.Errorf("Remove of no VRF: %v", err)
	}
}

// The VRF-less way is tested on its own, since a kernel with VRF devices
// never takes it in EnsureVRF.
func TestVRFPolicyRules(t *testing.T) {
	freshNetns(t)
	iface(t, "lisp0")
	iface(t, "eid0")
	v := &VRF{name: "vrf-iid8", table: 1008}
	if err := v.policyRules([]string{"lisp0", "eid0"}); err != nil {
		t.Fatal(err)
	}
	if got := rules(t, 1008); !slices.Equal(got, []string{"eid0", "eid0", "lisp0", "lisp0"}) {
		t.Errorf("rules to table 1008 from %v", got)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, _ := netlink.RuleList(fam)
		for _, r := range rs {
			if r.Table == 1008 && r.Priority != 100 {
				t.Errorf("rule iif %s has priority %d, want 100 (ahead of main)", r.IifName, r.Priority)
			}
		}
	}
	if err := v.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := rules(t, 1008); len(got) != 0 {
		t.Errorf("rules left after Remove: %v", got)
	}
}

func TestEnsureVRFFailsCleanly(t *testing.T) {
	freshNetns(t)
	tun := iface(t, "lisp0")
	_, err := EnsureVRF("vrf-iid9", 1009, "lisp0", []string{"nosuch0"}, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")})
	if err == nil {
		t.Fatal("EnsureVRF with a missing member succeeded")
	}
	if got := rules(t, 1009); len(got) != 0 {
		t.Errorf("rules left after a failed EnsureVRF: %v", got)
	}
	if got := routes(t, tun, 1009); len(got) != 0 {
		t.Errorf("routes left after a failed EnsureVRF: %v", keys(got))
	}
	if _, err := netlink.LinkByName("vrf-iid9"); err == nil {
		t.Error("VRF device left after a failed EnsureVRF")
	}
}

func TestProxyARP(t *testing.T) {
	freshNetns(t)
	iface(t, "lan0")
	if on, err := ProxyARPOn("lan0"); err != nil || on {
		t.Fatalf("ProxyARPOn of a new interface = %v, %v; want off", on, err)
	}
	if err := ProxyARP("lan0", true); err != nil {
		t.Fatal(err)
	}
	if on, err := ProxyARPOn("lan0"); err != nil || !on {
		t.Errorf("after ProxyARP(on): %v, %v", on, err)
	}
	if err := ProxyARP("lan0", false); err != nil {
		t.Fatal(err)
	}
	if on, err := ProxyARPOn("lan0"); err != nil || on {
		t.Errorf("after ProxyARP(off): %v, %v", on, err)
	}
	if err := ProxyARP("nosuch0", true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ProxyARP on a missing interface = %v, want not-exist", err)
	}
	if _, err := ProxyARPOn("nosuch0"); err == nil {
		t.Error("ProxyARPOn of a missing interface succeeded")
	}
}
