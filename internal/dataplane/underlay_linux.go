//go:build linux

package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/lispd/lispd/wire"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UnderlayConfig configures OpenUnderlay.
type UnderlayConfig struct {
	// Port is the local UDP port LISP packets are received on (default
	// 4341); RemotePort the destination port of sent packets (default
	// 4341). Tests on one host set them apart.
	Port, RemotePort uint16
	// IPv4 and IPv6 select the families to open; neither means both.
	IPv4, IPv6 bool
	// BatchSize is the most packets per send or receive call (default 64).
	BatchSize int
	// NoGRO turns UDP generic receive offload off.
	NoGRO bool
	// UDPChecksum computes the outer UDP checksum. By default it is zero,
	// as RFC 9300 §5.3 recommends (and RFC 6935 allows for IPv6 tunnels);
	// the receive sockets accept zero checksums either way. Linux only
	// coalesces datagrams with a checksum (UDP GRO), so a receiving lispd
	// handles checksummed traffic in fewer, larger reads.
	UDPChecksum bool
	// SocketBuffer is the send and receive socket buffer size in bytes
	// (default 4 MiB; forced past the sysctl limit when privileged).
	SocketBuffer int
	// GSO sends through UDP sockets with segmentation offload (see
	// gso_linux.go) instead of raw sockets: a run of one flow's equal
	// segments leaves in one system call, as one super-packet. The outer
	// source port then comes from gsoPorts fixed ports.
	GSO bool
}

// LinuxUnderlay is the Linux RLOC-side socket set.
//
// Receiving uses one UDP socket per family bound to the wildcard address
// and the LISP data port, read with recvmmsg; per packet the kernel
// reports the local destination address (IP_PKTINFO: the ETR's
// not-my-RLOC check), the TTL or hop limit and the TOS or traffic class
// (the ETR's TTL, DSCP and ECN rules). With UDP GRO the kernel hands over
// runs of same-flow datagrams as one buffer, split here.
//
// Sending uses one raw IP socket per family (IPPROTO_RAW: the header is
// ours) and sendmmsg, because a UDP socket can neither vary the source
// port per flow (the ECMP entropy RFC 9300 §12 asks for) nor set the TTL
// and TOS of each packet cheaply, and does not say which address a
// datagram arrived on without cmsgs wireguard-go's StdNetBind does not
// expose. The price is no UDP segmentation offload on send.
type LinuxUnderlay struct {
	cfg  UnderlayConfig
	rx   []*rxSocket
	tx4  *txSocket
	tx6  *txSocket
	gso4 *gsoSockets
	gso6 *gsoSockets
	pool sync.Pool // *txScratch

	closeOnce sync.Once
}

var _ Underlay = (*LinuxUnderlay)(nil)

