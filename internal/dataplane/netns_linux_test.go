//go:build linux

package dataplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/mapping"
)

// inNS runs fn on a thread switched into ns.
func inNS(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// onThread runs fn on a locked thread of its own, which goes back to the
// original namespace afterwards, or is thrown away if that fails.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ferr := fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// newNamedNS creates a named network namespace without moving the caller.
func newNamedNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	_ = netns.DeleteNamed(name) // a leftover from a killed run
	var ns netns.NsHandle
	err := onThread(func() (err error) {
		ns, err = netns.NewNamed(name) // switches this thread
		return err
	})
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return ns
}

type nsSite struct {
	name   string
	ns     netns.NsHandle
	h      *netlink.Handle
	rloc4  netip.Addr
	rloc6  netip.Addr
	eid4   netip.Prefix
	eid6   netip.Prefix
	host4  netip.Addr
	host6  netip.Addr
	engine *Engine
	ul     *LinuxUnderlay
}

func mustAddr(t *testing.T, h *netlink.Handle, link netlink.Link, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(link, a); err != nil {
		t.Fatalf("address %s on %s: %v", p, link.Attrs().Name, err)
	}
}

// Two LISP sites in two network namespaces joined by a veth pair: a real
// TUN and real sockets per site, one engine each. ICMP echo and a TCP
// transfer cross between the EIDs for every inner × outer family pair.
// It runs twice: sending through raw sockets, and through UDP sockets with
// segmentation offload (UnderlayConfig.GSO, what lispd uses).
func TestNamespacesEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, TUN devices and raw sockets; run as root to include it")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	t.Run("raw", func(t *testing.T) { namespacesEndToEnd(t, false) })
	t.Run("gso", func(t *testing.T) { namespacesEndToEnd(t, true) })
}

