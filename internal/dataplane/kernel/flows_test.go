//go:build linux

package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/dataplane"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/internal/stats"
)

// skbContext is the head of struct __sk_buff up to ifindex: what a test
// run may set (the packet's device and where it came in).
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto, Priority uint32
	IngressIfindex, Ifindex                                                               uint32
}

const tcActRedirect = 7

// ipv4Packet is an Ethernet frame to dstMAC holding an IPv4 UDP datagram
// (UDP checksum 0), TTL 64.
func ipv4Packet(dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b[0:6], dstMAC)
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 0x99})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip))
	u := b[34:42]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(b[42:], payload)
	return b
}

func ipv4Checksum(h []byte) uint16 {
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// The program's per-flow verdicts follow every change they depend on: a
// map-cache rewrite at once, a neighbour's new MAC, a more specific
// route and a local-EID change as soon as lispd reads the notification
// or writes the map. Encapsulation (ITR) and decapsulation (ETR) are run
// with BPF_PROG_TEST_RUN, so the test sees the frame the program would
// send and where.
func TestFlowVerdictsFollowChanges(t *testing.T) {
	needRoot(t)
	e := newEngine(t)
	inNewNS(t, func() error {
		// One CPU: the slots are per CPU, and a run elsewhere would find
		// an empty one and say nothing of what a stale one does.
		var all, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			return err
		}
		one.Set(0)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &all)
		for _, f := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/forwarding", []byte("1"), 0); err != nil {
				return err
			}
		}
		tunAttrs := netlink.NewLinkAttrs()
		tunAttrs.Name = "tun7"
		if err := netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: tunAttrs, Mode: netlink.TUNTAP_MODE_TUN}); err != nil {
			return err
		}
		tun, err := netlink.LinkByName("tun7")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(tun); err != nil {
			return err
		}
		v0, v1, err := vethPair()
		if err != nil {
			return err
		}
		macA, _ := net.ParseMAC("02:00:00:00:00:0a")
		macB, _ := net.ParseMAC("02:00:00:00:00:0b")
		macC, _ := net.ParseMAC("02:00:00:00:00:0c")
		macH, _ := net.ParseMAC("02:00:00:00:00:d1")
		macH2, _ := net.ParseMAC("02:00:00:00:00:d2")
		rlocA, rlocB := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
		host := netip.MustParseAddr("10.8.0.1") // behind v1, our site
		neigh := func(l netlink.Link, a netip.Addr, mac net.HardwareAddr) error {
			return netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: a.AsSlice(), HardwareAddr: mac})
		}
		for _, n := range []struct {
			l   netlink.Link
			a   netip.Addr
			mac net.HardwareAddr
		}{{v0, rlocA, macA}, {v0, rlocB, macB}, {v1, host, macH}} {
			if err := neigh(n.l, n.a, n.mac); err != nil {
				return err
			}
		}
		routes := []*netlink.Route{
			{Dst: &net.IPNet{IP: net.IPv4(10, 9, 0, 0), Mask: net.CIDRMask(16, 32)}, LinkIndex: tun.Attrs().Index},
			{Dst: &net.IPNet{IP: net.IPv4(10, 8, 0, 0), Mask: net.CIDRMask(16, 32)}, LinkIndex: v1.Attrs().Index, Scope: netlink.SCOPE_LINK},
		}
		for _, r := range routes {
			if err := netlink.RouteAdd(r); err != nil {
				return fmt.Errorf("route %v: %w", r.Dst, err)
			}
		}

		p, err := Open(Config{Engine: e, LocalRLOCs: []netip.Addr{netip.MustParseAddr("198.18.0.1")}, ITR: true, ETR: true,
			TUNs: map[uint32]string{0: "tun7"}, EIDInterfaces: []string{"v1"}, Stats: stats.NewRegistry()})
		if err != nil {
			return err
		}
		defer p.Close()
		remote := mapping.NewEID(0, netip.MustParsePrefix("10.9.0.0/16"))
		to := func(rloc netip.Addr) dataplane.CacheEntry {
			return dataplane.CacheEntry{EID: remote, Locators: []dataplane.Locator{{Addr: rloc, Priority: 1, Weight: 100, Up: true}}}
		}
		p.SetMapCache(to(rlocA))
		p.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, netip.MustParsePrefix("10.8.0.0/16"))})

		// run hands the program one frame arriving on in; it returns the
		// verdict and the frame as the program left it.
		run := func(in netlink.Link, frame []byte) (uint32, []byte, error) {
			out := make([]byte, len(frame)+128)
			ctx := skbContext{IngressIfindex: uint32(in.Attrs().Index), Ifindex: uint32(in.Attrs().Index)}
			opts := &ebpf.RunOptions{Data: frame, DataOut: out, Context: &ctx}
			rc, err := p.objs.LispdIngress.Run(opts)
			return rc, opts.DataOut, err
		}
		inner := ipv4Packet(v1.Attrs().HardwareAddr, host, netip.MustParseAddr("10.9.0.5"), 1000, 2000, []byte("flowdata"))
		// encap checks the ITR's verdict: redirected, to rloc, through mac.
		encap := func(rloc netip.Addr, mac net.HardwareAddr) error {
			rc, out, err := run(v1, inner)
			if err != nil {
				return err
			}
			if rc != tcActRedirect || len(out) < 14+20 {
				return fmt.Errorf("ITR verdict %d, want redirect (%d)", rc, tcActRedirect)
			}
			if got := netip.AddrFrom4([4]byte(out[14+16 : 14+20])); got != rloc || !bytes.Equal(out[0:6], mac) {
				return fmt.Errorf("encapsulated to %s via %s, want %s via %s", got, net.HardwareAddr(out[0:6]), rloc, mac)
			}
			// The inner header went out forwarded: TTL down by one,
			// its checksum still right.
			ih := out[14+36 : 14+36+20]
			if len(out) != len(inner)+36 || ih[8] != 63 || ipv4Checksum(ih) != 0 || ipv4Checksum(out[14:34]) != 0 {
				return fmt.Errorf("encapsulated frame %x", out)
			}
			return nil
		}
		// eventually retries check until it holds (a netlink
		// notification is read asynchronously); it says how long it took.
		eventually := func(what string, check func() error) error {
			t0 := time.Now()
			for {
				err := check()
				if err == nil {
					t.Logf("%s: %v", what, time.Since(t0))
					return nil
				}
				if time.Since(t0) > 3*time.Second {
					return fmt.Errorf("%s: %w", what, err)
				}
				time.Sleep(time.Millisecond)
			}
		}

		for range 3 {
			if err := encap(rlocA, macA); err != nil {
				return err
			}
		}
		// The verdict is kept: some CPU's slot holds this flow under the
		// current generation.
		if !p.flowCached(netip.MustParseAddr("10.9.0.5")) {
			return fmt.Errorf("no ITR flow slot holds 10.9.0.5 in generation %d", p.gen)
		}
		// A map-cache rewrite takes effect with the next packet.
		p.SetMapCache(to(rlocB))
		if err := encap(rlocB, macB); err != nil {
			return fmt.Errorf("after the map-cache rewrite: %w", err)
		}
		// The locator's neighbour changes its MAC.
		if err := neigh(v0, rlocB, macC); err != nil {
			return err
		}
		if err := eventually("ITR follows a neighbour's new MAC", func() error { return encap(rlocB, macC) }); err != nil {
			return err
		}
		// A more specific route elsewhere wins over the map-cache, as on
		// the userspace path: the packet is the kernel's.
		specific := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 9, 0, 5), Mask: net.CIDRMask(32, 32)},
			Gw: rlocA.AsSlice(), LinkIndex: v0.Attrs().Index}
		if err := netlink.RouteAdd(specific); err != nil {
			return err
		}
		if err := eventually("ITR yields to a more specific route", func() error {
			rc, _, err := run(v1, inner)
			if err != nil || rc != 0 {
				return fmt.Errorf("verdict %d (%v), want TC_ACT_OK", rc, err)
			}
			return nil
		}); err != nil {
			return err
		}
		if p.Counts().Punted["local-route"] == 0 {
			return fmt.Errorf("no local-route punt counted")
		}
		if err := netlink.RouteDel(specific); err != nil {
			return err
		}
		if err := eventually("ITR encapsulates again once the route is gone", func() error { return encap(rlocB, macC) }); err != nil {
			return err
		}

		// The ETR: the LISP packet for the local host is decapsulated
		// and sent to the host's MAC.
		lisp := make([]byte, 8+len(inner)-14)
		lisp[0] = 0x08 // I bit, instance 0
		copy(lisp[8:], ipv4Packet(nil, netip.MustParseAddr("10.9.0.5"), host, 2000, 1000, []byte("flowdata"))[14:])
		outer := ipv4Packet(v0.Attrs().HardwareAddr, rlocA, netip.MustParseAddr("198.18.0.1"), 50000, 4341, lisp)
		decap := func(mac net.HardwareAddr) error {
			rc, out, err := run(v0, outer)
			if err != nil {
				return err
			}
			if rc != tcActRedirect || len(out) < 14+20 {
				return fmt.Errorf("ETR verdict %d, want redirect", rc)
			}
			if got := netip.AddrFrom4([4]byte(out[14+16 : 14+20])); got != host || !bytes.Equal(out[0:6], mac) {
				return fmt.Errorf("decapsulated to %s via %s, want %s via %s", got, net.HardwareAddr(out[0:6]), host, mac)
			}
			return nil
		}
		for range 3 {
			if err := decap(macH); err != nil {
				return err
			}
		}
		if err := neigh(v1, host, macH2); err != nil {
			return err
		}
		if err := eventually("ETR follows the host's new MAC", func() error { return decap(macH2) }); err != nil {
			return err
		}
		// The site no longer holds the EID: the next packet is the
		// userspace engine's.
		before := p.Counts().Punted["not-local-eid"]
		p.SetLocalEIDs(nil)
		if rc, _, err := run(v0, outer); err != nil || rc != 0 || p.Counts().Punted["not-local-eid"] != before+1 {
			return fmt.Errorf("after the local EID went: verdict %d (%v), not-local-eid punts %d → %d",
				rc, err, before, p.Counts().Punted["not-local-eid"])
		}
		return nil
	})
}
