package dataplane

import (
	crand "crypto/rand"
	"encoding/binary"
	"net/netip"
)

// worker is the private state of one packet goroutine: its batch buffers,
// the packets waiting to be sent or written, scratch buffers for ICMP
// errors and fragments, a nonce generator and batch-local counters. Nothing
// here is shared, so the packet path takes no lock and allocates nothing.
type worker struct {
	e *Engine

	// Batch read by this worker (TUN or underlay).
	bufs  [][]byte
	sizes []int
	outer []Outer

	// Encapsulated packets waiting for flushSends.
	pend []pending
	// flushSends scratch: grouping by destination RLOC.
	gBufs   [][]byte
	gOut    []Outer
	grpDst  []netip.Addr
	grpHead []int
	grpTail []int
	// Per group: packets and inner bytes, for the per-RLOC counters.
	grpPkts, grpBytes []uint64
	next              []int

	// Scratch buffers for ICMP errors and extra fragments; scratchUsed
	// are in use until the next flush.
	scratch     [][]byte
	scratchUsed int

	// Packets for each instance's TUN and native writer, by instance idx.
	tunw [][][]byte
	natw [][][]byte

	// ETR: last Decapsulated hook per outer source, last AwayHit per
	// (outer source, away host).
	sampled    map[netip.Addr]int64
	awaySample map[[2]netip.Addr]int64
	// The last outer source sampled and its entry in sampled.
	lastSampled   netip.Addr
	lastSampledAt int64
	// ITR: last HostSeen hook per source address (an ITR worker serves
	// one instance), and when it was last pruned.
	seen       map[netip.Addr]int64
	seenPruned int64

	rng uint64 // nonce generator state (splitmix64)

	// RTR: the relay run the next packet of the batch may join (rtr.go).
	run relayRun

	// Batch-local counters, added to the shared ones at flush.
	nEncap, bEncap, nDecap, bDecap, nHits, nMisses, nPETR, nNative, nReencap, nRunFollowers uint64
}

type pending struct {
	buf   []byte // packet with the inner packet at Headroom
	out   Outer
	petr  bool
	inner int        // inner length, for the byte counter
	cnt   *rlocCount // the destination's counters (nil: not counted per RLOC)
}

func (e *Engine) newWorker(batch, bufSize int) *worker {
	if batch < 1 {
		batch = 1
	}
	w := &worker{e: e, sampled: map[netip.Addr]int64{}, awaySample: map[[2]netip.Addr]int64{}, seen: map[netip.Addr]int64{}}
	if bufSize > 0 {
		w.bufs = make([][]byte, batch)
		for i := range w.bufs {
			w.bufs[i] = make([]byte, bufSize)
		}
		w.sizes = make([]int, batch)
		w.outer = make([]Outer, batch)
	}
	// A batch may grow when packets are fragmented; flushSends runs when
	// pend is full.
	n := 2 * batch
	w.pend = make([]pending, 0, n)
	w.gBufs = make([][]byte, n)
	w.gOut = make([]Outer, n)
	w.grpDst = make([]netip.Addr, n)
	w.grpHead = make([]int, n)
	w.grpTail = make([]int, n)
	w.grpPkts = make([]uint64, n)
	w.grpBytes = make([]uint64, n)
	w.next = make([]int, n)
	w.scratch = make([][]byte, max(batch, maxFragments))
	for i := range w.scratch {
		w.scratch[i] = make([]byte, e.scratchSize)
	}
	w.tunw = make([][][]byte, len(e.instList))
	w.natw = make([][][]byte, len(e.instList))
	for i := range w.tunw {
		w.tunw[i] = make([][]byte, 0, 2*batch)
		w.natw[i] = make([][]byte, 0, batch)
	}
	var seed [8]byte
	_, _ = crand.Read(seed[:])
	w.rng = binary.LittleEndian.Uint64(seed[:])
	return w
}

// nonce returns a random 24-bit nonce.
func (w *worker) nonce() uint32 {
	w.rng += 0x9e3779b97f4a7c15
	return uint32(mix64(w.rng)) & 0xffffff
}

// getScratch returns a scratch buffer, flushing everything pending first
// when all are in use.
func (w *worker) getScratch() []byte {
	if w.scratchUsed == len(w.scratch) {
		w.flush()
	}
	b := w.scratch[w.scratchUsed]
	w.scratchUsed++
	return b
}

// queueSend adds an encapsulated packet to the pending sends.
func (w *worker) queueSend(p pending) {
	if len(w.pend) == cap(w.pend) {
		w.flushSends()
	}
	w.pend = append(w.pend, p)
}

// queueTUN adds a packet (inner at Headroom) for the TUN of inst.
func (w *worker) queueTUN(inst *instance, b []byte) {
	if len(w.tunw[inst.idx]) == cap(w.tunw[inst.idx]) {
		w.flushTUN()
	}
	w.tunw[inst.idx] = append(w.tunw[inst.idx], b)
}

func (w *worker) queueNative(inst *instance, b []byte) {
	if len(w.natw[inst.idx]) == cap(w.natw[inst.idx]) {
		w.flushTUN()
	}
	w.natw[inst.idx] = append(w.natw[inst.idx], b)
}

