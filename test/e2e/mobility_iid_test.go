package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/poll"
)

// vmAddr is the address of both VMs of TestMobilityInstanceIDs: one in
// instance ID 0, one in instance ID 1000.
const vmAddr = "203.0.113.77"

// iidVMSites is twoSites with two VMs on LANs of their own at site A,
// both 203.0.113.77 (site B's space: across-subnet), vm0 in instance ID 0
// and vm7 in instance ID 1000, whose VRF holds xa's vm7.
func iidVMSites() *lab.Topology {
	t := twoSites()
	for _, vm := range []string{"vm0", "vm7"} {
		t.Nodes = append(t.Nodes, lab.Node{Name: vm, Role: "host", Routes: []lab.Route{lab.Via("0.0.0.0/0", "203.0.113.1")}})
		t.Links = append(t.Links, lab.Link{A: "xa", AName: vm, B: vm, BName: "eth0",
			BAddrs: []netip.Prefix{netip.MustParsePrefix(vmAddr + "/24")}})
	}
	return t
}

// TestMobilityInstanceIDs: overlapping dynamic-EID ranges in instance IDs
// 0 and 1000 on one xTR are kept apart: each VM is detected in its own
// instance, registered there (two registrations of one address), and
// reached through a host route in its instance's table — were both in
// one table, the second would take the first's traffic.
func TestMobilityInstanceIDs(t *testing.T) {
	lab.RequireRoot(t)
	// Both sites may register hosts of the VM range, in both instances
	// (a registration from the other site is a move).
	ms := msWithVMRanges(`{prefix: 203.0.113.64/26, accept-more-specifics: true}, {prefix: 203.0.113.64/26, instance-id: 1000, accept-more-specifics: true}`)
	n := startNetworkOn(t, iidVMSites(), ms, func(node, cfg string) string {
		if node != "xa" {
			return cfg
		}
		cfg = strings.Replace(cfg, "eid-interfaces: [eid0, eid1]", "eid-interfaces: [eid0, eid1, vm0, vm7]", 1)
		cfg = strings.Replace(cfg, "interfaces: [eid1]", "interfaces: [eid1, vm7]", 1)
		return cfg + `  dynamic-eids:
    - {name: vms0, prefix: 203.0.113.64/26, interface: vm0, mode: across-subnet}
    - {name: vms7, prefix: 203.0.113.64/26, instance-id: 1000, interface: vm7, mode: across-subnet}
`
	})
	// Each VM speaks to site A's host of its instance: detected by its ARP
	// for the gateway, or its first packet.
	if err := n.ping("vm0", "198.51.100.10"); err != nil {
		t.Fatal(err)
	}
	if err := n.ping("vm7", "198.51.100.10"); err != nil {
		t.Fatal(err)
	}
	n.waitPrefixes("ms", 8)
	// Again, both: the second host route did not replace the first.
	if err := n.ping("vm0", "198.51.100.10"); err != nil {
		t.Errorf("instance 0 VM after the instance 1000 VM arrived: %v", err)
	}
	if err := n.ping("ha2", vmAddr); err != nil {
		t.Errorf("instance 1000 VM from its instance's host: %v", err)
	}
	// From outside LISP, through the PxTR: encapsulated to site A in
	// instance 0, delivered to vm0.
	if err := n.ping("nl", vmAddr); err != nil {
		t.Errorf("instance 0 VM from the non-LISP host: %v", err)
	}
	regs := n.registrationsOf(vmAddr + "/32")
	slices.Sort(regs)
	if want := []string{"site-a [0]" + vmAddr + "/32", "site-a [1000]" + vmAddr + "/32"}; !slices.Equal(regs, want) {
		t.Errorf("Map-Server registrations of %s: %v, want %v", vmAddr, regs, want)
	}
	ranges, err := query(n, "xa", (*adminapi.Client).DynamicEIDs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 2 {
		t.Errorf("xa shows %d dynamic-EID ranges, want 2", len(ranges))
	}
	for _, r := range ranges {
		if len(r.Hosts) != 1 || r.Hosts[0].EID.String() != vmAddr || r.Hosts[0].State != adminapi.HostLocal {
			t.Errorf("range %s (instance %d): hosts %+v, want %s local", r.Name, r.EID.InstanceID, r.Hosts, vmAddr)
		}
	}
}

// registrationsOf lists the Map-Server's registrations of p as
// "SITE [IID]PREFIX", in any instance ID.
func (n *network) registrationsOf(p string) []string {
	n.t.Helper()
	sites, err := query(n, "ms", func(c *adminapi.Client, ctx context.Context) ([]adminapi.Site, error) { return c.Sites(ctx, "") })
	if err != nil {
		n.t.Fatal(err)
	}
	var regs []string
	for _, st := range sites {
		for _, r := range st.Registrations {
			if r.EIDPrefix.String() == p {
				regs = append(regs, fmt.Sprintf("%s [%d]%s", st.Name, r.InstanceID, r.EIDPrefix))
			}
		}
	}
	return regs
}

// TestMobilityInstanceIDMove: the VM of dualStackSites, in instance ID
// 1000 (its LANs in the instance's VRF at both sites), moves from site A
// to site B and back under a TCP connection from site A's instance-1000
// host, while instance ID 0 has the same range: every registration is in
// instance ID 1000, and the connection survives.
func TestMobilityInstanceIDMove(t *testing.T) {
	lab.RequireRoot(t)
	ms := msWithVMRanges(`{prefix: 203.0.113.64/26, accept-more-specifics: true}, {prefix: 203.0.113.64/26, instance-id: 1000, accept-more-specifics: true}`)
	n := startNetworkOn(t, dualStackSites(), ms, vmLANConfig(true, `
    - {name: vms0, prefix: 203.0.113.64/26, interface: eid0, mode: extended-subnet}
    - {name: vms7, prefix: 203.0.113.64/26, instance-id: 1000, interface: %[1]s, mode: across-subnet}`))
	const vm = dsVM4 + "/32"
	waitSite := func(site string) {
		t.Helper()
		want := []string{site + " [1000]" + vm}
		if err := poll.Until(context.Background(), 10*time.Second, 50*time.Millisecond, func() bool {
			return slices.Equal(n.registrationsOf(vm), want)
		}); err != nil {
			t.Fatalf("registrations of the VM %v, want %v", n.registrationsOf(vm), want)
		}
	}
	if err := n.ping("vmd", "198.51.100.10"); err != nil {
		t.Fatal(err)
	}
	waitSite("site-a")
	finish := startStream(t, n, "vmd", "ha2", dsVM4+":8088")
	time.Sleep(500 * time.Millisecond)
	n.moveVM("toA", "toB")
	if err := n.ping("vmd", "198.51.100.10"); err != nil {
		t.Fatal(err)
	}
	waitSite("site-b")
	time.Sleep(2 * time.Second)
	n.moveVM("toB", "toA") // back: the RARP alone
	waitSite("site-a")
	time.Sleep(time.Second)
	echoed, err := finish()
	if err != nil {
		t.Errorf("TCP in instance ID 1000 did not survive the moves: %v", err)
	}
	t.Logf("TCP in instance ID 1000: %d bytes echoed across two moves", echoed)
}
