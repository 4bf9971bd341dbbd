package dataplane

import (
	"net/netip"
	"sync"
	"time"

	"github.com/lispd/lispd/wire"
)

// hostKey is a destination host in an instance ID.
type hostKey struct {
	iid  uint32
	addr netip.Addr
	kind hookKind // rate-limit key only
}

// waiting is the queue of one destination host.
type waiting struct {
	inst *instance
	dst  netip.Addr
	pkts [][]byte // pool buffers, inner packet at Headroom
	born []int64
}

// missQueue holds packets whose destination has no usable map-cache entry
// yet, and rate-limits the Miss and SendMapRequest hooks. Its goroutine
// releases the packets when SetMapCache installs a covering entry and
// drops those that waited too long. Buffers come from a fixed pool, so the
// queue is bounded in packets and in memory.
type missQueue struct {
	e      *Engine
	mu     sync.Mutex
	dest   map[hostKey]*waiting
	free   [][]byte          // pool of packet buffers
	spare  []*waiting        // recycled queues
	total  int               // packets held
	last   map[hostKey]int64 // last hook call per destination and kind
	kickCh chan struct{}
}

func (q *missQueue) init(e *Engine) {
	q.e = e
	q.dest = map[hostKey]*waiting{}
	q.last = map[hostKey]int64{}
	q.kickCh = make(chan struct{}, 1)
	// The pool is allocated lazily, up to MissQueueTotal buffers.
}

// kick tells the goroutine that the map-cache changed.
func (q *missQueue) kick() {
	select {
	case q.kickCh <- struct{}{}:
	default:
	}
}

func (q *missQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

// enqueue holds a copy of pkt for dst and calls the hook if it has not
// been called for dst within MissInterval.
func (q *missQueue) enqueue(inst *instance, pkt []byte, dst netip.Addr, kind hookKind, now int64) {
	e := q.e
	q.mu.Lock()
	defer q.mu.Unlock()
	rk := hostKey{iid: inst.iid, addr: dst, kind: kind}
	if t, ok := q.last[rk]; !ok || now-t >= int64(e.cfg.MissInterval) {
		if ok || len(q.last) < 1<<16 {
			q.last[rk] = now
			e.hook(hookEvent{kind: kind, iid: inst.iid, addr: dst, addr2: srcAddr(pkt)})
		}
	}
	k := hostKey{iid: inst.iid, addr: dst}
	wq := q.dest[k]
	if (wq != nil && len(wq.pkts) >= e.cfg.MissQueuePerDest) || q.total >= e.cfg.MissQueueTotal ||
		e.cfg.MissQueuePerDest == 0 || len(pkt)+Headroom > e.itrBufSize {
		e.k.drop(dropMissQueueFull)
		return
	}
	var b []byte
	if n := len(q.free); n > 0 {
		b, q.free = q.free[n-1], q.free[:n-1]
	} else {
		b = make([]byte, e.itrBufSize)
	}
	if wq == nil {
		if n := len(q.spare); n > 0 {
			wq, q.spare = q.spare[n-1], q.spare[:n-1]
		} else {
			wq = &waiting{}
		}
		wq.inst, wq.dst = inst, dst
		q.dest[k] = wq
	}
	copy(b[Headroom:], pkt)
	wq.pkts = append(wq.pkts, b[:Headroom+len(pkt)])
	wq.born = append(wq.born, now)
	q.total++
	e.k.queued.Inc()
}

// loop runs until the engine closes: on each kick, and every tick, it
// releases the queues whose destination now has an entry and expires the
// packets that waited too long.
func (q *missQueue) loop(w *worker) {
	e := q.e
	tick := time.NewTicker(min(e.cfg.MissQueueTimeout/4, 100*time.Millisecond))
	defer tick.Stop()
	var release []*waiting
	for {
		select {
		case <-e.done:
			return
		case <-q.kickCh:
		case <-tick.C:
		}
		release = q.scan(release[:0], e.now())
		if len(release) == 0 {
			continue
		}
		now := e.now()
		var n uint64
		for _, wq := range release {
			tbl := wq.inst.cache.Load()
			for _, b := range wq.pkts {
				w.itrPacket(wq.inst, tbl, b, now, true)
				n++
			}
		}
		w.flush()
		e.k.released.Add(n)
		q.recycle(release)
		clear(release)
	}
}

// scan moves the queues whose destination resolved into release and
// drops expired packets and stale rate-limit records.
func (q *missQueue) scan(release []*waiting, now int64) []*waiting {
	e := q.e
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, wq := range q.dest {
		if f, ok := wq.inst.cache.Load().Lookup(wq.dst); ok && (f.expires == 0 || now < f.expires) &&
			!(f.negative && f.action == wire.ActionSendMapRequest) {
			delete(q.dest, k)
			q.total -= len(wq.pkts)
			release = append(release, wq)
			continue
		}
		keep := 0
		for i, b := range wq.pkts {
			if now-wq.born[i] >= int64(e.cfg.MissQueueTimeout) {
				e.k.drop(dropMissExpired)
				q.free = append(q.free, b[:cap(b)])
				q.total--
				continue
			}
			wq.pkts[keep], wq.born[keep] = b, wq.born[i]
			keep++
		}
		clear(wq.pkts[keep:])
		wq.pkts, wq.born = wq.pkts[:keep], wq.born[:keep]
		if keep == 0 {
			delete(q.dest, k)
			q.spare = append(q.spare, wq)
		}
	}
	for k, t := range q.last {
		if now-t >= int64(e.cfg.MissInterval) {
			delete(q.last, k)
		}
	}
	return release
}

// recycle returns released queues and their buffers to the pools.
func (q *missQueue) recycle(ws []*waiting) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, wq := range ws {
		for _, b := range wq.pkts {
			q.free = append(q.free, b[:cap(b)])
		}
		clear(wq.pkts)
		wq.pkts, wq.born, wq.inst = wq.pkts[:0], wq.born[:0], nil
		q.spare = append(q.spare, wq)
	}
}