// OpenUnderlay opens the sockets in the calling thread's network namespace.
// Sending raw IP needs CAP_NET_RAW.
func OpenUnderlay(cfg UnderlayConfig) (_ *LinuxUnderlay, err error) {
	if cfg.Port == 0 {
		cfg.Port = wire.DataPort
	}
	if cfg.RemotePort == 0 {
		cfg.RemotePort = wire.DataPort
	}
	if !cfg.IPv4 && !cfg.IPv6 {
		cfg.IPv4, cfg.IPv6 = true, true
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.SocketBuffer <= 0 {
		cfg.SocketBuffer = 4 << 20
	}
	u := &LinuxUnderlay{cfg: cfg}
	u.pool.New = func() any { return u.newTxScratch() }
	defer func() {
		if err != nil {
			_ = u.Close()
		}
	}()
	if cfg.IPv4 {
		r, err := openRx(u, false)
		if err != nil {
			return nil, err
		}
		u.rx = append(u.rx, r)
		if u.tx4, err = openTx(false, cfg.SocketBuffer); err != nil {
			return nil, err
		}
		if cfg.GSO {
			u.gso4 = openGSO(false, cfg.SocketBuffer)
		}
	}
	if cfg.IPv6 {
		r, err := openRx(u, true)
		if err != nil {
			return nil, err
		}
		u.rx = append(u.rx, r)
		if u.tx6, err = openTx(true, cfg.SocketBuffer); err != nil {
			return nil, err
		}
		if cfg.GSO {
			u.gso6 = openGSO(true, cfg.SocketBuffer)
		}
	}
	return u, nil
}

// Close closes every socket; the receive functions return net.ErrClosed.
func (u *LinuxUnderlay) Close() error {
	var errs []error
	u.closeOnce.Do(func() {
		for _, r := range u.rx {
			errs = append(errs, r.conn.Close())
		}
		for _, t := range []*txSocket{u.tx4, u.tx6} {
			if t != nil {
				errs = append(errs, t.conn.Close())
			}
		}
		for _, g := range []*gsoSockets{u.gso4, u.gso6} {
			if g != nil {
				g.close()
			}
		}
	})
	return errors.Join(errs...)
}

func (u *LinuxUnderlay) BatchSize() int { return u.cfg.BatchSize }

// Receivers returns one receive function per family.
func (u *LinuxUnderlay) Receivers() []ReceiveFunc {
	fns := make([]ReceiveFunc, len(u.rx))
	for i, r := range u.rx {
		fns[i] = r.receive
	}
	return fns
}

// LocalPort is the port the receive sockets are bound to.
func (u *LinuxUnderlay) LocalPort() uint16 { return u.cfg.Port }

func setBuffers(fd int, size int, recv bool) {
	force, plain := unix.SO_SNDBUFFORCE, unix.SO_SNDBUF
	if recv {
		force, plain = unix.SO_RCVBUFFORCE, unix.SO_RCVBUF
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

// mmsghdr is struct mmsghdr of recvmmsg(2)/sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// ---- receive ----

const (
	groBufSize = 1 << 16 // largest UDP payload or coalesced run
	rxOOBSize  = 128
)

// rxSocket is one receive socket and its recvmmsg state. A receive
// function runs in a single goroutine, so nothing here is locked.
type rxSocket struct {
	u    *LinuxUnderlay
	conn *net.UDPConn
	rc   syscall.RawConn
	v6   bool
	gro  bool

	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	oob   [][]byte
	bufs  [][]byte // scratch datagram buffers

	// Messages read by the last recvmmsg and not yet handed out.
	nread, cur, segOff int
	meta               Outer
	gso                int

	coalesced atomic.Uint64 // GRO runs split (for tests)

	// recvmmsg result, set by readFn.
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool
}

func openRx(u *LinuxUnderlay, v6 bool) (*rxSocket, error) {
	network, ip := "udp4", net.IPv4zero
	if v6 {
		network, ip = "udp6", net.IPv6unspecified
	}
	conn, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: int(u.cfg.Port)})
	if err != nil {
		return nil, err
	}
	r := &rxSocket{u: u, conn: conn, v6: v6}
	if r.rc, err = conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	err = r.rc.Control(func(fd uintptr) {
		s := int(fd)
		if v6 {
			serr = errors.Join(
				unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1),
				unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1),
				unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1),
				unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_RX, 1))
		} else {
			serr = errors.Join(
				unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1),
				unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTTL, 1),
				unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTOS, 1))
		}
		if !u.cfg.NoGRO {
			r.gro = unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
		setBuffers(s, u.cfg.SocketBuffer, true)
	})
	if err = errors.Join(err, serr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("dataplane: %s receive socket options: %w", network, err)
	}
	// One buffer per message of the batch, each large enough for a
	// coalesced run (or the largest datagram): the pages only become
	// resident as far as the kernel writes into them.
	n, size := u.cfg.BatchSize, groBufSize
	r.msgs = make([]mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]unix.RawSockaddrInet6, n)
	r.oob = make([][]byte, n)
	r.bufs = make([][]byte, n)
	for i := range n {
		r.bufs[i] = make([]byte, size)
		r.oob[i] = make([]byte, rxOOBSize)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		h := &r.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i][0]
	}
	r.readF = r.recvmmsg
	return r, nil
}

