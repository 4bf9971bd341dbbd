// Package lisptest is lispd's test kit, shared by the tests of every
// package and free of root-only and namespace code:
//
//   - Start runs a daemon in-process from a YAML config on loopback,
//     until the test ends;
//   - Clock is a settable clock and Sender records what a role sends;
//   - Eventually waits for a condition;
//   - Responder and Sink stand in for the mapping system in tests of
//     clients such as lig and the load generator: the Responder answers
//     Map-Registers with signed Map-Notifies and ECM'd Map-Requests with
//     Map-Replies, the Sink counts what it receives.
//
// Everything listens on loopback only and sends only to loopback
// addresses, so a test cannot spray packets at a real network by mistake.
// The data plane's in-memory devices are in dataplane/dptest.
package lisptest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"

	"github.com/lispd/lispd/internal/control"
	"github.com/lispd/lispd/wire"
)

const batch = 64

// ResponderOptions configure a Responder; the zero value answers every
// Map-Request positively and accepts no Map-Register (no secret).
type ResponderOptions struct {
	// Addr is where to listen; default 127.0.0.1:0. Must be loopback.
	Addr netip.AddrPort
	// Secret verifies Map-Registers (any key ID, algorithm 1 or 2) and
	// signs the Map-Notifies. Registers that fail are counted and dropped.
	Secret []byte
	// DropEvery, if > 1, silently drops every DropEvery-th message that
	// would get an answer (2 drops every other one).
	DropEvery int
	// Records builds the records of the Map-Reply to req; nil answers
	// with DefaultRecords.
	Records func(req *wire.MapRequest) []wire.EIDRecord
	// NoNotify makes the Responder verify Map-Registers but not answer.
	NoNotify bool
	// NotifySecret, if set, signs the Map-Notifies instead of Secret (to
	// test that clients verify them).
	NotifySecret []byte
}

// Counts are what a Responder saw and did.
type Counts struct {
	Registers, Requests uint64 // well-formed messages received
	Notifies, Replies   uint64 // answers sent
	BadAuth             uint64 // Map-Registers failing authentication
	Dropped             uint64 // answers withheld by DropEvery
	Other               uint64 // anything else (undecodable, other types)
}

// Responder is a tiny Map-Server/Map-Resolver.
type Responder struct {
	opts   ResponderOptions
	conn   *net.UDPConn
	bc     control.BatchConn
	addr   netip.AddrPort
	wg     sync.WaitGroup
	seen   atomic.Uint64
	counts struct {
		registers, requests, notifies, replies, badAuth, dropped, other atomic.Uint64
	}
}

// NewResponder starts a Responder; Close stops it.
func NewResponder(opts ResponderOptions) (*Responder, error) {
	conn, bc, addr, err := listen(opts.Addr)
	if err != nil {
		return nil, err
	}
	r := &Responder{opts: opts, conn: conn, bc: bc, addr: addr}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Addr is the address the Responder listens on.
func (r *Responder) Addr() netip.AddrPort { return r.addr }

// Close stops the Responder and waits for its goroutine.
func (r *Responder) Close() error {
	err := r.conn.Close()
	r.wg.Wait()
	return err
}

// Counts returns the counters so far.
func (r *Responder) Counts() Counts {
	c := &r.counts
	return Counts{Registers: c.registers.Load(), Requests: c.requests.Load(), Notifies: c.notifies.Load(),
		Replies: c.replies.Load(), BadAuth: c.badAuth.Load(), Dropped: c.dropped.Load(), Other: c.other.Load()}
}

func (r *Responder) serve() {
	defer r.wg.Done()
	in := newBatch(9216)
	out := make([]ipv4.Message, 0, batch)
	for {
		n, err := r.bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out = out[:0]
		for i := range n {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			b, to, ok := r.answer(m.Buffers[0][:m.N], ua.AddrPort())
			if !ok {
				continue
			}
			out = append(out, ipv4.Message{Buffers: [][]byte{b}, Addr: net.UDPAddrFromAddrPort(to)})
		}
		for len(out) > 0 {
			k, err := r.bc.WriteBatch(out, 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				k = 1 // skip the datagram that failed
			}
			out = out[k:]
		}
	}
}

// answer builds the reply to one datagram and says where it goes.
func (r *Responder) answer(b []byte, from netip.AddrPort) ([]byte, netip.AddrPort, bool) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	msg, err := wire.Decode(b)
	if err != nil {
		r.counts.other.Add(1)
		return nil, from, false
	}
	switch m := msg.(type) {
	case *wire.MapRegister:
		r.counts.registers.Add(1)
		if err := wire.Verify(b, r.opts.Secret, wire.AuthOptions{}); err != nil || len(r.opts.Secret) == 0 {
			r.counts.badAuth.Add(1)
			return nil, from, false
		}
		if !m.WantMapNotify || r.opts.NoNotify || r.drop() {
			return nil, from, false
		}
		n := &wire.MapNotify{AuthBody: m.AuthBody}
		key := r.opts.Secret
		if r.opts.NotifySecret != nil {
			key = r.opts.NotifySecret
		}
		out, err := wire.EncodeSigned(n, key, wire.AuthOptions{})
		if err != nil {
			r.counts.other.Add(1)
			return nil, from, false
		}
		r.counts.notifies.Add(1)
		return out, from, true
	case *wire.ECM:
		req, ok := m.Message.(*wire.MapRequest)
		if !ok || len(req.Records) == 0 {
			r.counts.other.Add(1)
			return nil, from, false
		}
		r.counts.requests.Add(1)
		to, ok := replyTo(req, m.SrcPort)
		if !ok || r.drop() {
			return nil, from, false
		}
		recs := DefaultRecords(req)
		if r.opts.Records != nil {
			recs = r.opts.Records(req)
		}
		out, err := wire.Encode(&wire.MapReply{Nonce: req.Nonce, Records: recs})
		if err != nil {
			r.counts.other.Add(1)
			return nil, from, false
		}
		r.counts.replies.Add(1)
		return out, to, true
	}
	r.counts.other.Add(1)
	return nil, from, false
}

