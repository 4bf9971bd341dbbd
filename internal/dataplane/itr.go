package dataplane

import (
	"net/netip"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/wire"
)

// itrLoop reads batches from the TUN of inst until the engine closes.
func (w *worker) itrLoop(inst *instance) {
	e := w.e
	rd, _ := inst.tun.(readDropper)
	for {
		n, err := inst.tun.Read(w.bufs, w.sizes, Headroom)
		if rd != nil {
			if d := rd.DroppedOnRead(); d > 0 {
				e.k.drops[dropTUNReadOverflow].Add(d)
			}
		}
		if n > 0 {
			w.itrBatch(inst, n)
		}
		if err != nil {
			if e.closedErr(err) {
				return
			}
			e.log.Warn("TUN read", "iid", inst.iid, "err", err)
			if !e.pause() {
				return
			}
		}
	}
}

// itrBatch forwards the n packets read into w.bufs.
func (w *worker) itrBatch(inst *instance, n int) {
	e := w.e
	if !e.cfg.ITR && !e.cfg.PITR {
		e.k.drops[dropITRDisabled].Add(uint64(n))
		return
	}
	now := e.now()
	tbl := inst.cache.Load()
	dyn := inst.dyn.Load()
	for i := range n {
		if dyn != nil {
			w.detect(inst, dyn, w.bufs[i][Headroom:Headroom+w.sizes[i]], now)
		}
		w.itrPacket(inst, tbl, w.bufs[i][:Headroom+w.sizes[i]], now, false)
	}
	w.flush()
}

// maxSeen bounds the HostSeen rate-limit map of a worker: beyond it, new
// sources are not reported until pruning makes room (a flood of spoofed
// sources costs detection, not memory).
const maxSeen = 1 << 16

// detect reports the source of a packet from the TUN when it lies in a
// dynamic-EID range and is not a known host, at most once per
// HostSeenInterval per source.
func (w *worker) detect(inst *instance, dyn *dynEIDs, pkt []byte, now int64) {
	if _, ok := checkInner(pkt); !ok {
		return // itrPacket counts it
	}
	src := srcAddr(pkt)
	if !dyn.fresh(src) {
		return
	}
	iv := int64(w.e.cfg.HostSeenInterval)
	if len(w.seen) >= 4096 && now-w.seenPruned >= iv {
		w.seenPruned = now
		for a, t := range w.seen {
			if now-t >= iv {
				delete(w.seen, a)
			}
		}
	}
	t, ok := w.seen[src]
	if ok && now-t < iv || !ok && len(w.seen) >= maxSeen {
		return
	}
	w.seen[src] = now
	w.e.hook(hookEvent{kind: hookHostSeen, iid: inst.iid, addr: src})
}

// itrPacket forwards one packet read from a TUN (or released from the
// miss queue): map-cache lookup, then encapsulation to the chosen RLOC, a
// PETR, the native path, the miss queue or a drop.
func (w *worker) itrPacket(inst *instance, tbl *bart.Fast[*fwdEntry], buf []byte, now int64, released bool) {
	e := w.e
	n, ok := checkInner(buf[Headroom:])
	if !ok {
		e.k.drop(dropMalformed)
		return
	}
	buf = buf[:Headroom+n]
	pkt := buf[Headroom:]
	dst := dstAddr(pkt)
	if nonUnicastDst(dst) {
		e.k.drop(dropNonUnicast)
		return
	}
	f, found := tbl.Lookup(dst)
	if !found || f.expires != 0 && now >= f.expires {
		w.miss(inst, buf, dst, hookMiss, now, released)
		return
	}
	if f.negative {
		switch f.action {
		case wire.ActionSendMapRequest:
			w.miss(inst, buf, dst, hookSendMapRequest, now, released)
		case wire.ActionNativelyForward:
			w.nHits++
			if e.petr != nil {
				h := flowHash(pkt, e.seed)
				w.encap(inst, buf, e.petr.pick(h), h, now, true)
			} else {
				w.native(inst, buf)
			}
		case wire.ActionNoAction:
			w.nHits++
			w.native(inst, buf)
		case wire.ActionDrop:
			e.k.drop(dropNegative)
		case wire.ActionDropPolicyDenied:
			e.k.drop(dropNegativePolicy)
		case wire.ActionDropAuthFailure:
			e.k.drop(dropNegativeAuth)
		default:
			e.k.drop(dropNegativeUnknown)
		}
		return
	}
	h := flowHash(pkt, e.seed)
	c := f.pick(h)
	if c == nil {
		e.k.drop(dropNoUsableLocator)
		return
	}
	w.nHits++
	w.encap(inst, buf, c, h, now, false)
}

// native hands a packet to the native path of its instance.
func (w *worker) native(inst *instance, buf []byte) {
	if inst.native == nil {
		w.e.k.drop(dropNoPETR)
		return
	}
	w.queueNative(inst, buf)
}

// miss holds a packet while its mapping is resolved and tells the control
// plane (rate-limited). A packet released from the miss queue that misses
// again is dropped: its entry went away while it waited.
func (w *worker) miss(inst *instance, buf []byte, dst netip.Addr, kind hookKind, now int64, released bool) {
	w.nMisses++
	if released {
		w.e.k.drop(dropMissExpired)
		return
	}
	w.e.mq.enqueue(inst, buf[Headroom:], dst, kind, now)
}

// encap prepends the LISP header to the packet in buf and queues it for
// the underlay with outer headers toward c: TTL and DSCP/ECN copied from
// the inner header (RFC 9300 §5.3, RFC 6040 normal mode), UDP source port
// from the flow hash.
func (w *worker) encap(inst *instance, buf []byte, c *choice, h uint64, now int64, petr bool) {
	pkt := buf[Headroom:]
	if len(pkt) > c.maxInner {
		w.tooBig(inst, buf, c, h, now, petr)
		return
	}
	w.encapFit(inst, buf, c, h, petr)
}

// encapFit encapsulates a packet known to fit.
func (w *worker) encapFit(inst *instance, buf []byte, c *choice, h uint64, petr bool) {
	e := w.e
	pkt := buf[Headroom:]
	flags, nonce := uint8(wire.DataI), uint32(0)
	if !e.cfg.NoNonce {
		flags, nonce = flags|wire.DataN, w.nonce()
	}
	lsb := uint32(0)
	if e.cfg.SetLSBs {
		flags |= wire.DataL
		lsb = e.cfg.LocatorStatusBits & 0xff
	}
	wire.DataHeader(buf[PayloadOffset:Headroom]).Put(flags, nonce, inst.iid<<8|lsb)
	ttl, tos := ttlTOS(pkt)
	w.queueSend(pending{
		buf:   buf,
		out:   Outer{Src: c.src, Dst: c.dst, SrcPort: srcPortOf(h), TTL: ttl, TOS: tos},
		petr:  petr,
		inner: len(pkt),
		cnt:   c.cnt,
	})
}
