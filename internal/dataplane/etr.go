package dataplane

import (
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// etrLoop receives batches from one underlay receive function until the
// engine closes.
func (w *worker) etrLoop(recv ReceiveFunc) {
	e := w.e
	for {
		n, err := recv(w.bufs, w.sizes, w.outer, PayloadOffset)
		if n > 0 {
			w.etrBatch(n)
		}
		if err != nil {
			if e.closedErr(err) {
				return
			}
			e.log.Warn("underlay receive", "err", err)
			if !e.pause() {
				return
			}
		}
	}
}

// etrBatch decapsulates the n packets received into w.bufs and writes
// them to the TUNs of their instance IDs.
func (w *worker) etrBatch(n int) {
	e := w.e
	// One snapshot of the RTR's relay table a batch.
	rt := e.relay.Load()
	if !e.cfg.ETR && !e.cfg.PETR && rt == nil && e.hooks == nil {
		e.k.drops[dropETRDisabled].Add(uint64(n))
		return
	}
	now := e.now()
	var last *instance
	w.run.ok = false
	for i := range n {
		if w.run.ok {
			if w.followRun(w.bufs[i], w.sizes[i], &w.outer[i]) {
				continue
			}
			w.run.ok = false
		}
		if r, ok := w.decap(w.bufs[i], w.sizes[i], &w.outer[i], &last, rt, now); !ok {
			e.k.drop(r)
		}
	}
	w.run = relayRun{}
	w.flush()
	if len(w.sampled) > 4096 || len(w.awaySample) > 4096 {
		w.pruneSamples(now)
	}
}

// decap checks one LISP packet (UDP payload at PayloadOffset) and queues
// its inner packet for its TUN. last caches the instance of the previous
// packet; rt is the RTR's relay table (nil unless an RTR).
func (w *worker) decap(buf []byte, size int, o *Outer, last **instance, rt *relayTable, now int64) (dropReason, bool) {
	e := w.e
	if size < wire.DataHeaderLen+1 || PayloadOffset+size > len(buf) {
		return dropMalformed, false
	}
	if !e.isLocalRLOC(o.Dst) {
		return dropNotMyRLOC, false
	}
	h, err := wire.DecodeDataHeader(buf[PayloadOffset : PayloadOffset+size])
	if err != nil {
		return dropMalformed, false
	}
	if h.KeyID() != 0 {
		return dropEncrypted, false
	}
	var iid uint32
	if h.I() {
		iid = h.InstanceID()
		if iid == DataMapNotifyIID {
			return w.dataMapNotify(buf, size, o)
		}
	}
	if !e.cfg.ETR && !e.cfg.PETR && rt == nil {
		return dropETRDisabled, false
	}
	inst := *last
	if inst == nil || inst.iid != iid {
		if inst = e.insts[iid]; inst == nil {
			return dropUnknownIID, false
		}
		*last = inst
	}
	n, ok := checkInner(buf[Headroom : PayloadOffset+size])
	if !ok {
		return dropMalformed, false
	}
	if rt != nil {
		if r, ok, handled := w.relayPacket(rt, inst, buf, n, o, now); handled {
			return r, ok
		}
	}
	pkt := buf[Headroom : Headroom+n]
	completePartialChecksum(pkt)
	dst := dstAddr(pkt)
	// A host that moved away is ours to forward even when no database
	// prefix covers it (a dynamic EID that came from elsewhere, then left).
	awayAt := inst.away.Load()
	isAway := awayAt != nil && awayAt.Lookup(dst)
	sp := inst.src.Load()
	if !isAway && !inst.local.Load().Lookup(dst) {
		if !e.cfg.PETR {
			return dropNotLocalEID, false
		}
		// Relayed to the Internet: only for the sites a PETR serves, or
		// it forwards any spoofed source (RFC 6832 §4.2).
		if !sp.petr.Lookup(srcAddr(pkt)) {
			return dropPETRSourceNotAllowed, false
		}
	}
	if sp.check {
		if r, ok := sp.outerSourceOK(inst, pkt, o); !ok {
			return r, false
		}
	}
	// TTL: never let the inner TTL grow across the tunnel (RFC 9300
	// §5.3). DSCP: copied from the outer header unless configured not
	// to. ECN: RFC 6040 decapsulation.
	ttl, tos := ttlTOS(pkt)
	nttl, ntos := ttl, tos
	if o.TTL != 0 && o.TTL < ttl {
		nttl = o.TTL
	}
	if o.HasTOS {
		ecn, drop := ecnDecap(o.TOS&3, tos&3)
		if drop {
			return dropECN, false
		}
		dscp := tos &^ 3
		if !e.cfg.KeepInnerDSCP {
			dscp = o.TOS &^ 3
		}
		ntos = dscp | ecn
	}
	// A host that moved away: forward the packet again, as a router
	// would, so its TTL goes down by one.
	away := false
	if isAway {
		if nttl <= 1 {
			return dropTTLExpired, false
		}
		away = true
		nttl--
	}
	if nttl != ttl || ntos != tos {
		setTTLTOS(pkt, nttl, ntos)
	}
	// The sample goes out for packets to away hosts too: the control
	// plane learns which ITRs still send to the old site.
	// The last source's sample time spares the map lookup for the rest
	// of its run.
	if iv := int64(e.cfg.DecapSampleInterval); e.hooks != nil && (o.Src != w.lastSampled || now-w.lastSampledAt >= iv) {
		t, seen := w.sampled[o.Src]
		if !seen || now-t >= iv {
			t = now
			w.sampled[o.Src] = now
			e.hook(hookEvent{kind: hookDecap, iid: iid, addr: o.Src, addr2: srcAddr(pkt)})
		}
		w.lastSampled, w.lastSampledAt = o.Src, t
	}
	if away {
		// The ITR still uses the old mapping: the control plane tells it
		// (an SMR), once per interval per ITR and host.
		if e.hooks != nil {
			k := [2]netip.Addr{o.Src, dst}
			if t, seen := w.awaySample[k]; !seen || now-t >= int64(e.cfg.DecapSampleInterval) {
				w.awaySample[k] = now
				e.hook(hookEvent{kind: hookAwayHit, iid: iid, addr: o.Src, addr2: dst})
			}
		}
		return w.reencap(inst, buf[:Headroom+n], dst, now)
	}
	// For an address of a dynamic-EID range where no host has shown up:
	// the ITR may hold the covering prefix, resolved before the host
	// registered at another site, and would keep sending here until it
	// expires. The control plane SMRs it, once per interval per ITR and
	// address (the same sample map: an address is either away or not).
	if d := inst.dyn.Load(); d != nil && e.hooks != nil && d.fresh(dst) {
		k := [2]netip.Addr{o.Src, dst}
		if t, seen := w.awaySample[k]; !seen || now-t >= int64(e.cfg.DecapSampleInterval) {
			w.awaySample[k] = now
			e.hook(hookEvent{kind: hookUnseenHostHit, iid: iid, addr: o.Src, addr2: dst})
		}
	}
	w.nDecap++
	w.bDecap += uint64(n)
	w.queueTUN(inst, buf[:Headroom+n])
	return 0, true
}

// reencap sends a decapsulated packet for a host that moved away through
// the ITR path: the inner packet is at buf[Headroom:], exactly where
// itrPacket expects it, and the LISP header it came with (at
// PayloadOffset) is overwritten by the new one.
//
// A miss is handled as for a packet from the TUN (released=false): the
// packet waits in the miss queue and the control plane hears a Miss for
// the host. That cannot loop inside the engine: the miss queue hands the
// packet back to itrPacket with released=true, which drops it if it
// misses again. Passing released=true here instead would drop the packet
// without telling the control plane. The only way back into this ETR is
// the underlay, through a map-cache entry that points at a local RLOC;
// such an entry is refused here ("away-loop"), and the TTL decrement in
// decap bounds any longer loop through other routers.
func (w *worker) reencap(inst *instance, buf []byte, dst netip.Addr, now int64) (dropReason, bool) {
	e := w.e
	tbl := inst.cache.Load()
	if f, ok := tbl.Lookup(dst); ok && !f.negative {
		for i := range f.choices {
			if e.isLocalRLOC(f.choices[i].dst) {
				return dropAwayLoop, false
			}
		}
	}
	w.nReencap++
	w.itrPacket(inst, tbl, buf, now, false)
	return 0, true
}

func (w *worker) pruneSamples(now int64) {
	for a, t := range w.sampled {
		if now-t >= int64(w.e.cfg.DecapSampleInterval) {
			delete(w.sampled, a)
		}
	}
	for k, t := range w.awaySample {
		if now-t >= int64(w.e.cfg.DecapSampleInterval) {
			delete(w.awaySample, k)
		}
	}
}
