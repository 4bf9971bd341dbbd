package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/adminapi"
	"github.com/lispd/lispd/internal/lab"
)

// vm6Addr is the IPv6 VM of TestMobilityIPv6: site B's space, living at
// site A (across-subnet).
const vm6Addr = "2001:db8:b::77"

// v6VMSites is twoSites with an IPv6 VM on a LAN of its own at site A. Its
// gateway is the link-local fe80::1, which every site's VM LAN would carry
// with the shared gateway MAC, so a VM keeps its gateway across a move.
func v6VMSites() *lab.Topology {
	t := twoSites()
	t.Nodes = append(t.Nodes, lab.Node{Name: "vm6", Role: "host",
		Routes: []lab.Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fe80::1"), Dev: "eth0"}}})
	t.Links = append(t.Links, lab.Link{A: "xa", AName: "vm6", B: "vm6", BName: "eth0",
		AAddrs: []netip.Prefix{netip.MustParsePrefix("fe80::1/64")},
		BAddrs: []netip.Prefix{netip.MustParsePrefix(vm6Addr + "/64")}})
	return t
}

// TestMobilityIPv6: an IPv6 host of a dynamic-EID range is detected from
// its Neighbor Discovery, gets a /128 host route and registration, and is
// reached over LISP with TCP over IPv6 from outside (through the PxTR);
// silent, it is kept by answering xa's Neighbor Solicitations. The range
// has an IPv6 notify group.
func TestMobilityIPv6(t *testing.T) {
	lab.RequireRoot(t)
	ms := msWithVMRanges(`{prefix: "2001:db8:b::40/122", accept-more-specifics: true}`)
	n := startNetworkOn(t, v6VMSites(), ms, func(node, cfg string) string {
		if node != "xa" {
			return cfg
		}
		cfg = strings.Replace(cfg, "eid-interfaces: [eid0, eid1]", "eid-interfaces: [eid0, eid1, vm6]", 1)
		return cfg + `  dynamic-eids:
    - {name: vms6, prefix: "2001:db8:b::40/122", interface: vm6, mode: across-subnet, timeout: 3s,
       notify-group: "ff32:40:2001:db8::4342", group-key: {key-id: 1, algorithm: hmac-sha-256-128, secret: vms6-group-key}}
`
	})
	// The VM speaks: its solicitation of the gateway, from its address,
	// shows it to xa.
	if err := n.ping("vm6", "2001:db8:a::10"); err != nil {
		t.Fatal(err)
	}
	n.waitPrefixes("ms", 7)
	if err := n.tcpEcho("vm6", "nl", netip.AddrPortFrom(netip.MustParseAddr(vm6Addr), 8086)); err != nil {
		t.Errorf("TCP over IPv6 from the non-LISP host to the VM: %v", err)
	}
	regs := n.registrationsOf(vm6Addr + "/128")
	if want := "site-a [0]" + vm6Addr + "/128"; len(regs) != 1 || regs[0] != want {
		t.Errorf("Map-Server registrations of %s: %v, want %s", vm6Addr, regs, want)
	}
	ranges, err := query(n, "xa", (*adminapi.Client).DynamicEIDs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 1 || len(ranges[0].Hosts) != 1 || ranges[0].Hosts[0].EID.String() != vm6Addr ||
		ranges[0].Hosts[0].State != adminapi.HostLocal || ranges[0].Hosts[0].DetectedBy != "nd" {
		t.Errorf("xa's dynamic EIDs: %+v, want %s local, detected by nd", ranges, vm6Addr)
	}
	// Silent for longer than the range's timeout, the VM is kept: it
	// answers the solicitations xa probes it with.
	time.Sleep(4500 * time.Millisecond)
	ranges, err = query(n, "xa", (*adminapi.Client).DynamicEIDs)
	if err != nil {
		t.Fatal(err)
	}
	// Kept, not withdrawn and found again: local since before the silence.
	if len(ranges) != 1 || len(ranges[0].Hosts) != 1 || ranges[0].Hosts[0].State != adminapi.HostLocal ||
		ranges[0].Hosts[0].SinceSec < 4.5 {
		t.Errorf("after %v of silence: %+v, want the VM kept by its answers to our solicitations", 4500*time.Millisecond, ranges)
	}
}