// recvmmsg reads on a non-blocking socket with a raw system call: it
// returns at once, so the runtime gains nothing from handing the thread's
// P away meanwhile (see gsoSockets.send).
func (r *rxSocket) recvmmsg(fd uintptr) bool {
	for i := range r.msgs {
		h := &r.msgs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		h.SetControllen(rxOOBSize)
		h.Flags = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(len(r.msgs)), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	r.rn, r.rerr = int(n), e
	return true
}

// receive fills bufs from the datagrams read (splitting GRO runs), and
// reads more only when none are left.
func (r *rxSocket) receive(bufs [][]byte, sizes []int, outer []Outer, offset int) (int, error) {
	out := 0
	for out < len(bufs) {
		if r.cur >= r.nread {
			if out > 0 {
				break
			}
			r.rn, r.rerr = 0, 0
			if err := r.rc.Read(r.readF); err != nil {
				return 0, err
			}
			if r.rerr != 0 {
				return 0, fmt.Errorf("dataplane: recvmmsg: %w", r.rerr)
			}
			r.nread, r.cur, r.segOff = r.rn, 0, 0
			continue
		}
		m := &r.msgs[r.cur]
		if r.segOff == 0 {
			if m.hdr.Flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || !r.parse(m, r.cur) {
				r.cur++
				continue
			}
			if r.gso > 0 && int(m.len) > r.gso {
				r.coalesced.Add(1)
			}
		}
		data := r.bufs[r.cur][:m.len]
		seg := len(data) - r.segOff
		if r.gso > 0 {
			seg = min(seg, r.gso)
		}
		if seg <= len(bufs[out])-offset {
			sizes[out] = copy(bufs[out][offset:], data[r.segOff:r.segOff+seg])
			outer[out] = r.meta
			out++
		}
		if r.segOff += seg; r.segOff >= len(data) {
			r.cur++
			r.segOff = 0
		}
	}
	return out, nil
}

// parse reads the source address and the control messages of message i
// into r.meta and r.gso.
func (r *rxSocket) parse(m *mmsghdr, i int) bool {
	r.meta = Outer{TTL: 0}
	r.gso = 0
	sa := &r.names[i]
	if r.v6 {
		if sa.Family != unix.AF_INET6 {
			return false
		}
		r.meta.Src = netip.AddrFrom16(sa.Addr)
	} else {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		if sa4.Family != unix.AF_INET {
			return false
		}
		r.meta.Src = netip.AddrFrom4(sa4.Addr)
	}
	r.meta.SrcPort = binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	oob := r.oob[i][:m.hdr.Controllen]
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			r.meta.Dst = netip.AddrFrom4(info.Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			r.meta.Dst = netip.AddrFrom16(info.Addr)
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4,
			h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			r.meta.TTL = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			r.meta.TOS, r.meta.HasTOS = data[0], true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			r.meta.TOS, r.meta.HasTOS = uint8(binary.NativeEndian.Uint32(data)), true
		case h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && len(data) >= 2:
			if len(data) >= 4 {
				r.gso = int(binary.NativeEndian.Uint32(data))
			} else {
				r.gso = int(binary.NativeEndian.Uint16(data))
			}
		}
	}
	return true
}

// ---- send ----

// txSocket is a raw IP socket we write whole IP packets to.
type txSocket struct {
	conn net.PacketConn
	rc   syscall.RawConn
	v6   bool
}

func openTx(v6 bool, bufSize int) (*txSocket, error) {
	network, addr := "ip4:255", "0.0.0.0"
	if v6 {
		network, addr = "ip6:255", "::"
	}
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("dataplane: raw %s socket (needs CAP_NET_RAW): %w", network, err)
	}
	t := &txSocket{conn: conn, v6: v6}
	if t.rc, err = conn.(*net.IPConn).SyscallConn(); err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	err = t.rc.Control(func(fd uintptr) {
		if v6 {
			// Implied by IPPROTO_RAW since Linux 4.5; explicit for clarity.
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1)
		}
		setBuffers(int(fd), bufSize, false)
		// Raw sockets would otherwise see nothing, but make sure.
		_ = unix.Shutdown(int(fd), unix.SHUT_RD)
	})
	if err = errors.Join(err, serr); err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// txScratch holds the sendmmsg vectors of one Send call.
