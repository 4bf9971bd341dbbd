package dataplane

import (
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/internal/mapping"
	"github.com/lispd/lispd/wire"
)

// instance is the state of one instance ID: its TUN, its map-cache and
// local-EID snapshots. Readers load the snapshots without locks; writers
// hold Engine.mu and publish a new snapshot built with bart's persistent
// (copy-on-write) operations, or a fresh one.
type instance struct {
	iid    uint32
	idx    int // index into per-worker per-instance slices
	tun    TUN
	native NativeWriter
	cache  atomic.Pointer[bart.Fast[*fwdEntry]]
	local  atomic.Pointer[bart.Lite]
	// Host mobility; nil (the common case) when the instance has no
	// dynamic-EID range or no host away, so the packet path pays one
	// load and a nil check.
	dyn  atomic.Pointer[dynEIDs]
	away atomic.Pointer[bart.Lite]
	// Source checks (SetSourcePolicy); never nil once the engine runs.
	src atomic.Pointer[srcPolicy]
}

// dynEIDs is an immutable snapshot of one instance's dynamic-EID
// configuration: the ranges hosts may appear in and the hosts already
// detected.
type dynEIDs struct {
	ranges bart.Lite
	known  bart.Lite
}

// fresh reports whether src lies in a dynamic-EID range and is not a
// known host.
func (d *dynEIDs) fresh(src netip.Addr) bool {
	return d.ranges.Lookup(src) && !d.known.Lookup(src)
}

// choice is one locator traffic may go to, with what the ITR needs to
// encapsulate to it.
type choice struct {
	dst      netip.Addr // the RLOC
	src      netip.Addr // the local RLOC of the same family (outer source)
	maxInner int        // largest inner packet that fits the underlay MTU
	cum      uint32     // cumulative weight, this choice included
	cnt      *rlocCount // traffic toward dst; nil past maxRLOCCounters
}

// fwdEntry is an immutable compiled map-cache entry.
type fwdEntry struct {
	eid      mapping.EID
	locs     []Locator // as programmed (private copy)
	negative bool
	action   wire.Action
	expires  int64 // UnixNano; 0 = never

	// The usable locators of the best usable priority, with their
	// cumulative weights (total is the sum).
	choices []choice
	total   uint32
}

// compile builds the forwarding entry of ce. A locator is usable when it
// is up, its priority is below 255 and there is a local RLOC of its family
// to send from; only the best priority among usable locators carries
// traffic, split by weight (all weights zero: equal split; a zero weight
// among non-zero ones: no traffic).
func (e *Engine) compile(ce *CacheEntry) *fwdEntry {
	f := &fwdEntry{eid: ce.EID, negative: ce.Negative, action: ce.Action, locs: slices.Clone(ce.Locators)}
	if !ce.Expires.IsZero() {
		f.expires = ce.Expires.UnixNano()
	}
	if f.negative {
		f.locs = nil
		return f
	}
	f.choices, f.total = e.choose(f.locs)
	return f
}

func (e *Engine) choose(locs []Locator) ([]choice, uint32) {
	best := -1
	for _, l := range locs {
		if e.usable(&l) && (best < 0 || int(l.Priority) < best) {
			best = int(l.Priority)
		}
	}
	if best < 0 {
		return nil, 0
	}
	weighted := false
	for _, l := range locs {
		if e.usable(&l) && int(l.Priority) == best && l.Weight > 0 {
			weighted = true
		}
	}
	var cs []choice
	var cum uint32
	for _, l := range locs {
		if !e.usable(&l) || int(l.Priority) != best {
			continue
		}
		w := uint32(1)
		if weighted {
			w = uint32(l.Weight)
		}
		if w == 0 {
			continue
		}
		cum += w
		c := choice{dst: l.Addr, cum: cum, cnt: e.k.rlocs.get(l.Addr)}
		if l.Addr.Is4() {
			c.src, c.maxInner = e.src4, e.cfg.UnderlayMTU-Overhead4
		} else {
			c.src, c.maxInner = e.src6, e.cfg.UnderlayMTU-Overhead6
		}
		cs = append(cs, c)
	}
	return cs, cum
}

func (e *Engine) usable(l *Locator) bool {
	if !l.Up || l.Priority == 255 || !l.Addr.IsValid() {
		return false
	}
	if l.Addr.Is4() {
		return e.src4.IsValid()
	}
	return e.src6.IsValid() && !l.Addr.Is4In6()
}

// pick chooses the locator of a flow: hash modulo the total weight, so a
// flow always takes one locator and flows split in proportion to the
// weights. nil when no locator is usable.
func (f *fwdEntry) pick(h uint64) *choice {
	switch len(f.choices) {
	case 0:
		return nil
	case 1:
		return &f.choices[0]
	}
	r := uint32(h % uint64(f.total))
	for i := range f.choices {
		if r < f.choices[i].cum {
			return &f.choices[i]
		}
	}
	return &f.choices[len(f.choices)-1]
}

func (e *Engine) instance(iid uint32) *instance { return e.insts[iid] }

// SetMapCache inserts or replaces a map-cache entry, then lets packets
// waiting for it go.
func (e *Engine) SetMapCache(ce CacheEntry) {
	inst := e.instance(ce.EID.IID)
	if inst == nil || !ce.EID.Prefix.IsValid() {
		e.log.Debug("map-cache entry for an instance not served", "eid", ce.EID)
		return
	}
	ce.EID.Prefix = ce.EID.Prefix.Masked()
	f := e.compile(&ce)
	e.mu.Lock()
	inst.cache.Store(inst.cache.Load().InsertPersist(ce.EID.Prefix, f))
	e.mu.Unlock()
	e.mq.kick()
}