func namespacesEndToEnd(t *testing.T, gso bool) {
	prefix := fmt.Sprintf("lispdp-%d-", os.Getpid())
	if gso {
		prefix = fmt.Sprintf("lispdg-%d-", os.Getpid())
	}
	a := &nsSite{name: prefix + "a", rloc4: rlocA4, rloc6: rlocA6, eid4: eidA4, eid6: eidA6,
		host4: hostA4, host6: hostA6}
	b := &nsSite{name: prefix + "b", rloc4: rlocB4, rloc6: rlocB6, eid4: eidB4, eid6: eidB6,
		host4: hostB4, host6: hostB6}
	for _, s := range []*nsSite{a, b} {
		s.ns = newNamedNS(t, s.name)
		h, err := netlink.NewHandleAt(s.ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		s.h = h
	}
	// The veth pair is made inside a with its peer in b: nothing touches
	// the host's namespace, and deleting the namespaces deletes it.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rloc0"}, PeerName: "rloc1", PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for i, s := range []*nsSite{a, b} {
		lo, err := s.h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		_ = s.h.LinkSetUp(lo)
		l, err := s.h.LinkByName(fmt.Sprint("rloc", i))
		if err != nil {
			t.Fatal(err)
		}
		mustAddr(t, s.h, l, netip.PrefixFrom(s.rloc4, 24))
		mustAddr(t, s.h, l, netip.PrefixFrom(s.rloc6, 64))
		if err := s.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		// GRO on the veth (NAPI) lets UDP GRO coalesce the LISP packets.
		if err := inNS(s.ns, func() error { return vethGRO(l.Attrs().Name) }); err != nil {
			t.Logf("GRO on %s: %v", l.Attrs().Name, err)
		}
	}
	rlocs := func(s *nsSite) []netip.Addr { return []netip.Addr{s.rloc4, s.rloc6} }
	for _, pr := range [][2]*nsSite{{a, b}, {b, a}} {
		s, peer := pr[0], pr[1]
		var tun TUN
		var ul *LinuxUnderlay
		err := inNS(s.ns, func() error {
			var err error
			if tun, err = OpenTUN("lisp0", TUNMTU(1500, rlocs(s))); err != nil {
				return err
			}
			if ul, err = OpenUnderlay(UnderlayConfig{UDPChecksum: true, GSO: gso}); err != nil {
				tun.Close()
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: TUN and sockets: %v", s.name, err)
		}
		e, err := New(Config{LocalRLOCs: rlocs(s), Instances: map[uint32]TUN{0: tun}, Underlay: ul, ITR: true, ETR: true})
		if err != nil {
			tun.Close()
			ul.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		s.engine, s.ul = e, ul
		e.SetLocalEIDs([]mapping.EID{mapping.NewEID(0, s.eid4), mapping.NewEID(0, s.eid6)})
		l, err := s.h.LinkByName("lisp0")
		if err != nil {
			t.Fatal(err)
		}
		mustAddr(t, s.h, l, netip.PrefixFrom(s.host4, 32))
		mustAddr(t, s.h, l, netip.PrefixFrom(s.host6, 128))
		if err := s.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		for _, p := range []netip.Prefix{peer.eid4, peer.eid6} {
			r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: p.Addr().AsSlice(),
				Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
			if p.Addr().Is4() {
				r.Scope = netlink.SCOPE_LINK
			}
			if err := s.h.RouteAdd(r); err != nil {
				t.Fatalf("route %s: %v", p, err)
			}
		}
	}
	for _, outer := range []int{4, 6} {
		for _, pr := range [][2]*nsSite{{a, b}, {b, a}} {
			s, peer := pr[0], pr[1]
			r := peer.rloc4
			if outer == 6 {
				r = peer.rloc6
			}
			for _, p := range []netip.Prefix{peer.eid4, peer.eid6} {
				s.engine.SetMapCache(CacheEntry{EID: mapping.NewEID(0, p), Locators: []Locator{{Addr: r, Priority: 1, Weight: 100, Up: true}}})
			}
		}
		for _, dst := range []netip.Addr{b.host4, b.host6} {
			inner := 4
			if dst.Is6() {
				inner = 6
			}
			t.Run(fmt.Sprintf("ping-inner%d-outer%d", inner, outer), func(t *testing.T) {
				ping(t, a.ns, dst)
			})
		}
		t.Run(fmt.Sprintf("tcp-inner4-outer%d", outer), func(t *testing.T) { tcpTransfer(t, a, b, b.host4) })
		t.Run(fmt.Sprintf("tcp-inner6-outer%d", outer), func(t *testing.T) { tcpTransfer(t, a, b, b.host6) })
	}
	// With a TUN MTU larger than what fits the underlay, the engine answers
	// a DF packet with an ICMP error the host's kernel accepts.
	l, err := a.h.LinkByName("lisp0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.h.LinkSetMTU(l, 1500); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []netip.Addr{b.host4, b.host6} {
		t.Run(fmt.Sprint("too-big-", dst), func(t *testing.T) { tooBig(t, a.ns, dst, 1500-Overhead6) })
	}
	for _, s := range []*nsSite{a, b} {
		st := s.engine.Stats()
		t.Logf("%s: %+v", s.name, st)
		for _, r := range s.ul.rx {
			t.Logf("%s: %d GRO runs split on the IPv%d socket", s.name, r.coalesced.Load(), map[bool]int{false: 4, true: 6}[r.v6])
		}
		if st.EncapsulatedPackets == 0 || st.DecapsulatedPackets == 0 {
			t.Errorf("%s: nothing encapsulated or decapsulated", s.name)
		}
		for reason, n := range st.Dropped {
			if reason != "non-unicast" && reason != "too-big" { // router solicitations and MLD reports; tooBig
				t.Errorf("%s: %d packets dropped (%s)", s.name, n, reason)
			}
		}
	}
}

// ping sends ICMP echo requests from inside ns to dst until one is
// answered.
func ping(t *testing.T, ns netns.NsHandle, dst netip.Addr) {
	t.Helper()
	var c *icmp.PacketConn
	err := inNS(ns, func() (err error) {
		if dst.Is4() {
			c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		} else {
			c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	id := os.Getpid() & 0xffff
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("lispd dataplane test")}}
		wb, err := m.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(wb, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			t.Fatalf("send echo: %v", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break // timeout: send the next one
			}
			rm, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || rm.Type != reply {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && from.(*net.IPAddr).IP.Equal(dst.AsSlice()) {
				return
			}
		}
	}
	t.Fatalf("no echo reply from %s", dst)
}

// tcpTransfer sends 4 MB from site a to a listener on dst in site b and
// checks what arrives.
func tcpTransfer(t *testing.T, a, b *nsSite, dst netip.Addr) {
	t.Helper()
	var ln net.Listener
	if err := inNS(b.ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		got <- r
	}()
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*131 + i>>9)
	}
	var c net.Conn
	if err := inNS(a.ns, func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		c.Close()
		t.Fatalf("send: %v", err)
	}
	c.Close()
	r := <-got
	if r.err != nil || r.n != int64(len(data)) || r.sum != sha256.Sum256(data) {
		t.Fatalf("received %d bytes (err %v), want %d intact", r.n, r.err, len(data))
	}
	t.Logf("%d MB in %v", len(data)>>20, time.Since(start).Round(time.Millisecond))
}

// tooBig sends a 1500-byte echo request with DF from inside ns and expects
// an ICMP fragmentation-needed or packet-too-big with mtu back.
func tooBig(t *testing.T, ns netns.NsHandle, dst netip.Addr, mtu int) {
	t.Helper()
	var c *net.IPConn
	err := inNS(ns, func() error {
		network, addr := "ip4:icmp", "0.0.0.0"
		if dst.Is6() {
			network, addr = "ip6:ipv6-icmp", "::"
		}
		pc, err := net.ListenPacket(network, addr)
		if err == nil {
			c = pc.(*net.IPConn)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = sc.Control(func(fd uintptr) {
		if dst.Is4() {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		} else {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	typ, proto, hdr := icmp.Type(ipv4.ICMPTypeEcho), 1, 20
	if dst.Is6() {
		typ, proto, hdr = ipv6.ICMPTypeEchoRequest, 58, 40
	}
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 7, Seq: 1, Data: make([]byte, 1500-hdr-8)}}
	wb, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(wb, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		t.Fatalf("send: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2000)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no ICMP error: %v", err)
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch body := rm.Body.(type) {
		case *icmp.DstUnreach:
			if rm.Code == 4 && int(binary.BigEndian.Uint16(buf[6:8])) == mtu {
				return
			}
			t.Fatalf("destination unreachable code %d, MTU field %d, want code 4 MTU %d", rm.Code, binary.BigEndian.Uint16(buf[6:8]), mtu)
		case *icmp.PacketTooBig:
			if body.MTU != mtu {
				t.Fatalf("packet too big MTU %d, want %d", body.MTU, mtu)
			}
			return
		}
	}
}
