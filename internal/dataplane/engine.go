package dataplane

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
)

// Engine is the encapsulation/decapsulation engine. It implements
// Programmer.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	k     *counters
	ul    Underlay
	hooks ControlHooks
	seed  uint64 // flow hash seed

	local      atomic.Pointer[[]netip.Addr] // local RLOCs; SetLocalRLOCs replaces them
	src4, src6 netip.Addr                   // outer sources
	petr       *fwdEntry                    // PETRs as a locator set (equal split)

	insts    map[uint32]*instance
	instList []*instance

	mu sync.Mutex // serializes map-cache and local-EID writers
	mq missQueue

	// Hook queues: misses apart, so that a flood of decapsulation samples
	// (one per spoofed outer source) cannot keep local hosts from resolving.
	hookCh, missCh chan hookEvent
	// ctlCh carries Data-Map-Notifies to the control plane (rtr.go).
	ctlCh chan ctlMsg
	// relay is the RTR's NATed xTRs (rtr.go); nil when not relaying.
	relay atomic.Pointer[relayTable]

	icmpSec, icmpCount atomic.Int64

	itrBufSize, etrBufSize, scratchSize int

	done      chan struct{}
	closing   atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ Programmer = (*Engine)(nil)

// New validates cfg, builds the engine and starts its goroutines: one ITR
// reader per TUN, one ETR reader per underlay receive function, the miss
// queue and the two hook dispatchers.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	e := &Engine{
		cfg:    cfg,
		log:    cfg.Log,
		k:      newCounters(cfg.Stats),
		ul:     cfg.Underlay,
		hooks:  cfg.Hooks,
		insts:  map[uint32]*instance{},
		hookCh: make(chan hookEvent, 1024),
		missCh: make(chan hookEvent, 1024),
		ctlCh:  make(chan ctlMsg, 64),
		done:   make(chan struct{}),
	}
	local := slices.Clone(cfg.LocalRLOCs)
	e.local.Store(&local)
	var seed [8]byte
	_, _ = crand.Read(seed[:])
	e.seed = binary.LittleEndian.Uint64(seed[:])
	e.src4, e.src6 = OuterSources(cfg.LocalRLOCs)
	if len(cfg.PETRs) > 0 {
		locs := make([]Locator, len(cfg.PETRs))
		for i, a := range cfg.PETRs {
			locs[i] = Locator{Addr: a, Priority: 1, Up: true}
		}
		e.petr = &fwdEntry{locs: locs}
		e.petr.choices, e.petr.total = e.choose(locs)
		if len(e.petr.choices) == 0 {
			return nil, errors.New("dataplane: no PETR has the family of a local RLOC")
		}
	}
	tunMTU := cfg.UnderlayMTU
	iids := make([]uint32, 0, len(cfg.Instances))
	for iid := range cfg.Instances {
		iids = append(iids, iid)
	}
	slices.Sort(iids)
	for i, iid := range iids {
		inst := &instance{iid: iid, idx: i, tun: cfg.Instances[iid], native: cfg.Native[iid]}
		inst.cache.Store(new(bart.Fast[*fwdEntry]))
		inst.local.Store(new(bart.Lite))
		if m, err := inst.tun.MTU(); err == nil && m > tunMTU {
			tunMTU = m
		}
		e.insts[iid] = inst
		e.instList = append(e.instList, inst)
	}
	e.itrBufSize = roundUp(Headroom+max(tunMTU, 1500)+64, 64)
	// ETR buffers take a whole coalesced TCP segment run when the TUN
	// write merges decapsulated segments (GRO): one write and one skb per
	// 64 KB instead of per 16 KB. wireguard-go's TUN coalesces while
	// cap - 2*offset has room, which keeps the IP length below 65536.
	e.etrBufSize = max(etrGROBufSize, roundUp(Headroom+cfg.UnderlayMTU, 64))
	e.scratchSize = roundUp(Headroom+max(cfg.UnderlayMTU, 1280), 64)
	e.SetSourcePolicy(cfg.Sources)
	e.mq.init(e)

	for _, inst := range e.instList {
		w := e.newWorker(inst.tun.BatchSize(), e.itrBufSize)
		e.start("dataplane-itr", strconv.FormatUint(uint64(inst.iid), 10), func() { w.itrLoop(inst) })
	}
	for i, recv := range e.ul.Receivers() {
		w := e.newWorker(etrBatchRuns*e.ul.BatchSize(), e.etrBufSize)
		e.start("dataplane-etr", strconv.Itoa(i), func() { w.etrLoop(recv) })
	}
	mw := e.newWorker(min(e.ul.BatchSize(), 64), 0)
	e.start("dataplane-missq", "", func() { e.mq.loop(mw) })
	e.start("dataplane-hooks", "", func() { e.hookLoop(e.hookCh) })
	e.start("dataplane-miss-hooks", "", func() { e.hookLoop(e.missCh) })
	e.start("dataplane-control", "", e.ctlLoop)
	return e, nil
}