// DeleteMapCache removes the entry for exactly eid.
func (e *Engine) DeleteMapCache(eid mapping.EID) {
	inst := e.instance(eid.IID)
	if inst == nil || !eid.Prefix.IsValid() {
		return
	}
	e.mu.Lock()
	inst.cache.Store(inst.cache.Load().DeletePersist(eid.Prefix.Masked()))
	e.mu.Unlock()
}

// FlushMapCache empties the map-cache of iid, or of every instance.
func (e *Engine) FlushMapCache(iid uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, inst := range e.instList {
		if iid == AllInstances || inst.iid == iid {
			inst.cache.Store(new(bart.Fast[*fwdEntry]))
		}
	}
}

// SetLocatorUp records an RLOC-probing verdict for one locator of the
// entry for exactly eid.
func (e *Engine) SetLocatorUp(eid mapping.EID, rloc netip.Addr, up bool) {
	inst := e.instance(eid.IID)
	if inst == nil || !eid.Prefix.IsValid() {
		return
	}
	pfx := eid.Prefix.Masked()
	e.mu.Lock()
	defer e.mu.Unlock()
	tbl := inst.cache.Load()
	old, ok := tbl.Get(pfx)
	if !ok || old.negative {
		return
	}
	i := slices.IndexFunc(old.locs, func(l Locator) bool { return l.Addr == rloc })
	if i < 0 || old.locs[i].Up == up {
		return
	}
	ce := CacheEntry{EID: old.eid, Locators: old.locs, Action: old.action}
	f := e.compile(&ce) // clones the locators
	f.expires = old.expires
	f.locs[i].Up = up
	f.choices, f.total = e.choose(f.locs)
	inst.cache.Store(tbl.InsertPersist(pfx, f))
	if up {
		e.mq.kick()
	}
}

// SetLocalEIDs replaces the ETR's database: the EID prefixes packets are
// decapsulated for.
func (e *Engine) SetLocalEIDs(eids []mapping.EID) {
	fresh := make(map[uint32]*bart.Lite, len(e.instList))
	for _, inst := range e.instList {
		fresh[inst.iid] = new(bart.Lite)
	}
	for _, eid := range eids {
		if l := fresh[eid.IID]; l != nil && eid.Prefix.IsValid() {
			l.Insert(eid.Prefix.Masked())
		} else {
			e.log.Debug("local EID in an instance not served", "eid", eid)
		}
	}
	e.mu.Lock()
	for _, inst := range e.instList {
		inst.local.Store(fresh[inst.iid])
	}
	e.mu.Unlock()
}

// SetDynamicEIDs replaces the dynamic-EID configuration: ranges are the
// prefixes (per instance ID) hosts may appear in, known the hosts (/32,
// /128) already detected. A packet from the TUN whose source lies in a
// range of its instance and is not known makes the engine call
// ControlHooks.HostSeen (rate-limited); the packet is forwarded as usual.
// Known hosts outside every range of their instance are ignored.
func (e *Engine) SetDynamicEIDs(ranges, known []mapping.EID) {
	fresh := make(map[uint32]*dynEIDs, len(e.instList))
	for _, r := range ranges {
		if e.instance(r.IID) == nil || !r.Prefix.IsValid() {
			e.log.Debug("dynamic-EID range in an instance not served", "eid", r)
			continue
		}
		d := fresh[r.IID]
		if d == nil {
			d = &dynEIDs{}
			fresh[r.IID] = d
		}
		d.ranges.Insert(r.Prefix.Masked())
	}
	for _, h := range known {
		if d := fresh[h.IID]; d != nil && h.Prefix.IsValid() {
			d.known.Insert(h.Prefix.Masked())
		}
	}
	e.mu.Lock()
	for _, inst := range e.instList {
		inst.dyn.Store(fresh[inst.iid]) // nil without ranges
	}
	e.mu.Unlock()
}

// SetAwayEIDs replaces the set of hosts (/32, /128 per instance ID) that
// moved away from this site. The ETR does not write a packet for one of
// them to the TUN: it re-encapsulates it by the map-cache, where the
// control plane installs the host's entry toward its new RLOC.
func (e *Engine) SetAwayEIDs(eids []mapping.EID) {
	fresh := make(map[uint32]*bart.Lite, len(e.instList))
	for _, eid := range eids {
		if e.instance(eid.IID) == nil || !eid.Prefix.IsValid() {
			e.log.Debug("away EID in an instance not served", "eid", eid)
			continue
		}
		l := fresh[eid.IID]
		if l == nil {
			l = new(bart.Lite)
			fresh[eid.IID] = l
		}
		l.Insert(eid.Prefix.Masked())
	}
	e.mu.Lock()
	for _, inst := range e.instList {
		inst.away.Store(fresh[inst.iid]) // nil when none
	}
	e.mu.Unlock()
}

// Lookup returns the map-cache entry that covers dst in iid, as programmed;
// for `show map-cache` and tests.
func (e *Engine) Lookup(iid uint32, dst netip.Addr) (CacheEntry, bool) {
	inst := e.instance(iid)
	if inst == nil {
		return CacheEntry{}, false
	}
	f, ok := inst.cache.Load().Lookup(dst)
	if !ok {
		return CacheEntry{}, false
	}
	return f.entry(), true
}

func (f *fwdEntry) entry() CacheEntry {
	ce := CacheEntry{EID: f.eid, Locators: slices.Clone(f.locs), Negative: f.negative, Action: f.action}
	if f.expires != 0 {
		ce.Expires = unixNano(f.expires)
	}
	return ce
}

func (e *Engine) cacheSize() int {
	n := 0
	for _, inst := range e.instList {
		n += inst.cache.Load().Size()
	}
	return n
}
