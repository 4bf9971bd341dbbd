package dynamiceid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ARPConn reads and sends Ethernet/IPv4 ARP on one interface through an
// AF_PACKET socket. Its methods may be called from several goroutines at
// once; Close unblocks a Read in progress.
//
// The socket is SOCK_DGRAM: the kernel strips the Ethernet header on
// receive and builds it on send, and tells in sockaddr_ll's pkttype
// whether the frame was for us (PACKET_HOST), broadcast, or sent by this
// host (PACKET_OUTGOING). That is the kernel's own notion of "addressed to
// us", which also covers MAC address changes made after ListenARP.
type ARPConn struct {
	proto   uint16 // EtherTypeARP or EtherTypeRARP
	name    string
	ifindex int
	mac     MAC
	f       *os.File // non-blocking fd registered with the runtime poller
	rc      syscall.RawConn
	closed  atomic.Bool
	dropped atomic.Uint64
}

// ListenARP opens an ARP socket on the interface ifname of the calling
// thread's network namespace (the socket stays in that namespace
// wherever it is used later). It needs CAP_NET_RAW. The interface must
// have a 6-byte (Ethernet) address.
func ListenARP(ifname string) (*ARPConn, error) { return listen(ifname, EtherTypeARP) }

// ListenRARP opens a socket for the RARP frames (EtherType 0x8035) seen on
// the interface: hypervisors announce a migrated VM with them. Its Frames
// have RARP set; it is otherwise an ARPConn like ListenARP's (a RARP
// socket sends RARP).
func ListenRARP(ifname string) (*ARPConn, error) { return listen(ifname, EtherTypeRARP) }

func listen(ifname string, proto uint16) (*ARPConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("arp %s: %w", ifname, err)
	}
	mac, ok := MACFrom(ifi.HardwareAddr)
	if !ok {
		return nil, fmt.Errorf("arp %s: hardware address %q is not Ethernet", ifname, ifi.HardwareAddr)
	}
	// Protocol 0 at socket() and the real protocol at bind(): a packet
	// socket created with ETH_P_ARP would queue ARP from every interface
	// in the window before bind narrows it to ours.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("arp %s: socket: %w", ifname, err)
	}
	if proto == unix.ETH_P_IPV6 {
		// Only Neighbor Solicitations and Advertisements come up: the
		// LAN's other IPv6 traffic stays in the kernel.
		if err := attachNDFilter(fd); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("nd %s: %w", ifname, err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("arp %s: bind: %w", ifname, err)
	}
	// A non-blocking fd makes os.NewFile register it with the runtime
	// poller, so Read parks the goroutine instead of a thread, honours
	// deadlines, and is woken by Close.
	f := os.NewFile(uintptr(fd), "arp:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("arp %s: %w", ifname, err)
	}
	return &ARPConn{proto: proto, name: ifname, ifindex: ifi.Index, mac: mac, f: f, rc: rc}, nil
}

// Name is the interface name given to ListenARP.
func (c *ARPConn) Name() string { return c.name }

// MAC is the interface's Ethernet address as it was at ListenARP; it is
// the sender of our requests.
func (c *ARPConn) MAC() MAC { return c.mac }

// Dropped counts frames Read skipped because they were not Ethernet/IPv4
// ARP or were cut short.
func (c *ARPConn) Dropped() uint64 { return c.dropped.Load() }

// SetReadDeadline makes a Read in progress or a later Read fail with an
// error wrapping os.ErrDeadlineExceeded once t passes; zero t means none.
func (c *ARPConn) SetReadDeadline(t time.Time) error {
	return c.f.SetReadDeadline(t)
}

// Read returns the next ARP seen on the interface. Frames this host sent
// (PACKET_OUTGOING, our own requests and the kernel's) are skipped, as are
// frames that are not Ethernet/IPv4 ARP (counted by Dropped). After Close
// it returns an error wrapping net.ErrClosed.
func (c *ARPConn) Read() (Frame, error) {
	// 64 bytes: the 28-byte payload plus Ethernet padding; anything longer
	// is cut (MSG_TRUNC is not asked for) and the tail is not needed.
	var buf [64]byte
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf[:], 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if c.closed.Load() {
				return Frame{}, fmt.Errorf("arp %s: read: %w", c.name, net.ErrClosed)
			}
			return Frame{}, fmt.Errorf("arp %s: read: %w", c.name, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			c.dropped.Add(1)
			continue
		}
		if ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		a, perr := ParseARP(buf[:n])
		if perr != nil {
			c.dropped.Add(1)
			continue
		}
		fr := Frame{ARP: a, RARP: c.proto == EtherTypeRARP, ToUs: ll.Pkttype == unix.PACKET_HOST}
		if ll.Halen == 6 {
			copy(fr.Src[:], ll.Addr[:6])
		}
		return fr, nil
	}
}

// Request broadcasts "who-has target tell sender" from the interface's
// MAC. sender may be 0.0.0.0 to probe as RFC 5227 does, without claiming
// an address on the link: the owner of target answers either way.
func (c *ARPConn) Request(target, sender netip.Addr) error {
	target, sender = target.Unmap(), sender.Unmap()
	if !target.Is4() || !sender.Is4() {
		return fmt.Errorf("arp %s: request for %s from %s: ARP needs IPv4 addresses", c.name, target, sender)
	}
	a := ARP{Op: OpRequest, SenderMAC: c.mac, SenderIP: sender, TargetIP: target}
	return c.send(a, BroadcastMAC)
}

func (c *ARPConn) send(a ARP, dst MAC) error {
	var buf [ARPLen]byte
	return c.sendRaw(a.Append(buf[:0]), dst)
}

// sendRaw sends b, a payload of the socket's protocol, to dst.
func (c *ARPConn) sendRaw(b []byte, dst MAC) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(c.proto), Ifindex: c.ifindex, Halen: 6}
	copy(to.Addr[:], dst[:])
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, to)
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		if c.closed.Load() {
			err = net.ErrClosed
		}
		return fmt.Errorf("arp %s: send: %w", c.name, err)
	}
	return nil
}

// Close closes the socket and wakes a Read blocked on it. Closing twice
// returns an error wrapping net.ErrClosed.
func (c *ARPConn) Close() error {
	if c.closed.Swap(true) {
		return fmt.Errorf("arp %s: close: %w", c.name, net.ErrClosed)
	}
	if err := c.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("arp %s: close: %w", c.name, err)
	}
	return nil
}

// htons converts a 16-bit value to network byte order as the kernel
// expects it in sll_protocol and socket()'s protocol argument.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