type txScratch struct {
	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte

	// GSO path (gsoSockets.send): one message, one iovec per segment.
	gsoMsg  unix.Msghdr
	gsoIov  []unix.Iovec
	gsoName unix.RawSockaddrInet6
	gsoErr  syscall.Errno
	gsoFn   func(fd uintptr) bool

	off, n, sent int
	err          syscall.Errno
	fn           func(fd uintptr) bool
}

func (u *LinuxUnderlay) newTxScratch() *txScratch {
	n := u.cfg.BatchSize
	s := &txScratch{msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n),
		gsoIov: make([]unix.Iovec, gsoMaxSegs), oob: make([]byte, 0, 256)}
	for i := range n {
		h := &s.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	s.fn = s.sendmmsg
	s.gsoFn = s.sendmsg
	return s
}

// sendmmsg is raw for the reason recvmmsg is: the socket is non-blocking.
func (s *txScratch) sendmmsg(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[s.off])), uintptr(s.n), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.sent, s.err = int(n), e
	return true
}

// Send builds the outer IP and UDP headers in the headroom of each packet
// and writes runs of one family with sendmmsg.
func (u *LinuxUnderlay) Send(bufs [][]byte, outer []Outer, offset int) (int, error) {
	if offset < UnderlayHeadroom {
		return 0, errors.New("dataplane: underlay send without headroom")
	}
	if len(bufs) > u.cfg.BatchSize {
		return 0, fmt.Errorf("dataplane: underlay batch of %d > %d", len(bufs), u.cfg.BatchSize)
	}
	s := u.pool.Get().(*txScratch)
	defer u.pool.Put(s)
	sent := 0
	var errs error
	for start := 0; start < len(bufs); {
		v6 := outer[start].Dst.Is6()
		end := start + 1
		for end < len(bufs) && outer[end].Dst.Is6() == v6 {
			end++
		}
		t, g := u.tx4, u.gso4
		if v6 {
			t, g = u.tx6, u.gso6
		}
		if g != nil {
			n, err := u.sendGSO(s, t, g, bufs, outer, offset, start, end)
			sent += n
			errs = errors.Join(errs, err)
			start = end
			continue
		}
		if t == nil {
			errs = errors.Join(errs, fmt.Errorf("dataplane: no socket for %s", outer[start].Dst))
			start = end
			continue
		}
		for i := start; i < end; i++ {
			s.prepare(i-start, bufs[i], &outer[i], offset, u.cfg.RemotePort, u.cfg.UDPChecksum)
		}
		n, err := s.flush(t, end-start)
		sent += n
		errs = errors.Join(errs, err)
		start = end
	}
	return sent, errs
}

// sendGSO sends packets start..end of one family flow run by flow run
// through the GSO sockets; a flow whose port has no socket goes raw.
func (u *LinuxUnderlay) sendGSO(s *txScratch, t *txSocket, g *gsoSockets, bufs [][]byte, outer []Outer, offset, start, end int) (int, error) {
	sent := 0
	var errs error
	// Packets that cannot go through GSO (a port without a GSO socket, a
	// destination port of their own: an RTR's to a NATed xTR) go raw,
	// batched into one sendmmsg between GSO runs.
	raw := 0
	for i := start; i < end; {
		if !g.usable(outer[i].SrcPort) || outer[i].DstPort != 0 || t == nil {
			if t != nil {
				s.prepare(raw, bufs[i], &outer[i], offset, u.cfg.RemotePort, u.cfg.UDPChecksum)
				raw++
			}
			i++
			continue
		}
		if raw > 0 {
			k, err := s.flush(t, raw)
			sent, errs, raw = sent+k, errors.Join(errs, err), 0
		}
		n := runLen(bufs, outer, offset, i, end)
		if err := g.send(s, bufs[i:i+n], &outer[i], offset, n, u.cfg.RemotePort); err != nil {
			errs = errors.Join(errs, fmt.Errorf("dataplane: send to %s: %w", outer[i].Dst, err))
		} else {
			sent += n
		}
		i += n
	}
	if raw > 0 {
		k, err := s.flush(t, raw)
		sent, errs = sent+k, errors.Join(errs, err)
	}
	return sent, errs
}

