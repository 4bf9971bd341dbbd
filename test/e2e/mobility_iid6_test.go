package e2e

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

// vm6Only is the IPv6-only VM of TestMobilityInstanceIDIPv6Move, beside
// the dual-stack vmd on the same hypervisor.
const vm6Only = "2001:db8:b::78"

// iid6VMSites is dualStackSites with an IPv6-only VM, vm6o, on the
// hypervisor's bridge too (it moves with vmd), and site A's
// second-instance host ha2 dual-stack: 2001:db8:a::10 behind xa's eid1.
func iid6VMSites() *lab.Topology {
	t := dualStackSites()
	for i := range t.Nodes {
		switch t.Nodes[i].Name {
		case "hv":
			t.Nodes[i].Bridges[0].Ports = append(t.Nodes[i].Bridges[0].Ports, "vm2")
		case "ha2":
			t.Nodes[i].Routes = append(t.Nodes[i].Routes, lab.Via("::/0", "2001:db8:a::1"))
		}
	}
	for i := range t.Links {
		if l := &t.Links[i]; l.A == "xa" && l.AName == "eid1" {
			l.BAddrs = append(l.BAddrs, netip.MustParsePrefix("2001:db8:a::10/64"))
		}
	}
	t.Nodes = append(t.Nodes, lab.Node{Name: "vm6o", Role: "host",
		Routes: []lab.Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fe80::1"), Dev: "eth0"}}})
	t.Links = append(t.Links, lab.Link{A: "vm6o", AName: "eth0", B: "hv", BName: "vm2",
		AAddrs: []netip.Prefix{netip.MustParsePrefix(vm6Only + "/64")}})
	return t
}

// TestMobilityInstanceIDIPv6Move: the dual-stack VM and an IPv6-only VM,
// in instance ID 7 (both families' ranges, the VM LANs in the
// instance's VRF at both sites), move from site A to site B and back
// under TCP connections over IPv6 from site A's instance-7 host, while
// instance ID 0 has the same IPv4 and IPv6 ranges. Every registration and
// every move in the Map-Server's log is in instance ID 7, both
// connections survive, and at the end xa holds the three addresses local
// in instance 7 and nothing in instance 0, xb holds none local.
func TestMobilityInstanceIDIPv6Move(t *testing.T) {
	lab.RequireRoot(t)
	ms := msWithVMRanges(`{prefix: 203.0.113.64/26, accept-more-specifics: true}, {prefix: "2001:db8:b::40/122", accept-more-specifics: true}, ` +
		`{prefix: 203.0.113.64/26, instance-id: 7, accept-more-specifics: true}, {prefix: "2001:db8:b::40/122", instance-id: 7, accept-more-specifics: true}`)
	ms = strings.Replace(ms, `{prefix: 198.51.100.0/24, instance-id: 1000}`,
		`{prefix: 198.51.100.0/24, instance-id: 1000}, {prefix: "2001:db8:a::/64", instance-id: 1000}`, 1)
	// The instance ID 7: twoSites' second instance renumbered
	// (its VRFs keep their names and tables).
	ms = strings.ReplaceAll(ms, "instance-id: 1000", "instance-id: 7")
	lan := vmLANConfig(true, `
    - {name: vms0, prefix: 203.0.113.64/26, interface: eid0, mode: extended-subnet}
    - {name: vms0v6, prefix: "2001:db8:b::40/122", interface: eid0, mode: extended-subnet}
    - {name: vms7, prefix: 203.0.113.64/26, instance-id: 7, interface: %[1]s, mode: across-subnet}
    - {name: vms7v6, prefix: "2001:db8:b::40/122", instance-id: 7, interface: %[1]s, mode: across-subnet}`)
	// Instance 7 carries IPv6 too: its VRFs route it into LISP, and
	// site A registers ha2's IPv6 subnet in it.
	n := startNetworkHolding(t, iid6VMSites(), ms, func(node, cfg string) string {
		cfg = lan(node, cfg)
		cfg = strings.Replace(cfg, "128.0.0.0/1]}]", `128.0.0.0/1, "2000::/3"]}]`, 1)
		cfg = strings.Replace(cfg, "instance-id: 1000, locators: [{address: 198.18.2.2}]}\n",
			"instance-id: 1000, locators: [{address: 198.18.2.2}]}\n    - {eid-prefix: \"2001:db8:a::/64\", instance-id: 1000, locators: [{address: 198.18.2.2}]}\n", 1)
		return strings.ReplaceAll(cfg, "instance-id: 1000", "instance-id: 7")
	}, 7)
	n.addAddr("xa", "eid1", "2001:db8:a::1/64")

	vms := []string{dsVM4 + "/32", dsVM6 + "/128", vm6Only + "/128"}
	registeredBy := func(site string) bool {
		for _, vm := range vms {
			if !slices.Equal(n.registrationsOf(vm), []string{site + " [7]" + vm}) {
				return false
			}
		}
		return true
	}
	waitSite := func(site string) {
		t.Helper()
		if err := poll.Until(context.Background(), 10*time.Second, 50*time.Millisecond, func() bool { return registeredBy(site) }); err != nil {
			for _, vm := range vms {
				t.Logf("registrations of %s: %v", vm, n.registrationsOf(vm))
			}
			t.Fatalf("the VMs' addresses registered by %s in instance 7: %v", site, err)
		}
	}
	hello := func() {
		t.Helper()
		for _, p := range [][2]string{{"vmd", "198.51.100.10"}, {"vmd", "2001:db8:a::10"}, {"vm6o", "2001:db8:a::10"}} {
			if err := n.ping(p[0], p[1]); err != nil {
				t.Fatalf("%s to %s: %v", p[0], p[1], err)
			}
		}
	}
	hello()
	waitSite("site-a")
	finishDS := startStream(t, n, "vmd", "ha2", "["+dsVM6+"]:8089")
	finish6 := startStream(t, n, "vm6o", "ha2", "["+vm6Only+"]:8090")
	time.Sleep(500 * time.Millisecond)

	n.moveVM("toA", "toB")
	hello()
	waitSite("site-b")
	time.Sleep(2 * time.Second)
	// Back to A, announced by the hypervisor: QEMU sends a RARP for each
	// VM it migrated, the IPv6-only one too (A bound its MAC from its ND).
	n.moveVM("toB", "toA")
	mac, err := n.lab.MAC("vm6o", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.lab.AnnounceRARP("hv", "toA", mac); err != nil {
		t.Fatal(err)
	}
	waitSite("site-a")
	time.Sleep(time.Second)
	for name, finish := range map[string]func() (int64, error){"dual-stack": finishDS, "IPv6-only": finish6} {
		echoed, err := finish()
		if err != nil {
			t.Errorf("TCP over IPv6 to the %s VM in instance ID 7 did not survive the moves: %v", name, err)
		}
		t.Logf("TCP over IPv6 to the %s VM in instance ID 7: %d bytes echoed across two moves", name, echoed)
	}

	// The state: the Map-Server logged each address's two moves in
	// instance 7 and none in instance 0; xa holds all three local in its
	// instance-7 ranges, xb none.
	moves, err := query(n, "ms", func(c *adminapi.Client, ctx context.Context) ([]adminapi.SiteMove, error) {
		return c.SiteMoves(ctx, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]int{}
	for _, m := range moves {
		if m.InstanceID != 7 {
			t.Errorf("move logged in instance %d: %+v", m.InstanceID, m)
		}
		logged[m.EIDPrefix.String()]++
	}
	for _, vm := range vms {
		if logged[vm] != 2 {
			t.Errorf("the Map-Server logged %d moves of %s, want 2 (%+v)", logged[vm], vm, moves)
		}
	}
	want := map[string][]string{"xa": {dsVM4, dsVM6, vm6Only}, "xb": nil}
	for node, local := range want {
		ranges, err := query(n, node, (*adminapi.Client).DynamicEIDs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range ranges {
			for _, h := range r.Hosts {
				if r.InstanceID != 7 {
					t.Errorf("%s: host %s in instance %d's range %s", node, h.EID, r.InstanceID, r.Name)
				}
				if h.State == adminapi.HostLocal {
					got = append(got, h.EID.String())
				}
			}
		}
		slices.Sort(got)
		wantLocal := slices.Clone(local)
		slices.Sort(wantLocal)
		if !slices.Equal(got, wantLocal) {
			t.Errorf("%s holds %v local, want %v: %+v", node, got, wantLocal, ranges)
		}
	}
}
