package dynamiceid

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/internal/lab"
	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestNotifyGroup: two xTRs on one LAN join the notify group; what one
// announces the other hears, with the host and locators, and the sender
// does not hear itself. A unicast datagram to the control port is not
// taken by the group socket. A LAN host's forged claims are dropped: sent
// as any program sends multicast (TTL 1), and unsigned with TTL 255.
func TestNotifyGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dynamic EID: the notify-group test needs root (network namespaces); run the tests as root to include it")
	}
	group := netip.MustParseAddr("233.252.0.1")
	l := lab.NewTest(t, &lab.Topology{
		Name:  "group",
		Nodes: []lab.Node{{Name: "xa"}, {Name: "xb"}},
		Links: []lab.Link{{A: "xa", B: "xb", AName: "lan0", BName: "lan0",
			AAddrs: []netip.Prefix{netip.PrefixFrom(ipA, 24)}, BAddrs: []netip.Prefix{netip.PrefixFrom(ipB, 24)}}},
	})
	type heard struct {
		host mapping.EID
		locs []mapping.Locator
		from netip.Addr
	}
	type drop struct {
		why  string
		from netip.Addr
	}
	join := func(node string) (*Group, chan heard, chan drop) {
		g := joinIn(t, l, node, group)
		ch, drops := make(chan heard, 4), make(chan drop, 4)
		g.Serve(func(h mapping.EID, locs []mapping.Locator, from netip.Addr) { ch <- heard{h, locs, from} },
			func(why string, from netip.Addr) { drops <- drop{why, from} })
		return g, ch, drops
	}
	// xa's control plane: the wildcard socket on the same port.
	var ctl *net.UDPConn
	if err := l.Do("xa", func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:4342")
		if err == nil {
			ctl = pc.(*net.UDPConn)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	ga, heardA, dropsA := join("xa")
	_, heardB, dropsB := join("xb")

	host := mapping.HostEID(0, netip.MustParseAddr("203.0.113.10"))
	locs := []mapping.Locator{{Addr: netip.MustParseAddr("198.18.3.2"), Priority: 1, Weight: 50, Flags: wire.LocatorReachable}}
	if err := ga.Announce(host, locs); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-heardB:
		if h.host != host || len(h.locs) != 1 || h.locs[0].Addr != locs[0].Addr || h.from != ipA {
			t.Errorf("heard %+v", h)
		}
	case d := <-dropsB:
		t.Fatalf("the other xTR dropped a signed announcement: %+v", d)
	case <-time.After(5 * time.Second):
		t.Fatal("the other xTR heard nothing")
	}
	select {
	case h := <-heardA:
		t.Errorf("the sender heard its own announcement: %+v", h)
	case <-time.After(200 * time.Millisecond):
	}
	// A unicast Map-Notify to xa's control port goes to the control
	// socket, not to the group.
	b, err := wire.Encode(&wire.MapNotify{AuthBody: wire.AuthBody{Nonce: 1, Records: []wire.EIDRecord{(&mapping.Mapping{EID: host, TTL: 1, Locators: locs}).Record()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Do("xb", func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: ipA.AsSlice(), Port: wire.ControlPort})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = ctl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ctl.Read(make([]byte, 1500)); err != nil {
		t.Errorf("the control socket did not get the unicast datagram: %v", err)
	}
	select {
	case h := <-heardA:
		t.Errorf("the group socket took a unicast datagram: %+v", h)
	case <-time.After(200 * time.Millisecond):
	}

	// xb forges claims to the group from a plain socket.
	forged := forge(t, wire.AuthNone, 0, nil, uint64(time.Now().UnixNano()))
	for _, c := range []struct {
		ttl  int
		want string
	}{{1, DropTTL}, {255, DropUnsigned}} {
		if err := l.Do("xb", func() error {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ipB.AsSlice()})
			if err != nil {
				return err
			}
			defer conn.Close()
			pc := ipv4.NewPacketConn(conn)
			if err := pc.SetMulticastTTL(c.ttl); err != nil {
				return err
			}
			_, err = conn.WriteToUDPAddrPort(forged, netip.AddrPortFrom(group, wire.ControlPort))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case h := <-heardA:
			t.Errorf("xa took a forged claim sent with TTL %d: %+v", c.ttl, h)
		case d := <-dropsA:
			if d.why != c.want || d.from != ipB {
				t.Errorf("forged claim with TTL %d dropped as %+v, want %s from %s", c.ttl, d, c.want, ipB)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("forged claim with TTL %d neither taken nor dropped", c.ttl)
		}
	}
}

// TestNotifyGroupIPv6: the notify group over IPv6 multicast, with the
// same defences: what one xTR announces (hop limit 255, signed) the other
// hears from one of its addresses; a datagram sent as any program sends
// multicast (hop limit 1) is dropped.
// joinIn joins group on node's lan0 with the test key, closed at the end.
func joinIn(t *testing.T, l *lab.Lab, node string, group netip.Addr) *Group {
	t.Helper()
	var g *Group
	if err := l.Do(node, func() (err error) {
		g, err = JoinGroup(group, "lan0", GroupOptions{Key: groupKey})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestNotifyGroupIPv6(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dynamic EID: the notify-group test needs root (network namespaces); run the tests as root to include it")
	}
	group := netip.MustParseAddr("ff32:40:2001:db8::4342") // link scope, from the documentation prefix (RFC 3306)
	l := lab.NewTest(t, &lab.Topology{
		Name:  "group6",
		Nodes: []lab.Node{{Name: "xa"}, {Name: "xb"}},
		Links: []lab.Link{{A: "xa", B: "xb", AName: "lan0", BName: "lan0",
			AAddrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}, BAddrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::2/64")}}},
	})
	join := func(node string) (*Group, chan mapping.EID, chan string) {
		g := joinIn(t, l, node, group)
		heard, drops := make(chan mapping.EID, 4), make(chan string, 4)
		g.Serve(func(h mapping.EID, _ []mapping.Locator, from netip.Addr) {
			if from != netip.MustParseAddr("2001:db8::1") && !from.IsLinkLocalUnicast() {
				t.Errorf("claim from %s, want one of xa's addresses", from)
			}
			heard <- h
		}, func(why string, _ netip.Addr) { drops <- why })
		return g, heard, drops
	}
	ga, _, _ := join("xa")
	_, heardB, dropsB := join("xb")
	host := mapping.HostEID(0, netip.MustParseAddr("2001:db8:d::10"))
	if err := ga.Announce(host, []mapping.Locator{{Addr: netip.MustParseAddr("198.18.3.2")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-heardB:
		if h != host {
			t.Errorf("heard %v, want %v", h, host)
		}
	case why := <-dropsB:
		t.Fatalf("xb dropped xa's announcement: %s", why)
	case <-time.After(5 * time.Second):
		t.Fatal("xb heard nothing")
	}
	// A LAN host sends to the group as programs do: hop limit 1.
	if err := l.Do("xa", func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("2001:db8::1")})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDP([]byte("forged"), &net.UDPAddr{IP: group.AsSlice(), Port: wire.ControlPort, Zone: "lan0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case why := <-dropsB:
		if why != DropTTL {
			t.Errorf("forged datagram dropped for %s, want %s", why, DropTTL)
		}
	case <-heardB:
		t.Error("a hop-limit-1 datagram was taken")
	case <-time.After(5 * time.Second):
		t.Error("the forged datagram was not seen")
	}
}
