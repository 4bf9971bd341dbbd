package dataplane

import (
	"net/netip"
	"sync/atomic"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// The data plane of a Re-encapsulating Tunnel Router
// (draft-ietf-lisp-nat-traversal §5.3.1) and what an xTR behind a NAT
// needs of its data plane (§5.1.1): control messages that ride the data
// port both ways.
//
// The RTR's control plane (internal/rtr) programs the NATed xTRs it
// serves with SetNATedXTRs. A LISP packet reaching the RTR is then
//   - for a NATed xTR's EID: re-encapsulated to the address and port its
//     NAT translated it to, from UDP port 4342, the NAT state its
//     ECM'd Map-Register opened;
//   - from a NATed xTR's EID, sent by that xTR (outer source is its
//     translated address): re-encapsulated through the ITR path (the
//     map-cache, resolved like an ITR's);
//   - anything else is dropped and counted: a NATed xTR using a source EID
//     it did not register (rtr-source-eid-not-registered), anyone else
//     (rtr-not-registered). The RTR relays for registered EIDs only, so it
//     is no open relay.

// DataMapNotifyIID is the Instance ID of a Data-Map-Notify's LISP header
// (§4.5): a Map-Notify, with its inner IP and UDP headers, carried on the
// data port through the NAT state the xTR opened.
const DataMapNotifyIID = 0xffffff

// NATedXTR is one xTR behind NAT an RTR serves.
type NATedXTR struct {
	EIDs       []mapping.EID  // its registered prefixes
	Translated netip.AddrPort // its translated address and port: where its traffic goes
	Local      netip.Addr     // our RLOC it registered through: the outer source
	// ToXTR and FromXTR count the packets relayed to it and from it; the
	// caller owns them (per-xTR counters of show rtr).
	ToXTR, FromXTR *atomic.Uint64
}

// ControlInData is the optional hook (implemented by ControlHooks values)
// that takes a Data-Map-Notify: msg is its inner IP packet (IP, UDP, the
// Map-Notify), a copy the hook may keep; from is the outer source.
type ControlInData interface {
	DataMapNotify(msg []byte, from netip.AddrPort)
}

// relayTable is the RTR's immutable snapshot of the NATed xTRs.
type relayTable struct {
	eids map[uint32]*bart.Table[*natXTR]
	// xtrs are the translated addresses of the NATed xTRs: a packet from
	// one of them must carry a source EID of its sender.
	xtrs map[netip.Addr]bool
}

type natXTR struct {
	to         netip.AddrPort
	src        netip.Addr
	toN, fromN *atomic.Uint64
}

// SetNATedXTRs replaces the NATed xTRs this engine relays for (an RTR);
// nil or empty turns relaying off.
func (e *Engine) SetNATedXTRs(xs []NATedXTR) {
	if len(xs) == 0 {
		e.relay.Store(nil)
		return
	}
	t := &relayTable{eids: map[uint32]*bart.Table[*natXTR]{}, xtrs: map[netip.Addr]bool{}}
	for _, x := range xs {
		n := &natXTR{to: x.Translated, src: x.Local, toN: x.ToXTR, fromN: x.FromXTR}
		if n.toN == nil {
			n.toN = new(atomic.Uint64)
		}
		if n.fromN == nil {
			n.fromN = new(atomic.Uint64)
		}
		t.xtrs[x.Translated.Addr()] = true
		for _, eid := range x.EIDs {
			tbl := t.eids[eid.IID]
			if tbl == nil {
				tbl = new(bart.Table[*natXTR])
				t.eids[eid.IID] = tbl
			}
			tbl.Insert(eid.Prefix, n)
		}
	}
	e.relay.Store(t)
}

// relayPacket is decap's path on an RTR for a packet of inst whose inner
// packet (n bytes) is at buf[Headroom:]. handled is false when the packet
// concerns no NATed xTR and the sender is none: the ETR goes on with it.
func (w *worker) relayPacket(rt *relayTable, inst *instance, buf []byte, n int, o *Outer, now int64) (r dropReason, ok, handled bool) {
	tbl := rt.eids[inst.iid]
	pkt := buf[Headroom : Headroom+n]
	src, dst := srcAddr(pkt), dstAddr(pkt)
	var from, to *natXTR
	if tbl != nil {
		from, _ = tbl.Lookup(src)
		to, _ = tbl.Lookup(dst)
	}
	fromXTR := rt.xtrs[o.Src]
	if fromXTR && (from == nil || from.to.Addr() != o.Src) {
		return dropRTRSourceEID, false, true
	}
	if from != nil && from.to.Addr() != o.Src {
		from = nil // a registered source EID, sent by someone else
	}
	if to != nil || from != nil {
		if n > w.e.cfg.UnderlayMTU-Overhead4 {
			if r, ok, cut := w.relaySegments(rt, inst, pkt, o, now); cut {
				return r, ok, true
			}
		}
		// Relayed, never decapsulated here: a packet a kernel-path xTR
		// sent over veth unfinished (CHECKSUM_PARTIAL) is finished now,
		// as decap does, or its receiver drops it.
		completePartialChecksum(pkt)
	}
	switch {
	case to != nil:
		if from != nil {
			from.fromN.Add(1)
		}
		to.toN.Add(1)
		ttl, tos := ttlTOS(pkt)
		flags, nonce := uint8(wire.DataI), uint32(0)
		if !w.e.cfg.NoNonce {
			flags, nonce = flags|wire.DataN, w.nonce()
		}
		wire.DataHeader(buf[PayloadOffset:Headroom]).Put(flags, nonce, inst.iid<<8)
		w.queueSend(pending{buf: buf[:Headroom+n], inner: n,
			out: Outer{Src: to.src, Dst: to.to.Addr(), SrcPort: wire.ControlPort, DstPort: to.to.Port(), TTL: ttl, TOS: tos}})
		w.startRun(inst, buf, n, o, from, to)
		return 0, true, true
	case from != nil:
		from.fromN.Add(1)
		r, ok := w.reencap(inst, buf[:Headroom+n], dst, now)
		if ok {
			w.startRun(inst, buf, n, o, from, nil)
		}
		return r, ok, true
	}
	if !w.e.cfg.ETR && !w.e.cfg.PETR {
		return dropRTRNotRegistered, false, true
	}
	return 0, false, false
}

// A relay run: the packets of one GRO run (one outer flow, equal sizes)
// that carry one inner flow all go where its first went. Once the first of
// them (the head) has gone the whole way (decapsulation, the relay
// checks, the map-cache), each next packet of the batch that matches it
// (followRun) is queued with the head's outer headers after a few
// comparisons instead of the lookups. Matching is the relay check for
// that packet: its outer source, its inner source and destination equal
// the head's, and the head's were checked against the NATed xTRs'
// registrations, so a packet with another source EID (an xTR mixing in
// one it did not register) ends the run and takes the full path, where
// it is dropped.
type relayRun struct {
	ok        bool
	iid       uint32
	size      int // the head's UDP payload size; a shorter packet ends the run
	src, dst  netip.Addr
	outerSrc  netip.Addr // the head's outer source, port and destination
	outerPort uint16
	outerDst  netip.Addr
	hash      uint64 // flowHash of the head: same ports, protocol and fragment state
	ttl, tos  uint8
	hdr       [wire.DataHeaderLen]byte // the head's new LISP header (its nonce replaced per packet)
	p         pending                  // the head's pending send
	from, to  *natXTR
	hits      bool // the head was a map-cache hit (re-encapsulated)
}

// startRun makes the packet just relayed (UDP payload at PayloadOffset,
// inner of n bytes at Headroom, queued as the last pending send) the head
// of a relay run. A packet that did not end up as exactly that (a miss,
// fragments, native forwarding) starts none.
func (w *worker) startRun(inst *instance, buf []byte, n int, o *Outer, from, to *natXTR) {
	w.run.ok = false
	if len(w.pend) == 0 {
		return
	}
	p := &w.pend[len(w.pend)-1]
	if len(p.buf) != Headroom+n || &p.buf[0] != &buf[0] {
		return
	}
	pkt := buf[Headroom : Headroom+n]
	r := &w.run
	r.ok, r.iid, r.size = true, inst.iid, wire.DataHeaderLen+n
	r.src, r.dst = srcAddr(pkt), dstAddr(pkt)
	r.outerSrc, r.outerPort, r.outerDst = o.Src, o.SrcPort, o.Dst
	r.hash = flowHash(pkt, w.e.seed)
	r.ttl, r.tos = ttlTOS(pkt)
	copy(r.hdr[:], buf[PayloadOffset:Headroom])
	r.p = *p
	r.from, r.to, r.hits = from, to, to == nil
}

// followRun queues the packet in buf (size bytes of UDP payload) as the
// next of the current relay run, if it is one: false leaves it to decap
// (and ends the run). It checks what decap would for this packet and
// what makes the head's decision its own.
func (w *worker) followRun(buf []byte, size int, o *Outer) bool {
	r := &w.run
	if size > r.size || size < wire.DataHeaderLen+1 || PayloadOffset+size > len(buf) ||
		o.Src != r.outerSrc || o.SrcPort != r.outerPort || o.Dst != r.outerDst {
		return false
	}
	h, err := wire.DecodeDataHeader(buf[PayloadOffset : PayloadOffset+size])
	if err != nil || h.KeyID() != 0 {
		return false
	}
	iid := uint32(0)
	if h.I() {
		iid = h.InstanceID()
	}
	n, ok := checkInner(buf[Headroom : PayloadOffset+size])
	if iid != r.iid || !ok || wire.DataHeaderLen+n != size {
		return false
	}
	pkt := buf[Headroom : Headroom+n]
	if srcAddr(pkt) != r.src || dstAddr(pkt) != r.dst {
		return false
	}
	if ttl, tos := ttlTOS(pkt); ttl != r.ttl || tos != r.tos || flowHash(pkt, w.e.seed) != r.hash {
		return false
	}
	completePartialChecksum(pkt) // as relayPacket
	hdr := buf[PayloadOffset:Headroom]
	copy(hdr, r.hdr[:])
	if hdr[0]&wire.DataN != 0 {
		nonce := w.nonce()
		hdr[1], hdr[2], hdr[3] = byte(nonce>>16), byte(nonce>>8), byte(nonce)
	}
	p := r.p
	p.buf, p.inner = buf[:Headroom+n], n
	w.queueSend(p)
	if r.from != nil {
		r.from.fromN.Add(1)
	}
	if r.to != nil {
		r.to.toN.Add(1)
	}
	if r.hits {
		w.nHits++
		w.nReencap++
	}
	w.nRunFollowers++
	if size < r.size {
		r.ok = false // a short packet ends a GRO run
	}
	return true
}

// dataMapNotify hands a Data-Map-Notify (LISP header at PayloadOffset,
// size bytes of UDP payload) to the control plane.
func (w *worker) dataMapNotify(buf []byte, size int, o *Outer) (dropReason, bool) {
	e := w.e
	h, ok := e.hooks.(ControlInData)
	if !ok {
		return dropControlInData, false
	}
	msg := append([]byte(nil), buf[Headroom:PayloadOffset+size]...)
	select {
	case e.ctlCh <- ctlMsg{msg: msg, from: netip.AddrPortFrom(o.Src, o.SrcPort), h: h}:
		return 0, true
	default:
		return dropControlInData, false
	}
}

type ctlMsg struct {
	msg  []byte
	from netip.AddrPort
	h    ControlInData
}

// ctlLoop delivers the Data-Map-Notifies off the packet path.
func (e *Engine) ctlLoop() {
	for {
		select {
		case <-e.done:
			return
		case m := <-e.ctlCh:
			m.h.DataMapNotify(m.msg, m.from)
		}
	}
}

// SendControl sends a control message (a UDP payload) from the data port
// of src to dst through the underlay: an xTR behind a NAT sends its ECM'd
// Map-Register to its RTR from port 4341 so that the NAT's state for 4341
// lets the RTR's traffic in (draft-ietf-lisp-nat-traversal §5.1.1).
func (e *Engine) SendControl(payload []byte, src netip.Addr, dst netip.AddrPort) error {
	buf := make([]byte, PayloadOffset+len(payload))
	copy(buf[PayloadOffset:], payload)
	_, err := e.ul.Send([][]byte{buf}, []Outer{{Src: src, Dst: dst.Addr(), SrcPort: wire.DataPort, DstPort: dst.Port(), TTL: 64}},
		PayloadOffset)
	return err
}
