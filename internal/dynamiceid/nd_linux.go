package dynamiceid

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// NDConn reads IPv6 Neighbor Solicitations and Advertisements on one
// interface and sends solicitations, through an AF_PACKET socket as
// ARPConn does for ARP (a kernel filter passes ND only).
type NDConn struct {
	c *ARPConn
}

// NDFrame is one ND message received by an NDConn.
type NDFrame struct {
	ND   ND
	Src  MAC  // Ethernet source
	ToUs bool // unicast to the interface's MAC (an answer to our probe)
}

// ListenND opens an ND socket on the interface ifname of the calling
// thread's network namespace. It needs CAP_NET_RAW.
func ListenND(ifname string) (*NDConn, error) {
	c, err := listen(ifname, unix.ETH_P_IPV6)
	if err != nil {
		return nil, err
	}
	return &NDConn{c: c}, nil
}

func attachNDFilter(fd int) error {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 6, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 58, SkipTrue: 4},
		bpf.LoadAbsolute{Off: ipv6HeaderLen, Size: 1}, // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ICMPv6NeighborSolicitation, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ICMPv6NeighborAdvertisement, SkipTrue: 1},
		bpf.RetConstant{Val: 512},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

// Name is the interface's name.
func (c *NDConn) Name() string { return c.c.name }

// SetReadDeadline is ARPConn's.
func (c *NDConn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// Close closes the socket and wakes a Read blocked on it.
func (c *NDConn) Close() error { return c.c.Close() }

// Read returns the next NS or NA seen on the interface that this host did
// not send; malformed ones (bad checksum, hop limit not 255) are skipped
// and counted by Dropped.
func (c *NDConn) Read() (NDFrame, error) {
	var buf [512]byte
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := c.c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf[:], 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if c.c.closed.Load() {
				return NDFrame{}, fmt.Errorf("nd %s: read: %w", c.c.name, net.ErrClosed)
			}
			return NDFrame{}, fmt.Errorf("nd %s: read: %w", c.c.name, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		nd, perr := ParseND(buf[:n])
		if perr != nil {
			c.c.dropped.Add(1)
			continue
		}
		fr := NDFrame{ND: nd, ToUs: ll.Pkttype == unix.PACKET_HOST}
		if ll.Halen == 6 {
			copy(fr.Src[:], ll.Addr[:6])
		}
		return fr, nil
	}
}

// Dropped counts the ND messages Read skipped as malformed.
func (c *NDConn) Dropped() uint64 { return c.c.Dropped() }

// Solicit sends a Neighbor Solicitation for target to its solicited-node
// group from the interface's link-local address: the host answers with an
// NA to us if it is still there.
func (c *NDConn) Solicit(target netip.Addr) error {
	if !target.Is6() || target.Is4In6() {
		return fmt.Errorf("nd %s: solicitation for %s: not an IPv6 address", c.c.name, target)
	}
	ifi, err := net.InterfaceByIndex(c.c.ifindex)
	if err != nil {
		return fmt.Errorf("nd %s: %w", c.c.name, err)
	}
	addrs, _ := ifi.Addrs()
	var src netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			src = p.Addr()
			break
		}
	}
	if !src.IsValid() {
		return fmt.Errorf("nd %s: no link-local address to solicit from", c.c.name)
	}
	var b [ipv6HeaderLen + ndLen + 8]byte
	return c.c.sendRaw(AppendNS(b[:0], src, target, c.c.mac), MulticastMAC(SolicitedNode(target)))
}