// etrBatchRuns is how many underlay batches an ETR worker takes at once.
// A TUN write coalesces, and a GSO send carries, at most 64 KB: about 45
// full-size segments. A batch of one underlay batch (64) ends most such
// runs with a short remainder of its own (45 + 19): a TUN write or a
// relayed send more per 64 segments than whole runs would need. Each
// buffer is a 64 KB super-packet's (etrGROBufSize), whose pages become
// resident only as far as packets reach into them.
const etrBatchRuns = 2

// etrGROBufSize is the size of an ETR buffer: a 64 KB super-packet.
const etrGROBufSize = 1<<16 + Headroom

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// start runs fn in a goroutine labelled with its role (visible in
// goroutine profiles).
func (e *Engine) start(role, id string, fn func()) {
	labels := pprof.Labels("role", role)
	if id != "" {
		labels = pprof.Labels("role", role, "id", id)
	}
	e.wg.Go(func() { pprof.Do(context.Background(), labels, func(context.Context) { fn() }) })
}

// Close stops every goroutine and closes the TUNs and the underlay (not
// the native writers, which may be shared).
func (e *Engine) Close() error {
	var errs []error
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		close(e.done)
		for _, inst := range e.instList {
			if err := inst.tun.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := e.ul.Close(); err != nil {
			errs = append(errs, err)
		}
		e.wg.Wait()
	})
	return errors.Join(errs...)
}

func (e *Engine) now() int64 { return e.cfg.Clock().UnixNano() }

func unixNano(n int64) time.Time { return time.Unix(0, n) }

