package dynamiceid

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// Group is the notify group of a dynamic-EID range: the xTRs on the LAN tell
// each other with a Map-Notify to a multicast group which hosts they just
// detected, so that another xTR of the same site registers the host too
// and one of another site (on a stretched subnet) stops claiming it at
// once. The message is not authenticated (the xTRs of two sites share no
// key); where a host went is learnt from the Map-Server's authenticated
// Map-Notify.
type Group struct {
	group netip.Addr
	conn  *net.UDPConn
	wg    sync.WaitGroup
}

// JoinGroup opens the notify group on the interface: bound to the group
// address and the control port (SO_REUSEADDR: the control plane's
// wildcard socket has the port too), loopback off, TTL 1.
func JoinGroup(group netip.Addr, ifname string) (*Group, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	// Bound to the group address itself, not the wildcard (as Go's own
	// multicast listener does): a wildcard socket on the control port
	// would take unicast control traffic from the control plane.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: wire.ControlPort, Addr: group.As4()})
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("notify group %s: bind: %w", group, err)
	}
	f := os.NewFile(uintptr(fd), "notify-group")
	pconn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("notify group %s: %w", group, err)
	}
	c := pconn.(*net.UDPConn)
	pc := ipv4.NewPacketConn(c)
	g := &Group{group: group, conn: c}
	for _, step := range []error{
		pc.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}),
		pc.SetMulticastInterface(ifi),
		pc.SetMulticastTTL(1),
		pc.SetMulticastLoopback(false),
	} {
		if step != nil {
			c.Close()
			return nil, fmt.Errorf("notify group %s on %s: %w", group, ifname, step)
		}
	}
	return g, nil
}

// Announce sends a Map-Notify for host with locs to the group.
func (g *Group) Announce(host mapping.EID, locs []mapping.Locator) error {
	m := mapping.Mapping{EID: host, TTL: 1, Authoritative: true, Locators: locs}
	n := &wire.MapNotify{AuthBody: wire.AuthBody{Nonce: rand.Uint64(), Records: []wire.EIDRecord{m.Record()}}}
	b, err := wire.Encode(n)
	if err != nil {
		return err
	}
	_, err = g.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(g.group, wire.ControlPort))
	return err
}

// Serve reads announcements until Close and hands each record to claimed
// (with the sender's address). Malformed datagrams are counted by the
// caller's bad func and dropped.
func (g *Group) Serve(claimed func(host mapping.EID, locs []mapping.Locator, from netip.Addr), bad func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		buf := make([]byte, 9000)
		for {
			n, from, err := g.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			msg, err := wire.Decode(buf[:n])
			nt, ok := msg.(*wire.MapNotify)
			if err != nil || !ok {
				bad()
				continue
			}
			for i := range nt.Records {
				if mp, ok := mapping.FromRecord(&nt.Records[i]); ok && mp.EID.Prefix.IsSingleIP() {
					claimed(mp.EID, mp.Locators, from.Addr().Unmap())
				}
			}
		}
	}()
}

// Close leaves the group and stops Serve.
func (g *Group) Close() error {
	err := g.conn.Close()
	g.wg.Wait()
	return err
}