// drop reports whether DropEvery withholds this answer.
func (r *Responder) drop() bool {
	if r.opts.DropEvery < 2 {
		return false
	}
	if r.seen.Add(1)%uint64(r.opts.DropEvery) == 0 {
		r.counts.dropped.Add(1)
		return true
	}
	return false
}

// replyTo is the first loopback ITR-RLOC with the inner UDP source port,
// where a Map-Reply goes (RFC 9301 §5.4).
func replyTo(req *wire.MapRequest, port uint16) (netip.AddrPort, bool) {
	for _, a := range req.ITRRLOCs {
		if ip, ok := a.Addr(); ok && ip.Unmap().IsLoopback() {
			return netip.AddrPortFrom(ip.Unmap(), port), true
		}
	}
	return netip.AddrPort{}, false
}

// DefaultLocator is the RLOC in DefaultRecords (a documentation address:
// it only appears inside payloads).
var DefaultLocator = netip.MustParseAddr("192.0.2.12")

// DefaultRecords answers the first requested EID with its /24 (IPv4) or
// /64 (IPv6), TTL 1440 minutes, authoritative, one locator
// DefaultLocator, priority 1, weight 100, reachable.
func DefaultRecords(req *wire.MapRequest) []wire.EIDRecord {
	rr := req.Records[0]
	iid, in, _ := rr.EID.InstanceID()
	ml := uint8(24)
	if ip, ok := in.Addr(); ok {
		if ip.Is6() {
			ml = 64
		}
		p, _ := ip.Prefix(int(ml))
		in = wire.AddrFromIP(p.Addr())
	}
	eid := in
	if rr.EID.AFI == wire.AFILCAF {
		eid = wire.AddrWithIID(iid, in)
	}
	return []wire.EIDRecord{{TTL: 1440, MaskLen: ml, Authoritative: true, EID: eid,
		Locators: []wire.Locator{{Priority: 1, Weight: 100, MPriority: 255, Flags: wire.LocatorReachable,
			Address: wire.AddrFromIP(DefaultLocator)}}}}
}

// Sink counts the datagrams it receives and answers nothing.
type Sink struct {
	conn    *net.UDPConn
	bc      control.BatchConn
	addr    netip.AddrPort
	wg      sync.WaitGroup
	packets atomic.Uint64
	bytes   atomic.Uint64
}

// NewSink listens on addr (default 127.0.0.1:0, loopback only).
func NewSink(addr netip.AddrPort) (*Sink, error) {
	conn, bc, a, err := listen(addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{conn: conn, bc: bc, addr: a}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ms := newBatch(2048)
		for {
			n, err := s.bc.ReadBatch(ms, 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			var nb uint64
			for i := range n {
				nb += uint64(ms[i].N)
			}
			s.packets.Add(uint64(n))
			s.bytes.Add(nb)
		}
	}()
	return s, nil
}

// Addr is the address the Sink listens on.
func (s *Sink) Addr() netip.AddrPort { return s.addr }

// Packets and Bytes are what arrived so far.
func (s *Sink) Packets() uint64 { return s.packets.Load() }
func (s *Sink) Bytes() uint64   { return s.bytes.Load() }

// Close stops the Sink.
func (s *Sink) Close() error {
	err := s.conn.Close()
	s.wg.Wait()
	return err
}

func listen(addr netip.AddrPort) (*net.UDPConn, control.BatchConn, netip.AddrPort, error) {
	if !addr.Addr().IsValid() {
		addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), addr.Port())
	}
	if !addr.Addr().IsLoopback() {
		return nil, nil, netip.AddrPort{}, fmt.Errorf("lisptest: %s is not a loopback address", addr.Addr())
	}
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, nil, netip.AddrPort{}, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	return conn, control.NewBatchConn(conn, addr.Addr().Is6()), conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

func newBatch(size int) []ipv4.Message {
	ms := make([]ipv4.Message, batch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
	}
	return ms
}