// closedErr reports whether err means the device is gone for good.
func (e *Engine) closedErr(err error) bool {
	return e.closing.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// pause waits after a read error that is not a close, so that a device in
// a bad state does not spin a core; false once the engine is closing.
func (e *Engine) pause() bool {
	select {
	case <-e.done:
		return false
	case <-time.After(10 * time.Millisecond):
		return true
	}
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	k := e.k
	s := Stats{
		EncapsulatedPackets: k.encapPkts.Load(),
		EncapsulatedBytes:   k.encapBytes.Load(),
		DecapsulatedPackets: k.decapPkts.Load(),
		DecapsulatedBytes:   k.decapBytes.Load(),
		CacheHits:           k.hits.Load(),
		CacheMisses:         k.misses.Load(),
		PETREncapsulated:    k.petr.Load(),
		NativeForwarded:     k.native.Load(),
		Fragmented:          k.fragmented.Load(),
		ICMPSent:            k.icmpSent.Load(),
		ICMPRateLimited:     k.icmpLimited.Load(),
		MissQueued:          k.queued.Load(),
		MissReleased:        k.released.Load(),
		Reencapsulated:      k.reencap.Load(),
		HookEventsDropped:   k.hookDropped.Load(),
		Dropped:             map[string]uint64{},
		MapCacheEntries:     e.cacheSize(),
		MissQueuePackets:    e.mq.size(),
	}
	for i, c := range k.drops {
		if v := c.Load(); v != 0 {
			s.Dropped[dropNames[i]] = v
		}
	}
	return s
}

// isLocalRLOC reports whether a is one of the local RLOCs.
func (e *Engine) isLocalRLOC(a netip.Addr) bool {
	for _, l := range *e.local.Load() {
		if l == a {
			return true
		}
	}
	return false
}

// SourceChangeError refuses new local RLOCs that would change an outer
// source address: entries already programmed carry it.
type SourceChangeError struct{ Old, New netip.Addr }

func (e *SourceChangeError) Error() string {
	return fmt.Sprintf("dataplane: the outer source address would change from %v to %v", e.Old, e.New)
}

// SetLocalRLOCs replaces the local RLOCs the ETR decapsulates for. The
// first of each family is the ITR's outer source and must stay (a locator
// added, removed or renumbered behind it is live).
func (e *Engine) SetLocalRLOCs(rlocs []netip.Addr) error {
	if s4, s6 := OuterSources(rlocs); s4 != e.src4 || s6 != e.src6 {
		if s4 != e.src4 {
			return &SourceChangeError{e.src4, s4}
		}
		return &SourceChangeError{e.src6, s6}
	}
	local := slices.Clone(rlocs)
	e.local.Store(&local)
	return nil
}

// OuterSources returns the outer source addresses of local RLOCs: the
// first IPv4 and the first IPv6 one.
func OuterSources(addrs []netip.Addr) (v4, v6 netip.Addr) {
	for _, a := range addrs {
		if a.Is4() && !v4.IsValid() {
			v4 = a
		}
		if a.Is6() && !v6.IsValid() {
			v6 = a
		}
	}
	return v4, v6
}

// icmpAllow is the ICMP error rate limit: ICMPRate per wall-clock second.
func (e *Engine) icmpAllow(now int64) bool {
	if e.cfg.ICMPRate < 0 {
		return false
	}
	sec := now / int64(time.Second)
	if old := e.icmpSec.Load(); old != sec && e.icmpSec.CompareAndSwap(old, sec) {
		e.icmpCount.Store(0)
	}
	if e.icmpCount.Add(1) > int64(e.cfg.ICMPRate) {
		e.k.icmpLimited.Inc()
		return false
	}
	return true
}

// Hook events travel to the control plane through a bounded channel so
// that the packet path never waits for it.
type hookKind uint8

const (
	hookMiss hookKind = iota
	hookSendMapRequest
	hookDecap
	hookHostSeen
	hookAwayHit
	hookUnseenHostHit
	numHookKinds
)

// hookKindNames label the hook events dropped.
var hookKindNames = [numHookKinds]string{"miss", "send-map-request", "decapsulated", "host-seen", "away-hit", "unseen-host-hit"}

type hookEvent struct {
	kind        hookKind
	iid         uint32
	addr, addr2 netip.Addr
}

func (e *Engine) hook(ev hookEvent) {
	if e.hooks == nil {
		return
	}
	ch := e.hookCh
	if ev.kind == hookMiss || ev.kind == hookSendMapRequest {
		ch = e.missCh
	}
	select {
	case ch <- ev:
	default:
		e.k.hookDropped.Inc()
		e.k.hookDroppedBy[ev.kind].Inc()
	}
}

// hookLoop delivers the events of one queue.
func (e *Engine) hookLoop(ch <-chan hookEvent) {
	for {
		select {
		case <-e.done:
			return
		case ev := <-ch:
			switch ev.kind {
			case hookMiss:
				e.hooks.Miss(ev.iid, ev.addr, ev.addr2)
			case hookSendMapRequest:
				e.hooks.SendMapRequest(ev.iid, ev.addr, ev.addr2)
			case hookDecap:
				e.hooks.Decapsulated(ev.addr, ev.iid, ev.addr2)
			case hookAwayHit:
				e.hooks.AwayHit(ev.addr, ev.iid, ev.addr2)
			case hookUnseenHostHit:
				e.hooks.UnseenHostHit(ev.addr, ev.iid, ev.addr2)
			case hookHostSeen:
				e.hooks.HostSeen(ev.iid, ev.addr)
			}
		}
	}
}
