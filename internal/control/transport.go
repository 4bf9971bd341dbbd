// Package control is the LISP control plane's plumbing between the sockets
// and the roles: the transport on the control port (one socket per
// configured address, or a wildcard pair that learns each packet's
// destination; batched receive and send), the Request every handler takes,
// the Sender every role sends with, the Mux that maps a message type to
// its handler and the DropReasons the daemon counts. Decoding, filtering
// and the routing rules belong to the daemon.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

const (
	batchSize = 64
	maxPacket = 9216 // jumbo frames; control messages are far smaller
)

// Out collects the replies a handler wants sent; they go out in one batch
// after the received batch is handled.
type Out struct {
	// Guard, when set, decides whether each Map-Reply and Map-Notify may
	// be sent; those it refuses are not queued (it counts them).
	Guard *ReplyGuard
	msgs  []outMsg
	buf   []byte // the queued messages back to back: one buffer, reused
}

type outMsg struct {
	start, end int // in buf
	data       []byte
	to         netip.AddrPort
	src        netip.Addr
}

// Send queues b (copied) for to, from local address src (invalid: any).
func (o *Out) Send(b []byte, src netip.Addr, to netip.AddrPort) {
	if o.Guard != nil && o.Guard.Check(b, src, to.Addr()) != Handled {
		return
	}
	start := len(o.buf)
	o.buf = append(o.buf, b...)
	o.msgs = append(o.msgs, outMsg{start: start, end: len(o.buf), to: to, src: src})
}

// seal points each message at its bytes, once buf no longer moves.
func (o *Out) seal() {
	for i := range o.msgs {
		o.msgs[i].data = o.buf[o.msgs[i].start:o.msgs[i].end]
	}
}

func (o *Out) reset() {
	clear(o.msgs)
	o.msgs, o.buf = o.msgs[:0], o.buf[:0]
}

// ReceiveFunc processes one received datagram (r.Raw, r.Src, r.Local),
// queuing any replies on out.
type ReceiveFunc func(r *Request, out *Out)

type sock struct {
	udp      *net.UDPConn
	batch    BatchConn
	local    netip.AddrPort
	wildcard bool // learns each packet's destination from IP_PKTINFO
	is6      bool
	mu       sync.Mutex // serializes writes from timers with the reader's flushes
}

// Transport owns the control sockets.
type Transport struct {
	socks []*sock
	log   *slog.Logger
	wg    sync.WaitGroup
	guard *ReplyGuard // nil: every message is sent
}

// SetGuard makes g decide on every Map-Reply and Map-Notify sent, as
// answers (Out) and by Send. Call it before Serve.
func (t *Transport) SetGuard(g *ReplyGuard) { t.guard = g }

// Listen opens one socket per address on port; no addresses means the
// wildcard addresses of both families (IPv6 only if the host has it).
func Listen(addrs []netip.Addr, port uint16, log *slog.Logger) (*Transport, error) {
	t := &Transport{log: log}
	if len(addrs) == 0 {
		s4, err := openSock(netip.AddrPortFrom(netip.IPv4Unspecified(), port), true)
		if err != nil {
			return nil, err
		}
		t.socks = append(t.socks, s4)
		if port == 0 {
			port = s4.local.Port()
		}
		if s6, err := openSock(netip.AddrPortFrom(netip.IPv6Unspecified(), port), true); err == nil {
			t.socks = append(t.socks, s6)
		} else {
			log.Debug("no IPv6 control socket", "err", err)
		}
		return t, nil
	}
	for _, a := range addrs {
		// An unspecified address given explicitly is a wildcard too: it
		// must learn each packet's destination to answer from it.
		s, err := openSock(netip.AddrPortFrom(a, port), a.IsUnspecified())
		if err != nil {
			t.Close()
			return nil, err
		}
		t.socks = append(t.socks, s)
	}
	return t, nil
}

// setBuffers asks for big socket buffers so a burst of Map-Registers is
// queued, not dropped. As root SO_RCVBUFFORCE passes the net.core.rmem_max
// cap; otherwise the kernel clamps the plain request.
func setBuffers(c *net.UDPConn, n int) {
	_ = c.SetReadBuffer(n)
	_ = c.SetWriteBuffer(n)
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
		})
	}
}

func openSock(ap netip.AddrPort, wildcard bool) (*sock, error) {
	network := "udp4"
	if ap.Addr().Is6() {
		network = "udp6"
	}
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		err := rc.Control(func(fd uintptr) {
			// Go turns SO_BROADCAST on for every UDP socket; nothing
			// lispd sends on the control port goes to a broadcast
			// address, so the kernel refuses one (EACCES) even if a
			// check above missed it (a subnet broadcast address only
			// the routing table knows).
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 0)
			if ap.Addr().IsUnspecified() {
				// A dynamic-EID notify group binds its multicast
				// address on this port too: that needs SO_REUSEADDR on
				// both, and IP_MULTICAST_ALL off so this socket does
				// not get the group's datagrams as well.
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				if !ap.Addr().Is6() {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
				}
			}
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, net.UDPAddrFromAddrPort(ap).String())
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", ap, err)
	}
	c := pc.(*net.UDPConn)
	s := &sock{udp: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort(), wildcard: wildcard, is6: ap.Addr().Is6()}
	setBuffers(c, 8<<20)
	if s.is6 {
		p := ipv6.NewPacketConn(c)
		if wildcard {
			if err := p.SetControlMessage(ipv6.FlagDst, true); err != nil {
				c.Close()
				return nil, err
			}
		}
		s.batch = IPv6Batch{p}
	} else {
		p := ipv4.NewPacketConn(c)
		if wildcard {
			if err := p.SetControlMessage(ipv4.FlagDst, true); err != nil {
				c.Close()
				return nil, err
			}
		}
		s.batch = p
	}
	s.local = netip.AddrPortFrom(s.local.Addr().Unmap(), s.local.Port())
	return s, nil
}

