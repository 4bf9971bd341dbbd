package dataplane

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP segmentation offload on send. The raw sockets of the default path
// send every segment of a TCP burst on its own; with GSO a run of equal
// segments of one flow leaves in one sendmsg and crosses the kernel (and
// veth, and the next hops) as one super-packet, as the kernel's own
// tunnels do. A UDP socket cannot pick its source port per packet, so
// gsoPorts sockets are bound to consecutive ports above the default
// ephemeral range and a flow's port (its ECMP entropy) selects one.
const (
	gsoPorts    = 64
	gsoBasePort = 61000
	gsoMaxSegs  = 64
	udpSegment  = 103 // UDP_SEGMENT
)

type gsoSockets struct {
	fds [gsoPorts]int
	v6  bool
}

func openGSO(v6 bool, bufSize int) *gsoSockets {
	g := &gsoSockets{v6: v6}
	for i := range g.fds {
		g.fds[i] = -1
		fam := unix.AF_INET
		if v6 {
			fam = unix.AF_INET6
		}
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufSize)
		var sa unix.Sockaddr = &unix.SockaddrInet4{Port: gsoBasePort + i}
		if v6 {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			sa = &unix.SockaddrInet6{Port: gsoBasePort + i}
		}
		if unix.Bind(fd, sa) != nil {
			unix.Close(fd) // port taken: flows hashed here use the raw path
			continue
		}
		g.fds[i] = fd
	}
	return g
}

func (g *gsoSockets) close() {
	for i, fd := range g.fds {
		if fd >= 0 {
			unix.Close(fd)
			g.fds[i] = -1
		}
	}
}

// usable reports whether the flow with this source port has a socket.
func (g *gsoSockets) usable(srcPort uint16) bool {
	return g != nil && g.fds[srcPort%gsoPorts] >= 0
}

// runLen is how many packets from start form one GSO send: same outer
// addresses, port, TTL and TOS, equal payload sizes but for a shorter last.
func runLen(bufs [][]byte, outer []Outer, offset, start, end int) int {
	o := &outer[start]
	size := len(bufs[start]) - offset
	// A UDP datagram, super or not, carries at most 65507 bytes.
	limit := min(gsoMaxSegs, 65000/max(size, 1))
	n := 1
	for i := start + 1; i < end && n < limit; i++ {
		p := &outer[i]
		if p.Dst != o.Dst || p.Src != o.Src || p.SrcPort != o.SrcPort || p.DstPort != o.DstPort || p.TTL != o.TTL || p.TOS != o.TOS {
			break
		}
		l := len(bufs[i]) - offset
		if l > size {
			break
		}
		n++
		if l < size {
			break // a short segment ends the run
		}
	}
	return n
}

// send writes n packets of one flow (n == 1: a plain datagram) through the
// flow's socket, with TTL, TOS and source address as control messages.
func (g *gsoSockets) send(bufs [][]byte, o *Outer, offset, n int, dport uint16, iovs [][]byte, oob []byte) error {
	for i := range n {
		iovs[i] = bufs[i][offset:]
	}
	oob = oob[:0]
	if n > 1 {
		oob = appendCmsg(oob, unix.SOL_UDP, udpSegment, 2, func(b []byte) {
			binary.NativeEndian.PutUint16(b, uint16(len(bufs[0])-offset))
		})
	}
	var to unix.Sockaddr
	if g.v6 {
		oob = appendCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, int32(o.TTL))
		oob = appendCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int32(o.TOS))
		oob = appendCmsg(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo, func(b []byte) {
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[0]))
			*pi = unix.Inet6Pktinfo{Addr: o.Src.As16()}
		})
		to = &unix.SockaddrInet6{Port: int(dport), Addr: o.Dst.As16()}
	} else {
		oob = appendCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TTL, int32(o.TTL))
		oob = appendCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TOS, int32(o.TOS))
		oob = appendCmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo, func(b []byte) {
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[0]))
			*pi = unix.Inet4Pktinfo{Spec_dst: o.Src.As4()}
		})
		to = &unix.SockaddrInet4{Port: int(dport), Addr: o.Dst.As4()}
	}
	_, err := unix.SendmsgBuffers(g.fds[o.SrcPort%gsoPorts], iovs[:n], oob, to, 0)
	return err
}

func appendCmsgInt(b []byte, level, typ int, v int32) []byte {
	return appendCmsg(b, level, typ, 4, func(d []byte) { binary.NativeEndian.PutUint32(d, uint32(v)) })
}

func appendCmsg(b []byte, level, typ, dataLen int, fill func([]byte)) []byte {
	start := len(b)
	space := unix.CmsgSpace(dataLen)
	b = append(b, make([]byte, space)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(dataLen))
	fill(b[start+unix.CmsgLen(0) : start+unix.CmsgLen(dataLen)])
	return b
}

// SourcePorts is how a flow's port maps to the source port on the wire:
// with GSO sockets, to the port of the flow's socket.
func (u *LinuxUnderlay) SourcePorts() SourcePorts {
	if u.gso4 != nil || u.gso6 != nil {
		return SourcePorts{Base: gsoBasePort, N: gsoPorts}
	}
	return SourcePorts{}
}
