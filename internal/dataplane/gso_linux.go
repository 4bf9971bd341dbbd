package dataplane

import (
	"encoding/binary"
	"errors"
	"os"
	"syscall"
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

// gsoSockets are the flow sockets of one family: non-blocking, so that a
// full send buffer parks the sending goroutine in the netpoller instead
// of blocking its thread.
type gsoSockets struct {
	files [gsoPorts]*os.File
	rcs   [gsoPorts]syscall.RawConn // nil: no socket for that port
	v6    bool
}

func openGSO(v6 bool, bufSize int) *gsoSockets {
	g := &gsoSockets{v6: v6}
	for i := range g.rcs {
		fam := unix.AF_INET
		if v6 {
			fam = unix.AF_INET6
		}
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
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
		f := os.NewFile(uintptr(fd), "lisp-gso")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			continue
		}
		g.files[i], g.rcs[i] = f, rc
	}
	return g
}

func (g *gsoSockets) close() {
	for i, f := range g.files {
		if f != nil {
			f.Close()
			g.files[i], g.rcs[i] = nil, nil
		}
	}
}

// usable reports whether the flow with this source port has a socket.
func (g *gsoSockets) usable(srcPort uint16) bool {
	return g != nil && g.rcs[srcPort%gsoPorts] != nil
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
		if !sameFlow(p, o) {
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
// Everything it hands the kernel lives in s, so it allocates nothing, and
// the system call is raw: on a non-blocking socket it returns at once, and
// the runtime need not hand the thread's P to another thread meanwhile
// (sysmon does that to a P in a system call while the other Ps are busy,
// and on a two-core machine the wake-ups it costs were a tenth of a
// relaying lispd's time).
func (g *gsoSockets) send(s *txScratch, bufs [][]byte, o *Outer, offset, n int, dport uint16) error {
	for i := range n {
		p := bufs[i][offset:]
		if len(p) == 0 {
			return errors.New("dataplane: empty datagram")
		}
		s.gsoIov[i].Base = &p[0]
		s.gsoIov[i].SetLen(len(p))
	}
	oob := s.oob[:0]
	if n > 1 {
		oob = appendCmsg(oob, unix.SOL_UDP, udpSegment, 2)
		binary.NativeEndian.PutUint16(oob[len(oob)-cmsgPad(2):], uint16(len(bufs[0])-offset))
	}
	h := &s.gsoMsg
	if g.v6 {
		oob = appendCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, int32(o.TTL))
		oob = appendCmsgInt(oob, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int32(o.TOS))
		oob = appendCmsg(oob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[len(oob)-cmsgPad(unix.SizeofInet6Pktinfo)]))
		*pi = unix.Inet6Pktinfo{Addr: o.Src.As16()}
		s.gsoName = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: o.Dst.As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.gsoName.Port))[:], dport)
		h.Namelen = unix.SizeofSockaddrInet6
	} else {
		oob = appendCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TTL, int32(o.TTL))
		oob = appendCmsgInt(oob, unix.IPPROTO_IP, unix.IP_TOS, int32(o.TOS))
		oob = appendCmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[len(oob)-cmsgPad(unix.SizeofInet4Pktinfo)]))
		*pi = unix.Inet4Pktinfo{Spec_dst: o.Src.As4()}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.gsoName))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: o.Dst.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dport)
		h.Namelen = unix.SizeofSockaddrInet4
	}
	h.Name = (*byte)(unsafe.Pointer(&s.gsoName))
	h.Iov = &s.gsoIov[0]
	h.SetIovlen(n)
	h.Control = &oob[0]
	h.SetControllen(len(oob))
	s.gsoErr = 0
	if err := g.rcs[o.SrcPort%gsoPorts].Write(s.gsoFn); err != nil {
		return err
	}
	if s.gsoErr != 0 {
		return s.gsoErr
	}
	return nil
}

// sendmsg is the raw system call of send; false (wait until writable) when
// the socket's buffer is full.
func (s *txScratch) sendmsg(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.gsoMsg)), 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.gsoErr = e
	return true
}

func appendCmsgInt(b []byte, level, typ int, v int32) []byte {
	b = appendCmsg(b, level, typ, 4)
	binary.NativeEndian.PutUint32(b[len(b)-cmsgPad(4):], uint32(v))
	return b
}

// appendCmsg appends a control message header for dataLen bytes of data
// and room for them, zeroed; the data starts cmsgPad(dataLen) bytes before
// the end. b must have the capacity (no allocation on the packet path).
func appendCmsg(b []byte, level, typ, dataLen int) []byte {
	start := len(b)
	b = b[:start+unix.CmsgSpace(dataLen)]
	clear(b[start:])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(dataLen))
	return b
}

// cmsgPad is how far before the end of its space a control message's
// data of dataLen bytes starts.
func cmsgPad(dataLen int) int { return unix.CmsgSpace(dataLen) - unix.CmsgLen(0) }

// SourcePorts is how a flow's port maps to the source port on the wire:
// with GSO sockets, to the port of the flow's socket.
func (u *LinuxUnderlay) SourcePorts() SourcePorts {
	if u.gso4 != nil || u.gso6 != nil {
		return SourcePorts{Base: gsoBasePort, N: gsoPorts}
	}
	return SourcePorts{}
}