// prepare writes the outer headers of one packet and points message i at
// it.
func (s *txScratch) prepare(i int, b []byte, o *Outer, offset int, dport uint16, csum bool) {
	payload := len(b) - offset
	if o.DstPort != 0 {
		dport = o.DstPort
	}
	var h []byte
	if o.Dst.Is4() {
		h = b[offset-ipv4HeaderLen-8 : offset]
		h[0], h[1] = 0x45, o.TOS
		binary.BigEndian.PutUint16(h[2:], uint16(ipv4HeaderLen+8+payload))
		binary.BigEndian.PutUint32(h[4:], ipv4DF) // ID 0 (the kernel picks one), DF
		h[8], h[9] = o.TTL, protoUDP
		h[10], h[11] = 0, 0 // the kernel computes the header checksum
		src, dst := o.Src.As4(), o.Dst.As4()
		copy(h[12:16], src[:])
		copy(h[16:20], dst[:])
		putUDP(h[ipv4HeaderLen:], o.SrcPort, dport, 8+payload)
		if csum {
			putUDPChecksum(h[ipv4HeaderLen:], wire.ChecksumAdd(0, h[12:20]), b[offset:])
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.names[i]))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst}
		s.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	} else {
		h = b[offset-ipv6HeaderLen-8 : offset]
		flow := uint32(o.SrcPort) * 0x9e37 & 0xfffff
		binary.BigEndian.PutUint32(h, 6<<28|uint32(o.TOS)<<20|flow)
		binary.BigEndian.PutUint16(h[4:], uint16(8+payload))
		h[6], h[7] = protoUDP, o.TTL
		src, dst := o.Src.As16(), o.Dst.As16()
		copy(h[8:24], src[:])
		copy(h[24:40], dst[:])
		u := h[ipv6HeaderLen:]
		putUDP(u, o.SrcPort, dport, 8+payload)
		if csum {
			putUDPChecksum(u, wire.ChecksumAdd(0, h[8:40]), b[offset:])
		}
		s.names[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst}
		s.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	s.iovs[i].Base = &h[0]
	s.iovs[i].SetLen(len(h) + payload)
}

// putUDPChecksum sets the checksum of the UDP header u (length field set)
// followed by payload, given the sum of the pseudo-header addresses.
func putUDPChecksum(u []byte, addrSum uint32, payload []byte) {
	sum := addrSum + uint32(binary.BigEndian.Uint16(u[4:])) + protoUDP
	sum = wire.ChecksumAdd(sum, u[:8])
	c := wire.ChecksumFold(wire.ChecksumAdd(sum, payload))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
}

func putUDP(u []byte, sport, dport uint16, length int) {
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(length))
	u[6], u[7] = 0, 0
}

// flush sends the n prepared messages; a message the kernel refuses (too
// big for the route, no route) is skipped and reported.
func (s *txScratch) flush(t *txSocket, n int) (int, error) {
	sent, off := 0, 0
	var errs error
	for off < n {
		s.off, s.n, s.sent, s.err = off, n-off, 0, 0
		if err := t.rc.Write(s.fn); err != nil {
			return sent, err
		}
		switch {
		case s.err != 0:
			errs = errors.Join(errs, fmt.Errorf("dataplane: sendmmsg: %w", s.err))
			off++ // the first message failed: skip it
		case s.sent == 0:
			off++
		default:
			sent += s.sent
			off += s.sent
		}
	}
	return sent, errs
}