// flush sends and writes everything pending and releases the scratch
// buffers.
func (w *worker) flush() {
	w.flushSends()
	w.flushTUN()
	w.scratchUsed = 0
	w.addCounters()
}

// flushSends hands the pending packets to the underlay, grouped by
// destination RLOC (first-seen order, packet order kept within a group)
// so that an underlay with segmentation offload can coalesce them.
func (w *worker) flushSends() {
	n := len(w.pend)
	if n == 0 {
		return
	}
	groups := 0
	for i := range n {
		d := w.pend[i].out.Dst
		g := -1
		if groups > 0 && w.grpDst[groups-1] == d {
			g = groups - 1
		} else {
			for j := 0; j < groups; j++ {
				if w.grpDst[j] == d {
					g = j
					break
				}
			}
		}
		w.next[i] = -1
		if g < 0 {
			w.grpDst[groups], w.grpHead[groups], w.grpTail[groups] = d, i, i
			groups++
		} else {
			w.next[w.grpTail[g]] = i
			w.grpTail[g] = i
		}
	}
	k := 0
	var bytes, petr uint64
	for g := range groups {
		var gPkts, gBytes uint64
		for i := w.grpHead[g]; i >= 0; i = w.next[i] {
			w.gBufs[k], w.gOut[k] = w.pend[i].buf, w.pend[i].out
			gPkts++
			gBytes += uint64(w.pend[i].inner)
			if w.pend[i].petr {
				petr++
			}
			k++
		}
		w.grpPkts[g], w.grpBytes[g] = gPkts, gBytes
		bytes += gBytes
	}
	ok := w.send(w.gBufs[:k], w.gOut[:k])
	if ok {
		w.nEncap += uint64(k)
		w.bEncap += bytes
		w.nPETR += petr
		for g := range groups {
			// Every packet of a group goes to one RLOC, so its head's
			// counters are the group's.
			if c := w.pend[w.grpHead[g]].cnt; c != nil {
				c.pkts.Add(w.grpPkts[g])
				c.bytes.Add(w.grpBytes[g])
			}
		}
	}
	clear(w.grpDst[:groups])
	w.pend = w.pend[:0]
}

// send hands bufs to the underlay in chunks of its batch size.
func (w *worker) send(bufs [][]byte, out []Outer) bool {
	bs := w.e.ul.BatchSize()
	ok := true
	for off, end := 0, 0; off < len(bufs); off = end {
		end = min(off+bs, len(bufs))
		// A chunk ends where the flow run it would cut starts (unless
		// that is where the chunk starts): a run cut in two is two GSO
		// sends.
		if end < len(bufs) {
			k := end
			for k > off && sameFlow(&out[k-1], &out[end]) {
				k--
			}
			if k > off {
				end = k
			}
		}
		if _, err := w.e.ul.Send(bufs[off:end], out[off:end], PayloadOffset); err != nil {
			ok = false
			if !w.e.closing.Load() {
				w.e.k.drops[dropSendError].Add(uint64(end - off))
				w.e.log.Debug("underlay send", "err", err)
			}
		}
	}
	return ok
}

// sameFlow reports whether two packets have the same outer headers but
// for their length: one GSO run.
func sameFlow(a, b *Outer) bool {
	return a.Dst == b.Dst && a.Src == b.Src && a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.TTL == b.TTL && a.TOS == b.TOS
}

// flushTUN writes the packets pending for each TUN and native writer.
func (w *worker) flushTUN() {
	for idx, list := range w.tunw {
		if len(list) == 0 {
			continue
		}
		if _, err := w.e.instList[idx].tun.Write(list, Headroom); err != nil && !w.e.closing.Load() {
			w.e.k.drops[dropTUNWriteError].Add(uint64(len(list)))
			w.e.log.Debug("TUN write", "iid", w.e.instList[idx].iid, "err", err)
		}
		clear(list)
		w.tunw[idx] = list[:0]
	}
	for idx, list := range w.natw {
		if len(list) == 0 {
			continue
		}
		if _, err := w.e.instList[idx].native.Write(list, Headroom); err != nil {
			w.e.k.drops[dropTUNWriteError].Add(uint64(len(list)))
		} else {
			w.nNative += uint64(len(list))
		}
		clear(list)
		w.natw[idx] = list[:0]
	}
}

func (w *worker) addCounters() {
	k := w.e.k
	add := func(c interface{ Add(uint64) }, v *uint64) {
		if *v != 0 {
			c.Add(*v)
			*v = 0
		}
	}
	add(k.encapPkts, &w.nEncap)
	add(k.encapBytes, &w.bEncap)
	add(k.decapPkts, &w.nDecap)
	add(k.decapBytes, &w.bDecap)
	add(k.hits, &w.nHits)
	add(k.misses, &w.nMisses)
	add(k.petr, &w.nPETR)
	add(k.native, &w.nNative)
	add(k.reencap, &w.nReencap)
	if w.nRunFollowers != 0 {
		k.runFollowers.Add(w.nRunFollowers)
		w.nRunFollowers = 0
	}
}