// Addrs returns the local address of every socket (the real port when 0 was asked).
func (t *Transport) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(t.socks))
	for i, s := range t.socks {
		out[i] = s.local
	}
	return out
}

// Serve reads every socket in its own goroutine and calls h for each
// datagram until ctx ends or Close is called. It returns at once.
func (t *Transport) Serve(ctx context.Context, h ReceiveFunc) {
	for _, s := range t.socks {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.readLoop(ctx, s, h)
		}()
	}
	go func() {
		<-ctx.Done()
		t.Close()
	}()
}

// Wait blocks until every read loop has ended.
func (t *Transport) Wait() { t.wg.Wait() }

func (t *Transport) readLoop(ctx context.Context, s *sock, h ReceiveFunc) {
	ms := make([]ipv4.Message, batchSize)
	oobLen := 0
	if s.wildcard {
		oobLen = max(len(ipv4.NewControlMessage(ipv4.FlagDst)), len(ipv6.NewControlMessage(ipv6.FlagDst)))
	}
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, maxPacket)}
		if oobLen > 0 {
			ms[i].OOB = make([]byte, oobLen)
		}
	}
	out := Out{Guard: t.guard}
	var r Request
	for {
		for i := range ms {
			ms[i].OOB = ms[i].OOB[:cap(ms[i].OOB)]
		}
		n, err := s.batch.ReadBatch(ms, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("control socket read", "local", s.local, "err", err)
			continue
		}
		for i := range n {
			m := &ms[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			ap := ua.AddrPort()
			r = Request{Raw: m.Buffers[0][:m.N], Src: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Local: s.local}
			if s.wildcard && m.NN > 0 {
				r.Local = netip.AddrPortFrom(dstFromOOB(m.OOB[:m.NN], s.is6), s.local.Port())
			}
			h(&r, &out)
		}
		if len(out.msgs) > 0 {
			out.seal()
			t.flush(s, out.msgs)
			out.reset()
		}
	}
}

func dstFromOOB(oob []byte, is6 bool) netip.Addr {
	if is6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil {
			if a, ok := netip.AddrFromSlice(cm.Dst); ok {
				return a.Unmap()
			}
		}
		return netip.IPv6Unspecified()
	}
	var cm ipv4.ControlMessage
	if cm.Parse(oob) == nil {
		if a, ok := netip.AddrFromSlice(cm.Dst); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

// flush sends queued messages, each from the socket of its family (and its
// source address, where one is given), in as few system calls as possible.
func (t *Transport) flush(from *sock, msgs []outMsg) {
	for _, s := range t.socks {
		var batch []ipv4.Message
		for _, m := range msgs {
			if t.pick(m.to.Addr(), m.src, from) != s {
				continue
			}
			wm := ipv4.Message{Buffers: [][]byte{m.data}, Addr: net.UDPAddrFromAddrPort(m.to)}
			if s.wildcard && m.src.IsValid() && !m.src.IsUnspecified() {
				wm.OOB = srcOOB(m.src, s.is6)
			}
			batch = append(batch, wm)
		}
		if len(batch) == 0 {
			continue
		}
		s.mu.Lock()
		for len(batch) > 0 {
			n, err := s.batch.WriteBatch(batch, 0)
			if err != nil {
				t.log.Debug("control socket write", "local", s.local, "err", err)
				if n <= 0 {
					n = 1 // skip the failing message, keep the rest
				}
			}
			batch = batch[n:]
		}
		s.mu.Unlock()
	}
}

func srcOOB(src netip.Addr, is6 bool) []byte {
	if is6 {
		return (&ipv6.ControlMessage{Src: src.AsSlice()}).Marshal()
	}
	return (&ipv4.ControlMessage{Src: src.AsSlice()}).Marshal()
}

// pick chooses the socket to send to dst from src: the one bound to src,
// else the one that received the request, else any of dst's family.
func (t *Transport) pick(dst, src netip.Addr, prefer *sock) *sock {
	is6 := dst.Is6()
	if src.IsValid() {
		for _, s := range t.socks {
			if !s.wildcard && s.local.Addr() == src {
				return s
			}
		}
	}
	if prefer != nil && prefer.is6 == is6 {
		return prefer
	}
	for _, s := range t.socks {
		if s.is6 == is6 {
			return s
		}
	}
	return nil
}

// Send sends one message now (timers use it: retransmissions, unsolicited
// Map-Notifies). src may be invalid. A message the guard refuses is not
// sent: the error is a *ReplyDroppedError.
func (t *Transport) Send(b []byte, src netip.Addr, to netip.AddrPort) error {
	if t.guard != nil {
		if reason := t.guard.Check(b, src, to.Addr()); reason != Handled {
			return &ReplyDroppedError{Reason: reason, To: to}
		}
	}
	s := t.pick(to.Addr(), src, nil)
	if s == nil {
		return fmt.Errorf("no control socket for %s", to)
	}
	t.flush(s, []outMsg{{data: b, to: to, src: src}})
	return nil
}

// Close closes every socket; read loops end.
func (t *Transport) Close() {
	for _, s := range t.socks {
		s.udp.Close()
	}
}

// Len is the number of messages queued.
func (o *Out) Len() int { return len(o.msgs) }

// Each calls f with each message queued, in order (tests look at what a
// handler answered; b is valid only during the call).
func (o *Out) Each(f func(b []byte, src netip.Addr, to netip.AddrPort)) {
	for _, m := range o.msgs {
		f(o.buf[m.start:m.end], m.src, m.to)
	}
}
